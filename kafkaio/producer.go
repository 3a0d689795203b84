package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/kgate/kgate/flowcontrol"
)

// PartitionAny lets the partitioner choose a message's partition.
const PartitionAny int32 = -1

// Message is one record to publish.
type Message struct {
	Key   []byte // nil or empty: no key
	Value []byte
	// Headers in order; keys may repeat.
	Headers []Header
	// Partition to write to, or PartitionAny.
	Partition int32
	// Timestamp is the record's CreateTime; zero means now.
	Timestamp time.Time
}

// Header is one record header.
type Header struct {
	Key   string
	Value []byte
}

// size is what a message counts against the in-flight budget and the
// message size limit: key, value and headers.
func (m *Message) size() int64 {
	n := len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return int64(n)
}

// Result is the outcome of one published message.
type Result struct {
	// Err is nil when the broker acknowledged the message; otherwise an
	// *Error saying why it was not written (or that the outcome is unknown).
	Err       error
	Partition int32
	Offset    int64
	// Timestamp is the record's CreateTime as written: the message's own
	// timestamp, or the time Publish was called.
	Timestamp time.Time
}

// ProducerConfig configures a Producer. The zero value of each field means
// its documented default.
type ProducerConfig struct {
	// Brokers is the bootstrap server list, host:port[,host:port...]. Required.
	Brokers string
	// Kafka holds librdkafka properties that override the gateway's
	// defaults (SASL, TLS to the brokers, tuning). Overrides of
	// enable.idempotence, acks and go.delivery.reports that would weaken
	// "OK means written" are refused, and so is go.delivery.report.fields
	// other than none (copies of every message outside the in-flight
	// budget).
	Kafka map[string]string
	// MaxInflightBytes bounds the bytes of messages handed to Kafka and not
	// yet acknowledged: keys, values and headers, plus 128 bytes per
	// message for bookkeeping. Default 64 MiB.
	MaxInflightBytes int64
	// MaxInflightShare is the most of the in-flight budget one owner (a
	// principal, see WithBudgetOwner) may hold while another owner is
	// active: holds bytes in flight, or published or was refused within
	// the last second. An owner alone may use the whole budget. Default
	// MaxInflightBytes: owners are not told apart.
	MaxInflightShare int64
	// MaxMessageBytes is the largest message accepted (key, value and
	// headers). Default 1,000,000 bytes.
	MaxMessageBytes int64
	// RetryAfter is the delay suggested to clients refused for capacity.
	// Default 100 ms.
	RetryAfter time.Duration
	// MetadataMaxAge is how long a topic's partition count is trusted
	// before it is fetched again. Default 30 s.
	MetadataMaxAge time.Duration
	// Logger receives the producer's and librdkafka's logs. Default
	// slog.Default().
	Logger *slog.Logger
}

func (c *ProducerConfig) setDefaults() {
	if c.MaxInflightBytes == 0 {
		c.MaxInflightBytes = 64 << 20
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = 1_000_000
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = 100 * time.Millisecond
	}
	if c.MetadataMaxAge == 0 {
		c.MetadataMaxAge = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

func (c *ProducerConfig) validate() error {
	switch {
	case c.MaxInflightBytes < 0:
		return fmt.Errorf("max in-flight bytes %d is negative", c.MaxInflightBytes)
	case c.MaxMessageBytes < 0:
		return fmt.Errorf("max message bytes %d is negative", c.MaxMessageBytes)
	case c.MaxInflightShare < 0:
		return fmt.Errorf("max in-flight share %d is negative", c.MaxInflightShare)
	case c.RetryAfter < 0:
		return fmt.Errorf("retry-after %v is negative", c.RetryAfter)
	}
	return nil
}

var producerGuards = []guard{
	{key: "enable.idempotence", ok: oneOf("true"), want: "true", why: "retries that never write a message twice, and OK-means-written"},
	{key: "acks", ok: oneOf("all", "-1"), want: "all", why: "OK-means-written"},
	{key: "request.required.acks", ok: oneOf("all", "-1"), want: "all", why: "OK-means-written"},
	{key: "go.delivery.reports", ok: oneOf("true"), want: "true", why: "answering Publish after the broker acknowledged"},
	// Any other value copies each message's key, value or headers back
	// into every delivery report: memory the in-flight budget does not
	// count, and CPU, for copies the gateway never reads.
	{key: "go.delivery.report.fields", ok: oneOf("none"), want: "none", why: "delivery reports that hold no copy of the message (memory outside the in-flight budget)"},
	{key: "go.logs.channel.enable", ok: oneOf("true"), want: "true", why: "structured logging"},
}

// Producer publishes messages to Kafka and reports where they landed.
//
// Publish is safe for concurrent use. One goroutine, started by
// NewProducer and stopped by Close, reads librdkafka's delivery reports and
// completes the waiting Publish calls; another forwards librdkafka's logs.
type Producer struct {
	cfg    ProducerConfig
	kp     *kafka.Producer
	budget *flowcontrol.Budget
	log    *slog.Logger

	mu       sync.RWMutex // guards closed; held for reading while producing
	closed   bool
	inflight sync.WaitGroup // messages handed to librdkafka and not yet reported
	queued   atomic.Int64   // the same messages, counted for Saturated
	queueMax int64          // librdkafka's queue.buffering.max.messages
	// What Saturated (and produce, for the budget) returns, made once.
	queueFullErr, budgetSpentErr, shareSpentErr *Error

	topicsMu sync.Mutex
	topics   map[string]topicMeta

	fatal atomic.Pointer[Error] // set once librdkafka reports a fatal error

	loops sync.WaitGroup // delivery-report and log loops
}

type topicMeta struct {
	partitions int32
	fetched    time.Time
}

// batch collects the results of one Publish call.
type batch struct {
	results    []Result
	deliveries []delivery
	remaining  atomic.Int32
	done       chan struct{} // closed when remaining reaches 0
	// The one message of most calls, without allocations of its own.
	oneResult   [1]Result
	oneDelivery [1]delivery
}

func newBatch(n int) *batch {
	b := &batch{done: make(chan struct{})}
	if n == 1 {
		b.results, b.deliveries = b.oneResult[:], b.oneDelivery[:]
	} else {
		b.results, b.deliveries = make([]Result, n), make([]delivery, n)
	}
	for i := range b.deliveries {
		b.deliveries[i].b, b.deliveries[i].i = b, i
	}
	b.remaining.Store(int32(n))
	return b
}

func (b *batch) finish(n int32) {
	if b.remaining.Add(-n) == 0 {
		close(b.done)
	}
}

// delivery rides in kafka.Message.Opaque: whom a delivery report completes.
type delivery struct {
	b    *batch       // Publish: the batch whose result i this is
	i    int          //
	done func(Result) // PublishAsync: called instead; must not block
	// size is what the message counts against the budget (set by check).
	size  int64
	owner string // whose budget share size counts in
	ts    time.Time
}

// complete hands over the outcome, on the delivery-report goroutine.
func (d *delivery) complete(r Result) {
	if d.b == nil {
		d.done(r)
		return
	}
	d.b.results[d.i] = r
	d.b.finish(1)
}

// budgetOverhead is what each message counts against the in-flight budget
// besides its key, value and headers: librdkafka's and the gateway's own
// bookkeeping, so that the budget also bounds the number of messages.
const budgetOverhead = 128

// NewProducer connects a producer (lazily: no broker needs to be up yet)
// with acks=all, enable.idempotence=true and partitioner=murmur2_random.
func NewProducer(cfg ProducerConfig) (*Producer, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cm, err := kafkaConfig(cfg.Brokers, map[string]string{
		"client.id":                 "kgate",
		"acks":                      "all",
		"enable.idempotence":        "true",
		"partitioner":               "murmur2_random",
		"linger.ms":                 "1",
		"message.timeout.ms":        "30000",
		"message.max.bytes":         strconv.FormatInt(cfg.MaxMessageBytes+64<<10, 10),
		"go.delivery.report.fields": "none",
		// confluent-kafka-go's defaults are channels of a million events
		// and a million messages: 24 MB of pointers allocated with the
		// producer, which the garbage collector scanned at every cycle
		// (they doubled the live heap). The delivery-report loop keeps
		// up with a few thousand; the produce channel is never used.
		"go.events.channel.size":             "4096",
		"go.produce.channel.size":            "0",
		"go.logs.channel.enable":             "true",
		"enable.metrics.push":                "false",
		"reconnect.backoff.max.ms":           "1000",
		"topic.metadata.refresh.interval.ms": "30000",
	}, cfg.Kafka, producerGuards)
	if err != nil {
		return nil, err
	}
	kp, err := kafka.NewProducer(&cm)
	if err != nil {
		// librdkafka quotes the values of some refused properties.
		return nil, fmt.Errorf("creating Kafka producer: %s", RedactSecrets(err.Error(), cfg.Kafka))
	}
	p := &Producer{
		cfg:      cfg,
		kp:       kp,
		budget:   flowcontrol.NewBudget(flowcontrol.BudgetConfig{Limit: cfg.MaxInflightBytes, Share: cfg.MaxInflightShare}),
		log:      cfg.Logger.With("component", "producer"),
		topics:   make(map[string]topicMeta),
		queueMax: librdkafkaQueueMax,
	}
	p.queueFullErr = &Error{Kind: KindExhausted, Reason: ReasonQueueFull, RetryAfter: cfg.RetryAfter,
		Message: "the Kafka producer queue is full; retry after the delay in RetryInfo"}
	p.budgetSpentErr = &Error{Kind: KindExhausted, Reason: ReasonBudgetExhausted, RetryAfter: cfg.RetryAfter,
		Message: fmt.Sprintf("the gateway's in-flight budget (%d bytes) is spent; retry after the delay in RetryInfo", cfg.MaxInflightBytes)}
	p.shareSpentErr = &Error{Kind: KindExhausted, Reason: ReasonShareExhausted, RetryAfter: cfg.RetryAfter,
		Message: fmt.Sprintf("this principal holds its share (%d bytes) of the gateway's in-flight budget while other principals publish; retry after the delay in RetryInfo", p.budget.Share())}
	if v, err := cm.Get("queue.buffering.max.messages", nil); err == nil && v != nil {
		if n, err := strconv.ParseInt(fmt.Sprint(v), 10, 64); err == nil && n > 0 {
			p.queueMax = n
		}
	}
	p.loops.Add(2)
	go func() { defer p.loops.Done(); p.deliveryLoop() }()
	go func() { defer p.loops.Done(); forwardLogs(kp.Logs(), p.log) }()
	return p, nil
}

// deliveryLoop completes Publish calls from delivery reports. It runs until
// the events channel is closed by kafka.Producer.Close, and never blocks on
// anything but that channel.
func (p *Producer) deliveryLoop() {
	for ev := range p.kp.Events() {
		switch e := ev.(type) {
		case *kafka.Message:
			d, ok := e.Opaque.(*delivery)
			if !ok {
				p.log.Error("delivery report without a waiting publish; this is a bug", "topic", e.TopicPartition)
				continue
			}
			r := Result{Timestamp: d.ts}
			if err := e.TopicPartition.Error; err != nil {
				r.Err = fromDelivery(err, "publish to topic "+strconv.Quote(*e.TopicPartition.Topic))
			} else {
				r.Partition = e.TopicPartition.Partition
				r.Offset = int64(e.TopicPartition.Offset)
			}
			p.budget.Release(d.owner, d.size)
			p.queued.Add(-1)
			d.complete(r)
			p.inflight.Done()
		case kafka.Error:
			if e.IsFatal() {
				fe := errorf(KindInternal, "FATAL_PRODUCER_ERROR", "the Kafka producer failed and must be restarted: %v", e)
				p.fatal.CompareAndSwap(nil, fe)
				p.log.Error("fatal Kafka producer error; the gateway must be restarted", "err", e)
			} else {
				p.log.Warn("Kafka producer error", "err", e, "code", e.Code())
			}
		}
	}
}

// Publish writes msgs to topic and blocks until the broker acknowledged or
// rejected each of them, or ctx is done.
//
// It returns a nil slice and an *Error when no message was handed to Kafka:
// invalid input (KindInvalid), unknown topic (KindNotFound), no capacity
// (KindExhausted, checked at once, never waited for), brokers unreachable
// (KindUnavailable), the producer closed. Otherwise it returns one Result
// per message, in order, and a nil error: each Result says where the
// message landed or why it was not written. When ctx ends first it returns
// an *Error of KindUnknownOutcome: the messages may or may not be written.
//
// Publish is safe for concurrent use. It does not retain msgs after it
// returns, except that librdkafka holds its own copies until delivery.
func (p *Producer) Publish(ctx context.Context, topic string, msgs []Message) ([]Result, error) {
	if len(msgs) == 0 {
		return nil, errorf(KindInvalid, ReasonNoMessages, "no messages: send at least one message")
	}
	b := newBatch(len(msgs))
	if err := p.check(ctx, topic, msgs, b.deliveries); err != nil {
		return nil, err
	}
	produced, perr := p.produce(budgetOwner(ctx), topic, msgs, b.deliveries)
	if perr != nil {
		if produced == 0 {
			return nil, perr
		}
		for i := produced; i < len(msgs); i++ {
			b.results[i].Err = perr
			if i > produced {
				b.results[i].Err = &Error{Kind: perr.Kind, Reason: perr.Reason, RetryAfter: perr.RetryAfter,
					Message: fmt.Sprintf("not sent because message %d was refused: %s", produced, perr.Message)}
			}
		}
		b.finish(int32(len(msgs) - produced))
	}
	select {
	case <-b.done:
		return b.results, nil
	case <-ctx.Done():
		return nil, &Error{Kind: KindUnknownOutcome, Reason: ReasonOutcomeUnknown, Cause: ctx.Err(),
			Message: fmt.Sprintf("%v while waiting for Kafka to acknowledge: the outcome is unknown, the messages may or may not be written", ctx.Err())}
	}
}

// PublishAsync hands one message to Kafka and returns at once. When it
// returns nil, done is called exactly once with the outcome, on the
// producer's delivery-report goroutine, so done must not block. When it
// returns an *Error the message was not handed to Kafka (the reasons of
// Publish) and done is never called. ctx bounds only the topic metadata
// lookup, not the delivery. Safe for concurrent use.
func (p *Producer) PublishAsync(ctx context.Context, topic string, m Message, done func(Result)) error {
	msgs, ds := []Message{m}, make([]delivery, 1)
	ds[0].done = done
	if err := p.check(ctx, topic, msgs, ds); err != nil {
		return err
	}
	if _, perr := p.produce(budgetOwner(ctx), topic, msgs, ds); perr != nil {
		return perr
	}
	return nil
}

// check validates a batch for topic and sets each message's size in ds.
func (p *Producer) check(ctx context.Context, topic string, msgs []Message, ds []delivery) error {
	if err := ValidateTopic(topic); err != nil {
		return err
	}
	for i := range msgs {
		m := &msgs[i]
		ds[i].size = m.size()
		if ds[i].size > p.cfg.MaxMessageBytes {
			return errorf(KindInvalid, ReasonMessageTooLarge,
				"message %d is %d bytes (key, value and headers); the limit is %d bytes: split or shrink it", i, ds[i].size, p.cfg.MaxMessageBytes)
		}
		if m.Partition < PartitionAny {
			return errorf(KindInvalid, ReasonUnknownPartition, "message %d: partition %d is negative", i, m.Partition)
		}
	}
	if fe := p.fatal.Load(); fe != nil {
		return fe
	}
	parts, err := p.partitions(ctx, topic)
	if err != nil {
		return err
	}
	for i := range msgs {
		if msgs[i].Partition >= parts {
			return errorf(KindInvalid, ReasonUnknownPartition,
				"message %d: topic %q has partitions 0 to %d, not %d", i, topic, parts-1, msgs[i].Partition)
		}
	}
	return nil
}

// produce reserves owner's budget for msgs, all or nothing, and hands them
// to librdkafka in order, each with its delivery in ds (its size set by
// check), which the delivery-report loop completes. It returns how many
// were handed over and, if not all, why the next one was not (the reserve
// of the rest is returned).
func (p *Producer) produce(owner, topic string, msgs []Message, ds []delivery) (int, *Error) {
	var total int64
	for i := range ds {
		ds[i].size += budgetOverhead
		total += ds[i].size
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return 0, errorf(KindUnavailable, ReasonClosed, "the gateway is shutting down: publish through another instance or retry shortly")
	}
	// Delivery reports carry no timestamp, so the gateway sets CreateTime
	// itself and reports that; Kafka keeps milliseconds.
	now := time.Now()
	if err := p.budget.Acquire(owner, total, now); err != nil {
		return 0, p.budgetError(err) // shared: callers copy it before changing it
	}
	now = now.Truncate(time.Millisecond)
	// librdkafka copies what it needs of a message and keeps only its
	// Opaque, so one kafka.Message serves the whole batch.
	km := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic}}
	for i := range msgs {
		m, d := &msgs[i], &ds[i]
		d.owner, d.ts = owner, now
		if !m.Timestamp.IsZero() {
			d.ts = m.Timestamp.Truncate(time.Millisecond)
		}
		km.TopicPartition.Partition = m.Partition
		km.Key, km.Value, km.Timestamp, km.Opaque, km.Headers = m.Key, m.Value, d.ts, d, nil
		if len(m.Headers) > 0 {
			km.Headers = make([]kafka.Header, len(m.Headers))
			for j, h := range m.Headers {
				km.Headers[j] = kafka.Header{Key: h.Key, Value: h.Value}
			}
		}
		p.inflight.Add(1)
		p.queued.Add(1)
		if err := p.kp.Produce(km, nil); err != nil {
			p.queued.Add(-1)
			p.inflight.Done()
			var unsent int64
			for j := i; j < len(ds); j++ {
				unsent += ds[j].size
			}
			p.budget.Release(owner, unsent)
			perr := fromKafka(err, "publish to topic "+strconv.Quote(topic))
			if perr.Kind == KindExhausted {
				perr.RetryAfter = p.cfg.RetryAfter
			}
			return i, perr
		}
	}
	return len(msgs), nil
}

// librdkafkaQueueMax is librdkafka's default queue.buffering.max.messages.
const librdkafkaQueueMax = 100_000

// Saturated returns the *Error (KindExhausted) that Publish would return
// now for any message of owner, or nil: when the producer's queue holds
// queue.buffering.max.messages messages; when less of the in-flight budget
// is free than the smallest message counts (128 bytes) or than 1/1024 of
// the budget, whichever is more; or when owner holds its share of the
// budget while another owner is active. It reads two counters, and takes
// the budget's lock only when owners are told apart, and allocates
// nothing, so that a server can refuse calls with it before reading their
// requests. A refusal for want of room makes owner active (see
// MaxInflightShare). The *Error returned is shared by all callers: do not
// modify it.
func (p *Producer) Saturated(owner string) *Error {
	if p.queued.Load() >= p.queueMax {
		return p.queueFullErr
	}
	if err := p.budget.Check(owner, max(budgetOverhead, p.budget.Limit()/1024), time.Now()); err != nil {
		return p.budgetError(err)
	}
	return nil
}

// budgetError is the *Error of a budget refusal.
func (p *Producer) budgetError(err error) *Error {
	if errors.Is(err, flowcontrol.ErrShareExhausted) {
		return p.shareSpentErr
	}
	return p.budgetSpentErr
}

type budgetOwnerKey struct{}

// WithBudgetOwner returns a context with which Publish and PublishAsync
// count what they hold of the in-flight budget as owner's (a principal's),
// for MaxInflightShare. Without it the owner is "", the gateway itself,
// which is never held to a share.
func WithBudgetOwner(ctx context.Context, owner string) context.Context {
	return context.WithValue(ctx, budgetOwnerKey{}, owner)
}

func budgetOwner(ctx context.Context) string {
	owner, _ := ctx.Value(budgetOwnerKey{}).(string)
	return owner
}

// partitions returns the partition count of topic from a cache of at most
// MetadataMaxAge, asking the brokers when needed. Asking creates the topic
// where the cluster creates topics on first use.
func (p *Producer) partitions(ctx context.Context, topic string) (int32, error) {
	p.topicsMu.Lock()
	tm, ok := p.topics[topic]
	p.topicsMu.Unlock()
	if ok && time.Since(tm.fetched) < p.cfg.MetadataMaxAge {
		return tm.partitions, nil
	}
	md, err := p.kp.GetMetadata(&topic, false, timeoutMs(ctx, 10*time.Second))
	if err != nil {
		if ok { // keep publishing with what we knew; librdkafka has its own view
			return tm.partitions, nil
		}
		if ctx.Err() != nil {
			return 0, &Error{Kind: KindUnknownOutcome, Reason: ReasonOutcomeUnknown, Cause: ctx.Err(),
				Message: fmt.Sprintf("%v while fetching metadata for topic %q; nothing was written", ctx.Err(), topic)}
		}
		e := fromKafka(err, fmt.Sprintf("fetching metadata for topic %q", topic))
		if e.Kind == KindInternal {
			e.Kind = KindUnavailable
		}
		return 0, e
	}
	t, found := md.Topics[topic]
	if !found {
		return 0, errorf(KindUnavailable, "NO_METADATA", "the brokers returned no metadata for topic %q; retry", topic)
	}
	if t.Error.Code() != kafka.ErrNoError {
		e := fromKafka(t.Error, fmt.Sprintf("topic %q", topic))
		if e.Kind == KindNotFound {
			e.Message = fmt.Sprintf("topic %q does not exist and the cluster does not create topics on first use: create it, then retry", topic)
		}
		return 0, e
	}
	if len(t.Partitions) == 0 {
		return 0, errorf(KindUnavailable, "NO_PARTITIONS", "topic %q has no partitions yet (it may be being created); retry", topic)
	}
	n := int32(len(t.Partitions))
	p.topicsMu.Lock()
	p.topics[topic] = topicMeta{partitions: n, fetched: time.Now()}
	p.topicsMu.Unlock()
	return n, nil
}

// Ping asks the brokers for cluster metadata: nil means Kafka is reachable.
func (p *Producer) Ping(ctx context.Context) error {
	if fe := p.fatal.Load(); fe != nil {
		return fe
	}
	if _, err := p.kp.GetMetadata(nil, false, timeoutMs(ctx, 5*time.Second)); err != nil {
		return fromKafka(err, "asking the Kafka brokers for metadata")
	}
	return nil
}

// InflightBytes reports the bytes handed to Kafka and not yet acknowledged
// (with the per-message overhead): the in-flight budget in use.
func (p *Producer) InflightBytes() int64 { return p.budget.Used() }

// InflightLimit reports the in-flight budget, MaxInflightBytes.
func (p *Producer) InflightLimit() int64 { return p.budget.Limit() }

// QueueMessages reports the messages in librdkafka's queue, in flight to
// the brokers, or with undelivered reports.
func (p *Producer) QueueMessages() int { return p.kp.Len() }

// Close refuses new publishes, waits until ctx is done for the delivery
// reports of messages already handed to Kafka, fails what is still pending
// (those Publish calls return an unknown outcome, or UNAVAILABLE for
// messages never sent), then closes the Kafka producer and waits for the
// producer's goroutines. It is safe to call more than once.
func (p *Producer) Close(ctx context.Context) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()

	for p.kp.Len() > 0 && ctx.Err() == nil {
		p.kp.Flush(100)
	}
	if n := p.kp.Len(); n > 0 {
		p.log.Warn("shutdown timeout: abandoning unacknowledged messages; their publishers are told the outcome is unknown", "messages", n)
		if err := p.kp.Purge(kafka.PurgeQueue | kafka.PurgeInFlight); err != nil {
			p.log.Error("purging the producer queue", "err", err)
		}
		p.kp.Flush(1000) // serve the purged messages' reports
	}
	p.inflight.Wait()
	p.kp.Close()
	p.loops.Wait()
}

// timeoutMs is the time left before ctx's deadline, capped at max, in
// milliseconds (at least 1).
func timeoutMs(ctx context.Context, max time.Duration) int {
	d := max
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < d {
			d = left
		}
	}
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return int(d / time.Millisecond)
}
