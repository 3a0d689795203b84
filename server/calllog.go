package server

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// callLog is the first interceptor of every call: it gives the call its
// request id and logs one line when the call finished, at the level of
// codeToLevel. Payloads are never logged.
//
// It is ours rather than go-grpc-middleware's logging interceptor because
// that one builds its fields for every call even when the line is not
// logged, which cost the gateway 15% of its CPU under unary load; this one
// does nothing beyond a level check for a line that is not logged.
type callLog struct{ log *slog.Logger }

func (l callLog) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	ctx = withRequestID(ctx)
	resp, err := handler(ctx, req)
	l.finished(ctx, info.FullMethod, start, err)
	return resp, err
}

func (l callLog) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	ctx := withRequestID(ss.Context())
	err := handler(srv, &ctxStream{ServerStream: ss, ctx: ctx})
	l.finished(ctx, info.FullMethod, start, err)
	return err
}

func (l callLog) finished(ctx context.Context, fullMethod string, start time.Time, err error) {
	code := status.Code(err)
	lvl := codeToLevel(code)
	if !l.log.Enabled(ctx, lvl) {
		return
	}
	service, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs,
		slog.String("grpc.service", service),
		slog.String("grpc.method", method),
		slog.String("grpc.code", code.String()),
		slog.Float64("grpc.time_ms", float64(time.Since(start).Microseconds())/1000),
		slog.String("request_id", RequestID(ctx)),
		slog.String("principal", callPrincipal(ctx)))
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
	l.log.LogAttrs(ctx, lvl, "finished call", attrs...)
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
