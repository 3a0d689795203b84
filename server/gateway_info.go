package server

import (
	"context"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
)

// GatewayInfo is what kgate.v1.Admin/DescribeGateway reports of this
// instance. Every field is optional; what is nil is left out.
type GatewayInfo struct {
	Instance string
	Brokers  string
	Embedded bool
	// Health answers the health checks of Services ("" is added).
	Health   healthpb.HealthServer
	Services []string
	Producer ProducerStats
	// Subscriber reports the subscription budget.
	Subscriber SubscriberStats
	// Metrics gives the streams and the publish counters.
	Metrics *Metrics
	// Started is when the gateway started.
	Started time.Time
}

// SetGateway sets what DescribeGateway reports. Call it before serving.
func (s *AdminService) SetGateway(info GatewayInfo) { s.gateway = &info }

// DescribeGateway implements kgate.v1.Admin/DescribeGateway.
func (s *AdminService) DescribeGateway(ctx context.Context, _ *kgatev1.DescribeGatewayRequest) (*kgatev1.DescribeGatewayResponse, error) {
	if f := s.auth.adminFilter(ctx); f != nil && !f("", "") {
		return nil, toStatus(s.auth.authorizeAdmin(ctx, "", "", false))
	}
	resp := &kgatev1.DescribeGatewayResponse{Time: timestamppb.Now(), Caller: s.auth.caller(ctx)}
	g := s.gateway
	if g == nil {
		return resp, nil
	}
	resp.Instance, resp.Brokers, resp.EmbeddedKafka = g.Instance, g.Brokers, g.Embedded
	if !g.Started.IsZero() {
		resp.StartTime = timestamppb.New(g.Started)
	}
	if g.Health != nil {
		for _, svc := range append([]string{""}, g.Services...) {
			st := "SERVICE_UNKNOWN"
			if r, err := g.Health.Check(ctx, &healthpb.HealthCheckRequest{Service: svc}); err == nil {
				st = r.GetStatus().String()
			}
			resp.Health = append(resp.Health, &kgatev1.ServiceHealth{Service: svc, Status: st})
		}
	}
	if p := g.Producer; p != nil {
		resp.ProducerQueueMessages, resp.InflightBytes, resp.InflightLimitBytes = int64(p.QueueMessages()), p.InflightBytes(), p.InflightLimit()
	}
	if sub := g.Subscriber; sub != nil {
		resp.SubscribeMemoryBytes, resp.SubscribeMemoryLimitBytes = sub.MemoryUsed(), sub.MemoryLimit()
	}
	if m := g.Metrics; m != nil {
		for _, v := range byLabel(m.streams, "rpc") {
			resp.Streams = append(resp.Streams, &kgatev1.StreamCount{Rpc: v.label, Open: int64(v.value)})
		}
		for _, v := range byLabel(m.publishMessages, "code") {
			if v.label == "OK" {
				resp.PublishedMessages += int64(v.value)
			} else {
				resp.FailedMessages += int64(v.value)
			}
		}
		for _, v := range byLabel(m.rejections, "reason") {
			resp.Rejections = append(resp.Rejections, &kgatev1.ReasonCount{Reason: v.label, Count: int64(v.value)})
		}
		for _, c := range []prometheus.Collector{m.refusedQueueFull, m.refusedBudget, m.refusedShare, m.refusedCalls} {
			for _, v := range byLabel(c, "reason") {
				resp.RefusedCalls += int64(v.value)
			}
		}
	}
	return resp, nil
}

// groupCounts returns the redeliveries by reason and the dead letters of
// group that m counted, from its group-labelled series (none when the
// group is counted under "_other").
func (m *Metrics) groupCounts(group string) (redeliveries []*kgatev1.ReasonCount, deadLetters int64) {
	if m == nil {
		return nil, 0
	}
	for _, v := range byLabels(m.redeliveries, "group", "reason") {
		if v.label == group && v.value > 0 {
			redeliveries = append(redeliveries, &kgatev1.ReasonCount{Reason: v.second, Count: int64(v.value)})
		}
	}
	for _, v := range byLabel(m.deadLetters, "group") {
		if v.label == group {
			deadLetters += int64(v.value)
		}
	}
	return redeliveries, deadLetters
}

type labelled struct {
	label  string
	second string
	value  float64
}

// byLabel reads a counter or gauge (vector) without the registry: each
// series' value by its label name, ordered by label.
func byLabel(c prometheus.Collector, name string) []labelled { return byLabels(c, name, "") }

// byLabels is byLabel that also gives a second label's value (second ""
// for none), ordered by both.
func byLabels(c prometheus.Collector, name, second string) []labelled {
	ch := make(chan prometheus.Metric, 16)
	go func() { c.Collect(ch); close(ch) }()
	var out []labelled
	for m := range ch {
		var d dto.Metric
		if m.Write(&d) != nil {
			continue
		}
		v := d.GetCounter().GetValue() + d.GetGauge().GetValue()
		var l, l2 string
		for _, lp := range d.GetLabel() {
			switch lp.GetName() {
			case name:
				l = lp.GetValue()
			case second:
				l2 = lp.GetValue()
			}
		}
		out = append(out, labelled{label: l, second: l2, value: v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].label != out[j].label {
			return out[i].label < out[j].label
		}
		return out[i].second < out[j].second
	})
	return out
}
