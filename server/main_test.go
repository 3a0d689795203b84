package server_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/gatewaytest"
	"github.com/kgate/kgate/internal/kafkatest"
	"github.com/kgate/kgate/kafkaio"
	"github.com/kgate/kgate/server"
)

func TestMain(m *testing.M) { kafkatest.Main(m) }

// timeoutScale stretches waits under the race detector.
const timeoutScale = gatewaytest.TimeoutScale

// gateway is a kgate gRPC server over TCP on 127.0.0.1 in front of brokers,
// with a client connection to it.
type gateway struct {
	addr    string
	conn    *grpc.ClientConn
	prod    *kafkaio.Producer
	health  *health.Server
	pub     kgatev1.PublisherClient
	sub     kgatev1.SubscriberClient
	subs    *server.SubscriberService
	ksub    *kafkaio.Subscriber
	brokers string
	// pubsShutdown shuts the Publisher service down (PublishStream ends).
	pubsShutdown func()
	metrics      *server.Metrics
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})).With("test", t.Name())
}

// startGateway starts a gateway for the test; everything it started is
// stopped, and waited for, when the test ends.
// subOpts adjust the subscriber settings (by default: the producer's
// brokers, a 200 ms commit interval, and consumer session timeouts kfake
// accepts).
func startGateway(t testing.TB, cfg kafkaio.ProducerConfig, subOpts ...func(*kafkaio.SubscriberConfig)) *gateway {
	t.Helper()
	return startGatewayWith(t, cfg, security{}, subOpts...)
}

// security is what a test gateway authenticates with: Auth, server options
// (TLS credentials, limits) and the client's dial options (defaults to
// plaintext).
type security struct {
	auth     *server.Auth
	streams  server.StreamLimits
	listener func(net.Listener, *server.Metrics) net.Listener
	// maxPublishMessages bounds a Publish request (zero: the default).
	maxPublishMessages int
	metrics            []server.MetricsOption
	serverOpts         []grpc.ServerOption
	dialOpts           []grpc.DialOption
}

func startGatewayWith(t testing.TB, cfg kafkaio.ProducerConfig, sec security, subOpts ...func(*kafkaio.SubscriberConfig)) *gateway {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	g := gatewaytest.Start(t, gatewaytest.Options{Producer: cfg, Subscriber: subOpts, Auth: sec.auth,
		Streams: sec.streams, Listener: sec.listener, MaxPublishMessages: sec.maxPublishMessages, Metrics: sec.metrics, ServerOptions: sec.serverOpts, DialOptions: sec.dialOpts})
	return &gateway{addr: g.Addr, conn: g.Conn, prod: g.Producer, health: g.Health, pub: g.Pub, sub: g.Sub, subs: g.Subscribers, ksub: g.Subscriber,
		brokers: cfg.Brokers, pubsShutdown: g.Publishers.Shutdown, metrics: g.Metrics}
}

func testContext(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d*timeoutScale)
	t.Cleanup(cancel)
	return ctx
}
