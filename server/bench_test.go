package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/timestamppb"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/kafkaio"
)

// instantPublisher acknowledges every message at once, so that a benchmark
// measures only the service's own work: proto to kafkaio conversion,
// validation, and building the response.
type instantPublisher struct{}

func (instantPublisher) Publish(_ context.Context, _ string, msgs []kafkaio.Message) ([]kafkaio.Result, error) {
	rs := make([]kafkaio.Result, len(msgs))
	now := time.Now()
	for i := range rs {
		rs[i] = kafkaio.Result{Partition: int32(i % 3), Offset: int64(i), Timestamp: now}
	}
	return rs, nil
}

func (instantPublisher) PublishAsync(_ context.Context, _ string, _ kafkaio.Message, done func(kafkaio.Result)) error {
	done(kafkaio.Result{Timestamp: time.Now()})
	return nil
}

// failingPublisher writes the first half of each request and refuses the
// rest for capacity, exercising the partial-failure details.
type failingPublisher struct{ instantPublisher }

func (f failingPublisher) Publish(ctx context.Context, topic string, msgs []kafkaio.Message) ([]kafkaio.Result, error) {
	rs, _ := f.instantPublisher.Publish(ctx, topic, msgs)
	for i := len(rs) / 2; i < len(rs); i++ {
		rs[i] = kafkaio.Result{Err: &kafkaio.Error{Kind: kafkaio.KindExhausted, Reason: kafkaio.ReasonQueueFull, Message: "queue full", RetryAfter: 100 * time.Millisecond}}
	}
	return rs, nil
}

func benchRequest(n, size int, rich bool) *kgatev1.PublishRequest {
	req := &kgatev1.PublishRequest{Topic: "bench-topic"}
	value := make([]byte, size)
	ts := timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	for i := range n {
		m := &kgatev1.Message{Value: value}
		if rich {
			p := int32(i % 3)
			m.Key = []byte(fmt.Sprintf("key-%d", i))
			m.Partition = &p
			m.Timestamp = ts
			m.Headers = []*kgatev1.Header{{Key: "trace-id", Value: []byte("0af7651916cd43dd8448eb211c80319c")}, {Key: "source", Value: []byte("bench")}}
		}
		req.Messages = append(req.Messages, m)
	}
	return req
}

// BenchmarkPublishConvert measures PublishService.Publish without Kafka:
// converting the request to kafkaio messages and the results back to a
// response (or to a status with PublishFailure details), with metrics off.
func BenchmarkPublishConvert(b *testing.B) {
	for _, bc := range []struct {
		name string
		pub  Publisher
		req  *kgatev1.PublishRequest
	}{
		{"1msg-100B", instantPublisher{}, benchRequest(1, 100, false)},
		{"1msg-100B-key-headers-ts", instantPublisher{}, benchRequest(1, 100, true)},
		{"10msgs-100B", instantPublisher{}, benchRequest(10, 100, false)},
		{"100msgs-100B-key-headers-ts", instantPublisher{}, benchRequest(100, 100, true)},
		{"10msgs-half-failed", failingPublisher{}, benchRequest(10, 100, false)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := NewPublisherService(bc.pub, nil)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				resp, err := s.Publish(ctx, bc.req)
				if resp == nil && err == nil {
					b.Fatal("no response and no error")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(bc.req.Messages)), "ns/msg")
		})
	}
}

// BenchmarkPublishResult measures building one PublishResult (with its
// timestamp), done once per acknowledged message.
func BenchmarkPublishResult(b *testing.B) {
	r := &kafkaio.Result{Partition: 2, Offset: 123456, Timestamp: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		benchSink = publishResult(r)
	}
}

var benchSink *kgatev1.PublishResult

// noopPublisherServer is a bare kgate.v1.Publisher, as cmd/bench's no-op
// server answers: the floor of BenchmarkUnaryCall.
type noopPublisherServer struct {
	kgatev1.UnimplementedPublisherServer
}

func (noopPublisherServer) Publish(_ context.Context, req *kgatev1.PublishRequest) (*kgatev1.PublishResponse, error) {
	resp := &kgatev1.PublishResponse{Results: make([]*kgatev1.PublishResult, len(req.GetMessages()))}
	for i := range resp.Results {
		resp.Results[i] = &kgatev1.PublishResult{Offset: int64(i), Timestamp: timestamppb.Now()}
	}
	return resp, nil
}

// BenchmarkUnaryCall measures one unary Publish of one 100-byte message
// through gRPC over an in-memory connection, client included: against a
// bare default grpc-go server with an empty handler (bare), and against
// kgate's server (taps, codec, interceptors, metrics) in front of a
// publisher that acknowledges at once (kgate). The difference in
// allocations and time is what kgate's server adds to a call.
func BenchmarkUnaryCall(b *testing.B) {
	for _, bc := range []struct {
		name  string
		serve func() *grpc.Server
	}{
		{"bare", func() *grpc.Server {
			s := grpc.NewServer()
			kgatev1.RegisterPublisherServer(s, noopPublisherServer{})
			return s
		}},
		{"kgate", func() *grpc.Server {
			m := NewMetrics(nil)
			return NewGRPCServer(Config{Publisher: NewPublisherService(instantPublisher{}, m), Health: health.NewServer(),
				Logger: slog.New(slog.DiscardHandler), Metrics: m}, ServerOptions(Limits{})...)
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			lis := bufconn.Listen(1 << 20)
			s := bc.serve()
			go func() { _ = s.Serve(lis) }()
			defer s.Stop()
			cc, err := grpc.NewClient("passthrough:///bufconn", grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
			if err != nil {
				b.Fatal(err)
			}
			defer cc.Close()
			client := kgatev1.NewPublisherClient(cc)
			req := benchRequest(1, 100, false)
			ctx := context.Background()
			if _, err := client.Publish(ctx, req); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := client.Publish(ctx, req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
