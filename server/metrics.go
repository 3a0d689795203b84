package server

import (
	"strconv"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc/codes"

	"github.com/kgate/kgate/kafkaio"
)

// Metrics are kgate's Prometheus metrics, registered in their own registry.
// It implements kafkaio.Observer. All methods are safe for concurrent use;
// a nil *Metrics records nothing.
type Metrics struct {
	Registry *prometheus.Registry
	grpc     *grpcprom.ServerMetrics

	publishSeconds                  *prometheus.HistogramVec
	publishMessages                 *prometheus.CounterVec
	rejections                      *prometheus.CounterVec
	refusedCalls                    *prometheus.CounterVec
	refusedQueueFull, refusedBudget prometheus.Counter
	refusedShare                    prometheus.Counter
	unauthCalls                     *prometheus.CounterVec
	connectionsOpen                 prometheus.Gauge
	connectionsRefused              prometheus.Counter
	streams                         *prometheus.GaugeVec
	outstanding                     prometheus.Gauge
	redeliveries                    *prometheus.CounterVec
	deadLetters                     *prometheus.CounterVec
	ignoredAcks                     *prometheus.CounterVec
	commits                         *prometheus.CounterVec
	lag                             *prometheus.GaugeVec
}

// ProducerStats is what the metrics read from the producer when scraped;
// *kafkaio.Producer implements it.
type ProducerStats interface {
	QueueMessages() int
	InflightBytes() int64
	InflightLimit() int64
}

// NewMetrics registers kgate's metrics, the standard gRPC server metrics,
// and Go runtime and process metrics. prod may be nil.
func NewMetrics(prod ProducerStats) *Metrics {
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{
		Registry: reg,
		grpc: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets([]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5}))),
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
			Name: "kgate_connections", Help: "Open client connections of the gRPC port.",
		}),
		connectionsRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kgate_refused_connections_total", Help: "Client connections closed at once because the gateway held --max-connections.",
		}),
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kgate_streams", Help: "Open streams, by RPC.",
		}, []string{"rpc"}),
		outstanding: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kgate_subscribe_outstanding_records", Help: "Records held by Subscribe streams: delivered and not acked, or waiting for redelivery.",
		}),
		redeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kgate_subscribe_redeliveries_total", Help: "Records delivered again after a nack or an expired ack deadline.",
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
	for _, c := range []prometheus.Collector{m.grpc, m.publishSeconds, m.publishMessages, m.rejections, m.refusedCalls, m.unauthCalls, m.connectionsOpen, m.connectionsRefused, m.streams,
		m.outstanding, m.redeliveries, m.deadLetters, m.ignoredAcks, m.commits, m.lag,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
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
	if m != nil {
		m.publishSeconds.WithLabelValues(code.String()).Observe(time.Since(start).Seconds())
	}
}

func (m *Metrics) messages(code codes.Code, reason string, n int) {
	if m == nil || n == 0 {
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

func (m *Metrics) stream(rpc string, delta float64) {
	if m != nil {
		m.streams.WithLabelValues(rpc).Add(delta)
	}
}

// Redelivered implements kafkaio.Observer.
func (m *Metrics) Redelivered(group string) {
	if m != nil {
		m.redeliveries.WithLabelValues(group).Inc()
	}
}

// DeadLettered implements kafkaio.Observer.
func (m *Metrics) DeadLettered(group string) {
	if m != nil {
		m.deadLetters.WithLabelValues(group).Inc()
	}
}

// IgnoredAck implements kafkaio.Observer.
func (m *Metrics) IgnoredAck(group string) {
	if m != nil {
		m.ignoredAcks.WithLabelValues(group).Inc()
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
	m.commits.WithLabelValues(group, result).Inc()
}

// Outstanding implements kafkaio.Observer.
func (m *Metrics) Outstanding(delta int) {
	if m != nil {
		m.outstanding.Add(float64(delta))
	}
}

// Lag implements kafkaio.Observer.
func (m *Metrics) Lag(group string, tp kafkaio.TopicPartition, lag int64) {
	if m == nil {
		return
	}
	p := strconv.Itoa(int(tp.Partition))
	if lag < 0 {
		m.lag.DeleteLabelValues(group, tp.Topic, p)
		return
	}
	m.lag.WithLabelValues(group, tp.Topic, p).Set(float64(lag))
}

var _ kafkaio.Observer = (*Metrics)(nil)
