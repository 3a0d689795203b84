package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/kgate/kgate/kafkaio"
)

// errorDomain is the google.rpc.ErrorInfo domain of kgate's errors.
const errorDomain = "kgate.v1"

var kindCodes = map[kafkaio.Kind]codes.Code{
	kafkaio.KindInternal:       codes.Internal,
	kafkaio.KindInvalid:        codes.InvalidArgument,
	kafkaio.KindNotFound:       codes.NotFound,
	kafkaio.KindPermission:     codes.PermissionDenied,
	kafkaio.KindExhausted:      codes.ResourceExhausted,
	kafkaio.KindUnavailable:    codes.Unavailable,
	kafkaio.KindUnknownOutcome: codes.Unknown,
	kafkaio.KindConflict:       codes.FailedPrecondition,
	kafkaio.KindAborted:        codes.Aborted,
}

// codeOf maps an error to the gRPC code a client sees.
func codeOf(err error) codes.Code {
	switch {
	case err == nil:
		return codes.OK
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	}
	var ke *kafkaio.Error
	if errors.As(err, &ke) {
		if c, ok := kindCodes[ke.Kind]; ok {
			return c
		}
	}
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	return codes.Internal
}

// toStatus turns err into the status a client sees, with
// google.rpc.ErrorInfo (the reason) and, for RESOURCE_EXHAUSTED,
// google.rpc.RetryInfo (how long to wait). Errors that are not kgate's own
// give a generic INTERNAL message, so that no internals leak to clients.
// extra details are appended after those.
func toStatus(err error, extra ...protoadapt.MessageV1) error {
	if err == nil {
		return nil
	}
	var ke *kafkaio.Error
	isKE := errors.As(err, &ke)
	if _, ok := status.FromError(err); ok && !isKE {
		return err
	}
	code := codeOf(err)
	msg := "internal error; see the gateway's log"
	switch {
	case isKE:
		msg = ke.Message
	case code == codes.DeadlineExceeded:
		msg = context.DeadlineExceeded.Error()
	case code == codes.Canceled:
		msg = context.Canceled.Error()
	}
	st := status.New(code, msg)
	var details []protoadapt.MessageV1
	if isKE && ke.Reason != "" {
		details = append(details, &errdetails.ErrorInfo{Reason: ke.Reason, Domain: errorDomain})
	}
	if code == codes.ResourceExhausted {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(retryDelay(ke))})
	}
	details = append(details, extra...)
	if len(details) > 0 {
		if withDetails, derr := st.WithDetails(details...); derr == nil {
			st = withDetails
		}
	}
	return st.Err()
}

// retryDelay is the delay a client should wait after e (which may be nil)
// refused it for capacity: e's RetryAfter, or 100 ms.
func retryDelay(e *kafkaio.Error) time.Duration {
	if e != nil && e.RetryAfter > 0 {
		return e.RetryAfter
	}
	return 100 * time.Millisecond
}

// invalidf is the INVALID_ARGUMENT status, with ErrorInfo reason, for input
// the server itself rejects.
func invalidf(reason, format string, args ...any) error {
	return toStatus(&kafkaio.Error{Kind: kafkaio.KindInvalid, Reason: reason, Message: fmt.Sprintf(format, args...)})
}
