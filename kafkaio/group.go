package kafkaio

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/kgate/kgate/flowcontrol"
)

// groupConsumer is the one Kafka consumer, one member of its group, that
// serves every Subscribe stream of one (group, topics) on this gateway.
//
// One goroutine, its owner (run), owns the librdkafka consumer and the
// Dispatcher: it polls, runs the rebalance callback, seeks, pauses and
// resumes, hands records to sessions, applies their acks, and hands
// commits to the committer. Sessions reach it over cmds; records reach
// sessions through their queues (Session.push), so the owner never blocks
// on a client.
type groupConsumer struct {
	sub    *Subscriber
	key    string
	group  string
	topics []string
	log    *slog.Logger
	obs    Observer
	c      *kafka.Consumer
	coop   bool  // cooperative (incremental) assignment
	buffer int64 // budget reserved for librdkafka's fetch buffers
	// startEarliest: partitions without a committed offset start at the
	// oldest record (the first open's start_position).
	startEarliest bool

	cm       kafka.ConfigMap
	ready    chan struct{} // closed when start returned; startErr is then set
	startErr error

	cmds chan command
	stop chan struct{} // closed by close or retire: shut down
	done chan struct{} // closed when the owner has returned
	// stopBy bounds the shutdown; set before stop is closed.
	stopBy   time.Time
	stopOnce sync.Once

	sentMu  sync.Mutex
	sentBy  []*Session // sessions whose Next handed out records the owner has not seen
	dlqCtx  context.Context
	dlqStop context.CancelFunc
	dlqWG   sync.WaitGroup // dead-letter writers
	logsWG  sync.WaitGroup // the librdkafka log forwarder

	// Owned by the owner goroutine.
	d          *flowcontrol.Dispatcher
	sessions   map[flowcontrol.SessionID]*Session
	parts      map[TopicPartition]*fetchState
	committer  *committer
	charged    int64 // budget bytes charged for held records
	held       int   // records held, as last reported to obs
	idleSince  time.Time
	lastCommit time.Time
	lastLag    time.Time
	lastWatch  time.Time
	lastInfo   time.Time

	info atomic.Pointer[GroupInfo] // written by the owner, read by Subscriber.Groups
}

// fetchState is the owner's view of one assigned partition's fetching.
type fetchState struct {
	paused     bool  // paused in librdkafka, for refused or budget or both
	refused    bool  // the Dispatcher refused a record: no room in its sessions' windows
	budget     bool  // the subscription budget was spent
	seekTo     int64 // a seek that failed, to retry before resuming; -1 if none
	lastRecord time.Time
	stalled    bool
	lastWarn   time.Time
}

type cmdKind uint8

const (
	cmdAttach cmdKind = iota
	cmdDetach
	cmdAck
	cmdNack
	cmdExtend
	cmdDrain
	cmdDeadLettered
	cmdDeadLetterFailed
)

type command struct {
	kind       cmdKind
	sess       *Session
	ids        []flowcontrol.AckID
	d          time.Duration
	useBackoff bool
	ordering   flowcontrol.Ordering // cmdAttach
	entry      *flowcontrol.Entry   // dead-letter outcomes
	done       chan struct{}        // closed when applied (attach, detach)
	err        *error               // cmdAttach: set when refused, before done closes
	committed  *<-chan struct{}     // cmdDetach: set to the commit round's, before done closes
}

// recordOverhead is what each held record counts against the subscription
// budget besides its key, value and headers: the Go heap around them (the
// record, its entry, the copy queued for a session, allocation rounding),
// measured at 500 to 600 bytes for 1 KB records.
const recordOverhead = 640

// choresEvery bounds how often chores run while records stream in.
const choresEvery = 5 * time.Millisecond

// send hands cmd to the owner and reports whether the owner got it. It
// blocks while the owner is busy, and returns false when ctx is done or
// the owner has stopped first (or an ack, nack or extend has no ids).
func (g *groupConsumer) send(ctx context.Context, cmd command) (queued bool) {
	if len(cmd.ids) == 0 && cmd.kind >= cmdAck && cmd.kind <= cmdExtend {
		return false
	}
	select {
	case g.cmds <- cmd:
		return true
	case <-ctx.Done():
	case <-g.done:
	}
	return false
}

// parse parses ack ids, counting and skipping malformed ones.
func (g *groupConsumer) parse(ids []string) []flowcontrol.AckID {
	out := make([]flowcontrol.AckID, 0, len(ids))
	for _, raw := range ids {
		id, err := flowcontrol.ParseAckID(raw)
		if err != nil {
			g.obs.IgnoredAck(g.group)
			g.log.Debug("ignoring malformed ack id", "err", err)
			continue
		}
		out = append(out, id)
	}
	return out
}

// noteSent tells the owner that s's Next handed out records.
func (g *groupConsumer) noteSent(s *Session) {
	g.sentMu.Lock()
	g.sentBy = append(g.sentBy, s)
	g.sentMu.Unlock()
}

// run is the owner goroutine's loop.
func (g *groupConsumer) run() {
	defer close(g.done)
	// Idle until a session attaches: a consumer whose first stream ended
	// before it attached lingers and leaves like any other.
	g.idleSince = time.Now()
	var lastChores time.Time
	timeout := time.Duration(0)
	for {
		select {
		case <-g.stop:
			g.shutdown()
			return
		default:
		}
		// Commands at once; the other chores at most every choresEvery
		// while records stream in, so that their cost is not paid per
		// record.
		now := time.Now()
		if g.drainCommands(now) || now.Sub(lastChores) >= choresEvery {
			lastChores = now
			var retire bool
			timeout, retire = g.chores(now)
			if retire {
				g.shutdown()
				return
			}
		}
		// Poll without waiting first, so that a record taken at once is
		// handled with this iteration's clock reading; wait only when
		// nothing is ready.
		ev := g.c.Poll(0)
		if ev == nil && timeout > 0 {
			ev = g.c.Poll(int(timeout / time.Millisecond))
			now = time.Now()
		}
		if ev == nil {
			timeout = 0 // chores first after an idle poll
			lastChores = time.Time{}
			continue
		}
		if err := g.handle(ev, now); err != nil {
			g.log.Error("the group's consumer failed; its streams end", "err", err)
			for _, s := range g.sessions {
				s.end(err)
			}
			g.shutdown()
			return
		}
	}
}

// drainCommands applies the queued commands, and reports whether there
// were any.
func (g *groupConsumer) drainCommands(now time.Time) (applied bool) {
	for {
		select {
		case cmd := <-g.cmds:
			if !applied {
				// A client acks only what it was sent: learn of the sends
				// first, so that the records are outstanding.
				g.applySent()
			}
			applied = true
			g.apply(cmd, now)
		default:
			if applied {
				g.flush(now)
			}
			return applied
		}
	}
}

func (g *groupConsumer) apply(cmd command, now time.Time) {
	s := cmd.sess
	switch cmd.kind {
	case cmdAttach:
		if !g.d.SetOrdering(cmd.ordering) {
			*cmd.err = errorf(KindConflict, "ORDERING_MISMATCH",
				"group %q is consumed on this gateway with ordering %s: open with the same ordering, or use another group", g.group, orderingName(g.d.Ordering()))
			close(cmd.done)
			return
		}
		g.d.AddSession(s.id, s.cfg)
		g.sessions[s.id] = s
		g.idleSince = time.Time{}
		g.reportSoon()
		g.flush(now) // the session's assignment notice comes first
		close(cmd.done)
	case cmdDetach:
		if g.sessions[s.id] == nil {
			close(cmd.done)
			return
		}
		g.applySentOf(s)
		g.d.RemoveSession(s.id, now)
		delete(g.sessions, s.id)
		if len(g.sessions) == 0 {
			g.idleSince = now
		}
		g.reportSoon()
		// What the stream acked is committed as it ends; Close waits for
		// that round (bounded), not this goroutine.
		*cmd.committed = g.committer.offerWait(g.d.Commits())
		close(cmd.done)
	case cmdDrain:
		if g.sessions[s.id] == nil {
			return
		}
		g.applySentOf(s)
		g.d.Drain(s.id)
		g.flush(now)
		s.push(outItem{ev: Event{Drained: true}})
	case cmdAck, cmdNack, cmdExtend:
		if g.sessions[s.id] == nil {
			return
		}
		// What the session's Next handed out since the sends were last
		// applied: its client may be acking it already.
		g.applySentOf(s)
		for _, id := range cmd.ids {
			var ok bool
			switch cmd.kind {
			case cmdAck:
				ok = g.d.Ack(id)
			case cmdNack:
				ok = g.d.Nack(id, cmd.d, cmd.useBackoff, now)
			case cmdExtend:
				ok = g.d.Extend(id, cmd.d, now)
			}
			if !ok {
				g.obs.IgnoredAck(g.group)
				g.log.Debug("ignoring ack id: unknown, stale, already acked, or of a revoked partition", "ack_id", id.String())
			}
		}
	case cmdDeadLettered:
		g.d.DeadLettered(cmd.entry)
		g.obs.DeadLettered(g.group)
	case cmdDeadLetterFailed:
		g.d.DeadLetterFailed(cmd.entry, now)
	}
}

// flush carries out what the Dispatcher asked for: pull-backs, notices and
// dead letters, then hands out what is ready.
func (g *groupConsumer) flush(now time.Time) {
	for _, pb := range g.d.TakePullBacks() {
		s := g.sessions[pb.Session]
		if s == nil {
			continue
		}
		g.d.Unqueue(s.pullBack(func(e *flowcontrol.Entry) bool { return pb.All || e.TopicPartition() == pb.TP }))
	}
	for _, n := range g.d.TakeNotices() {
		if s := g.sessions[n.Session]; s != nil {
			s.push(outItem{ev: Event{Assigned: n.Assigned, Revoked: n.Revoked}})
		}
	}
	for _, e := range g.d.TakeDeadLetters() {
		g.deadLetter(e)
	}
	if dels := g.d.Dispatch(now); len(dels) > 0 {
		g.deliverAll(dels)
	}
	g.reconcileBudget()
}

// deliver queues one delivery for its session.
func (g *groupConsumer) deliver(del flowcontrol.Delivery) {
	s := g.sessions[del.Session]
	s.push(g.item(del))
}

// deliverAll queues deliveries, each session's under one lock.
func (g *groupConsumer) deliverAll(dels []flowcontrol.Delivery) {
	by := map[flowcontrol.SessionID][]outItem{}
	for _, del := range dels {
		by[del.Session] = append(by[del.Session], g.item(del))
	}
	for id, items := range by {
		g.sessions[id].push(items...)
	}
}

func (g *groupConsumer) item(del flowcontrol.Delivery) outItem {
	e := del.Entry
	r := *e.Payload().(*Record)
	r.AckID, r.Attempt = e.ID().String(), e.Attempt()
	if del.Redelivery {
		g.obs.Redelivered(g.group, del.Reason.String())
	}
	return outItem{ev: Event{Record: &r}, entry: e}
}

// applySent reports to the Dispatcher what sessions' Next handed out.
func (g *groupConsumer) applySent() {
	g.sentMu.Lock()
	by := g.sentBy
	g.sentBy = nil
	g.sentMu.Unlock()
	for _, s := range by {
		g.applySentOf(s)
	}
}

func (g *groupConsumer) applySentOf(s *Session) {
	if entries, at := s.takeSent(); len(entries) > 0 {
		g.d.Sent(s.id, entries, at)
	}
}

// reconcileBudget gives back the budget of records no longer held.
func (g *groupConsumer) reconcileBudget() {
	n, b := g.d.Held()
	if want := b + int64(n)*recordOverhead; want < g.charged {
		g.sub.budget.Release("", g.charged-want)
		g.charged = want
	}
}

// chores applies sends, expires deadlines, hands out what is due, resumes
// partitions with room, watches for stalls, commits, reports metrics and
// decides when a consumer without sessions has lingered long enough. It
// returns how long the next Poll may wait, and whether to retire.
func (g *groupConsumer) chores(now time.Time) (time.Duration, bool) {
	g.applySent()
	g.d.Tick(now)
	g.flush(now)
	g.resume(now)
	if now.Sub(g.lastWatch) >= watchEvery {
		g.lastWatch = now
		g.watch(now)
	}
	if now.Sub(g.lastCommit) >= g.sub.cfg.CommitInterval {
		g.lastCommit = now
		g.committer.offer(g.d.Commits())
	}
	g.report(now)
	if now.Sub(g.lastInfo) >= infoEvery {
		g.lastInfo = now
		g.publishInfo(now)
	}
	if len(g.sessions) == 0 && !g.idleSince.IsZero() && now.Sub(g.idleSince) >= g.sub.cfg.Linger && g.sub.retire(g) {
		g.log.Info("no stream of the group for the linger time: the consumer leaves the group", "linger", g.sub.cfg.Linger)
		return 0, true
	}
	timeout := 20 * time.Millisecond // the latency of acks while idle
	if w, ok := g.d.NextWake(); ok {
		timeout = min(timeout, max(time.Until(w), 0))
	}
	return timeout, false
}

// handle handles one event from Poll; now is when it was polled.
func (g *groupConsumer) handle(ev kafka.Event, now time.Time) error {
	switch e := ev.(type) {
	case *kafka.Message:
		return g.record(e, now)
	case kafka.Error:
		switch {
		case e.IsFatal():
			return errorf(KindInternal, "FATAL_CONSUMER_ERROR", "the Kafka consumer failed: %v", e)
		case e.Code() == kafka.ErrTopicAuthorizationFailed || e.Code() == kafka.ErrGroupAuthorizationFailed:
			return fromKafka(e, "consuming")
		case e.Code() == kafka.ErrUnknownTopicOrPart || e.Code() == kafka.ErrUnknownTopic:
			return errorf(KindNotFound, ReasonUnknownTopic, "a subscribed topic no longer exists (%v): subscribe again once it is back", e)
		default:
			g.log.Warn("Kafka consumer error; retrying", "err", e, "code", e.Code())
		}
	}
	return nil
}

// record offers one polled record to the Dispatcher.
func (g *groupConsumer) record(m *kafka.Message, now time.Time) error {
	if err := m.TopicPartition.Error; err != nil {
		g.log.Warn("consume error", "partition", m.TopicPartition, "err", err)
		return nil
	}
	tp := TopicPartition{Topic: *m.TopicPartition.Topic, Partition: m.TopicPartition.Partition}
	fs := g.parts[tp]
	if fs == nil {
		return nil // of a partition revoked since
	}
	fs.lastRecord = now
	if fs.stalled {
		fs.stalled = false
		g.obs.Stalled(g.group, -1)
	}
	off := int64(m.TopicPartition.Offset)
	size := int64(len(m.Key) + len(m.Value))
	for _, h := range m.Headers {
		size += int64(len(h.Key) + len(h.Value))
	}
	cost := size + recordOverhead
	if g.sub.budget.Acquire("", cost, now) != nil {
		if next, ok := g.d.Next(tp); !ok || off >= next {
			fs.budget = true
			g.pauseAt(tp, fs, off)
		}
		return nil
	}
	var key []byte
	if len(m.Key) > 0 {
		key = m.Key
	}
	dec, del, ok := g.d.Offer(tp, off, size, key, recordOf(m), now)
	switch dec {
	case flowcontrol.Accept:
		g.charged += cost
		if ok {
			g.deliver(del)
		}
		return nil
	case flowcontrol.Refuse:
		fs.refused = true
		g.pauseAt(tp, fs, off)
	}
	g.sub.budget.Release("", cost)
	return nil
}

func recordOf(m *kafka.Message) *Record {
	r := &Record{
		Topic:     *m.TopicPartition.Topic,
		Partition: m.TopicPartition.Partition,
		Offset:    int64(m.TopicPartition.Offset),
		Key:       m.Key,
		Value:     m.Value,
		Timestamp: m.Timestamp,
	}
	if len(m.Headers) > 0 {
		r.Headers = make([]Header, len(m.Headers))
		for i, h := range m.Headers {
			r.Headers[i] = Header{Key: h.Key, Value: h.Value}
		}
	}
	return r
}

// pauseAt seeks tp back to off, the record that found no room, and pauses
// it. A failed seek is retried before the partition resumes: the
// Dispatcher expects the next record of tp to be read from off.
func (g *groupConsumer) pauseAt(tp TopicPartition, fs *fetchState, off int64) {
	if err := g.c.Seek(kafkaTP(tp, off), 0); err != nil {
		g.log.Warn("seek failed; the partition stays paused and the seek is retried", "partition", tp, "offset", off, "err", err)
		fs.seekTo = off
	}
	if fs.paused {
		return
	}
	if err := g.c.Pause([]kafka.TopicPartition{kafkaTP(tp, 0)}); err != nil {
		g.log.Warn("pause failed", "partition", tp, "err", err)
	}
	fs.paused = true
	g.obs.Paused(g.group, 1)
}

// resume resumes the paused partitions that have room again: in their
// sessions' windows (as the Dispatcher says) and in the subscription
// budget, once their seeks succeeded.
func (g *groupConsumer) resume(now time.Time) {
	for _, tp := range g.d.Resumable() {
		if fs := g.parts[tp]; fs != nil {
			fs.refused = false
		}
	}
	budgetRoom := g.sub.budget.Used() < g.sub.budget.Limit()-g.sub.budget.Limit()/8
	var tps []kafka.TopicPartition
	for tp, fs := range g.parts {
		if !fs.paused {
			continue
		}
		if fs.budget && budgetRoom {
			fs.budget = false
		}
		if fs.seekTo >= 0 {
			if err := g.c.Seek(kafkaTP(tp, fs.seekTo), 0); err != nil {
				continue
			}
			fs.seekTo = -1
		}
		if !fs.refused && !fs.budget {
			fs.paused = false
			fs.lastRecord = now // not stalled: it was paused until now
			g.obs.Paused(g.group, -1)
			tps = append(tps, kafkaTP(tp, 0))
		}
	}
	if len(tps) > 0 {
		if err := g.c.Resume(tps); err != nil {
			g.log.Warn("resume failed", "partitions", tps, "err", err)
		}
	}
}

// report updates the held-records gauge, and the lag of each partition
// every lagEvery.
func (g *groupConsumer) report(now time.Time) {
	if held, _ := g.d.Held(); held != g.held {
		g.obs.Outstanding(held - g.held)
		g.held = held
	}
	if now.Sub(g.lastLag) < lagEvery {
		return
	}
	g.lastLag = now
	for _, st := range g.d.Partitions() {
		if st.Commit < 0 {
			continue
		}
		// Watermarks cached from fetch responses: no broker round trip.
		if _, high, err := g.c.GetWatermarkOffsets(st.TopicPartition.Topic, st.TopicPartition.Partition); err == nil && high >= st.Commit {
			g.obs.Lag(g.group, st.TopicPartition, high-st.Commit)
		}
	}
}

// lagEvery is how often consumer lag is reported.
const lagEvery = 2 * time.Second

func kafkaTP(tp TopicPartition, off int64) kafka.TopicPartition {
	topic := tp.Topic
	return kafka.TopicPartition{Topic: &topic, Partition: tp.Partition, Offset: kafka.Offset(off)}
}

func topicPartitions(ps []kafka.TopicPartition) []TopicPartition {
	out := make([]TopicPartition, len(ps))
	for i, p := range ps {
		out[i] = TopicPartition{Topic: *p.Topic, Partition: p.Partition}
	}
	return out
}

func orderingName(o flowcontrol.Ordering) string {
	return fmt.Sprintf("ORDERING_%s", upper(o.String()))
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
