package flowcontrol

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"time"
)

// Ordering says which records of a group may be with clients at once.
type Ordering uint8

const (
	// OrderPartition: a partition's records go to one session at a time,
	// in offset order. The partitions are spread evenly over the sessions.
	OrderPartition Ordering = iota
	// OrderKey: records of one key (per partition) go to clients one at a
	// time, in offset order; the next waits until the previous is acked or
	// dead-lettered. Records of different keys, and records without a key,
	// go to any session with room.
	OrderKey
	// OrderNone: any record goes to any session with room.
	OrderNone
)

var orderingNames = [...]string{OrderPartition: "partition", OrderKey: "key", OrderNone: "none"}

func (o Ordering) String() string {
	if int(o) < len(orderingNames) {
		return orderingNames[o]
	}
	return "Ordering(" + strconv.Itoa(int(o)) + ")"
}

// Reason says why a record is delivered again.
type Reason uint8

const (
	ReasonNack      Reason = iota // its client nacked it
	ReasonDeadline                // its ack deadline passed
	ReasonRevoked                 // its stream ended or drained before acking it
	ReasonRebalance               // Kafka moved its partition here from another member that had delivered it
	ReasonRestart                 // an earlier consumer of this gateway instance had delivered it
)

var reasonNames = [...]string{ReasonNack: "nack", ReasonDeadline: "deadline", ReasonRevoked: "revoked", ReasonRebalance: "rebalance", ReasonRestart: "restart"}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "Reason(" + strconv.Itoa(int(r)) + ")"
}

// SessionID names a session of a Dispatcher; the caller chooses it.
type SessionID uint64

// SessionConfig is one session's window and redelivery policy. The policy
// of the session a record was last delivered to applies to it.
type SessionConfig struct {
	// MaxMessages is the most records with the session at once, handed to
	// it and not acked, nacked or expired (> 0).
	MaxMessages int
	// MaxBytes is the most bytes of such records (> 0). One record larger
	// than MaxBytes is handed over when the session holds none.
	MaxBytes int64
	// AckDeadline is how long a record sent to the client may stay unacked
	// before it is delivered again (> 0).
	AckDeadline time.Duration
	// MinBackoff is the redelivery delay after the first failed attempt
	// (>= 0); it doubles with each attempt up to MaxBackoff (>= MinBackoff).
	MinBackoff, MaxBackoff time.Duration
	// MaxAttempts is how many deliveries a record gets before it goes to
	// DeadLetterTopic (>= 0; 0 means for ever, and needs no topic).
	MaxAttempts int32
	// DeadLetterTopic receives records after MaxAttempts deliveries.
	DeadLetterTopic string
}

func (c SessionConfig) validate() error {
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
	case c.MaxAttempts > 0 && c.DeadLetterTopic == "":
		return errors.New("MaxAttempts needs a DeadLetterTopic")
	}
	return nil
}

// backoff returns MinBackoff * 2^(attempt-1), capped at MaxBackoff.
func (c *SessionConfig) backoff(attempt int32) time.Duration {
	d, limit := c.MinBackoff, c.MaxBackoff
	for n := int32(1); n < attempt && d < limit; n++ {
		if d > limit/2 {
			return limit
		}
		d *= 2
	}
	return min(d, limit)
}

// Decision says what the caller does with a record it offered.
type Decision uint8

const (
	// Skip: nothing to do; the record is acked already, was read before, or
	// its partition is not assigned or is refused.
	Skip Decision = iota
	// Accept: the Dispatcher holds the record now, and may have handed it to
	// a session at once.
	Accept
	// Refuse: there is no room for the record. Seek the partition back to
	// its offset and pause it until Resumable names it.
	Refuse
)

var decisionNames = [...]string{Skip: "Skip", Accept: "Accept", Refuse: "Refuse"}

func (d Decision) String() string {
	if int(d) < len(decisionNames) {
		return decisionNames[d]
	}
	return "Decision(" + strconv.Itoa(int(d)) + ")"
}

// Delivery hands a record to a session: the caller queues it for the
// session's client, and reports with Sent when the client was sent it.
type Delivery struct {
	Session SessionID
	Entry   *Entry
	// Redelivery is set when the record was delivered before (to any
	// session, or by an earlier consumer); Reason says why it comes again.
	Redelivery bool
	Reason     Reason
}

// Notice tells a session that partitions were assigned to it or taken from
// it. Under OrderKey and OrderNone every session serves every partition.
type Notice struct {
	Session  SessionID
	Assigned []TopicPartition
	Revoked  []TopicPartition
}

// PullBack asks the caller to take the entries queued for Session and not
// yet sent (of partition TP only, unless All) back out of its queue, and to
// hand them to Unqueue.
type PullBack struct {
	Session SessionID
	All     bool
	TP      TopicPartition
}

// Commit is what to commit for a partition: Offset, the lowest offset not
// acked, with Metadata, the encoded CommitMetadata.
type Commit struct {
	TopicPartition TopicPartition
	Offset         int64
	Metadata       string
}

// session is one stream's share of the dispatcher.
type session struct {
	id       SessionID
	cfg      SessionConfig
	draining bool
	msgs     int // entries queued or outstanding with it
	bytes    int64
	// sent holds its deliveries in send order, so that ack deadlines (all
	// AckDeadline after sending) expire from the front; stale items are
	// skipped, and compacted away when they outnumber the live ones.
	sent     []sentItem
	sentLive int
	// OrderPartition: the partitions it serves, its pool's held records and
	// bytes, its refused partitions, and the partitions with records held
	// or refused (contending for the window).
	parts      []*partition
	pool       pool
	moveTarget int // partitions moving to it
	movingAway int // of its partitions, those moving to another session
}

type sentItem struct {
	e       *Entry
	attempt int32
}

func (it sentItem) live(s *session) bool {
	return it.e.state == stateOutstanding && it.e.sess == s && it.e.attempt == it.attempt && !it.e.timed
}

// Dispatcher decides, for one group consumer, which session gets which
// record, holds the records from poll to ack, and computes what to commit.
// It keeps every held record (the caller's payload) in memory, so a
// redelivery after a nack, an expired deadline or a stream's end is handed
// out again without reading Kafka again. Records are held until acked or
// dead-lettered, bounded by the sessions' windows: beyond them, Offer
// refuses and the caller pauses the partition.
//
// Per partition, the commit offset is the lowest offset not acked, and the
// commit's metadata carries the acks above it (see CommitMetadata), so that
// nothing acked is delivered again by the next owner of the partition.
//
// Within a window's room, partitions share fairly: while some partition of
// a pool is refused, each may hold at most its share of the pool.
//
// Dispatcher does no I/O, starts no goroutines and never blocks; time is
// passed in. It is not safe for concurrent use: it belongs to the goroutine
// that owns the group's consumer.
type Dispatcher struct {
	mode     Ordering
	writer   string // this gateway instance, in commit metadata
	parts    map[TopicPartition]*partition
	byID     map[uint32]*partition
	lastID   uint32
	sessions map[SessionID]*session
	order    []*session // by joining, draining ones included
	rr       int        // OrderKey, OrderNone: next session to try first
	capMsgs  int        // OrderKey, OrderNone: the active sessions' windows
	capBytes int64
	shared   pool // OrderKey, OrderNone
	orphans  pool // OrderPartition: partitions without a session; no room
	held     int
	bytes    int64

	readyParts  []*partition // partitions that may have ready entries
	timers      timers
	deadLetters []*Entry
	notices     []Notice
	pullBacks   []PullBack
}

// NewDispatcher returns an empty Dispatcher for mode. writer names this
// gateway instance in the commits' metadata (see CommitMetadata.Writer).
func NewDispatcher(mode Ordering, writer string) *Dispatcher {
	return &Dispatcher{
		mode:     mode,
		writer:   writer,
		parts:    make(map[TopicPartition]*partition),
		byID:     make(map[uint32]*partition),
		sessions: make(map[SessionID]*session),
	}
}

// Ordering returns the dispatcher's ordering.
func (d *Dispatcher) Ordering() Ordering { return d.mode }

// SetOrdering changes the ordering; only possible without sessions and
// records (for example while a consumer lingers), else it returns false.
func (d *Dispatcher) SetOrdering(mode Ordering) bool {
	if mode == d.mode {
		return true
	}
	if len(d.sessions) > 0 || d.held > 0 {
		return false
	}
	d.mode = mode
	for _, p := range d.parts {
		if mode == OrderKey {
			p.keys = make(map[string][]*Entry)
		} else {
			p.keys = nil
		}
	}
	return true
}

// Held returns the records and bytes held, in every state.
func (d *Dispatcher) Held() (records int, bytes int64) { return d.held, d.bytes }

// Sessions returns the number of sessions.
func (d *Dispatcher) Sessions() int { return len(d.sessions) }

// Window returns what session id holds: records handed to it and not yet
// acked, nacked or expired, and their bytes.
func (d *Dispatcher) Window(id SessionID) (records int, bytes int64) {
	if s := d.sessions[id]; s != nil {
		return s.msgs, s.bytes
	}
	return 0, 0
}

// AddSession adds a session. Under OrderPartition it gets its share of the
// partitions (some move to it from other sessions once they hold none of
// their records). It panics if cfg is invalid or id is taken.
func (d *Dispatcher) AddSession(id SessionID, cfg SessionConfig) {
	if err := cfg.validate(); err != nil {
		panic("flowcontrol: invalid SessionConfig: " + err.Error())
	}
	if d.sessions[id] != nil {
		panic("flowcontrol: session id in use")
	}
	s := &session{id: id, cfg: cfg}
	d.sessions[id] = s
	d.order = append(d.order, s)
	switch d.mode {
	case OrderPartition:
		d.spread()
	default:
		d.capMsgs += cfg.MaxMessages
		d.capBytes += cfg.MaxBytes
		if tps := d.partitionList(); len(tps) > 0 {
			d.notices = append(d.notices, Notice{Session: id, Assigned: tps})
		}
		d.markAllReady()
	}
}

// Drain stops handing records to session id: its queued records are pulled
// back (see TakePullBacks) and go to other sessions, and under
// OrderPartition its partitions move to other sessions as soon as it holds
// none of their records. What the session's client has is still accepted
// when acked.
func (d *Dispatcher) Drain(id SessionID) {
	s := d.sessions[id]
	if s == nil || s.draining {
		return
	}
	s.draining = true
	d.pullBacks = append(d.pullBacks, PullBack{Session: id, All: true})
	switch d.mode {
	case OrderPartition:
		d.spread()
	default:
		d.capMsgs -= s.cfg.MaxMessages
		d.capBytes -= s.cfg.MaxBytes
	}
}

// RemoveSession removes session id. Its queued records go back to the
// others, not as redeliveries (the caller drops its queue); the records its
// client had and did not ack are delivered again, as redeliveries with
// ReasonRevoked (and count against their attempts). Under OrderPartition
// its partitions go to the other sessions at once.
func (d *Dispatcher) RemoveSession(id SessionID, now time.Time) {
	s := d.sessions[id]
	if s == nil {
		return
	}
	for _, p := range d.parts {
		if p.moveTo == s {
			s.moveTarget--
			p.owner.movingAway--
			p.moveTo = nil
		}
	}
	for _, p := range d.parts {
		for _, e := range p.entries {
			if e.sess != s {
				continue
			}
			switch e.state {
			case stateQueued:
				d.unqueue(e)
			case stateOutstanding:
				d.fail(e, 0, ReasonRevoked, now)
			}
		}
	}
	delete(d.sessions, id)
	d.order = slices.DeleteFunc(d.order, func(x *session) bool { return x == s })
	if d.rr >= len(d.order) {
		d.rr = 0
	}
	if d.mode != OrderPartition {
		if !s.draining {
			d.capMsgs -= s.cfg.MaxMessages
			d.capBytes -= s.cfg.MaxBytes
		}
		return
	}
	for _, p := range slices.Clone(s.parts) {
		d.setOwner(p, nil, false)
	}
	d.spread()
}

// Assign starts dispatching records of tp, read from offset start (the
// committed offset, or where the group starts without one; negative when
// not known: the first record read then sets it, and nothing is committed
// for tp before). metadata is the
// committed offset's metadata as read from Kafka; what kgate wrote there
// says which records above start are acked already, and which were
// delivered before (Reason says by whom when they are delivered again).
// Metadata written by this gateway instance (the Dispatcher's writer)
// means a restart. Assigning an assigned partition does nothing.
func (d *Dispatcher) Assign(tp TopicPartition, start int64, metadata string) {
	if d.parts[tp] != nil {
		return
	}
	d.lastID++
	start = max(start, -1)
	p := &partition{tp: tp, assignment: d.lastID, next: start, deliveredThrough: start}
	if m, err := DecodeCommitMetadata(start, metadata); err == nil && start >= 0 {
		p.deliveredThrough = m.DeliveredThrough
		p.preAcked = m.Acked
		p.restart = m.Writer == d.writer && d.writer != ""
	}
	// What is committed already, as this dispatcher would write it: the
	// first commit comes with the first change.
	if c, ok := d.commitOf(p); ok {
		p.committed.offset, p.committed.metadata = c.Offset, c.Metadata
	}
	if d.mode == OrderKey {
		p.keys = make(map[string][]*Entry)
	}
	d.parts[tp] = p
	d.byID[p.assignment] = p
	switch d.mode {
	case OrderPartition:
		if s := d.leastLoaded(); s != nil {
			d.setOwner(p, s, true)
		}
		d.spread()
	default:
		for _, s := range d.order {
			if !s.draining {
				d.notices = append(d.notices, Notice{Session: s.id, Assigned: []TopicPartition{tp}})
			}
		}
	}
}

// Revoke stops dispatching tp and forgets its records; acks of them are
// ignored from now on. It returns what to commit for tp, and pulls back its
// queued records (the caller drops them). ok is false when tp was not
// assigned or nothing is known to commit (no record read, start unknown).
func (d *Dispatcher) Revoke(tp TopicPartition) (c Commit, ok bool) {
	p := d.parts[tp]
	if p == nil {
		return Commit{}, false
	}
	c, ok = d.commitOf(p)
	if p.moveTo != nil {
		p.moveTo.moveTarget--
		p.owner.movingAway--
		p.moveTo = nil
	}
	queuedWith := map[*session]bool{}
	for _, e := range p.entries {
		if e.state == stateDone {
			continue
		}
		if e.state == stateQueued {
			queuedWith[e.sess] = true
		}
		d.leaveSession(e)
		d.timers.cancel(e)
		e.state = stateDone
		e.payload = nil
		d.poolOf(p).msgs--
		d.poolOf(p).bytes -= e.size
		d.held--
		d.bytes -= e.size
	}
	for s := range queuedWith {
		d.pullBacks = append(d.pullBacks, PullBack{Session: s.id, TP: tp})
	}
	p.entries, p.ready, p.keys, p.live, p.bytes = nil, nil, nil, 0, 0
	if p.refused {
		p.refused = false
		d.poolOf(p).refused--
	}
	d.setContending(p)
	switch d.mode {
	case OrderPartition:
		d.setOwner(p, nil, true)
	default:
		for _, s := range d.order {
			if !s.draining {
				d.notices = append(d.notices, Notice{Session: s.id, Revoked: []TopicPartition{tp}})
			}
		}
	}
	delete(d.parts, tp)
	delete(d.byID, p.assignment)
	d.spread()
	return c, ok
}

// Offer is called for every record polled, in poll order, with its size in
// bytes and key (nil for none), and says what to do with it. When the
// record is accepted and can go to a session at once, the delivery is
// returned (ok set); otherwise Dispatch hands it out later. Offer panics on
// a negative offset or size.
func (d *Dispatcher) Offer(tp TopicPartition, offset, size int64, key []byte, payload any, now time.Time) (Decision, Delivery, bool) {
	if offset < 0 || size < 0 {
		panic("flowcontrol: Offer with negative offset or size")
	}
	p := d.parts[tp]
	if p == nil || p.refused || offset < p.next {
		return Skip, Delivery{}, false
	}
	if p.next < 0 {
		p.next, p.deliveredThrough = offset, offset // the start was not known
	}
	if p.preAckedAt(offset) {
		p.next = offset + 1
		return Skip, Delivery{}, false
	}
	if !d.admits(p, size) {
		p.refused = true
		d.poolOf(p).refused++
		d.setContending(p)
		return Refuse, Delivery{}, false
	}
	e := &Entry{offset: offset, size: size, payload: payload, part: p, attempt: 1}
	if key != nil {
		e.key, e.hasKey = string(key), true
	}
	if offset < p.deliveredThrough {
		e.sent, e.reason = true, ReasonRebalance
		if p.restart {
			e.reason = ReasonRestart
		}
	}
	p.next = offset + 1
	p.entries = append(p.entries, e)
	p.live++
	p.bytes += size
	pl := d.poolOf(p)
	pl.msgs++
	pl.bytes += size
	d.held++
	d.bytes += size
	d.setContending(p)
	if d.mode == OrderKey && e.hasKey {
		q := p.keys[e.key]
		p.keys[e.key] = append(q, e)
		if len(q) > 0 {
			e.state = stateBlocked
			return Accept, Delivery{}, false
		}
	}
	if len(p.ready) == 0 {
		if s := d.target(p, e); s != nil {
			return Accept, d.deliver(e, s), true
		}
	}
	p.addReady(e)
	d.markReady(p)
	return Accept, Delivery{}, false
}

// Dispatch hands ready records (redeliveries due, records whose key was
// freed, records pulled back, records waiting for room) to sessions with
// room, partitions taking turns, and returns the deliveries.
func (d *Dispatcher) Dispatch(now time.Time) []Delivery {
	var out []Delivery
	for len(d.readyParts) > 0 {
		// One record per partition and pass; a partition served goes behind
		// those that were not, so that the next room goes to the one that
		// waited longest.
		parts := d.readyParts
		d.readyParts = nil
		var served []*partition
		for _, p := range parts {
			p.inReadyList = false
		}
		progress := false
		for _, p := range parts {
			if d.parts[p.tp] != p || len(p.ready) == 0 || p.inReadyList {
				continue
			}
			s := d.target(p, p.ready[0])
			if s == nil {
				d.markReady(p)
				continue
			}
			e := p.ready[0]
			p.ready[0] = nil
			p.ready = p.ready[1:]
			out = append(out, d.deliver(e, s))
			progress = true
			if len(p.ready) > 0 {
				served = append(served, p)
			}
		}
		for _, p := range served {
			d.markReady(p)
		}
		if !progress {
			break // no room for any
		}
	}
	return out
}

// markReady lets Dispatch look at p.
func (d *Dispatcher) markReady(p *partition) {
	if !p.inReadyList {
		p.inReadyList = true
		d.readyParts = append(d.readyParts, p)
	}
}

// Sent reports that session id's client was sent entries (as handed out by
// Offer or Dispatch) at time at: their ack deadlines start. Entries no
// longer queued for the session (acked, revoked or pulled back meanwhile)
// are ignored.
func (d *Dispatcher) Sent(id SessionID, entries []*Entry, at time.Time) {
	s := d.sessions[id]
	if s == nil {
		return
	}
	for _, e := range entries {
		if e.state != stateQueued || e.sess != s {
			continue
		}
		e.state, e.sent = stateOutstanding, true
		e.at = at.Add(e.policy.AckDeadline)
		s.sent = append(s.sent, sentItem{e: e, attempt: e.attempt})
		s.sentLive++
	}
}

// Unqueue takes entries that were pulled back out of a session's queue
// before they were sent: they are handed out again (not as redeliveries).
// Entries in any other state are ignored.
func (d *Dispatcher) Unqueue(entries []*Entry) {
	for _, e := range entries {
		if e.state == stateQueued {
			d.unqueue(e)
		}
	}
}

func (d *Dispatcher) unqueue(e *Entry) {
	d.leaveSession(e)
	d.makeReady(e)
}

// Ack marks the record of id acked (its slot and memory are freed). Acking
// an earlier delivery of a record that has been delivered again since is
// accepted. It returns false, changing nothing, when id is stale (of an
// earlier assignment), unknown, already acked, of a delivery not yet sent,
// or the record is being dead-lettered.
func (d *Dispatcher) Ack(id AckID) bool {
	e := d.lookup(id)
	if e == nil || id.Attempt > e.attempt || e.state == stateDeadLetterInFlight || e.state == stateDeadLetterDue ||
		(id.Attempt == e.attempt && !e.sent) {
		return false
	}
	d.finish(e)
	return true
}

// Nack ends the current delivery id: the record is delivered again after
// delay, or after its policy's backoff when useBackoff is set; or, when it
// has had its policy's MaxAttempts, it is due for dead-lettering. It
// returns false, changing nothing, unless id is the record's current
// outstanding delivery.
func (d *Dispatcher) Nack(id AckID, delay time.Duration, useBackoff bool, now time.Time) bool {
	e := d.current(id)
	if e == nil {
		return false
	}
	if useBackoff {
		delay = e.policy.backoff(e.attempt)
	}
	d.fail(e, delay, ReasonNack, now)
	return true
}

// Extend sets the ack deadline of the current delivery id to now+dur. It
// returns false, changing nothing, unless id is the record's current
// outstanding delivery.
func (d *Dispatcher) Extend(id AckID, dur time.Duration, now time.Time) bool {
	e := d.current(id)
	if e == nil {
		return false
	}
	if !e.timed {
		e.sess.sentLive--
	}
	d.timers.set(e, now.Add(dur))
	return true
}

// Tick expires the deliveries whose ack deadline passed (as a nack with
// backoff), and makes the records due again ready for Dispatch. It returns
// how many deliveries expired.
func (d *Dispatcher) Tick(now time.Time) (expired int) {
	for _, s := range d.order {
		for len(s.sent) > 0 {
			it := s.sent[0]
			if !it.live(s) {
				s.sent[0] = sentItem{}
				s.sent = s.sent[1:]
				continue
			}
			if it.e.at.After(now) {
				break
			}
			d.fail(it.e, it.e.policy.backoff(it.e.attempt), ReasonDeadline, now)
			expired++
		}
		if len(s.sent) > 2*s.sentLive+64 {
			s.sent = slices.DeleteFunc(s.sent, func(it sentItem) bool { return !it.live(s) })
		}
	}
	for {
		e, ok := d.timers.pop(now)
		if !ok {
			break
		}
		switch {
		case e.state == stateOutstanding: // an extended deadline
			e.sess.sentLive++ // fail takes it off again
			d.fail(e, e.policy.backoff(e.attempt), ReasonDeadline, now)
			expired++
		case e.state == stateWaiting && e.dlq:
			e.state = stateDeadLetterDue
			d.deadLetters = append(d.deadLetters, e)
		case e.state == stateWaiting:
			d.makeReady(e)
		}
	}
	return expired
}

// NextWake returns when Tick next has work: the earliest ack deadline or
// due time, or ok false when there is none.
func (d *Dispatcher) NextWake() (at time.Time, ok bool) {
	at, ok = d.timers.next()
	for _, s := range d.order {
		for len(s.sent) > 0 && !s.sent[0].live(s) {
			s.sent[0] = sentItem{}
			s.sent = s.sent[1:]
		}
		if len(s.sent) > 0 && (!ok || s.sent[0].e.at.Before(at)) {
			at, ok = s.sent[0].e.at, true
		}
	}
	return at, ok
}

// TakeDeadLetters returns the records due for dead-lettering, now in
// flight: write each to its DeadLetterTopic, then call DeadLettered or
// DeadLetterFailed.
func (d *Dispatcher) TakeDeadLetters() []*Entry {
	var out []*Entry
	for _, e := range d.deadLetters {
		if e.state == stateDeadLetterDue { // not of a partition revoked since
			e.state = stateDeadLetterInFlight
			out = append(out, e)
		}
	}
	d.deadLetters = nil
	return out
}

// DeadLettered reports that e was written to its dead-letter topic: it
// counts as acked. Entries of revoked partitions are ignored.
func (d *Dispatcher) DeadLettered(e *Entry) {
	if e.state == stateDeadLetterInFlight {
		d.finish(e)
	}
}

// DeadLetterFailed reports that writing e to its dead-letter topic failed:
// it is tried again after its policy's backoff.
func (d *Dispatcher) DeadLetterFailed(e *Entry, now time.Time) {
	if e.state == stateDeadLetterInFlight {
		e.state, e.dlq = stateWaiting, true
		d.timers.set(e, now.Add(e.policy.backoff(e.attempt)))
	}
}

// Resumable returns the refused partitions that now have room, and no
// longer counts them refused: resume them (they were sought back to the
// refused record).
func (d *Dispatcher) Resumable() []TopicPartition {
	// Decide for every partition against the pools as they are, then
	// apply: the answer does not depend on the order of the partitions.
	var resume []*partition
	for _, p := range d.parts {
		if p.refused && d.roomFor(p, 0) {
			resume = append(resume, p)
		}
	}
	out := make([]TopicPartition, 0, len(resume))
	for _, p := range resume {
		p.refused = false
		d.poolOf(p).refused--
		d.setContending(p)
		out = append(out, p.tp)
	}
	slices.SortFunc(out, compareTP)
	return out
}

// Refused reports whether tp is refused (paused for room).
func (d *Dispatcher) Refused(tp TopicPartition) bool {
	p := d.parts[tp]
	return p != nil && p.refused
}

// Next returns the offset the next record of tp must have at least: one
// past the highest read, or where its assignment started. ok is false when
// tp is not assigned or its start is not known yet.
func (d *Dispatcher) Next(tp TopicPartition) (next int64, ok bool) {
	if p := d.parts[tp]; p != nil && p.next >= 0 {
		return p.next, true
	}
	return 0, false
}

// Commits returns, ordered by partition, what to commit for each partition
// whose commit offset or metadata changed since it was last returned (or
// since Assign).
func (d *Dispatcher) Commits() []Commit {
	var out []Commit
	for _, p := range d.parts {
		c, ok := d.commitOf(p)
		if !ok || (c.Offset == p.committed.offset && c.Metadata == p.committed.metadata) {
			continue
		}
		p.committed.offset, p.committed.metadata = c.Offset, c.Metadata
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Commit) int { return compareTP(a.TopicPartition, b.TopicPartition) })
	return out
}

// TakeNotices returns the assignment notices for sessions since the last
// call, in order. Deliver them before the deliveries that follow.
func (d *Dispatcher) TakeNotices() []Notice {
	var out []Notice
	for _, n := range d.notices {
		// Adjacent notices of one session become one, when no partition is
		// in both.
		if last := len(out) - 1; last >= 0 && out[last].Session == n.Session && disjoint(out[last], n) {
			out[last].Assigned = append(out[last].Assigned, n.Assigned...)
			out[last].Revoked = append(out[last].Revoked, n.Revoked...)
			continue
		}
		out = append(out, n)
	}
	d.notices = nil
	return out
}

func disjoint(a, b Notice) bool {
	for _, x := range [][]TopicPartition{a.Assigned, a.Revoked} {
		for _, tp := range x {
			if slices.Contains(b.Assigned, tp) || slices.Contains(b.Revoked, tp) {
				return false
			}
		}
	}
	return true
}

// commitOf computes p's commit; ok is false while its start is not known.
func (d *Dispatcher) commitOf(p *partition) (Commit, bool) {
	if p.next < 0 {
		return Commit{}, false
	}
	off, m := p.metadata(d.writer)
	return Commit{TopicPartition: p.tp, Offset: off, Metadata: EncodeCommitMetadata(off, m, 0)}, true
}

func (d *Dispatcher) lookup(id AckID) *Entry {
	p := d.byID[id.Assignment]
	if p == nil || id.Attempt < 1 {
		return nil
	}
	return p.lookup(id.Offset)
}

// current returns the entry whose current outstanding delivery is id.
func (d *Dispatcher) current(id AckID) *Entry {
	e := d.lookup(id)
	if e == nil || e.state != stateOutstanding || e.attempt != id.Attempt {
		return nil
	}
	return e
}

// target returns the session to hand e to now, or nil.
func (d *Dispatcher) target(p *partition, e *Entry) *session {
	if d.mode == OrderPartition {
		if s := p.owner; s != nil && p.moveTo == nil && !s.draining && roomIn(s, e) {
			return s
		}
		return nil
	}
	n := len(d.order)
	for i := 0; i < n; i++ {
		s := d.order[(d.rr+i)%n]
		if !s.draining && roomIn(s, e) {
			d.rr = (d.rr + i + 1) % n
			return s
		}
	}
	return nil
}

func roomIn(s *session, e *Entry) bool {
	return s.msgs < s.cfg.MaxMessages && (s.msgs == 0 || s.bytes+e.size <= s.cfg.MaxBytes)
}

func (d *Dispatcher) deliver(e *Entry, s *session) Delivery {
	del := Delivery{Session: s.id, Entry: e, Redelivery: e.sent, Reason: e.reason}
	if e.sent {
		if e.attempt < math.MaxInt32 {
			e.attempt++
		}
		e.sent = false
	}
	e.state, e.sess, e.policy = stateQueued, s, &s.cfg
	s.msgs++
	s.bytes += e.size
	e.part.active++
	return del
}

// leaveSession takes e out of its session's window.
func (d *Dispatcher) leaveSession(e *Entry) {
	if !e.withSession() {
		return
	}
	s := e.sess
	if e.state == stateOutstanding && !e.timed {
		s.sentLive--
	}
	s.msgs--
	s.bytes -= e.size
	e.sess = nil
	p := e.part
	p.active--
	if p.active == 0 && p.moveTo != nil {
		d.completeMove(p)
	}
}

// fail ends e's delivery: it is due again after delay, or for
// dead-lettering when its policy's attempts are used up.
func (d *Dispatcher) fail(e *Entry, delay time.Duration, reason Reason, now time.Time) {
	d.leaveSession(e)
	d.timers.cancel(e)
	e.reason = reason
	if e.policy != nil && e.policy.MaxAttempts > 0 && e.attempt >= e.policy.MaxAttempts {
		e.state, e.dlq = stateDeadLetterDue, true
		d.deadLetters = append(d.deadLetters, e)
		return
	}
	if delay <= 0 {
		d.makeReady(e)
		return
	}
	e.state = stateWaiting
	d.timers.set(e, now.Add(delay))
}

// makeReady puts e in its partition's ready list, or under OrderKey
// blocked behind an earlier record of its key.
func (d *Dispatcher) makeReady(e *Entry) {
	p := e.part
	if d.mode == OrderKey && e.hasKey && p.keys[e.key][0] != e {
		e.state = stateBlocked
		return
	}
	p.addReady(e)
	d.markReady(p)
}

// finish removes an acked or dead-lettered entry.
func (d *Dispatcher) finish(e *Entry) {
	p := e.part
	d.leaveSession(e)
	d.timers.cancel(e)
	if e.state == stateReady {
		p.dropReady(e)
	}
	if d.mode == OrderKey && e.hasKey {
		q := p.keys[e.key]
		if i := slices.Index(q, e); i >= 0 {
			q = slices.Delete(q, i, i+1)
		}
		if len(q) == 0 {
			delete(p.keys, e.key)
		} else {
			p.keys[e.key] = q
			if q[0].state == stateBlocked {
				d.makeReady(q[0])
			}
		}
	}
	pl := d.poolOf(p)
	pl.msgs--
	pl.bytes -= e.size
	d.held--
	d.bytes -= e.size
	p.remove(e)
	d.setContending(p)
}

// partitionList returns the assigned partitions, ordered.
func (d *Dispatcher) partitionList() []TopicPartition {
	out := make([]TopicPartition, 0, len(d.parts))
	for tp := range d.parts {
		out = append(out, tp)
	}
	slices.SortFunc(out, compareTP)
	return out
}

// markAllReady lets Dispatch look at every partition again (sessions or
// room were added).
func (d *Dispatcher) markAllReady() {
	for _, p := range d.parts {
		if len(p.ready) > 0 {
			d.markReady(p)
		}
	}
}
