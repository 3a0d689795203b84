package server

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc/codes"

	"github.com/kgate/kgate/kafkaio"
)

// Metrics are kgate's Prometheus metrics, registered in their own registry.
// It implements kafkaio.Observer. All methods are safe for concurrent use;
// a nil *Metrics records nothing.
//
// Series labelled with a consumer group go through groups (forGroup), which
// bounds how many groups are labelled at once and deletes a group's series
// some time after its last stream ended; add a new group-labelled series
// to groups.track in NewMetrics and record it in a forGroup callback.
type Metrics struct {
	Registry *prometheus.Registry
	rpc      *rpcMetrics
	groups   *groupLabels

	publishSeconds                  *prometheus.HistogramVec
	publishMessages                 *prometheus.CounterVec
	publishedOK                     prometheus.Observer // publishSeconds{code="OK"}
	messagesOK                      prometheus.Counter  // publishMessages{code="OK"}
	rejections                      *prometheus.CounterVec
	refusedCalls                    *prometheus.CounterVec
	refusedQueueFull, refusedBudget prometheus.Counter
	refusedShare                    prometheus.Counter
	unauthCalls                     *prometheus.CounterVec
	connectionsOpen                 prometheus.Gauge
	connectionsRefused              prometheus.Counter
	streams                         *prometheus.GaugeVec
	httpRequests                    *prometheus.CounterVec
	outstanding                     prometheus.Gauge
	paused                          *prometheus.GaugeVec
	redeliveries                    *prometheus.CounterVec
	rebalances                      *prometheus.CounterVec
	stalled                         *prometheus.GaugeVec
	stallRecoveries                 *prometheus.CounterVec
	deadLetters                     *prometheus.CounterVec
	ignoredAcks                     *prometheus.CounterVec
	commits                         *prometheus.CounterVec
	lag                             *prometheus.GaugeVec
}

// SubscriberStats is what the metrics read from the subscriber when
// scraped; *kafkaio.Subscriber implements it.
type SubscriberStats interface {
	MemoryUsed() int64
	MemoryLimit() int64
}

// WatchSubscriber adds the subscription budget's gauges, read from sub.
func (m *Metrics) WatchSubscriber(sub SubscriberStats) {
	if m == nil {
		return
	}
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kgate_subscribe_memory_bytes", Help: "The subscription budget in use: librdkafka's fetch buffers of the group consumers and the records they hold."},
			func() float64 { return float64(sub.MemoryUsed()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kgate_subscribe_memory_limit_bytes", Help: "The subscription budget (--subscribe-memory)."},
			func() float64 { return float64(sub.MemoryLimit()) }))
}

// ProducerStats is what the metrics read from the producer when scraped;
// *kafkaio.Producer implements it.
type ProducerStats interface {
	QueueMessages() int
	InflightBytes() int64
	InflightLimit() int64
}

// MetricsOption configures NewMetrics.
type MetricsOption interface{ apply(*metricsConfig) }

type metricsConfig struct {
	maxGroups   int
	groupLinger time.Duration
	now         func() time.Time
}

type metricsOptionFunc func(*metricsConfig)

func (f metricsOptionFunc) apply(c *metricsConfig) { f(c) }

// WithGroupSeries bounds the consumer groups labelled in the metrics at
// once to max (default 100; the others' counters are added up under group
// "_other"), and deletes a group's series linger after its last Subscribe
// stream ended (default 5 minutes). Values ≤ 0 keep the defaults.
func WithGroupSeries(max int, linger time.Duration) MetricsOption {
	return metricsOptionFunc(func(c *metricsConfig) {
		if max > 0 {
			c.maxGroups = max
		}
		if linger > 0 {
			c.groupLinger = linger
		}
	})
}

// NewMetrics registers kgate's metrics, the standard gRPC server metrics,
// and Go runtime and process metrics. prod may be nil.
func NewMetrics(prod ProducerStats, opts ...MetricsOption) *Metrics {
	cfg := metricsConfig{maxGroups: DefaultMetricsMaxGroups, groupLinger: DefaultMetricsGroupLinger, now: time.Now}
	for _, o := range opts {
		o.apply(&cfg)
	}
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{
		Registry: reg,
		groups:   newGroupLabels(cfg.maxGroups, cfg.groupLinger, cfg.now),
		rpc:      newRPCMetrics(),
		publishSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kgate_publish_duration_seconds", Help: "Time from a Publish request to its answer, by status code.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"code"}),
		publishMessages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kgate_publish_messages_total", Help: "Published messages by outcome (gRPC status code), Publish and PublishStream.",
		}, []string{"code"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kgate_publish_rejections_total", Help: "Messages refused for capacity (RESOURCE_EXHAUSTED), by reason.",
		}, []string{"reason"}),
		refusedCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kgate_publish_refused_calls_total", Help: "Publish calls refused with RESOURCE_EXHAUSTED before their request was read (producer queue or in-flight budget full), by reason.",
		}, []string{"reason"}),
		unauthCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kgate_unauthenticated_calls_total", Help: "Calls refused with UNAUTHENTICATED before their request was read, by reason (NO_IDENTITY, UNKNOWN_TOKEN, RESERVED_PRINCIPAL).",
		}, []string{"reason"}),
		connectionsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kgate_connections", Help: "Open client connections of the gRPC port and the HTTP listener.",
		}),
		connectionsRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kgate_refused_connections_total", Help: "Client connections closed at once because the gateway held --max-connections.",
		}),
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kgate_streams", Help: "Open streams, by RPC.",
		}, []string{"rpc"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kgate_http_requests_total", Help: "Requests of the HTTP listener (--http-listen), by protocol: connect, connect-stream, grpc-web, grpc or rest. Each call is also counted in grpc_server_*.",
		}, []string{"protocol"}),
		outstanding: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kgate_subscribe_outstanding_records", Help: "Records held by Subscribe streams: delivered and not acked, or waiting for redelivery.",
		}),
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kgate_subscribe_paused_partitions", Help: "Partitions whose fetching is paused for flow control: no room in the window for their next record.",
		}, []string{"group"}),
		redeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kgate_subscribe_redeliveries_total", Help: "Records delivered again, by reason: nack, deadline (ack deadline expired), revoked (its stream ended or drained first), rebalance (Kafka moved its partition here from a member that had delivered it), restart (an earlier consumer of this gateway had delivered it).",
		}, []string{"group", "reason"}),
		rebalances: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kgate_subscribe_rebalances_total", Help: "Kafka rebalances that assigned partitions to this gateway's consumer of the group (streams opening or ending cause none).",
		}, []string{"group"}),
		stalled: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kgate_subscribe_stalled_partitions", Help: "Partitions assigned, not paused, with records waiting and none fetched for the stall time (3 s); each is sought again.",
		}, []string{"group"}),
		stallRecoveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kgate_subscribe_stall_recoveries_total", Help: "Stalled partitions sought to their next offset.",
		}, []string{"group"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kgate_subscribe_dead_letters_total", Help: "Records written to a dead-letter topic.",
		}, []string{"group"}),
		ignoredAcks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kgate_subscribe_ignored_acks_total", Help: "Acks, nacks and extends naming no current delivery (malformed, unknown, stale, revoked).",
		}, []string{"group"}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kgate_subscribe_commits_total", Help: "Offset commits by result (ok, failed); failed ones are retried.",
		}, []string{"group", "result"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kgate_subscribe_lag_records", Help: "Records between a stream's commit offset and the partition's end.",
		}, []string{"group", "topic", "partition"}),
	}
	for _, c := range append(m.rpc.collectors(), m.publishSeconds, m.publishMessages, m.rejections, m.refusedCalls, m.unauthCalls, m.connectionsOpen, m.connectionsRefused, m.streams, m.httpRequests,
		m.outstanding, m.paused, m.redeliveries, m.rebalances, m.stalled, m.stallRecoveries, m.deadLetters, m.ignoredAcks, m.commits, m.lag,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), sweeper{m.groups}) {
		f(c)
	}
	m.groups.track(m.paused.MetricVec, m.redeliveries.MetricVec, m.rebalances.MetricVec, m.stalled.MetricVec, m.stallRecoveries.MetricVec,
		m.deadLetters.MetricVec, m.ignoredAcks.MetricVec, m.commits.MetricVec, m.lag.MetricVec)
	// The series every accepted message records, resolved once.
	m.publishedOK = m.publishSeconds.WithLabelValues(codes.OK.String())
	m.messagesOK = m.publishMessages.WithLabelValues(codes.OK.String())
	m.refusedQueueFull = m.refusedCalls.WithLabelValues(kafkaio.ReasonQueueFull)
	m.refusedBudget = m.refusedCalls.WithLabelValues(kafkaio.ReasonBudgetExhausted)
	m.refusedShare = m.refusedCalls.WithLabelValues(kafkaio.ReasonShareExhausted)
	if prod != nil {
		f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kgate_producer_queue_messages", Help: "Messages in the Kafka producer's queue (not yet acknowledged)."},
			func() float64 { return float64(prod.QueueMessages()) }))
		f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kgate_producer_inflight_bytes", Help: "Bytes of published messages awaiting the broker's acknowledgement (the in-flight budget in use)."},
			func() float64 { return float64(prod.InflightBytes()) }))
		f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kgate_producer_inflight_limit_bytes", Help: "The in-flight budget (--max-inflight-bytes)."},
			func() float64 { return float64(prod.InflightLimit()) }))
	}
	return m
}

func (m *Metrics) published(start time.Time, code codes.Code) {
	switch {
	case m == nil:
	case code == codes.OK:
		m.publishedOK.Observe(time.Since(start).Seconds())
	default:
		m.publishSeconds.WithLabelValues(code.String()).Observe(time.Since(start).Seconds())
	}
}

func (m *Metrics) messages(code codes.Code, reason string, n int) {
	if m == nil || n == 0 {
		return
	}
	if code == codes.OK {
		m.messagesOK.Add(float64(n))
		return
	}
	m.publishMessages.WithLabelValues(code.String()).Add(float64(n))
	if code == codes.ResourceExhausted {
		m.rejections.WithLabelValues(reason).Add(float64(n))
	}
}

func (m *Metrics) refused(reason string) {
	if m != nil {
		switch reason { // the reasons Saturated gives, without a label lookup
		case kafkaio.ReasonQueueFull:
			m.refusedQueueFull.Inc()
		case kafkaio.ReasonBudgetExhausted:
			m.refusedBudget.Inc()
		case kafkaio.ReasonShareExhausted:
			m.refusedShare.Inc()
		default:
			m.refusedCalls.WithLabelValues(reason).Inc()
		}
	}
}

func (m *Metrics) unauthenticated(reason string) {
	if m != nil {
		m.unauthCalls.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) connections(delta float64) {
	if m != nil {
		m.connectionsOpen.Add(delta)
	}
}

func (m *Metrics) refusedConnection() {
	if m != nil {
		m.connectionsRefused.Inc()
	}
}

func (m *Metrics) httpRequest(protocol string) {
	if m != nil {
		m.httpRequests.WithLabelValues(protocol).Inc()
	}
}

func (m *Metrics) stream(rpc string, delta float64) { // once per stream
	if m != nil {
		m.streams.WithLabelValues(rpc).Add(delta)
	}
}

// forGroup calls record with the label value of group (see groupLabels):
// own is false when the group is counted under OtherGroups, where gauges
// must not be set. Every series labelled with a group records through it.
func (m *Metrics) forGroup(group string, record func(label string, own bool)) {
	m.groups.observe(group, record)
}

// groupStreamOpened keeps group's label while its Subscribe stream is
// open: call the returned func when the stream ends.
func (m *Metrics) groupStreamOpened(group string) (ended func()) {
	if m == nil {
		return func() {}
	}
	return m.groups.streamOpened(group)
}

// Redelivered implements kafkaio.Observer.
func (m *Metrics) Redelivered(group, reason string) {
	if m != nil {
		m.forGroup(group, func(g string, _ bool) { m.redeliveries.WithLabelValues(g, reason).Inc() })
	}
}

// Rebalanced implements kafkaio.Observer.
func (m *Metrics) Rebalanced(group string) {
	if m != nil {
		m.forGroup(group, func(g string, _ bool) { m.rebalances.WithLabelValues(g).Inc() })
	}
}

// Stalled implements kafkaio.Observer.
func (m *Metrics) Stalled(group string, delta int) {
	if m != nil {
		m.forGroup(group, func(g string, own bool) {
			if own { // one gauge for many groups would mean nothing
				m.stalled.WithLabelValues(g).Add(float64(delta))
			}
		})
	}
}

// StallRecovered implements kafkaio.Observer.
func (m *Metrics) StallRecovered(group string) {
	if m != nil {
		m.forGroup(group, func(g string, _ bool) { m.stallRecoveries.WithLabelValues(g).Inc() })
	}
}

// DeadLettered implements kafkaio.Observer.
func (m *Metrics) DeadLettered(group string) {
	if m != nil {
		m.forGroup(group, func(g string, _ bool) { m.deadLetters.WithLabelValues(g).Inc() })
	}
}

// IgnoredAck implements kafkaio.Observer.
func (m *Metrics) IgnoredAck(group string) {
	if m != nil {
		m.forGroup(group, func(g string, _ bool) { m.ignoredAcks.WithLabelValues(g).Inc() })
	}
}

// Committed implements kafkaio.Observer.
func (m *Metrics) Committed(group string, ok bool) {
	if m == nil {
		return
	}
	result := "ok"
	if !ok {
		result = "failed"
	}
	m.forGroup(group, func(g string, _ bool) { m.commits.WithLabelValues(g, result).Inc() })
}

// Outstanding implements kafkaio.Observer.
func (m *Metrics) Outstanding(delta int) {
	if m != nil {
		m.outstanding.Add(float64(delta))
	}
}

// Paused implements kafkaio.Observer.
func (m *Metrics) Paused(group string, delta int) {
	if m != nil {
		m.forGroup(group, func(g string, own bool) {
			if own {
				m.paused.WithLabelValues(g).Add(float64(delta))
			}
		})
	}
}

// Lag implements kafkaio.Observer.
func (m *Metrics) Lag(group string, tp kafkaio.TopicPartition, lag int64) {
	if m == nil {
		return
	}
	p := strconv.Itoa(int(tp.Partition))
	m.forGroup(group, func(g string, own bool) {
		switch {
		case !own: // one gauge for many groups would mean nothing
		case lag < 0:
			m.lag.DeleteLabelValues(g, tp.Topic, p)
		default:
			m.lag.WithLabelValues(g, tp.Topic, p).Set(float64(lag))
		}
	})
}

var _ kafkaio.Observer = (*Metrics)(nil)
