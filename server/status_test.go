package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/kgate/kgate/kafkaio"
)

const genericInternal = "internal error; see the gateway's log"

func TestEveryKindHasACode(t *testing.T) {
	want := map[kafkaio.Kind]codes.Code{
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
	// Every Kind kafkaio names (its String is not the "Kind(n)" fallback)
	// must be mapped on purpose, not fall through to INTERNAL.
	for k := kafkaio.Kind(0); !strings.HasPrefix(k.String(), "Kind("); k++ {
		c, ok := want[k]
		if !ok {
			t.Errorf("kafkaio.Kind %d (%s) is new: give it a gRPC code in kindCodes and in this test", int(k), k)
			continue
		}
		if got := codeOf(&kafkaio.Error{Kind: k, Reason: "R", Message: "m"}); got != c {
			t.Errorf("Kind %s: code %v, want %v", k, got, c)
		}
	}
}

func TestToStatus(t *testing.T) {
	exhausted := func(retry time.Duration) *kafkaio.Error {
		return &kafkaio.Error{Kind: kafkaio.KindExhausted, Reason: kafkaio.ReasonQueueFull, Message: "queue full; retry", RetryAfter: retry}
	}
	info := func(reason string) protoadapt.MessageV1 {
		return &errdetails.ErrorInfo{Reason: reason, Domain: "kgate.v1"}
	}
	retry := func(d time.Duration) protoadapt.MessageV1 {
		return &errdetails.RetryInfo{RetryDelay: durationpb.New(d)}
	}
	ctxErr := func(cause error) *kafkaio.Error {
		return &kafkaio.Error{Kind: kafkaio.KindUnknownOutcome, Reason: kafkaio.ReasonOutcomeUnknown,
			Message: "publish: " + cause.Error() + "; the outcome is unknown", Cause: cause}
	}
	for i, tc := range []struct {
		err         error
		extra       []protoadapt.MessageV1
		wantCode    codes.Code
		wantMsg     string
		wantDetails []protoadapt.MessageV1
	}{
		0: {err: &kafkaio.Error{Kind: kafkaio.KindInternal, Reason: "FATAL_PRODUCER_ERROR", Message: "producer failed"},
			wantCode: codes.Internal, wantMsg: "producer failed", wantDetails: []protoadapt.MessageV1{info("FATAL_PRODUCER_ERROR")}},
		1: {err: &kafkaio.Error{Kind: kafkaio.KindInvalid, Reason: kafkaio.ReasonInvalidTopic, Message: "bad topic"},
			wantCode: codes.InvalidArgument, wantMsg: "bad topic", wantDetails: []protoadapt.MessageV1{info("INVALID_TOPIC")}},
		2: {err: &kafkaio.Error{Kind: kafkaio.KindNotFound, Reason: "UNKNOWN_TOPIC_OR_PARTITION", Message: "no such topic"},
			wantCode: codes.NotFound, wantMsg: "no such topic", wantDetails: []protoadapt.MessageV1{info("UNKNOWN_TOPIC_OR_PARTITION")}},
		3: {err: &kafkaio.Error{Kind: kafkaio.KindPermission, Reason: "TOPIC_AUTHORIZATION_FAILED", Message: "not allowed"},
			wantCode: codes.PermissionDenied, wantMsg: "not allowed", wantDetails: []protoadapt.MessageV1{info("TOPIC_AUTHORIZATION_FAILED")}},
		4: {err: exhausted(250 * time.Millisecond),
			wantCode: codes.ResourceExhausted, wantMsg: "queue full; retry",
			wantDetails: []protoadapt.MessageV1{info("PRODUCER_QUEUE_FULL"), retry(250 * time.Millisecond)}},
		5: {err: exhausted(0),
			wantCode: codes.ResourceExhausted, wantMsg: "queue full; retry",
			wantDetails: []protoadapt.MessageV1{info("PRODUCER_QUEUE_FULL"), retry(100 * time.Millisecond)}},
		6: {err: &kafkaio.Error{Kind: kafkaio.KindUnavailable, Reason: "MESSAGE_TIMED_OUT", Message: "not acknowledged"},
			wantCode: codes.Unavailable, wantMsg: "not acknowledged", wantDetails: []protoadapt.MessageV1{info("MESSAGE_TIMED_OUT")}},
		7: {err: &kafkaio.Error{Kind: kafkaio.KindUnknownOutcome, Reason: kafkaio.ReasonOutcomeUnknown, Message: "outcome unknown"},
			wantCode: codes.Unknown, wantMsg: "outcome unknown", wantDetails: []protoadapt.MessageV1{info("OUTCOME_UNKNOWN")}},
		8: {err: &kafkaio.Error{Kind: kafkaio.KindUnavailable, Message: "no reason"},
			wantCode: codes.Unavailable, wantMsg: "no reason"},
		9: {err: &kafkaio.Error{Kind: kafkaio.Kind(99), Reason: "ODD", Message: "odd kind"},
			wantCode: codes.Internal, wantMsg: "odd kind", wantDetails: []protoadapt.MessageV1{info("ODD")}},

		// Context errors, bare and as the cause of a kgate error.
		10: {err: context.DeadlineExceeded, wantCode: codes.DeadlineExceeded, wantMsg: "context deadline exceeded"},
		11: {err: context.Canceled, wantCode: codes.Canceled, wantMsg: "context canceled"},
		12: {err: ctxErr(context.DeadlineExceeded), wantCode: codes.DeadlineExceeded,
			wantMsg: "publish: context deadline exceeded; the outcome is unknown", wantDetails: []protoadapt.MessageV1{info("OUTCOME_UNKNOWN")}},
		13: {err: ctxErr(context.Canceled), wantCode: codes.Canceled,
			wantMsg: "publish: context canceled; the outcome is unknown", wantDetails: []protoadapt.MessageV1{info("OUTCOME_UNKNOWN")}},

		// Errors that are not kgate's: nothing of their text reaches the client.
		14: {err: errors.New("dial tcp 10.1.2.3:9092: password=hunter2"), wantCode: codes.Internal, wantMsg: genericInternal},
		15: {err: fmt.Errorf("wrapped: %w", errors.New("secret")), wantCode: codes.Internal, wantMsg: genericInternal},

		// A kgate error wrapped by another layer keeps its own code and message.
		16: {err: fmt.Errorf("layer: %w", exhausted(time.Second)), wantCode: codes.ResourceExhausted, wantMsg: "queue full; retry",
			wantDetails: []protoadapt.MessageV1{info("PRODUCER_QUEUE_FULL"), retry(time.Second)}},

		// Extra details follow kgate's own.
		17: {err: exhausted(0), extra: []protoadapt.MessageV1{&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{Subject: "s"}}}},
			wantCode: codes.ResourceExhausted, wantMsg: "queue full; retry",
			wantDetails: []protoadapt.MessageV1{info("PRODUCER_QUEUE_FULL"), retry(100 * time.Millisecond),
				&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{Subject: "s"}}}}},
	} {
		got := toStatus(tc.err, tc.extra...)
		if c := codeOf(tc.err); c != tc.wantCode {
			t.Errorf("case %d: codeOf = %v, want %v", i, c, tc.wantCode)
		}
		st, ok := status.FromError(got)
		if !ok {
			t.Errorf("case %d: toStatus gave %T %v, not a status", i, got, got)
			continue
		}
		if st.Code() != tc.wantCode || st.Message() != tc.wantMsg {
			t.Errorf("case %d: %v %q, want %v %q", i, st.Code(), st.Message(), tc.wantCode, tc.wantMsg)
		}
		details := st.Details()
		if len(details) != len(tc.wantDetails) {
			t.Errorf("case %d: details %v, want %v", i, details, tc.wantDetails)
			continue
		}
		for j, d := range details {
			m, ok := d.(proto.Message)
			if !ok || !proto.Equal(m, protoadapt.MessageV2Of(tc.wantDetails[j])) {
				t.Errorf("case %d: detail %d is %v, want %v", i, j, d, tc.wantDetails[j])
			}
		}
	}
}

func TestToStatusPassesStatusErrorsThrough(t *testing.T) {
	withDetails, err := status.New(codes.FailedPrecondition, "precondition").WithDetails(&errdetails.ErrorInfo{Reason: "MINE"})
	if err != nil {
		t.Fatal(err)
	}
	for i, in := range []error{
		status.Error(codes.AlreadyExists, "already there"),
		withDetails.Err(),
		status.Error(codes.Internal, "internal error; see the gateway's log"),
	} {
		if got := toStatus(in); got != in {
			t.Errorf("case %d: toStatus(%v) = %v, want the same error", i, in, got)
		}
		if got, want := codeOf(in), status.Code(in); got != want {
			t.Errorf("case %d: codeOf = %v, want %v", i, got, want)
		}
	}
	if err := toStatus(nil); err != nil {
		t.Errorf("toStatus(nil) = %v, want nil", err)
	}
	if c := codeOf(nil); c != codes.OK {
		t.Errorf("codeOf(nil) = %v, want OK", c)
	}
}

func BenchmarkToStatus(b *testing.B) {
	for _, bc := range []struct {
		name string
		err  error
	}{
		{"exhausted", &kafkaio.Error{Kind: kafkaio.KindExhausted, Reason: kafkaio.ReasonQueueFull, Message: "queue full", RetryAfter: 100 * time.Millisecond}},
		{"invalid", &kafkaio.Error{Kind: kafkaio.KindInvalid, Reason: kafkaio.ReasonInvalidTopic, Message: "bad topic"}},
		{"deadline", context.DeadlineExceeded},
		{"foreign", errors.New("boom")},
		{"status", status.Error(codes.Unavailable, "down")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if toStatus(bc.err) == nil {
					b.Fatal("nil status")
				}
			}
		})
	}
}
