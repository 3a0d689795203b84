package server

import (
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

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
// reflection (with the proto's comments), and one interceptor (calls) for
// request ids, the standard gRPC metrics, call logs, stream bounds and
// panic recovery. A panic in a handler is logged with its stack and
// answered with a generic INTERNAL error: no stack trace reaches the
// client.
//
// Before a call's request is read, its tap (grpc-go's InTapHandle, run on
// the connection's reader) authenticates it and, for unary Publish, refuses
// it while the publisher is full. Calls no tap saw (transports without
// taps) are authenticated by the interceptor.
func NewGRPCServer(cfg Config, opts ...grpc.ServerOption) *grpc.Server {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "grpc")
	c := &calls{log: log, auth: cfg.Auth, streams: newStreamCounter(cfg.Streams)}
	if cfg.Metrics != nil {
		c.rpc = cfg.Metrics.rpc
	}
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
		grpc.UnaryInterceptor(c.unary),
		grpc.StreamInterceptor(c.stream),
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
	if c.rpc != nil {
		c.methods = c.rpc.methodsOf(s)
	}
	return s
}
