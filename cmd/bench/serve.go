package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/gctune"
	"github.com/kgate/kgate/kafkaio"
	"github.com/kgate/kgate/server"
)

// noopPublisher answers kgate.v1.Publisher calls at once, with the same
// request and response shapes as the gateway.
type noopPublisher struct {
	kgatev1.UnimplementedPublisherServer
	offset atomic.Int64
}

func (n *noopPublisher) result() *kgatev1.PublishResult {
	return &kgatev1.PublishResult{Offset: n.offset.Add(1), Timestamp: timestamppb.Now()}
}

func (n *noopPublisher) Publish(_ context.Context, req *kgatev1.PublishRequest) (*kgatev1.PublishResponse, error) {
	resp := &kgatev1.PublishResponse{Results: make([]*kgatev1.PublishResult, len(req.GetMessages()))}
	for i := range resp.Results {
		resp.Results[i] = n.result()
	}
	return resp, nil
}

func (n *noopPublisher) PublishStream(st kgatev1.Publisher_PublishStreamServer) error {
	for {
		req, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := st.Send(&kgatev1.PublishStreamResponse{CorrelationId: req.GetCorrelationId(), Outcome: &kgatev1.MessageOutcome{Result: n.result()}}); err != nil {
			return err
		}
	}
}

// serveNoop is the --noop-server child: a bare gRPC server (no
// interceptors) with the no-op Publisher. It prints "NOOP <addr>" when
// ready and stops on SIGTERM.
func serveNoop() error {
	s := grpc.NewServer()
	kgatev1.RegisterPublisherServer(s, &noopPublisher{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("NOOP %s\n", lis.Addr())
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		s.Stop()
	}()
	return s.Serve(lis)
}

// serveGateway is the --serve-gateway child: the gateway wired in this
// process as cmd/gateway wires it (producer, subscriber service, health,
// gRPC server with its interceptors, the garbage collector's headroom,
// text logs at info on stderr), so that
// runtime/pprof can profile it. It prints "GATEWAY <addr>" when ready and
// stops on SIGTERM, writing the CPU profile first.
func serveGateway(brokers string, props map[string]string, maxInflight int64, cpuprofile string) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// The garbage collector as cmd/gateway sets it.
	defer gctune.KeepHeadroom(gctune.GatewayHeadroom)()
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		}()
	}
	prod, err := kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: brokers, Kafka: props, MaxInflightBytes: maxInflight, Logger: log})
	if err != nil {
		return err
	}
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	metrics := server.NewMetrics(prod)
	ksub, err := kafkaio.NewSubscriber(kafkaio.SubscriberConfig{Brokers: brokers, Kafka: props, DeadLetter: prod, Logger: log, Observer: metrics})
	if err != nil {
		return err
	}
	subs := server.NewSubscriberService(server.KafkaSubscriber(ksub), log, metrics)
	pubs := server.NewPublisherService(prod, metrics)
	gs := server.NewGRPCServer(server.Config{Publisher: pubs, Subscriber: subs, Health: hs, Logger: log, Metrics: metrics}, server.ServerOptions(server.Limits{})...)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		prod.Close(context.Background())
		return err
	}
	log.Info("kgate listening", "grpc", lis.Addr().String(), "brokers", brokers)
	fmt.Printf("GATEWAY %s\n", lis.Addr())
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
	case err = <-served:
	}
	hs.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	ksub.Close(ctx)
	subs.Shutdown()
	pubs.Shutdown()
	prod.Close(ctx)
	gs.Stop()
	subs.Wait()
	pubs.Wait()
	return err
}
