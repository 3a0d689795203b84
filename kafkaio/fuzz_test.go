package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// FuzzValidateTopic checks ValidateTopic against Kafka's rule, stated
// independently: 1 to 249 characters of [a-zA-Z0-9._-], not "." or "..".
// Run longer with `make fuzz` or go test -fuzz FuzzValidateTopic ./kafkaio.
func FuzzValidateTopic(f *testing.F) {
	for _, s := range []string{"", ".", "..", "...", "orders", "a/b", "with space", "ü", strings.Repeat("a", 249),
		strings.Repeat("a", 250), "a\x00b", "__consumer_offsets", "-", "topic\n", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateTopic(name)
		legal := len(name) >= 1 && len(name) <= 249 && name != "." && name != ".."
		for i := 0; i < len(name) && legal; i++ {
			c := name[i]
			legal = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		}
		if legal != (err == nil) {
			t.Fatalf("ValidateTopic(%q) = %v; Kafka's rule says legal=%v", name, err, legal)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindInvalid || e.Reason != ReasonInvalidTopic || e.Message == "" {
				t.Fatalf("ValidateTopic(%q) = %#v, want an *Error of KindInvalid, INVALID_TOPIC, with a message", name, err)
			}
			if len(e.Message) > 249*4+200 { // %q of at most 249 bytes, plus the advice
				t.Fatalf("ValidateTopic(%q): a %d-byte message echoes the input without bound", name, len(e.Message))
			}
		}
	})
}

var reasonRE = regexp.MustCompile(`^[A-Z0-9]+(_[A-Z0-9]+)*$`)

// FuzzFromKafka classifies every librdkafka error code (and codes that do
// not exist): it never panics, always returns an *Error with a known Kind
// and an UPPER_SNAKE_CASE reason, and keeps the promises clients rely on:
// a full queue is KindExhausted, caller context errors are an unknown
// outcome, size errors are KindInvalid. fromDelivery, which classifies
// delivery reports, agrees except for errors that leave a write possibly
// applied.
func FuzzFromKafka(f *testing.F) {
	for _, c := range []int{-199, -195, -192, -191, -185, -184, -172, -152, -1, 0, 1, 2, 3, 6, 7, 10, 17, 19, 20, 29, 45, 47, 87, 10000, -100000} {
		f.Add(c, "broker said so", false, 0)
		f.Add(c, "", true, 1)
	}
	f.Fuzz(func(t *testing.T, code int, msg string, fatal bool, wrap int) {
		var err error = kafka.NewError(kafka.ErrorCode(code), msg, fatal)
		switch wrap % 4 {
		case 1:
			err = fmt.Errorf("wrapped: %w", err)
		case 2:
			err = context.DeadlineExceeded
		case 3:
			err = fmt.Errorf("waiting: %w", context.Canceled)
		}
		e := fromKafka(err, "publish to topic \"t\"")
		if e == nil {
			t.Fatalf("fromKafka(%v) = nil", err)
		}
		if e.Kind < KindInternal || e.Kind > KindUnknownOutcome || strings.HasPrefix(e.Kind.String(), "Kind(") {
			t.Fatalf("fromKafka(%v): unknown kind %d", err, e.Kind)
		}
		if !reasonRE.MatchString(e.Reason) {
			t.Fatalf("fromKafka(%v): reason %q is not UPPER_SNAKE_CASE", err, e.Reason)
		}
		if e.Message == "" {
			t.Fatalf("fromKafka(%v): empty message", err)
		}
		switch {
		case wrap%4 >= 2:
			if e.Kind != KindUnknownOutcome {
				t.Fatalf("fromKafka(%v) = %v, want unknown outcome for a context error", err, e.Kind)
			}
		case kafka.ErrorCode(code) == kafka.ErrQueueFull:
			if e.Kind != KindExhausted || e.Reason != ReasonQueueFull {
				t.Fatalf("queue full classified %v %s", e.Kind, e.Reason)
			}
		case kafka.ErrorCode(code) == kafka.ErrMsgSizeTooLarge:
			if e.Kind != KindInvalid {
				t.Fatalf("message too large classified %v", e.Kind)
			}
		}
		// A delivery report with an error a broker can give after applying
		// the write (or a lost answer) is an unknown outcome, never "not
		// written"; other errors classify as fromKafka does.
		d := fromDelivery(err, "publish to topic \"t\"")
		switch kafka.ErrorCode(code) {
		case kafka.ErrRequestTimedOut, kafka.ErrNotEnoughReplicasAfterAppend, kafka.ErrTimedOut, kafka.ErrTransport:
			if wrap%4 < 2 && (d.Kind != KindUnknownOutcome || !reasonRE.MatchString(d.Reason) || d.Message == "") {
				t.Fatalf("fromDelivery(%v) = %v %s, want an unknown outcome", err, d.Kind, d.Reason)
			}
		default:
			if d.Kind != e.Kind || d.Reason != e.Reason {
				t.Fatalf("fromDelivery(%v) = %v %s, fromKafka %v %s", err, d.Kind, d.Reason, e.Kind, e.Reason)
			}
		}
		if r := kafkaReason(kafka.ErrorCode(code)); !reasonRE.MatchString(r) {
			t.Fatalf("kafkaReason(%d) = %q", code, r)
		}
	})
}
