package flowcontrol

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// TopicPartition names one Kafka partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func compareTP(a, b TopicPartition) int {
	return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
}

type entryState uint8

const (
	stateReady              entryState = iota // may be handed to a session
	stateBlocked                              // key ordering: an earlier record of its key is held
	stateQueued                               // handed to a session, not yet sent to its client
	stateOutstanding                          // sent; at is the ack deadline
	stateWaiting                              // nacked, expired or its session ended; at is when it is due again
	stateDeadLetterDue                        // its attempts are used up: to be written to the dead-letter topic
	stateDeadLetterInFlight                   // being written to the dead-letter topic
	stateDone                                 // acked or dead-lettered: a tombstone until compacted away
)

// Entry is one record held by a Dispatcher, from the poll that read it until
// it is acked, dead-lettered or its partition is revoked. Its payload is the
// caller's; the Dispatcher never looks at it.
type Entry struct {
	offset  int64
	size    int64
	payload any
	key     string
	hasKey  bool
	part    *partition

	attempt int32
	state   entryState
	// sent: the current attempt reached a client (or, for a record read
	// again after a Kafka rebalance or a restart, an earlier owner's), so
	// the next delivery is a redelivery with attempt + 1.
	sent   bool
	reason Reason // why it is due again, while sent
	sess   *session
	policy *SessionConfig // the policy of the session it was last delivered to
	at     time.Time
	timed  bool   // it has a live timer in timers (waiting, or an extended deadline)
	timer  uint32 // generation of its live timer
	dlq    bool   // waiting to be dead-lettered, not redelivered
}

// Payload returns what the caller gave Offer.
func (e *Entry) Payload() any { return e.payload }

// TopicPartition returns the entry's partition.
func (e *Entry) TopicPartition() TopicPartition { return e.part.tp }

// Offset returns the entry's offset.
func (e *Entry) Offset() int64 { return e.offset }

// Attempt returns the entry's current delivery attempt (1 for the first).
func (e *Entry) Attempt() int32 { return e.attempt }

// ID returns the ack id of the entry's current delivery.
func (e *Entry) ID() AckID {
	return AckID{Assignment: e.part.assignment, Offset: e.offset, Attempt: e.attempt}
}

// DeadLetterTopic is the dead-letter topic of the policy the entry failed
// under, for an entry Tick returned to dead-letter.
func (e *Entry) DeadLetterTopic() string {
	if e.policy == nil {
		return ""
	}
	return e.policy.DeadLetterTopic
}

// held reports whether the entry still counts against its pool.
func (e *Entry) held() bool { return e.state != stateDone }

// withSession reports whether the entry is in a session's window.
func (e *Entry) withSession() bool { return e.state == stateQueued || e.state == stateOutstanding }

// partition is the state of one assigned partition.
type partition struct {
	tp         TopicPartition
	assignment uint32

	// next is the offset the next record read must have at least: one past
	// the highest offset read, or where the assignment started.
	next int64
	// entries by ascending offset, with tombstones (stateDone) that
	// compact removes; live counts the others.
	entries []*Entry
	live    int
	bytes   int64
	ready   []*Entry // stateReady entries by ascending offset
	// keys holds, per key, its held entries in offset order (key ordering
	// only): only the first may be with a session.
	keys map[string][]*Entry

	// From the committed offset's metadata: acks an earlier owner knew of
	// above the commit, and up to where it had delivered.
	preAcked         []OffsetRange
	deliveredThrough int64
	restart          bool // that earlier owner was this gateway instance

	refused     bool // a record was refused: the caller paused the partition at next
	contending  bool // counted in its pool's contenders (holds records, or refused)
	inReadyList bool // in the Dispatcher's readyParts

	// Ordering by partition: the session serving the partition, and the
	// one it moves to once owner holds none of its records.
	owner, moveTo *session
	active        int // entries queued or outstanding (with owner)

	committed struct {
		offset   int64
		metadata string
	}
}

// find returns the index of the entry at offset, or where it would go.
func (p *partition) find(offset int64) (int, bool) {
	return slices.BinarySearchFunc(p.entries, offset, func(e *Entry, off int64) int { return cmp.Compare(e.offset, off) })
}

// lookup returns the held entry at offset.
func (p *partition) lookup(offset int64) *Entry {
	i, ok := p.find(offset)
	if !ok || p.entries[i].state == stateDone {
		return nil
	}
	return p.entries[i]
}

// preAckedAt reports whether an earlier owner knew offset to be acked, and
// drops what lies below it.
func (p *partition) preAckedAt(offset int64) bool {
	for len(p.preAcked) > 0 && p.preAcked[0].End <= offset {
		p.preAcked = p.preAcked[1:]
	}
	return len(p.preAcked) > 0 && p.preAcked[0].Start <= offset
}

// remove makes e a tombstone and compacts the entries when they are mostly
// tombstones, or drops the leading ones (the common case: acks in order).
func (p *partition) remove(e *Entry) {
	e.state = stateDone
	p.live--
	p.bytes -= e.size
	e.payload = nil
	n := 0
	for n < len(p.entries) && p.entries[n].state == stateDone {
		n++
	}
	if n > 0 {
		clear(p.entries[:n])
		p.entries = p.entries[n:]
	}
	if len(p.entries) > 32 && p.live < len(p.entries)/2 {
		p.entries = slices.DeleteFunc(p.entries, func(e *Entry) bool { return e.state == stateDone })
	}
}

// addReady inserts e into the ready list in offset order.
func (p *partition) addReady(e *Entry) {
	e.state = stateReady
	i := len(p.ready)
	if i > 0 && p.ready[i-1].offset > e.offset {
		i, _ = slices.BinarySearchFunc(p.ready, e.offset, func(r *Entry, off int64) int { return cmp.Compare(r.offset, off) })
	}
	p.ready = slices.Insert(p.ready, i, e)
}

// dropReady removes e from the ready list.
func (p *partition) dropReady(e *Entry) {
	if i := slices.Index(p.ready, e); i >= 0 {
		p.ready = slices.Delete(p.ready, i, i+1)
	}
}

// commitOffset is the lowest offset not acked: the lowest held entry's, or
// next when none is held.
func (p *partition) commitOffset() int64 {
	for _, e := range p.entries {
		if e.state != stateDone {
			return e.offset
		}
	}
	return p.next
}

// metadata is what a commit at commitOffset carries: the offsets acked
// above it (what was read and is not held, and what an earlier owner knew
// to be acked beyond what this one has read) and how far records were
// delivered.
func (p *partition) metadata(writer string) (int64, CommitMetadata) {
	commit := p.commitOffset()
	m := CommitMetadata{Writer: writer, DeliveredThrough: max(p.deliveredThrough, p.next, commit)}
	// Gaps between held entries below next are acked (or never existed).
	from := int64(-1)
	for _, e := range p.entries {
		if e.state == stateDone || e.offset < commit {
			continue
		}
		if from >= 0 && e.offset > from {
			m.Acked = append(m.Acked, OffsetRange{Start: from, End: e.offset})
		}
		from = e.offset + 1
	}
	if from >= 0 && p.next > from {
		m.Acked = append(m.Acked, OffsetRange{Start: from, End: p.next})
	}
	for _, r := range p.preAcked {
		if r.End <= p.next {
			continue
		}
		r.Start = max(r.Start, p.next)
		if n := len(m.Acked); n > 0 && m.Acked[n-1].End >= r.Start {
			m.Acked[n-1].End = max(m.Acked[n-1].End, r.End)
			continue
		}
		m.Acked = append(m.Acked, r)
	}
	return commit, m
}
