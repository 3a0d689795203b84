package server

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/kgate/kgate/kafkaio"
)

// tapChain runs taps in order as one gRPC InTapHandle (grpc-go takes only
// one): the first error refuses the call; each tap sees the context the
// previous one returned.
func tapChain(taps ...tap.ServerInHandle) tap.ServerInHandle {
	return func(ctx context.Context, info *tap.Info) (context.Context, error) {
		for _, t := range taps {
			var err error
			if ctx, err = t(ctx, info); err != nil {
				return ctx, err
			}
		}
		return ctx, nil
	}
}

// authTap authenticates each call in the gRPC server's InTapHandle, before
// its request is read and before any handler, interceptor or goroutine
// runs for it: a call without a valid identity costs the gateway its
// headers only, whatever the size of its request. The caller's principal
// goes into the call's context. Health and reflection calls are never
// refused; they carry a principal when they have one.
//
// Refusals are counted (kgate_unauthenticated_calls_total) and summed up
// in one warning a minute at most, not logged one by one: a flood of them
// must not flood the log.
type authTap struct {
	auth    *Auth
	metrics *Metrics
	log     *slog.Logger

	refused everyMinute
}

func (t *authTap) handle(ctx context.Context, info *tap.Info) (context.Context, error) {
	if t.auth == nil {
		return ctx, nil
	}
	who, err := t.auth.authenticate(ctx)
	if exempt(info.FullMethodName) {
		if err == nil {
			ctx = withPrincipal(ctx, who)
		}
		return ctx, nil
	}
	if err != nil {
		t.refuse(ctx, info.FullMethodName, err)
		return ctx, err
	}
	return withPrincipal(ctx, who), nil
}

func (t *authTap) refuse(ctx context.Context, method string, err error) {
	reason := reasonOf(err)
	t.metrics.unauthenticated(reason)
	n, due := t.refused.add(time.Now())
	if !due {
		return
	}
	attrs := []any{"calls", n, "last_reason", reason, "last_method", kafkaio.QuoteName(method)}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		attrs = append(attrs, "last_peer", p.Addr.String())
	}
	t.log.Warn("refused calls without a valid identity (UNAUTHENTICATED); further ones are summed up here at most once a minute", attrs...)
}

// reasonOf is the ErrorInfo reason of a status error, or "".
func reasonOf(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.Reason
		}
	}
	return ""
}
