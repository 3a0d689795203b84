package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/kgate/kgate/flowcontrol"
)

// TopicPartition names one partition of a topic.
type TopicPartition = flowcontrol.TopicPartition

// Record is one Kafka record delivered to a subscriber.
type Record struct {
	AckID     string
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []Header
	Timestamp time.Time
	// Attempt is 1 for the first delivery on this subscription.
	Attempt int32
}

// Event is what a Subscription hands to its stream: a record, or a change
// of the subscription's partitions.
type Event struct {
	Record   *Record
	Assigned []TopicPartition
	Revoked  []TopicPartition
}

// DeadLetterPublisher writes dead letters; *Producer implements it.
type DeadLetterPublisher interface {
	Publish(ctx context.Context, topic string, msgs []Message) ([]Result, error)
}

// SubscriptionConfig configures Subscribe. Zero values mean the documented
// defaults.
type SubscriptionConfig struct {
	// Brokers is the bootstrap server list. Required.
	Brokers string
	// Kafka holds librdkafka property overrides. Overrides that would break
	// at-least-once delivery (enable.auto.offset.store=true,
	// enable.auto.commit=false, group.id) are refused.
	Kafka map[string]string
	// Topics to consume; each must exist. Required.
	Topics []string
	// Group is the consumer group id. Required.
	Group string
	// StartEarliest starts partitions without a committed offset at the
	// oldest record instead of the newest.
	StartEarliest bool
	// Window limits and redelivery policy. Zero fields get defaults:
	// 10000 messages, 10 MiB, 30 s deadline, 100 ms to 60 s backoff. The
	// message default is large because every time the window fills the
	// stream's partitions are paused and fetched again: with 1000, a fast
	// client got 46k records/s; with 10000, 116k.
	Window flowcontrol.TrackerConfig
	// DeadLetterTopic receives records after Window.MaxAttempts deliveries;
	// it needs DeadLetter.
	DeadLetterTopic string
	DeadLetter      DeadLetterPublisher
	// CommitInterval is how often acked offsets are committed. Default 1 s.
	CommitInterval time.Duration
	// Logger for the subscription. Default slog.Default().
	Logger *slog.Logger
	// Observer receives counts and gauges for metrics. Default NopObserver.
	Observer Observer
}

func (c *SubscriptionConfig) setDefaults() {
	w := &c.Window
	if w.MaxMessages == 0 {
		w.MaxMessages = 10000
	}
	if w.MaxBytes == 0 {
		w.MaxBytes = 10 << 20
	}
	if w.AckDeadline == 0 {
		w.AckDeadline = 30 * time.Second
	}
	if w.MinBackoff == 0 {
		w.MinBackoff = 100 * time.Millisecond
	}
	if w.MaxBackoff == 0 {
		w.MaxBackoff = 60 * time.Second
	}
	if c.DeadLetterTopic != "" && w.MaxAttempts == 0 {
		w.MaxAttempts = 5
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Observer == nil {
		c.Observer = NopObserver{}
	}
}

func (c *SubscriptionConfig) validate() error {
	invalid := func(format string, args ...any) error {
		return errorf(KindInvalid, "INVALID_SUBSCRIPTION", format, args...)
	}
	if len(c.Topics) == 0 {
		return invalid("no topics: name at least one topic to subscribe to")
	}
	for _, t := range c.Topics {
		if err := ValidateTopic(t); err != nil {
			return err
		}
	}
	w := c.Window
	switch {
	case c.Group == "":
		return invalid("group is empty: name the consumer group (streams of one group share the partitions)")
	case len(c.Group) > 255:
		return invalid("group is %d characters long; use at most 255", len(c.Group))
	case w.MaxMessages < 0 || w.MaxMessages > 1_000_000:
		return invalid("max_outstanding_messages %d is out of range: use 1 to 1000000, or 0 for the default", w.MaxMessages)
	case w.MaxBytes < 0 || w.MaxBytes > 1<<30:
		return invalid("max_outstanding_bytes %d is out of range: use 1 to 1 GiB, or 0 for the default", w.MaxBytes)
	case w.AckDeadline < time.Second || w.AckDeadline > 10*time.Minute:
		return invalid("ack_deadline %v is out of range: use 1s to 10m, or 0 for the default", w.AckDeadline)
	case w.MinBackoff < 0 || w.MaxBackoff < 0:
		return invalid("backoff must not be negative")
	case w.MaxBackoff < w.MinBackoff:
		return invalid("max_backoff %v is less than min_backoff %v", w.MaxBackoff, w.MinBackoff)
	case w.MaxAttempts < 0:
		return invalid("max_delivery_attempts %d is negative", w.MaxAttempts)
	case w.MaxAttempts > 0 && c.DeadLetterTopic == "":
		return invalid("max_delivery_attempts needs dead_letter_topic: say where records go after %d attempts", w.MaxAttempts)
	}
	if c.DeadLetterTopic != "" {
		if err := ValidateTopic(c.DeadLetterTopic); err != nil {
			return invalid("dead_letter_topic: %v", err)
		}
		if c.DeadLetter == nil {
			return errorf(KindInternal, "NO_DEAD_LETTER_PUBLISHER", "dead letters are not configured on this gateway")
		}
	}
	return nil
}

var consumerGuards = []guard{
	{key: "enable.auto.offset.store", ok: oneOf("false"), want: "false", why: "committing only acked records"},
	{key: "enable.auto.commit", ok: oneOf("true"), want: "true", why: "committing acked offsets without blocking the stream"},
	{key: "group.id", ok: func(string) bool { return false }, want: "(the group named in the subscription)", why: "the subscription's own group"},
	{key: "go.application.rebalance.enable", ok: oneOf("true"), want: "true", why: "committing and forgetting revoked partitions"},
	{key: "go.events.channel.enable", ok: oneOf("false"), want: "false", why: "seeking back on nack without stale prefetched records"},
	{key: "go.logs.channel.enable", ok: oneOf("true"), want: "true", why: "structured logging"},
}

// Subscription is one consumer group member serving one Subscribe stream.
//
// One goroutine, started by Subscribe and stopped by Close, owns the Kafka
// consumer and the ack tracker: it polls, seeks, pauses and resumes, stores
// offsets, and handles rebalances. Ack, Nack and Extend hand work to it over
// a channel; Next takes the records it produced. All methods are safe for
// concurrent use, but Next is meant for one reader.
type Subscription struct {
	cfg SubscriptionConfig
	c   *kafka.Consumer
	log *slog.Logger

	cmds chan command
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the owner goroutine has returned
	once sync.Once
	wg   sync.WaitGroup // the owner, the log forwarder and dead-letter writers

	outMu  sync.Mutex
	out    []Event
	outSig chan struct{} // cap 1: there are events in out
	err    error         // set before done is closed, when the subscription failed

	obs Observer

	// Owned by the owner goroutine.
	tr         *flowcontrol.Tracker
	paused     map[TopicPartition]bool
	retrySeeks map[TopicPartition]int64 // failed seeks, retried every loop
	dlqCtx     context.Context
	stored     map[TopicPartition]int64 // last offset stored per partition, for lag
	held       int                      // records held, as last reported to obs
	owned      int                      // partitions assigned, per the rebalance callback
	coop       bool                     // the assignment strategy is cooperative
	lastLag    time.Time
}

type cmdKind int

const (
	cmdAck cmdKind = iota
	cmdNack
	cmdExtend
	cmdDeadLettered
	cmdDeadLetterFailed
)

type command struct {
	kind       cmdKind
	ids        []flowcontrol.AckID
	d          time.Duration
	useBackoff bool
}

// Subscribe joins the consumer group and starts consuming. It fails with
// KindInvalid for a bad configuration, KindNotFound when a topic does not
// exist, and KindUnavailable when the brokers cannot be reached before ctx
// is done. The caller must Close the subscription.
func Subscribe(ctx context.Context, cfg SubscriptionConfig) (*Subscription, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	reset := "latest"
	if cfg.StartEarliest {
		reset = "earliest"
	}
	defaults := map[string]string{
		"client.id":                       "kgate",
		"group.id":                        cfg.Group,
		"auto.offset.reset":               reset,
		"enable.auto.commit":              "true",
		"auto.commit.interval.ms":         strconv.Itoa(int(cfg.CommitInterval / time.Millisecond)),
		"enable.auto.offset.store":        "false",
		"go.application.rebalance.enable": "true",
		"go.logs.channel.enable":          "true",
		// Eager assignment. librdkafka's cooperative path can hang in
		// incremental_unassign while a consumer closes during a rebalance
		// (seen here with many streams ending at once); a hung close keeps a
		// member alive that holds partitions for ever.
		"partition.assignment.strategy":      "range",
		"session.timeout.ms":                 "10000",
		"heartbeat.interval.ms":              "1000",
		"enable.metrics.push":                "false",
		"reconnect.backoff.max.ms":           "1000",
		"topic.metadata.refresh.interval.ms": "30000",
	}
	maps.Copy(defaults, fetchTuning)
	cm, err := kafkaConfig(cfg.Brokers, defaults, cfg.Kafka, consumerGuards)
	if err != nil {
		return nil, errorf(KindInvalid, "INVALID_KAFKA_CONFIG", "%v", err)
	}
	if _, ok := cm["group.id"]; ok {
		cm["group.id"] = cfg.Group
	}
	c, err := kafka.NewConsumer(&cm)
	if err != nil {
		return nil, fmt.Errorf("creating Kafka consumer: %w", err)
	}
	s := &Subscription{
		cfg:        cfg,
		c:          c,
		log:        cfg.Logger.With("component", "subscription", "group", cfg.Group),
		cmds:       make(chan command, 64),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		outSig:     make(chan struct{}, 1),
		tr:         flowcontrol.NewTracker(cfg.Window),
		paused:     make(map[TopicPartition]bool),
		retrySeeks: make(map[TopicPartition]int64),
		stored:     make(map[TopicPartition]int64),
		obs:        cfg.Observer,
		coop:       strings.Contains(fmt.Sprint(cm["partition.assignment.strategy"]), "cooperative"),
	}
	s.wg.Add(1)
	go func() { defer s.wg.Done(); forwardLogs(c.Logs(), s.log) }()
	fail := func(err error) (*Subscription, error) {
		_ = c.Close()
		s.wg.Wait()
		return nil, err
	}
	for _, t := range cfg.Topics {
		if err := checkTopic(ctx, c, t); err != nil {
			return fail(err)
		}
	}
	if err := c.SubscribeTopics(cfg.Topics, s.rebalance); err != nil {
		return fail(fromKafka(err, "subscribing"))
	}
	dlqCtx, cancelDLQ := context.WithCancel(context.Background())
	s.dlqCtx = dlqCtx
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancelDLQ()
		s.run()
	}()
	return s, nil
}

// checkTopic fails with KindNotFound when topic does not exist.
func checkTopic(ctx context.Context, c *kafka.Consumer, topic string) error {
	md, err := c.GetMetadata(&topic, false, timeoutMs(ctx, 10*time.Second))
	if err != nil {
		e := fromKafka(err, fmt.Sprintf("fetching metadata for topic %q", topic))
		if e.Kind == KindInternal || e.Kind == KindUnknownOutcome {
			e.Kind = KindUnavailable
		}
		return e
	}
	t, ok := md.Topics[topic]
	if !ok || t.Error.Code() == kafka.ErrUnknownTopicOrPart || t.Error.Code() == kafka.ErrUnknownTopic || (t.Error.Code() == kafka.ErrNoError && len(t.Partitions) == 0) {
		return errorf(KindNotFound, ReasonUnknownTopic, "topic %q does not exist: create it (or publish to it, where the cluster creates topics on first use), then subscribe again", topic)
	}
	if t.Error.Code() != kafka.ErrNoError {
		return fromKafka(t.Error, fmt.Sprintf("topic %q", topic))
	}
	return nil
}

// Next blocks until the subscription has events for the stream, and returns
// them in order. It returns an error when ctx is done, when the
// subscription was closed (ErrSubscriptionClosed), or when it failed.
func (s *Subscription) Next(ctx context.Context) ([]Event, error) {
	for {
		s.outMu.Lock()
		evs := s.out
		s.out = nil
		s.outMu.Unlock()
		if len(evs) > 0 {
			return evs, nil
		}
		select {
		case <-s.outSig:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.done:
			if s.err != nil {
				return nil, s.err
			}
			return nil, ErrSubscriptionClosed
		}
	}
}

// ErrSubscriptionClosed is returned by Next after Close.
var ErrSubscriptionClosed = errors.New("subscription closed")

func (s *Subscription) emit(ev Event) {
	s.outMu.Lock()
	s.out = append(s.out, ev)
	s.outMu.Unlock()
	select {
	case s.outSig <- struct{}{}:
	default:
	}
}

// Ack acknowledges deliveries by ack id. Malformed, unknown and stale ids
// are ignored and counted. It blocks only while the owner goroutine is
// busy, and returns early when ctx is done or the subscription is closed.
func (s *Subscription) Ack(ctx context.Context, ids []string) {
	s.send(ctx, command{kind: cmdAck, ids: s.parse(ids)})
}

// Nack asks for redelivery after delay, or after the subscription's
// backoff when useBackoff is set.
func (s *Subscription) Nack(ctx context.Context, ids []string, delay time.Duration, useBackoff bool) {
	s.send(ctx, command{kind: cmdNack, ids: s.parse(ids), d: delay, useBackoff: useBackoff})
}

// Extend sets the deadline of deliveries to d from now.
func (s *Subscription) Extend(ctx context.Context, ids []string, d time.Duration) {
	s.send(ctx, command{kind: cmdExtend, ids: s.parse(ids), d: d})
}

func (s *Subscription) parse(ids []string) []flowcontrol.AckID {
	out := make([]flowcontrol.AckID, 0, len(ids))
	for _, raw := range ids {
		id, err := flowcontrol.ParseAckID(raw)
		if err != nil {
			s.obs.IgnoredAck(s.cfg.Group)
			s.log.Debug("ignoring malformed ack id", "ack_id", raw, "err", err)
			continue
		}
		out = append(out, id)
	}
	return out
}

func (s *Subscription) send(ctx context.Context, cmd command) {
	if len(cmd.ids) == 0 {
		return
	}
	select {
	case s.cmds <- cmd:
	case <-ctx.Done():
	case <-s.done:
	}
}

// Close commits what is acked, leaves the consumer group and waits for the
// subscription's goroutines. Safe to call more than once and concurrently.
func (s *Subscription) Close() {
	s.once.Do(func() { close(s.stop) })
	<-s.done
	s.wg.Wait()
}

// Done is closed when the subscription has stopped, by Close or by failing.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err is the reason the subscription failed, once Done is closed; nil
// after a plain Close.
func (s *Subscription) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// run is the owner goroutine's loop.
func (s *Subscription) run() {
	defer close(s.done)
	var lastChores time.Time
	timeout := time.Duration(0)
	for {
		select {
		case <-s.stop:
			s.shutdown()
			return
		default:
		}
		// Acks, redeliveries, resumes and offset stores run at most every
		// choresEvery while records stream in, so that their cost (a scan
		// of the held records) is not paid per record; at once after acks.
		now := time.Now()
		if s.drainCommands(now) || now.Sub(lastChores) >= choresEvery {
			lastChores = now
			timeout = s.chores(now)
		}
		// Poll without waiting first, so that a record taken at once is
		// handled with this iteration's clock reading (one fewer clock read
		// per record); wait only when nothing is ready.
		ev := s.c.Poll(0)
		if ev == nil && timeout > 0 {
			ev = s.c.Poll(int(timeout / time.Millisecond))
			now = time.Now()
		}
		if ev == nil {
			timeout = 0 // chores first after an idle poll
			lastChores = time.Time{}
			continue
		}
		if err := s.handle(ev, now); err != nil {
			s.err = err
			s.log.Error("subscription failed", "err", err)
			s.shutdown()
			return
		}
	}
}

// choresEvery bounds how often chores run while records stream in.
const choresEvery = 5 * time.Millisecond

// chores retries failed seeks, expires deadlines and seeks for
// redeliveries, resumes paused partitions when the window has room, and
// stores commit offsets. It returns how long the next Poll may wait.
func (s *Subscription) chores(now time.Time) time.Duration {
	s.retryFailedSeeks()
	for _, sk := range s.tr.Tick(now) {
		// A redelivery already holds its window slot: resume the
		// partition for it even when the window is full.
		s.seek(sk.TopicPartition, sk.Offset)
		if _, retrying := s.retrySeeks[sk.TopicPartition]; s.paused[sk.TopicPartition] && !retrying {
			s.resume([]TopicPartition{sk.TopicPartition})
		}
	}
	if len(s.paused) > len(s.retrySeeks) && s.tr.HasRoom() {
		tps := make([]TopicPartition, 0, len(s.paused))
		for tp := range s.paused {
			if _, retrying := s.retrySeeks[tp]; !retrying {
				tps = append(tps, tp)
			}
		}
		s.resume(tps)
	}
	s.storeCommits()
	s.report(now)
	timeout := 20 * time.Millisecond // the latency of acks while idle
	if w := s.tr.NextWake(); !w.IsZero() {
		timeout = min(timeout, max(time.Until(w), 0))
	}
	return timeout
}

// drainCommands applies the queued acks, nacks, extensions and dead-letter
// outcomes, and reports whether there were any.
func (s *Subscription) drainCommands(now time.Time) (applied bool) {
	for {
		select {
		case cmd := <-s.cmds:
			applied = true
			for _, id := range cmd.ids {
				var ok bool
				switch cmd.kind {
				case cmdAck:
					ok = s.tr.Ack(id)
				case cmdNack:
					ok = s.tr.Nack(id, cmd.d, cmd.useBackoff, now)
				case cmdExtend:
					ok = s.tr.Extend(id, cmd.d, now)
				case cmdDeadLettered:
					if ok = s.tr.DeadLettered(id); ok {
						s.obs.DeadLettered(s.cfg.Group)
					}
				case cmdDeadLetterFailed:
					ok = s.tr.DeadLetterFailed(id, now)
				}
				if !ok && cmd.kind <= cmdExtend {
					s.obs.IgnoredAck(s.cfg.Group)
					s.log.Debug("ignoring ack id: unknown, stale, or of a revoked partition", "ack_id", id.String())
				}
			}
		default:
			return applied
		}
	}
}

// handle handles one event from Poll; now is the time it was polled.
func (s *Subscription) handle(ev kafka.Event, now time.Time) error {
	switch e := ev.(type) {
	case *kafka.Message:
		if err := e.TopicPartition.Error; err != nil {
			s.log.Warn("consume error", "partition", e.TopicPartition, "err", err)
			return nil
		}
		tp := TopicPartition{Topic: *e.TopicPartition.Topic, Partition: e.TopicPartition.Partition}
		off := int64(e.TopicPartition.Offset)
		size := int64(len(e.Key) + len(e.Value))
		for _, h := range e.Headers {
			size += int64(len(h.Key) + len(h.Value))
		}
		d, id := s.tr.Offer(tp, off, size, now)
		switch d {
		case flowcontrol.Deliver:
			if id.Attempt > 1 {
				s.obs.Redelivered(s.cfg.Group)
			}
			s.emit(Event{Record: recordOf(e, id)})
		case flowcontrol.Refuse:
			s.seek(tp, off)
			s.pause(tp)
		case flowcontrol.DeadLetter:
			s.deadLetter(e, id)
		}
	case kafka.OffsetsCommitted:
		if e.Error != nil {
			s.obs.Committed(s.cfg.Group, false)
			s.log.Warn("offset commit failed; it is retried at the next commit interval", "err", e.Error, "offsets", e.Offsets)
			return nil
		}
		failed := false
		for _, tp := range e.Offsets {
			if tp.Error != nil {
				failed = true
				s.log.Warn("offset commit failed for a partition; retried at the next commit interval", "partition", tp)
			}
		}
		s.obs.Committed(s.cfg.Group, !failed)
	case kafka.Error:
		switch {
		case e.IsFatal():
			return errorf(KindInternal, "FATAL_CONSUMER_ERROR", "the Kafka consumer failed: %v", e)
		case e.Code() == kafka.ErrTopicAuthorizationFailed || e.Code() == kafka.ErrGroupAuthorizationFailed:
			return fromKafka(e, "consuming")
		case e.Code() == kafka.ErrUnknownTopicOrPart || e.Code() == kafka.ErrUnknownTopic:
			return errorf(KindNotFound, ReasonUnknownTopic, "a subscribed topic no longer exists (%v): resubscribe once it is back", e)
		default:
			s.log.Warn("Kafka consumer error; retrying", "err", e, "code", e.Code())
		}
	}
	return nil
}

func recordOf(m *kafka.Message, id flowcontrol.AckID) *Record {
	r := &Record{
		AckID:     id.String(),
		Topic:     *m.TopicPartition.Topic,
		Partition: m.TopicPartition.Partition,
		Offset:    int64(m.TopicPartition.Offset),
		Key:       m.Key,
		Value:     m.Value,
		Timestamp: m.Timestamp,
		Attempt:   id.Attempt,
	}
	if len(m.Headers) > 0 {
		r.Headers = make([]Header, len(m.Headers))
		for i, h := range m.Headers {
			r.Headers[i] = Header{Key: h.Key, Value: h.Value}
		}
	}
	return r
}

// rebalance is called by Poll (and Close) on the owner goroutine. Under the
// cooperative protocol the lists are changes only. Offsets stored here for
// revoked partitions are committed by librdkafka while it unassigns them,
// before the partitions move, without blocking this goroutine.
func (s *Subscription) rebalance(c *kafka.Consumer, ev kafka.Event) error {
	// Not c.GetRebalanceProtocol(): it waits on librdkafka's group thread,
	// which can deadlock inside this callback while the consumer closes.
	coop := s.coop
	switch e := ev.(type) {
	case kafka.AssignedPartitions:
		tps := topicPartitions(e.Partitions)
		for _, tp := range tps {
			s.tr.Assign(tp)
		}
		s.owned += len(tps)
		var err error
		if coop {
			err = c.IncrementalAssign(e.Partitions)
		} else {
			err = c.Assign(e.Partitions)
		}
		if err != nil {
			s.log.Error("assigning partitions", "partitions", tps, "err", err)
		}
		if len(tps) > 0 {
			s.log.Info("partitions assigned", "partitions", tps)
			s.emit(Event{Assigned: tps})
		}
	case kafka.RevokedPartitions:
		tps := topicPartitions(e.Partitions)
		lost := c.AssignmentLost()
		s.owned -= len(tps)
		if !coop || s.owned < 0 {
			s.owned = 0 // eager revokes everything
		}
		var store []kafka.TopicPartition
		for _, tp := range tps {
			commit, ok := s.tr.Revoke(tp)
			delete(s.paused, tp)
			delete(s.retrySeeks, tp)
			delete(s.stored, tp)
			s.obs.Lag(s.cfg.Group, tp, -1)
			if ok && !lost {
				store = append(store, kafkaTP(tp, commit))
			}
		}
		if len(store) > 0 {
			s.storeOffsets(store)
		}
		var err error
		if coop {
			err = c.IncrementalUnassign(e.Partitions)
		} else {
			err = c.Unassign()
		}
		if err != nil {
			s.log.Error("unassigning partitions", "partitions", tps, "err", err)
		}
		if len(tps) > 0 {
			s.log.Info("partitions revoked", "partitions", tps, "lost", lost)
			s.emit(Event{Revoked: tps})
		}
	}
	return nil
}

func topicPartitions(ps []kafka.TopicPartition) []TopicPartition {
	out := make([]TopicPartition, len(ps))
	for i, p := range ps {
		out[i] = TopicPartition{Topic: *p.Topic, Partition: p.Partition}
	}
	return out
}

func kafkaTP(tp TopicPartition, off int64) kafka.TopicPartition {
	topic := tp.Topic
	return kafka.TopicPartition{Topic: &topic, Partition: tp.Partition, Offset: kafka.Offset(off)}
}

func (s *Subscription) storeCommits() {
	cs := s.tr.Commits()
	if len(cs) == 0 {
		return
	}
	store := make([]kafka.TopicPartition, len(cs))
	for i, c := range cs {
		store[i] = kafkaTP(c.TopicPartition, c.Offset)
		s.stored[c.TopicPartition] = c.Offset
	}
	s.storeOffsets(store)
}

// report updates the held-records gauge, and the lag of each partition
// every lagEvery.
func (s *Subscription) report(now time.Time) {
	if held, _ := s.tr.Held(); held != s.held {
		s.obs.Outstanding(held - s.held)
		s.held = held
	}
	if now.Sub(s.lastLag) < lagEvery {
		return
	}
	s.lastLag = now
	for tp, off := range s.stored {
		// Watermarks cached from fetch responses: no broker round trip.
		if _, high, err := s.c.GetWatermarkOffsets(tp.Topic, tp.Partition); err == nil && high >= off {
			s.obs.Lag(s.cfg.Group, tp, high-off)
		}
	}
}

// lagEvery is how often consumer lag is reported.
const lagEvery = 2 * time.Second

// storeOffsets stores offsets for the next commit. librdkafka refuses
// partitions that are no longer assigned; that is harmless.
func (s *Subscription) storeOffsets(tps []kafka.TopicPartition) {
	stored, err := s.c.StoreOffsets(tps)
	if err != nil {
		s.log.Debug("storing offsets", "err", err)
		return
	}
	for _, tp := range stored {
		if tp.Error != nil {
			s.log.Debug("storing offset", "partition", tp, "err", tp.Error)
		}
	}
}

// seek moves tp's fetch position to off. The tracker relies on the next
// record of tp being read from there, so a failed seek pauses tp and is
// retried on every loop until it succeeds or tp is revoked.
func (s *Subscription) seek(tp TopicPartition, off int64) {
	if err := s.c.Seek(kafkaTP(tp, off), 0); err != nil {
		s.log.Warn("seek failed; the partition is paused and the seek retried", "partition", tp, "offset", off, "err", err)
		s.pause(tp)
		s.retrySeeks[tp] = off
		return
	}
	delete(s.retrySeeks, tp)
}

// retryFailedSeeks retries seeks that failed, resuming their partitions
// once they succeed.
func (s *Subscription) retryFailedSeeks() {
	for tp, off := range s.retrySeeks {
		if !s.tr.Assigned(tp) {
			delete(s.retrySeeks, tp)
			continue
		}
		if err := s.c.Seek(kafkaTP(tp, off), 0); err == nil {
			delete(s.retrySeeks, tp)
			s.resume([]TopicPartition{tp})
		}
	}
}

func (s *Subscription) pause(tp TopicPartition) {
	if s.paused[tp] {
		return
	}
	if err := s.c.Pause([]kafka.TopicPartition{kafkaTP(tp, 0)}); err != nil {
		s.log.Warn("pause failed", "partition", tp, "err", err)
		return
	}
	s.paused[tp] = true
}

func (s *Subscription) resume(tps []TopicPartition) {
	kt := make([]kafka.TopicPartition, len(tps))
	for i, tp := range tps {
		kt[i] = kafkaTP(tp, 0)
		delete(s.paused, tp)
	}
	if err := s.c.Resume(kt); err != nil {
		s.log.Warn("resume failed", "partitions", tps, "err", err)
	}
}

// deadLetter writes m to the dead-letter topic in a goroutine of its own
// and reports the outcome to the owner goroutine.
func (s *Subscription) deadLetter(m *kafka.Message, id flowcontrol.AckID) {
	origin := recordOf(m, id)
	hs := append(append([]Header(nil), origin.Headers...),
		Header{Key: "kgate.dlq.topic", Value: []byte(origin.Topic)},
		Header{Key: "kgate.dlq.partition", Value: []byte(strconv.Itoa(int(origin.Partition)))},
		Header{Key: "kgate.dlq.offset", Value: []byte(strconv.FormatInt(origin.Offset, 10))},
		Header{Key: "kgate.dlq.attempts", Value: []byte(strconv.Itoa(int(id.Attempt)))},
		Header{Key: "kgate.dlq.reason", Value: []byte(fmt.Sprintf("not acked after %d delivery attempts (nacked or ack deadline expired)", id.Attempt))},
	)
	msg := Message{Key: origin.Key, Value: origin.Value, Headers: hs, Partition: PartitionAny}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(s.dlqCtx, 60*time.Second)
		defer cancel()
		res, err := s.cfg.DeadLetter.Publish(ctx, s.cfg.DeadLetterTopic, []Message{msg})
		if err == nil {
			err = res[0].Err
		}
		kind := cmdDeadLettered
		if err != nil {
			kind = cmdDeadLetterFailed
			s.log.Warn("writing a dead letter failed; it is retried after the backoff", "topic", s.cfg.DeadLetterTopic, "origin", fmt.Sprintf("%s/%d@%d", origin.Topic, origin.Partition, origin.Offset), "err", err)
		} else {
			s.log.Info("record dead-lettered", "topic", s.cfg.DeadLetterTopic, "origin", fmt.Sprintf("%s/%d@%d", origin.Topic, origin.Partition, origin.Offset), "attempts", id.Attempt)
		}
		select {
		case s.cmds <- command{kind: kind, ids: []flowcontrol.AckID{id}}:
		case <-s.done:
		}
	}()
}

// shutdown stores the final offsets and closes the consumer, which commits
// them and leaves the group.
func (s *Subscription) shutdown() {
	s.drainCommands(time.Now())
	s.storeCommits()
	// Leave the group's assignment while the consumer is in its normal
	// state: the revocation is served by this goroutine's Poll, which
	// stores the final offsets, and librdkafka commits them as it
	// unassigns. Close then has nothing to revoke. (Revocations served
	// inside Close deadlocked in librdkafka when many streams ended during
	// a rebalance.)
	if err := s.c.Unsubscribe(); err != nil {
		s.log.Warn("unsubscribing", "err", err)
	}
	for deadline := time.Now().Add(unsubscribeWait); s.owned > 0 && time.Now().Before(deadline); {
		if ev := s.c.Poll(50); ev != nil {
			if _, isMsg := ev.(*kafka.Message); !isMsg {
				_ = s.handle(ev, time.Now())
			}
		}
	}
	if err := s.c.Close(); err != nil {
		s.log.Warn("closing the consumer", "err", err)
	}
	s.obs.Outstanding(-s.held)
	s.held = 0
	for tp := range s.stored {
		s.obs.Lag(s.cfg.Group, tp, -1)
	}
}

// unsubscribeWait bounds how long a closing subscription waits for its
// partitions to be revoked before it closes the consumer anyway.
const unsubscribeWait = 10 * time.Second

// fetchTuning is how a subscription's consumer fetches, unless --kafka
// overrides it. The bench's direct consumer uses it too, so that the two
// are compared with the same fetching.
var fetchTuning = map[string]string{
	"fetch.wait.max.ms":   "50",
	"queued.min.messages": "1000",
	// librdkafka waits this long to fetch again once a partition's
	// prefetch queue is at its threshold: its 1 s default held a stream to
	// ~1k records/s.
	"fetch.queue.backoff.ms": "10",
	// Per-stream librdkafka memory: a fetch response is at most
	// fetch.max.bytes (librdkafka's default is 50 MiB per consumer), and
	// the prefetch queue at most queued.max.messages.kbytes.
	"fetch.max.bytes":            "4194304",
	"queued.max.messages.kbytes": "4096",
}

// Subscriber opens Subscriptions against one cluster with shared settings.
type Subscriber struct {
	// Brokers, Kafka, DeadLetter, Logger and Observer are copied into
	// every SubscriptionConfig.
	Brokers    string
	Kafka      map[string]string
	DeadLetter DeadLetterPublisher
	Logger     *slog.Logger
	Observer   Observer
	// CommitInterval overrides the default commit interval (1 s).
	CommitInterval time.Duration
}

// Subscribe opens a subscription with cfg completed by s's settings.
func (s *Subscriber) Subscribe(ctx context.Context, cfg SubscriptionConfig) (*Subscription, error) {
	cfg.Brokers, cfg.Kafka, cfg.DeadLetter, cfg.Logger, cfg.Observer = s.Brokers, s.Kafka, s.DeadLetter, s.Logger, s.Observer
	if cfg.CommitInterval == 0 {
		cfg.CommitInterval = s.CommitInterval
	}
	return Subscribe(ctx, cfg)
}
