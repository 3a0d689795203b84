package flowcontrol

import (
	"cmp"
	"errors"
	"math"
	"slices"
	"strconv"
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

// TrackerConfig sets the limits of one Tracker. The caller validates it
// before NewTracker, which panics on an invalid value.
type TrackerConfig struct {
	// MaxMessages is the most records held at once (> 0).
	MaxMessages int
	// MaxBytes is the most record bytes held at once (> 0). One record larger
	// than MaxBytes is admitted when nothing is held.
	MaxBytes int64
	// AckDeadline is how long a delivery may stay unacknowledged before it
	// expires and is treated as a nack with backoff (> 0).
	AckDeadline time.Duration
	// MinBackoff is the redelivery delay after the first failed attempt
	// (>= 0). It doubles with each further attempt, up to MaxBackoff.
	MinBackoff time.Duration
	// MaxBackoff caps the redelivery delay (>= MinBackoff).
	MaxBackoff time.Duration
	// MaxAttempts is how many deliveries a record gets before it is sent to
	// the dead-letter topic (>= 0). 0 means redeliver for ever.
	MaxAttempts int32
}

func (c TrackerConfig) validate() error {
	switch {
	case c.MaxMessages <= 0:
		return errors.New("MaxMessages must be positive")
	case c.MaxBytes <= 0:
		return errors.New("MaxBytes must be positive")
	case c.AckDeadline <= 0:
		return errors.New("AckDeadline must be positive")
	case c.MinBackoff < 0:
		return errors.New("MinBackoff must not be negative")
	case c.MaxBackoff < c.MinBackoff:
		return errors.New("MaxBackoff must not be less than MinBackoff")
	case c.MaxAttempts < 0:
		return errors.New("MaxAttempts must not be negative")
	}
	return nil
}

// Decision tells the poll loop what to do with a polled record.
type Decision int

const (
	// Skip: do not deliver. The record was already acked, is outstanding
	// with the client, is waiting and not yet due, is being dead-lettered,
	// or its partition is not assigned.
	Skip Decision = iota
	// Deliver the record to the client under the returned AckID, whose
	// Attempt is 1 on first delivery.
	Deliver
	// Refuse: the window is full. Seek the partition back to this offset and
	// pause it; nothing was recorded.
	Refuse
	// DeadLetter: the record has used all its attempts. Produce it to the
	// dead-letter topic, then call DeadLettered or DeadLetterFailed with the
	// returned AckID.
	DeadLetter
)

var decisionNames = [...]string{Skip: "Skip", Deliver: "Deliver", Refuse: "Refuse", DeadLetter: "DeadLetter"}

func (d Decision) String() string {
	if d >= 0 && int(d) < len(decisionNames) {
		return decisionNames[d]
	}
	return "Decision(" + strconv.Itoa(int(d)) + ")"
}

// Seek asks the poll loop to seek a partition to Offset, so that records
// due for redelivery or dead-lettering are read again.
type Seek struct {
	TopicPartition TopicPartition
	Offset         int64
}

// Commit is the offset to store for a partition: every record below it has
// been acked or dead-lettered.
type Commit struct {
	TopicPartition TopicPartition
	Offset         int64
}

type recordState uint8

const (
	outstanding        recordState = iota // delivered; at is the ack deadline
	waiting                               // nacked or expired; at is when it is due again
	deadLetterWaiting                     // attempts used up; at is when it is due for dead-lettering
	deadLetterInFlight                    // being produced to the dead-letter topic
)

// record is one tracked (not yet acked) record.
type record struct {
	offset  int64
	size    int64
	at      time.Time
	attempt int32
	state   recordState
}

func (r *record) pendingRead() bool { return r.state == waiting || r.state == deadLetterWaiting }

// partition is the tracking state of one assignment of one partition.
type partition struct {
	tp          TopicPartition
	assignment  uint32
	next        int64    // one past the highest offset accepted; -1 before the first
	recs        []record // tracked records by ascending offset
	seekPending int64    // offset of a seek returned by Tick and not yet read back; -1 if none
	committed   int64    // offset last returned by Commits; -1 if none
}

// find returns the index of the record at offset, or where it would go.
func (p *partition) find(offset int64) (int, bool) {
	return slices.BinarySearchFunc(p.recs, offset, func(r record, off int64) int { return cmp.Compare(r.offset, off) })
}

// commitOffset is the lowest tracked offset, or next when nothing is
// tracked; ok is false when nothing was ever accepted.
func (p *partition) commitOffset() (offset int64, ok bool) {
	if len(p.recs) > 0 {
		return p.recs[0].offset, true
	}
	return p.next, p.next >= 0
}

func (p *partition) ackID(r *record) AckID {
	return AckID{Assignment: p.assignment, Offset: r.offset, Attempt: r.attempt}
}

// Tracker tracks, for one Subscribe stream, every record delivered and not
// yet acked across the stream's assigned partitions. It decides for each
// polled record whether to deliver, skip, refuse or dead-letter it; takes
// acks, nacks and deadline extensions by AckID; schedules redeliveries as
// partition seeks; bounds the records and bytes held; and computes the
// offsets that are safe to commit, which never pass an unacked record.
//
// Only records not yet acked are kept, so memory is proportional to the
// records held, at most MaxMessages. Tick and NextWake scan every held
// record.
//
// Tracker does no I/O, starts no goroutines and never blocks. Time is passed
// in by the caller. It is not safe for concurrent use: it belongs to the
// goroutine that owns the stream's consumer.
type Tracker struct {
	cfg         TrackerConfig
	parts       map[TopicPartition]*partition
	byID        map[uint32]*partition // assigned partitions by assignment number
	lastID      uint32
	heldMsgs    int
	heldBytes   int64
	outstanding int
}

// NewTracker returns an empty Tracker. It panics if cfg is invalid.
func NewTracker(cfg TrackerConfig) *Tracker {
	if err := cfg.validate(); err != nil {
		panic("flowcontrol: invalid TrackerConfig: " + err.Error())
	}
	return &Tracker{
		cfg:   cfg,
		parts: make(map[TopicPartition]*partition),
		byID:  make(map[uint32]*partition),
	}
}

// Assign starts tracking tp under a new assignment number, so that AckIDs
// from an earlier assignment of tp are stale. Assigning a partition that is
// already assigned does nothing.
func (t *Tracker) Assign(tp TopicPartition) {
	if t.parts[tp] != nil {
		return
	}
	t.lastID++
	p := &partition{tp: tp, assignment: t.lastID, next: -1, seekPending: -1, committed: -1}
	t.parts[tp] = p
	t.byID[p.assignment] = p
}

// Revoke forgets tp and every record tracked for it, releasing their window
// slots. It returns the offset to commit for tp, as Commits computes it; ok
// is false when tp was not assigned or no record of it was ever accepted.
func (t *Tracker) Revoke(tp TopicPartition) (commit int64, ok bool) {
	p := t.parts[tp]
	if p == nil {
		return 0, false
	}
	for i := range p.recs {
		t.release(&p.recs[i])
	}
	delete(t.parts, tp)
	delete(t.byID, p.assignment)
	return p.commitOffset()
}

// Assigned reports whether tp is assigned.
func (t *Tracker) Assigned(tp TopicPartition) bool { return t.parts[tp] != nil }

// Offer is called for every record polled, in poll order, with its size in
// bytes, and says what to do with it. The AckID is set for Deliver and
// DeadLetter only. Offer panics on a negative offset or size.
//
// A record at or past the highest offset accepted so far is new: it is
// delivered as attempt 1 if the window has room, else refused. A lower
// offset is a re-read after a seek: only a record that is waiting and due is
// delivered again (attempt+1), or dead-lettered. Records waiting between a
// pending seek's offset and the first offset read after it no longer exist
// in Kafka (compacted or deleted) and are dropped as if acked.
func (t *Tracker) Offer(tp TopicPartition, offset, size int64, now time.Time) (Decision, AckID) {
	if offset < 0 || size < 0 {
		panic("flowcontrol: Offer with negative offset or size")
	}
	p := t.parts[tp]
	if p == nil {
		return Skip, AckID{}
	}
	if p.seekPending >= 0 {
		if offset < p.seekPending {
			return Skip, AckID{} // read before the seek took effect
		}
		t.dropVanished(p, p.seekPending, offset)
		p.seekPending = -1
	}
	if offset < p.next {
		i, found := p.find(offset)
		if !found {
			return Skip, AckID{} // acked
		}
		r := &p.recs[i]
		if !r.pendingRead() || r.at.After(now) {
			return Skip, AckID{}
		}
		if r.state == deadLetterWaiting {
			r.state = deadLetterInFlight
			return DeadLetter, p.ackID(r)
		}
		if r.attempt < math.MaxInt32 {
			r.attempt++
		}
		r.state, r.at = outstanding, now.Add(t.cfg.AckDeadline)
		t.outstanding++
		return Deliver, p.ackID(r)
	}
	if t.heldMsgs >= t.cfg.MaxMessages || (t.heldMsgs > 0 && size > t.cfg.MaxBytes-t.heldBytes) {
		return Refuse, AckID{}
	}
	p.recs = append(p.recs, record{offset: offset, size: size, at: now.Add(t.cfg.AckDeadline), attempt: 1, state: outstanding})
	p.next = offset + 1
	t.heldMsgs++
	t.heldBytes += size
	t.outstanding++
	return Deliver, p.ackID(&p.recs[len(p.recs)-1])
}

// Ack marks the record of id done and releases its slot. Acking an earlier
// delivery of a record that has since been redelivered is accepted. It
// returns false, changing nothing, when id is stale (earlier assignment),
// unknown, already acked, from a later attempt than the record's, or the
// record is being dead-lettered.
func (t *Tracker) Ack(id AckID) bool {
	p, i := t.lookup(id)
	if p == nil || p.recs[i].state == deadLetterInFlight || id.Attempt > p.recs[i].attempt {
		return false
	}
	t.remove(p, i)
	return true
}

// Nack ends the outstanding delivery id: the record is due again after delay,
// or after the backoff for its attempt when useBackoff is set. A record that
// has used MaxAttempts deliveries is due for dead-lettering at once instead.
// It returns false, changing nothing, unless id is the record's current
// outstanding delivery.
func (t *Tracker) Nack(id AckID, delay time.Duration, useBackoff bool, now time.Time) bool {
	r := t.current(id)
	if r == nil {
		return false
	}
	if useBackoff {
		delay = t.backoff(r.attempt)
	}
	t.fail(r, delay, now)
	return true
}

// Extend sets the ack deadline of the outstanding delivery id to now+d. It
// returns false, changing nothing, unless id is the record's current
// outstanding delivery.
func (t *Tracker) Extend(id AckID, d time.Duration, now time.Time) bool {
	r := t.current(id)
	if r == nil {
		return false
	}
	r.at = now.Add(d)
	return true
}

// DeadLettered reports that the record of id, returned by Offer with
// DeadLetter, was produced to the dead-letter topic; it counts as acked.
// It returns false, changing nothing, for any other id.
func (t *Tracker) DeadLettered(id AckID) bool {
	p, i := t.lookup(id)
	if p == nil || p.recs[i].state != deadLetterInFlight || p.recs[i].attempt != id.Attempt {
		return false
	}
	t.remove(p, i)
	return true
}

// DeadLetterFailed reports that producing the record of id to the
// dead-letter topic failed. The record is due for dead-lettering again after
// the backoff for its attempt. It returns false, changing nothing, for an id
// that DeadLettered would not accept.
func (t *Tracker) DeadLetterFailed(id AckID, now time.Time) bool {
	p, i := t.lookup(id)
	if p == nil || p.recs[i].state != deadLetterInFlight || p.recs[i].attempt != id.Attempt {
		return false
	}
	r := &p.recs[i]
	r.state, r.at = deadLetterWaiting, now.Add(t.backoff(r.attempt))
	return true
}

// Tick expires the outstanding deliveries whose deadline is not after now,
// as Nack with backoff does. It then returns, for each partition without a
// seek pending, a seek to the lowest offset among its records that are due
// (for redelivery or dead-lettering), and marks that seek pending until Offer
// sees an offset at or past it. Seeks are ordered by topic and partition.
func (t *Tracker) Tick(now time.Time) []Seek {
	var seeks []Seek
	for _, p := range t.parts {
		seek := int64(-1)
		for i := range p.recs {
			r := &p.recs[i]
			if r.state == outstanding && !r.at.After(now) {
				t.fail(r, t.backoff(r.attempt), now)
			}
			if seek < 0 && p.seekPending < 0 && r.pendingRead() && !r.at.After(now) {
				seek = r.offset
			}
		}
		if seek >= 0 {
			p.seekPending = seek
			seeks = append(seeks, Seek{TopicPartition: p.tp, Offset: seek})
		}
	}
	slices.SortFunc(seeks, func(a, b Seek) int { return compareTP(a.TopicPartition, b.TopicPartition) })
	return seeks
}

// NextWake returns the earliest time at which Tick has work: an ack deadline,
// or a due time in a partition without a seek pending. It returns the zero
// time when there is none. Call it again after any other call, which may
// change the answer.
func (t *Tracker) NextWake() time.Time {
	var wake time.Time
	found := false
	for _, p := range t.parts {
		for i := range p.recs {
			r := &p.recs[i]
			if r.state != outstanding && !(r.pendingRead() && p.seekPending < 0) {
				continue
			}
			if !found || r.at.Before(wake) {
				wake, found = r.at, true
			}
		}
	}
	return wake
}

// Commits returns, ordered by topic and partition, the offset to commit for
// each assigned partition whose offset changed since the previous call: the
// lowest offset still tracked, or if none, one past the highest offset
// accepted. Partitions with no record accepted are left out.
func (t *Tracker) Commits() []Commit {
	var commits []Commit
	for _, p := range t.parts {
		off, ok := p.commitOffset()
		if !ok || off == p.committed {
			continue
		}
		p.committed = off
		commits = append(commits, Commit{TopicPartition: p.tp, Offset: off})
	}
	slices.SortFunc(commits, func(a, b Commit) int { return compareTP(a.TopicPartition, b.TopicPartition) })
	return commits
}

// HasRoom reports whether fewer than MaxMessages records and MaxBytes bytes
// are held, so that a paused partition may be resumed.
func (t *Tracker) HasRoom() bool {
	return t.heldMsgs < t.cfg.MaxMessages && t.heldBytes < t.cfg.MaxBytes
}

// Held returns the records and bytes held: every tracked record, whether
// outstanding, waiting for redelivery or being dead-lettered, holds its slot
// until it is acked, dead-lettered or its partition is revoked.
func (t *Tracker) Held() (messages int, bytes int64) { return t.heldMsgs, t.heldBytes }

// Outstanding returns the number of deliveries with the client that are
// neither acked, nacked nor expired.
func (t *Tracker) Outstanding() int { return t.outstanding }

// lookup finds the record id names in a current assignment.
func (t *Tracker) lookup(id AckID) (*partition, int) {
	p := t.byID[id.Assignment]
	if p == nil || id.Attempt < 1 {
		return nil, -1
	}
	i, found := p.find(id.Offset)
	if !found {
		return nil, -1
	}
	return p, i
}

// current returns the record whose current outstanding delivery is id.
func (t *Tracker) current(id AckID) *record {
	p, i := t.lookup(id)
	if p == nil || p.recs[i].state != outstanding || p.recs[i].attempt != id.Attempt {
		return nil
	}
	return &p.recs[i]
}

// fail ends an outstanding delivery: the record waits delay before it is
// redelivered, or is due for dead-lettering at once if it used its attempts.
func (t *Tracker) fail(r *record, delay time.Duration, now time.Time) {
	t.outstanding--
	if t.cfg.MaxAttempts > 0 && r.attempt >= t.cfg.MaxAttempts {
		r.state, r.at = deadLetterWaiting, now
		return
	}
	r.state, r.at = waiting, now.Add(max(delay, 0))
}

// backoff returns MinBackoff * 2^(attempt-1), capped at MaxBackoff.
func (t *Tracker) backoff(attempt int32) time.Duration {
	d, limit := t.cfg.MinBackoff, t.cfg.MaxBackoff
	for n := int32(1); n < attempt && d < limit; n++ {
		if d > limit/2 {
			return limit
		}
		d *= 2
	}
	return min(d, limit)
}

// release frees the window slot of a record that is no longer tracked.
func (t *Tracker) release(r *record) {
	t.heldMsgs--
	t.heldBytes -= r.size
	if r.state == outstanding {
		t.outstanding--
	}
}

func (t *Tracker) remove(p *partition, i int) {
	t.release(&p.recs[i])
	if i == 0 {
		// In-order acks are the common case: drop the head without
		// copying. append reallocates once the spare capacity is used, so
		// the backing array stays proportional to what is held.
		p.recs[0] = record{}
		p.recs = p.recs[1:]
		return
	}
	p.recs = slices.Delete(p.recs, i, i+1)
}

// dropVanished removes the records waiting (for redelivery or
// dead-lettering) at offsets in [from, to): a read after a seek to from
// returned to, so they no longer exist in Kafka.
func (t *Tracker) dropVanished(p *partition, from, to int64) {
	lo, _ := p.find(from)
	hi, _ := p.find(to)
	w := lo
	for i := lo; i < hi; i++ {
		if p.recs[i].pendingRead() {
			t.release(&p.recs[i])
			continue
		}
		p.recs[w] = p.recs[i]
		w++
	}
	p.recs = slices.Delete(p.recs, w, hi)
}
