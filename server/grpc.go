package server

import (
	"context"
	"log/slog"
	"runtime/debug"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
)

// Service names as registered, for health checks.
const (
	PublisherServiceName  = "kgate.v1.Publisher"
	SubscriberServiceName = "kgate.v1.Subscriber"
)

// Config configures NewGRPCServer.
type Config struct {
	// Publisher serves kgate.v1.Publisher. Required. The caller keeps it to
	// call Shutdown and Wait.
	Publisher *PublisherService
	// Subscriber serves kgate.v1.Subscriber when set. The caller keeps it
	// to call Shutdown and Wait.
	Subscriber *SubscriberService
	// Admin serves kgate.v1.Admin when set.
	Admin *AdminService
	// Health is registered as grpc.health.v1.Health. Required; its status
	// is set by WatchKafka and at shutdown.
	Health *health.Server
	// Logger receives one line per finished call. Default slog.Default().
	Logger *slog.Logger
	// Metrics, when set, gets the standard gRPC server metrics.
	Metrics *Metrics
	// Auth authenticates and authorizes calls; nil lets everyone do
	// everything.
	Auth *Auth
	// Streams bounds the open streams, per principal and gateway-wide.
	Streams StreamLimits
	// MaxPublishMessages bounds the messages of one Publish request; more
	// are INVALID_ARGUMENT, and cost no more to decode than that many.
	// Default DefaultMaxPublishMessages.
	MaxPublishMessages int
}

// NewGRPCServer returns a gRPC server with kgate's services, health, server
// reflection (with the proto's comments), and logging and panic-recovery
// interceptors. A panic in a
// handler is logged with its stack and answered with a generic INTERNAL
// error: no stack trace reaches the client.
//
// Before a call's request is read, its tap (grpc-go's InTapHandle, run on
// the connection's reader) authenticates it and, for unary Publish, refuses
// it while the publisher is full. Then the interceptors run, in order:
// request id and call log, gRPC metrics, authentication of calls no tap
// saw (transports without taps), stream bounds, panic recovery.
func NewGRPCServer(cfg Config, opts ...grpc.ServerOption) *grpc.Server {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "grpc")
	calls := callLog{log: log}
	recoverOpts := []recovery.Option{recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "panic in a gRPC handler; this is a bug", "panic", p, "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal error; see the gateway's log")
	})}
	unary := []grpc.UnaryServerInterceptor{calls.unary}
	stream := []grpc.StreamServerInterceptor{calls.stream}
	if cfg.Metrics != nil {
		unary = append(unary, cfg.Metrics.grpc.UnaryServerInterceptor())
		stream = append(stream, cfg.Metrics.grpc.StreamServerInterceptor())
	}
	unary = append(unary, cfg.Auth.unaryInterceptor, recovery.UnaryServerInterceptor(recoverOpts...))
	stream = append(stream, cfg.Auth.streamInterceptor, newStreamCounter(cfg.Streams).interceptor, recovery.StreamServerInterceptor(recoverOpts...))
	authenticate := &authTap{auth: cfg.Auth, metrics: cfg.Metrics, log: log}
	if cfg.MaxPublishMessages <= 0 {
		cfg.MaxPublishMessages = DefaultMaxPublishMessages
	}
	cfg.Publisher.maxMessages = cfg.MaxPublishMessages
	opts = append([]grpc.ServerOption{
		// Publish requests bounded while decoded, stream requests that do
		// not decode answered by their handlers (see requestCodec).
		codecOption(cfg.MaxPublishMessages),
		// Stop and GracefulStop return only after every handler returned,
		// so that a stopped server leaves no Subscribe stream behind.
		grpc.WaitForHandlers(true),
		grpc.InTapHandle(tapChain(authenticate.handle, cfg.Publisher.admit)),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	}, opts...)
	s := grpc.NewServer(opts...)
	cfg.Publisher.auth = cfg.Auth
	kgatev1.RegisterPublisherServer(s, cfg.Publisher)
	if cfg.Subscriber != nil {
		cfg.Subscriber.auth = cfg.Auth
		kgatev1.RegisterSubscriberServer(s, cfg.Subscriber)
	}
	if cfg.Admin != nil {
		cfg.Admin.auth = cfg.Auth
		kgatev1.RegisterAdminServer(s, cfg.Admin)
	}
	healthpb.RegisterHealthServer(s, cfg.Health)
	registerReflection(s, log)
	if cfg.Metrics != nil {
		cfg.Metrics.grpc.InitializeMetrics(s)
	}
	return s
}
