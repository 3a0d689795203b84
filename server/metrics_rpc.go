package server

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// rpcMetrics are the standard gRPC server series, with the names, labels
// and meaning go-grpc-middleware's Prometheus provider gives them
// (grpc_server_started_total, grpc_server_handled_total{grpc_code},
// grpc_server_msg_received_total, grpc_server_msg_sent_total and the
// grpc_server_handling_seconds histogram, each by grpc_type, grpc_service
// and grpc_method), so that dashboards built for it keep working.
//
// They are kgate's own so that a call costs no label lookup: every
// method's series are resolved once, when the server is built (methodsOf),
// and a call finds them with one map read. The provider resolved five
// label sets per unary call and two per stream message, and hashed each.
type rpcMetrics struct {
	started, handled, received, sent *prometheus.CounterVec
	seconds                          *prometheus.HistogramVec
}

func newRPCMetrics() *rpcMetrics {
	labels := []string{"grpc_type", "grpc_service", "grpc_method"}
	return &rpcMetrics{
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_started_total", Help: "Total number of RPCs started on the server.",
		}, labels),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_handled_total", Help: "Total number of RPCs completed on the server, regardless of success or failure.",
		}, append(labels, "grpc_code")),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_msg_received_total", Help: "Total number of RPC stream messages received on the server.",
		}, labels),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_msg_sent_total", Help: "Total number of gRPC stream messages sent by the server.",
		}, labels),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "grpc_server_handling_seconds", Help: "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
		}, labels),
	}
}

func (m *rpcMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.started, m.handled, m.received, m.sent, m.seconds}
}

// numCodes is the number of gRPC status codes, OK to Unauthenticated.
const numCodes = int(codes.Unauthenticated) + 1

// methodSeries are one method's series.
type methodSeries struct {
	started, received, sent prometheus.Counter
	handled                 [numCodes]prometheus.Counter
	seconds                 prometheus.Observer
}

// series resolves the series of fullMethod, of type typ ("unary",
// "client_stream", "server_stream" or "bidi_stream"), creating them with
// their zero values.
func (m *rpcMetrics) series(fullMethod, typ string) *methodSeries {
	service, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	s := &methodSeries{
		started:  m.started.WithLabelValues(typ, service, method),
		received: m.received.WithLabelValues(typ, service, method),
		sent:     m.sent.WithLabelValues(typ, service, method),
		seconds:  m.seconds.WithLabelValues(typ, service, method),
	}
	for c := range s.handled {
		s.handled[c] = m.handled.WithLabelValues(typ, service, method, codes.Code(c).String())
	}
	return s
}

// methodsOf resolves the series of every method registered on s.
func (m *rpcMetrics) methodsOf(s *grpc.Server) map[string]*methodSeries {
	out := map[string]*methodSeries{}
	for service, info := range s.GetServiceInfo() {
		for _, mi := range info.Methods {
			full := "/" + service + "/" + mi.Name
			out[full] = m.series(full, rpcType(mi.IsClientStream, mi.IsServerStream))
		}
	}
	return out
}

func rpcType(clientStream, serverStream bool) string {
	switch {
	case clientStream && serverStream:
		return "bidi_stream"
	case clientStream:
		return "client_stream"
	case serverStream:
		return "server_stream"
	}
	return "unary"
}

// handledAs returns the handled counter of code c.
func (s *methodSeries) handledAs(c codes.Code) prometheus.Counter {
	if int(c) < len(s.handled) {
		return s.handled[c]
	}
	return s.handled[codes.Unknown]
}
