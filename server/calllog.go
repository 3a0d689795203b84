package server

import (
	"context"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// calls is the server's one interceptor, for unary calls and streams
// alike. For each call, in order, it:
//
//   - gives the call its request id (callInfo, in the call's context) and
//     returns it in the response header;
//   - counts it in the standard gRPC series (rpcMetrics): started,
//     messages received and sent, handled by code, handling time;
//   - authenticates it when no tap did (a transport that runs no taps);
//   - for streams, applies StreamLimits;
//   - recovers a panic of the handler: the stack goes to the log, the
//     client gets a generic INTERNAL;
//   - logs one line when the call finished, at the level of codeToLevel.
//
// It is one interceptor rather than a chain of six because each link of a
// chain costs a call and a closure per RPC, and the third-party ones did
// more: go-grpc-middleware's logging built its fields for every call even
// when the line was not logged (15% of the gateway's CPU under unary
// load), its Prometheus provider looked up and hashed five label sets per
// call. This one does nothing beyond a level check for a line that is not
// logged, and finds a method's series with one map read. Payloads are
// never logged.
type calls struct {
	log     *slog.Logger
	auth    *Auth
	streams *streamCounter // nil: no bounds
	rpc     *rpcMetrics    // nil: no metrics
	// methods holds every registered method's series; set by NewGRPCServer
	// after registering the services and before serving, read-only after.
	methods map[string]*methodSeries
}

// seriesOf returns fullMethod's series, or nil without metrics.
func (c *calls) seriesOf(fullMethod string, clientStream, serverStream bool) *methodSeries {
	if c.rpc == nil {
		return nil
	}
	if s, ok := c.methods[fullMethod]; ok {
		return s
	}
	// Not registered when the server was built: resolved per call.
	return c.rpc.series(fullMethod, rpcType(clientStream, serverStream))
}

func (c *calls) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	start := time.Now()
	ctx, ci := withRequestID(ctx)
	ms := c.seriesOf(info.FullMethod, false, false)
	if ms != nil {
		ms.started.Inc()
		ms.received.Inc()
	}
	resp, err = c.serveUnary(ctx, ci, req, info, handler)
	elapsed := time.Since(start)
	code := status.Code(err)
	if ms != nil {
		if err == nil {
			ms.sent.Inc()
		}
		ms.handledAs(code).Inc()
		ms.seconds.Observe(elapsed.Seconds())
	}
	c.finished(ctx, ci, info.FullMethod, elapsed, code, err)
	return resp, err
}

// serveUnary authenticates the call if no tap did, and runs the handler,
// recovering its panic.
func (c *calls) serveUnary(ctx context.Context, ci *callInfo, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			resp, err = nil, c.recovered(ctx, p)
		}
	}()
	if c.auth != nil && !identified(ctx) && !exempt(info.FullMethod) {
		who, err := c.auth.authenticate(ctx)
		if err != nil {
			return nil, err
		}
		ci.principal = who
		ctx = withPrincipal(ctx, who)
	}
	return handler(ctx, req)
}

func (c *calls) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	ctx, ci := withRequestID(ss.Context())
	ms := c.seriesOf(info.FullMethod, info.IsClientStream, info.IsServerStream)
	if ms != nil {
		ms.started.Inc()
	}
	err := c.serveStream(ctx, ci, srv, &callStream{ServerStream: ss, ctx: ctx, series: ms}, info, handler)
	elapsed := time.Since(start)
	code := status.Code(err)
	if ms != nil {
		ms.handledAs(code).Inc()
		ms.seconds.Observe(elapsed.Seconds())
	}
	c.finished(ctx, ci, info.FullMethod, elapsed, code, err)
	return err
}

// serveStream authenticates the stream if no tap did, applies the stream
// bounds, and runs the handler, recovering its panic.
func (c *calls) serveStream(ctx context.Context, ci *callInfo, srv any, cs *callStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = c.recovered(ctx, p)
		}
	}()
	if c.auth != nil && !identified(ctx) && !exempt(info.FullMethod) {
		who, err := c.auth.authenticate(ctx)
		if err != nil {
			return err
		}
		ci.principal = who
		cs.ctx = withPrincipal(ctx, who)
	}
	if c.streams != nil {
		release, err := c.streams.acquireFor(info.FullMethod, Principal(cs.ctx))
		if err != nil {
			return err
		}
		defer release()
	}
	return handler(srv, cs)
}

// recovered logs a handler's panic with its stack and returns what the
// client gets: a generic INTERNAL, nothing of the panic.
func (c *calls) recovered(ctx context.Context, p any) error {
	c.log.ErrorContext(ctx, "panic in a gRPC handler; this is a bug", "panic", p, "stack", string(debug.Stack()))
	return status.Error(codes.Internal, "internal error; see the gateway's log")
}

// callStream is a ServerStream with the call's context, counting the
// messages it receives and sends in the method's series.
type callStream struct {
	grpc.ServerStream
	ctx    context.Context
	series *methodSeries // nil: not counted
}

func (s *callStream) Context() context.Context { return s.ctx }

func (s *callStream) SendMsg(m any) error {
	err := s.ServerStream.SendMsg(m)
	if err == nil && s.series != nil {
		s.series.sent.Inc()
	}
	return err
}

func (s *callStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if err == nil && s.series != nil {
		s.series.received.Inc()
	}
	return err
}

// finished logs the call's line, if its level is enabled.
func (c *calls) finished(ctx context.Context, ci *callInfo, fullMethod string, elapsed time.Duration, code codes.Code, err error) {
	lvl := codeToLevel(code)
	if !c.log.Enabled(ctx, lvl) {
		return
	}
	service, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	who := ci.principal
	if who == "" {
		who = Principal(ctx)
	}
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs,
		slog.String("grpc.service", service),
		slog.String("grpc.method", method),
		slog.String("grpc.code", code.String()),
		slog.Float64("grpc.time_ms", float64(elapsed.Microseconds())/1000),
		slog.String("request_id", ci.requestID),
		slog.String("principal", who))
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		attrs = append(attrs, slog.String("peer.address", p.Addr.String()))
	}
	if err != nil {
		msg := status.Convert(err).Message()
		if len(msg) > maxLoggedError {
			msg = msg[:maxLoggedError] + "… (cut)"
		}
		attrs = append(attrs, slog.String("grpc.error", msg))
	}
	c.log.LogAttrs(ctx, lvl, "finished call", attrs...)
}

// maxLoggedError bounds the error message of a call log line. Messages
// quote client-supplied names cut to 256 bytes already; this bounds what
// else a message might carry.
const maxLoggedError = 1024

// codeToLevel is the log level of a finished call by its status code:
// successful and cancelled calls at debug (at info they would cost a
// quarter of the gateway's CPU under load), and so are refusals for
// capacity, which come by the thousand exactly when the gateway is busiest
// (kgate_publish_rejections_total counts them); client errors at info,
// unavailability at warn, server-side failures at error.
func codeToLevel(c codes.Code) slog.Level {
	switch c {
	case codes.OK, codes.Canceled, codes.ResourceExhausted:
		return slog.LevelDebug
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.Unauthenticated, codes.PermissionDenied,
		codes.FailedPrecondition, codes.OutOfRange, codes.DeadlineExceeded:
		return slog.LevelInfo
	case codes.Unavailable, codes.Aborted:
		return slog.LevelWarn
	}
	return slog.LevelError
}
