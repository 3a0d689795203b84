package kafkaio

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/kgate/kgate/flowcontrol"
)

// SubscriberConfig configures NewSubscriber. Zero values mean the
// documented defaults.
type SubscriberConfig struct {
	// Brokers is the bootstrap server list. Required.
	Brokers string
	// Kafka holds librdkafka property overrides for the consumers.
	// Overrides that would break at-least-once delivery
	// (enable.auto.offset.store=true, enable.auto.commit=true, group.id)
	// are refused.
	Kafka map[string]string
	// DeadLetter writes dead letters. Required for subscriptions with a
	// dead-letter topic.
	DeadLetter DeadLetterPublisher
	// CommitInterval is how often acked offsets are committed. Default 1 s.
	CommitInterval time.Duration
	// Linger is how long a group's consumer stays in its group after its
	// last stream ended, so that a client reconnecting finds its
	// partitions still here. Meanwhile the partitions it holds are not
	// served by other members of the group. Default 10 s.
	Linger time.Duration
	// MemoryBudget bounds the memory of every group's consumer together:
	// librdkafka's fetch buffers as configured (reserved when a consumer
	// starts) and the records held (from poll to ack). When it is spent,
	// partitions pause instead of fetching, and new subscriptions are
	// refused (KindExhausted). Default 256 MiB.
	MemoryBudget int64
	// StallAfter is how long a partition may go without a record while
	// records wait before it counts as stalled and is sought again.
	// Default 3 s.
	StallAfter time.Duration
	// Instance names this gateway in the commits' metadata, so that a
	// restarted gateway knows the records it had delivered before.
	// Default: the host name.
	Instance string
	// Logger for the consumers. Default slog.Default().
	Logger *slog.Logger
	// Observer receives counts and gauges for metrics. Default NopObserver.
	Observer Observer
}

func (c *SubscriberConfig) setDefaults() {
	if c.CommitInterval == 0 {
		c.CommitInterval = time.Second
	}
	if c.Linger == 0 {
		c.Linger = 10 * time.Second
	}
	if c.MemoryBudget == 0 {
		c.MemoryBudget = 256 << 20
	}
	if c.StallAfter == 0 {
		c.StallAfter = 3 * time.Second
	}
	if c.Instance == "" {
		c.Instance, _ = os.Hostname()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Observer == nil {
		c.Observer = NopObserver{}
	}
}

// Subscriber runs one Kafka consumer per (group, topic set) on this
// gateway, shared by every Subscribe stream of that group: Subscribe
// attaches a Session to it, starting it for the group's first stream.
// A stream that opens or ends therefore never causes a Kafka rebalance; Kafka
// rebalances only when consumers on other gateways (or other clients) of
// the group come or go.
//
// Subscriber is safe for concurrent use. Close stops every consumer.
type Subscriber struct {
	cfg    SubscriberConfig
	budget *flowcontrol.Budget
	log    *slog.Logger

	mu       sync.Mutex
	groups   map[string]*groupConsumer
	attached map[*groupConsumer]int // sessions attached or attaching
	closed   bool
	nextID   flowcontrol.SessionID
	owners   sync.WaitGroup
}

// NewSubscriber returns a Subscriber; it connects nothing until the first
// Subscribe.
func NewSubscriber(cfg SubscriberConfig) (*Subscriber, error) {
	cfg.setDefaults()
	if strings.TrimSpace(cfg.Brokers) == "" {
		return nil, fmt.Errorf("no Kafka brokers configured: set bootstrap servers (host:port,...)")
	}
	if cfg.MemoryBudget < 0 || cfg.CommitInterval < 0 || cfg.Linger < 0 || cfg.StallAfter < 0 {
		return nil, fmt.Errorf("subscriber settings must not be negative")
	}
	if _, err := kafkaConfig(cfg.Brokers, nil, cfg.Kafka, consumerGuards); err != nil {
		return nil, err
	}
	return &Subscriber{cfg: cfg, budget: flowcontrol.NewBudget(flowcontrol.BudgetConfig{Limit: cfg.MemoryBudget}), log: cfg.Logger,
		groups: map[string]*groupConsumer{}, attached: map[*groupConsumer]int{}}, nil
}

// MemoryUsed and MemoryLimit report the subscription budget: bytes
// reserved for librdkafka's fetch buffers and records held, and the budget.
func (s *Subscriber) MemoryUsed() int64  { return s.budget.Used() }
func (s *Subscriber) MemoryLimit() int64 { return s.budget.Limit() }

// SubscriptionConfig is what one Subscribe stream asks for.
type SubscriptionConfig struct {
	// Topics to consume; each must exist. Required.
	Topics []string
	// Group is the consumer group id. Required.
	Group string
	// StartEarliest starts partitions without a committed offset at the
	// oldest record instead of the newest. The first stream of the group
	// on this gateway decides, for the group's consumer.
	StartEarliest bool
	// Ordering of the group's records among its streams. Streams of one
	// group on one gateway must agree (KindConflict otherwise), unless no
	// stream of the group is open and none of its records is held.
	Ordering flowcontrol.Ordering
	// Client says who the stream's client is (its peer and principal), for
	// GroupInfo; optional.
	Client string
	// Window is the stream's window and redelivery policy. Zero fields get
	// defaults: 10000 records, 10 MiB, 30 s deadline, 100 ms to 60 s
	// backoff, 5 attempts when DeadLetterTopic is set.
	Window flowcontrol.SessionConfig
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
	if w.DeadLetterTopic != "" && w.MaxAttempts == 0 {
		w.MaxAttempts = 5
	}
}

func (c *SubscriptionConfig) validate(dlq DeadLetterPublisher) error {
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
	case c.Ordering > flowcontrol.OrderNone:
		return invalid("ordering %d is not known: use ORDERING_PARTITION, ORDERING_KEY or ORDERING_NONE", c.Ordering)
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
	case w.MaxAttempts > 0 && w.DeadLetterTopic == "":
		return invalid("max_delivery_attempts needs dead_letter_topic: say where records go after %d attempts", w.MaxAttempts)
	}
	if w.DeadLetterTopic != "" {
		if err := ValidateTopic(w.DeadLetterTopic); err != nil {
			return invalid("dead_letter_topic: %v", err)
		}
		if dlq == nil {
			return errorf(KindInternal, "NO_DEAD_LETTER_PUBLISHER", "dead letters are not configured on this gateway")
		}
	}
	return nil
}

// groupKey names the consumer of a group and topic set.
func groupKey(group string, topics []string) string {
	ts := slices.Clone(topics)
	slices.Sort(ts)
	ts = slices.Compact(ts)
	return group + "\x00" + strings.Join(ts, "\x00")
}

// Subscribe attaches a session to the consumer of cfg's group and topics,
// starting that consumer (it joins the group) for the group's first stream
// on this gateway. It fails with KindInvalid for a bad configuration,
// KindNotFound when a topic does not exist, KindConflict when the group is
// consumed here with another ordering, KindExhausted when the subscription
// budget is spent, and KindUnavailable when the brokers cannot be reached
// before ctx is done or the gateway is shutting down. The caller must Close
// the session.
func (s *Subscriber) Subscribe(ctx context.Context, cfg SubscriptionConfig) (*Session, error) {
	cfg.setDefaults()
	if err := cfg.validate(s.cfg.DeadLetter); err != nil {
		return nil, err
	}
	key := groupKey(cfg.Group, cfg.Topics)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errorf(KindUnavailable, ReasonClosed, "the gateway is shutting down: reconnect, to another instance if there is one")
	}
	g := s.groups[key]
	starting := g == nil
	if starting {
		var err error
		if g, err = s.newGroup(key, cfg); err != nil {
			s.mu.Unlock()
			return nil, err
		}
		s.groups[key] = g
	} else if used := s.budget.Used(); used >= s.budget.Limit() {
		s.mu.Unlock()
		return nil, s.budgetSpent()
	}
	s.attached[g]++
	s.nextID++
	id := s.nextID
	s.mu.Unlock()

	if starting {
		g.startErr = g.start(ctx)
		close(g.ready)
		if g.startErr != nil {
			s.mu.Lock()
			delete(s.groups, key)
			delete(s.attached, g)
			s.mu.Unlock()
			s.budget.Release("", g.buffer)
			return nil, g.startErr
		}
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			// Close began while the consumer started, and did not wait
			// for it: it stops by itself (and gives its budget back).
			g.close(time.Now().Add(lingerCloseWait))
			s.detached(g)
			return nil, errorf(KindUnavailable, ReasonClosed, "the gateway is shutting down: reconnect, to another instance if there is one")
		}
	} else {
		select {
		case <-g.ready:
		case <-ctx.Done():
			s.detached(g)
			return nil, errorf(KindUnavailable, "UNAVAILABLE", "the group's consumer did not start in time: %v", ctx.Err())
		}
		if g.startErr != nil {
			s.detached(g)
			return nil, g.startErr
		}
	}
	sess := &Session{g: g, id: id, cfg: cfg.Window, client: cfg.Client, sig: make(chan struct{}, 1)}
	var refused error
	done := make(chan struct{})
	if !g.send(ctx, command{kind: cmdAttach, sess: sess, ordering: cfg.Ordering, done: done, err: &refused}) {
		// Never queued: nothing will answer done.
		s.detached(g)
		if err := ctx.Err(); err != nil {
			return nil, errorf(KindUnavailable, "UNAVAILABLE", "attaching to the group's consumer: %v", err)
		}
		return nil, errorf(KindUnavailable, ReasonClosed, "the group's consumer stopped: reconnect")
	}
	select {
	case <-done:
	case <-g.done:
		s.detached(g)
		return nil, errorf(KindUnavailable, ReasonClosed, "the group's consumer stopped: reconnect")
	case <-ctx.Done():
		// The attach may still be applied: detach it when it is.
		go func() {
			select {
			case <-done:
				if refused == nil {
					sess.Close()
					return
				}
			case <-g.done:
			}
			s.detached(g)
		}()
		return nil, errorf(KindUnavailable, "UNAVAILABLE", "attaching to the group's consumer: %v", ctx.Err())
	}
	if refused != nil {
		s.detached(g)
		return nil, refused
	}
	return sess, nil
}

func (s *Subscriber) budgetSpent() error {
	return &Error{Kind: KindExhausted, Reason: ReasonSubscriptionBudget, RetryAfter: time.Second,
		Message: fmt.Sprintf("the gateway's subscription memory budget (%d MiB) is spent by the streams open: retry after the delay in RetryInfo, or connect to another instance", s.budget.Limit()>>20)}
}

// newGroup makes the consumer of a group (not started), reserving its
// fetch buffers in the budget. Called with s.mu held.
func (s *Subscriber) newGroup(key string, cfg SubscriptionConfig) (*groupConsumer, error) {
	cm, err := consumerConfig(s.cfg, cfg)
	if err != nil {
		return nil, err
	}
	buffer := fetchBufferBytes(cm)
	if s.budget.Used() >= s.budget.Limit() || s.budget.Acquire("", buffer, time.Now()) != nil {
		return nil, s.budgetSpent()
	}
	log := s.log.With("component", "group-consumer", "group", cfg.Group)
	dlqCtx, dlqStop := context.WithCancel(context.Background())
	g := &groupConsumer{
		sub: s, key: key, group: cfg.Group, topics: slices.Clone(cfg.Topics), log: log, obs: s.cfg.Observer,
		buffer: buffer, startEarliest: cfg.StartEarliest,
		coop:  strings.Contains(fmt.Sprint(cm["partition.assignment.strategy"]), "cooperative"),
		ready: make(chan struct{}), cmds: make(chan command, 256), stop: make(chan struct{}), done: make(chan struct{}),
		dlqCtx: dlqCtx, dlqStop: dlqStop,
		d:        flowcontrol.NewDispatcher(cfg.Ordering, s.cfg.Instance),
		sessions: map[flowcontrol.SessionID]*Session{},
		parts:    map[TopicPartition]*fetchState{},
		cm:       cm,
	}
	return g, nil
}

// detached counts a session of g gone.
func (s *Subscriber) detached(g *groupConsumer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.attached[g]--; s.attached[g] <= 0 {
		delete(s.attached, g)
	}
}

// retire removes g, which lingered without sessions, unless a session is
// attaching; g's owner then shuts it down.
func (s *Subscriber) retire(g *groupConsumer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.attached[g] > 0 || s.groups[g.key] != g {
		return false
	}
	delete(s.groups, g.key)
	return true
}

// forget removes g, which is shutting down, so that later streams of its
// group start a consumer of their own.
func (s *Subscriber) forget(g *groupConsumer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.groups[g.key] == g {
		delete(s.groups, g.key)
	}
}

// Close ends every session with ErrSubscriberClosed after committing what
// is acked, and makes every consumer leave its group. It returns when all
// are closed or ctx is done: a consumer that Kafka does not let go of by
// then (brokers unreachable) is left behind, and what it could not commit
// is logged. New Subscribe calls fail from the start of Close.
func (s *Subscriber) Close(ctx context.Context) {
	s.mu.Lock()
	s.closed = true
	gs := slices.Collect(maps.Values(s.groups))
	s.mu.Unlock()
	by, ok := ctx.Deadline()
	if !ok {
		by = time.Now().Add(time.Minute)
	}
	var started []*groupConsumer
	for _, g := range gs {
		select {
		case <-g.ready: // a consumer still starting fails its Subscribe soon
		case <-ctx.Done():
			continue
		}
		if g.startErr == nil {
			g.close(by)
			started = append(started, g)
		}
	}
	for _, g := range started {
		select {
		case <-g.done:
		case <-ctx.Done():
			s.log.Error("a group's consumer did not stop before the shutdown deadline; it is left behind", "group", g.group)
		}
	}
	done := make(chan struct{})
	go func() { s.owners.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// consumerConfig is the librdkafka configuration of a group's consumer.
func consumerConfig(sc SubscriberConfig, cfg SubscriptionConfig) (kafka.ConfigMap, error) {
	reset := "latest"
	if cfg.StartEarliest {
		reset = "earliest"
	}
	defaults := map[string]string{
		"client.id":                       "kgate",
		"group.id":                        cfg.Group,
		"auto.offset.reset":               reset,
		"enable.auto.commit":              "false",
		"enable.auto.offset.store":        "false",
		"go.application.rebalance.enable": "true",
		"go.logs.channel.enable":          "true",
		// Incremental rebalancing: when another gateway of the group comes
		// or goes, only the partitions that move are revoked. (Consumers
		// close rarely now, only after their linger or at shutdown, and
		// always unsubscribe and serve their revocation before Close: the
		// close-during-rebalance hang of librdkafka's cooperative path that
		// made the per-stream consumers use eager assignment stays away.)
		"partition.assignment.strategy":      "cooperative-sticky",
		"session.timeout.ms":                 "10000",
		"heartbeat.interval.ms":              "1000",
		"enable.metrics.push":                "false",
		"reconnect.backoff.max.ms":           "1000",
		"topic.metadata.refresh.interval.ms": "30000",
	}
	maps.Copy(defaults, fetchTuning)
	cm, err := kafkaConfig(sc.Brokers, defaults, sc.Kafka, consumerGuards)
	if err != nil {
		return nil, errorf(KindInvalid, "INVALID_KAFKA_CONFIG", "%v", err)
	}
	cm["group.id"] = cfg.Group
	return cm, nil
}

// fetchBufferBytes is what librdkafka may hold for one consumer as cm
// configures it: the prefetch queue, filled past its limit by up to a
// fetch response, one more response being read, and 8 MiB for the rest
// (threads, metadata, allocator slack). Measured here with the defaults
// (1 MiB responses, a 2 MiB queue): 9 to 12 MB per consumer whose
// partitions were paused full, against the 12 MiB this counts.
func fetchBufferBytes(cm kafka.ConfigMap) int64 {
	num := func(key string, def int64) int64 {
		if v, ok := cm[key]; ok {
			if n, err := strconv.ParseInt(fmt.Sprint(v), 10, 64); err == nil && n > 0 {
				return n
			}
		}
		return def
	}
	return 2*num("fetch.max.bytes", 52428800) + num("queued.max.messages.kbytes", 65536)<<10 + 8<<20
}

var consumerGuards = []guard{
	{key: "enable.auto.offset.store", ok: oneOf("false"), want: "false", why: "committing only acked records"},
	{key: "enable.auto.commit", ok: oneOf("false"), want: "false", why: "committing acked offsets with the acks above them (the gateway commits itself)"},
	{key: "group.id", ok: func(string) bool { return false }, want: "(the group named in the subscription)", why: "the subscription's own group"},
	{key: "go.application.rebalance.enable", ok: oneOf("true"), want: "true", why: "committing and forgetting revoked partitions"},
	{key: "go.events.channel.enable", ok: oneOf("false"), want: "false", why: "pausing without stale prefetched records"},
	{key: "go.logs.channel.enable", ok: oneOf("true"), want: "true", why: "structured logging"},
}

// fetchTuning is how a group's consumer fetches, unless the consumer
// properties override it. The bench's direct consumer uses it too, so that
// the two are compared with the same fetching.
var fetchTuning = map[string]string{
	"fetch.wait.max.ms":   "50",
	"queued.min.messages": "1000",
	// librdkafka waits this long to fetch again once a partition's
	// prefetch queue is at its threshold: its 1 s default held a stream to
	// ~1k records/s.
	"fetch.queue.backoff.ms": "10",
	// librdkafka memory per consumer (counted in the subscription budget):
	// a fetch response is at most fetch.max.bytes (librdkafka's default is
	// 50 MiB), and the prefetch queue at most queued.max.messages.kbytes.
	"fetch.max.bytes":            "1048576",
	"queued.max.messages.kbytes": "2048",
}

// start creates the librdkafka consumer, checks the topics, subscribes and
// starts the owner. Called once, by the first Subscribe of the group.
func (g *groupConsumer) start(ctx context.Context) error {
	c, err := kafka.NewConsumer(&g.cm)
	if err != nil {
		return fmt.Errorf("creating Kafka consumer: %w", err)
	}
	g.c = c
	g.logsWG.Add(1)
	go func() { defer g.logsWG.Done(); forwardLogs(c.Logs(), g.log) }()
	fail := func(err error) error {
		_ = c.Close()
		g.logsWG.Wait()
		close(g.done)
		return err
	}
	for _, t := range g.topics {
		if err := checkTopic(ctx, c, t); err != nil {
			return fail(err)
		}
	}
	if err := c.SubscribeTopics(g.topics, g.rebalance); err != nil {
		return fail(fromKafka(err, "subscribing"))
	}
	g.committer = newCommitter(c, g.group, g.log, g.obs, g.sub.cfg.CommitInterval)
	g.sub.owners.Add(1)
	go func() {
		defer g.sub.owners.Done()
		g.run()
	}()
	g.log.Info("group consumer started: streams of this group on this gateway share it", "topics", g.topics, "ordering", g.d.Ordering().String())
	return nil
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

// close asks the owner to shut down by the deadline by.
func (g *groupConsumer) close(by time.Time) {
	g.stopOnce.Do(func() {
		g.stopBy = by
		close(g.stop)
	})
}

// shutdown commits what is acked, ends the sessions, leaves the group and
// closes the consumer, bounded by the deadline (the gateway's shutdown, or
// lingerCloseWait after a linger). Owner goroutine.
func (g *groupConsumer) shutdown() {
	g.sub.forget(g)
	by := g.deadline()
	if by.After(time.Now().Add(lingerCloseWait)) {
		by = time.Now().Add(lingerCloseWait)
	}
	g.applySent()
	g.drainCommandsQuietly(time.Now())
	if !g.committer.commitNow(g.d.Commits(), time.Until(by)) {
		g.log.Error("the final commit did not finish before the deadline: records acked since the last commit will be delivered again", "partitions", g.committer.pendingCount())
	}
	for _, s := range g.sessions {
		s.end(ErrSubscriberClosed)
	}
	// Leave the group's assignment while the consumer is in its normal
	// state: the revocation is served by this goroutine's Poll (which
	// commits, bounded by the deadline), so Close has nothing to revoke.
	// (Revocations served inside Close deadlocked in librdkafka when many
	// consumers closed during a rebalance.)
	g.dlqStop()
	if err := g.c.Unsubscribe(); err != nil {
		g.log.Warn("unsubscribing", "err", err)
	}
	for time.Now().Before(by) && len(g.parts) > 0 {
		if ev := g.c.Poll(50); ev != nil {
			if _, isMsg := ev.(*kafka.Message); !isMsg {
				_ = g.handle(ev, time.Now())
			}
		}
	}
	if !g.committer.close(by) {
		g.log.Error("a commit did not finish before the deadline; the consumer is closed without it")
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		if err := g.c.Close(); err != nil {
			g.log.Warn("closing the consumer", "err", err)
		}
		g.logsWG.Wait()
	}()
	select {
	case <-closed:
	case <-time.After(max(time.Until(by), 0)):
		g.log.Error("the Kafka consumer did not close before the deadline (are the brokers reachable?); it is left behind, and its partitions stay with it until its session times out")
	}
	g.dlqWG.Wait()
	g.budgetRelease()
	// Give back what the consumer and its records used: a gateway whose
	// streams went away shrinks again.
	releaseMemory()
	debug.FreeOSMemory()
}

// lingerCloseWait bounds a consumer's shutdown when no gateway shutdown
// gives a deadline.
const lingerCloseWait = 30 * time.Second

// drainCommandsQuietly applies the commands still queued (acks sent just
// before the shutdown), without handing out records.
func (g *groupConsumer) drainCommandsQuietly(now time.Time) {
	for {
		select {
		case cmd := <-g.cmds:
			if cmd.kind == cmdAttach {
				*cmd.err = errorf(KindUnavailable, ReasonClosed, "the group's consumer is stopping: reconnect")
				close(cmd.done)
				continue
			}
			g.apply(cmd, now)
		default:
			return
		}
	}
}

// budgetRelease gives back everything the consumer holds in the budget,
// and zeroes its gauges.
func (g *groupConsumer) budgetRelease() {
	g.sub.budget.Release("", g.buffer+g.charged)
	g.charged, g.buffer = 0, 0
	g.obs.Outstanding(-g.held)
	g.held = 0
	for tp, fs := range g.parts {
		if fs.paused {
			g.obs.Paused(g.group, -1)
		}
		if fs.stalled {
			g.obs.Stalled(g.group, -1)
		}
		g.obs.Lag(g.group, tp, -1)
	}
}
