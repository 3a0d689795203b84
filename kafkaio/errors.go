package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Kind classifies an Error by what the client can do about it.
type Kind int

const (
	// KindInternal is a bug or an unrecoverable client state.
	KindInternal Kind = iota
	// KindInvalid means the request can never succeed as sent.
	KindInvalid
	// KindNotFound means a topic does not exist.
	KindNotFound
	// KindPermission means the gateway's Kafka credentials are not allowed.
	KindPermission
	// KindExhausted means the gateway is at capacity; retry after RetryAfter.
	KindExhausted
	// KindUnavailable means Kafka could not be reached or did not answer in
	// time, or the gateway is shutting down; nothing was written; retry.
	KindUnavailable
	// KindUnknownOutcome means the message was handed to Kafka but the
	// gateway can no longer learn whether it was written.
	KindUnknownOutcome
	// KindConflict means the request conflicts with the state it meets
	// (a group consumed with another ordering): change the request.
	KindConflict
	// KindAborted means the request ran into a concurrent one and was
	// abandoned before it changed anything: retry.
	KindAborted
)

var kindNames = [...]string{"internal", "invalid", "not found", "permission denied", "exhausted", "unavailable", "unknown outcome", "conflict", "aborted"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Reasons set by this package, besides Kafka's own error names.
const (
	ReasonQueueFull        = "PRODUCER_QUEUE_FULL"
	ReasonBudgetExhausted  = "INFLIGHT_BUDGET_EXHAUSTED"
	ReasonShareExhausted   = "INFLIGHT_SHARE_EXHAUSTED"
	ReasonMessageTooLarge  = "MESSAGE_TOO_LARGE"
	ReasonInvalidTopic     = "INVALID_TOPIC"
	ReasonNoMessages       = "NO_MESSAGES"
	ReasonUnknownPartition = "UNKNOWN_PARTITION"
	ReasonClosed           = "GATEWAY_SHUTTING_DOWN"
	ReasonOutcomeUnknown   = "OUTCOME_UNKNOWN"
	// ReasonUnknownTopic: a topic does not exist (Publish and Subscribe).
	ReasonUnknownTopic = "UNKNOWN_TOPIC"
	// ReasonSubscriptionBudget: the gateway's subscription memory budget is
	// spent.
	ReasonSubscriptionBudget = "SUBSCRIPTION_BUDGET_EXHAUSTED"
)

// Error is an error of this package.
type Error struct {
	Kind Kind
	// Reason is a stable UPPER_SNAKE_CASE name: one of the Reason constants
	// or the name of a Kafka error code (for example MSG_TIMED_OUT).
	Reason string
	// Message is for a person: what happened and what to do.
	Message string
	// RetryAfter is set for KindExhausted: how long to wait before retrying.
	RetryAfter time.Duration
	// Cause is the underlying error, if any (a context error for
	// KindUnknownOutcome after a deadline or cancellation).
	Cause error
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// KindOf reports the Kind of err: the Kind of an *Error in its chain, or
// KindInternal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

func errorf(kind Kind, reason, format string, args ...any) *Error {
	return &Error{Kind: kind, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// fromDelivery classifies the error of a delivery report. librdkafka
// retries until message.timeout.ms and then reports MSG_TIMED_OUT, unless
// its retries setting runs out first: then it reports the last error, and
// some errors leave the message possibly written (the broker applied the
// write but answered an error, or the answer was lost).
func fromDelivery(err error, what string) *Error {
	var ke kafka.Error
	if errors.As(err, &ke) {
		switch ke.Code() {
		case kafka.ErrRequestTimedOut, kafka.ErrNotEnoughReplicasAfterAppend, kafka.ErrTimedOut, kafka.ErrTransport:
			return errorf(KindUnknownOutcome, kafkaReason(ke.Code()), "%s: librdkafka stopped retrying (its retries setting) after %v, which leaves the message possibly written: the outcome is unknown, and retrying may write it twice", what, ke)
		}
	}
	return fromKafka(err, what)
}

// fromKafka classifies a librdkafka error. what names the operation for the
// message, for example `publish to topic "orders"`.
func fromKafka(err error, what string) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return &Error{Kind: KindUnknownOutcome, Reason: ReasonOutcomeUnknown, Message: fmt.Sprintf("%s: %v", what, err), Cause: err}
	}
	var ke kafka.Error
	if !errors.As(err, &ke) {
		return errorf(KindInternal, "INTERNAL", "%s: %v", what, err)
	}
	reason := kafkaReason(ke.Code())
	switch ke.Code() {
	case kafka.ErrQueueFull:
		return &Error{Kind: KindExhausted, Reason: ReasonQueueFull,
			Message: fmt.Sprintf("%s: the Kafka producer queue is full; retry after the delay in RetryInfo", what)}
	case kafka.ErrMsgSizeTooLarge, kafka.ErrRecordListTooLarge:
		return errorf(KindInvalid, ReasonMessageTooLarge, "%s: the message is larger than the broker accepts (%v); send a smaller message", what, ke)
	case kafka.ErrUnknownPartition:
		return errorf(KindInvalid, ReasonUnknownPartition, "%s: the topic has no such partition (%v)", what, ke)
	case kafka.ErrTopicException:
		return errorf(KindInvalid, ReasonInvalidTopic, "%s: invalid topic (%v)", what, ke)
	case kafka.ErrUnknownTopic, kafka.ErrUnknownTopicOrPart:
		return errorf(KindNotFound, ReasonUnknownTopic, "%s: the topic does not exist; create it first (%v)", what, ke)
	case kafka.ErrTopicAuthorizationFailed, kafka.ErrGroupAuthorizationFailed, kafka.ErrClusterAuthorizationFailed,
		kafka.ErrTransactionalIDAuthorizationFailed, kafka.ErrSaslAuthenticationFailed, kafka.ErrAuthentication:
		return errorf(KindPermission, reason, "%s: not allowed by the Kafka cluster (%v); grant the gateway's principal access", what, ke)
	case kafka.ErrPurgeInflight:
		return errorf(KindUnknownOutcome, reason, "%s: the gateway shut down while the broker had not answered; the outcome is unknown", what)
	case kafka.ErrPurgeQueue:
		return errorf(KindUnavailable, ReasonClosed, "%s: the gateway shut down before the message was sent; it was not written, retry", what)
	case kafka.ErrMsgTimedOut:
		// librdkafka gives this both for messages never sent and for
		// messages sent without an answer ("possibly persisted"), and the
		// Go client does not say which.
		return errorf(KindUnavailable, reason, "%s: Kafka did not acknowledge within message.timeout.ms (%v): the message may or may not be written; retrying may write it twice", what, ke)
	case kafka.ErrTimedOut, kafka.ErrTransport, kafka.ErrAllBrokersDown,
		kafka.ErrTimedOutQueue, kafka.ErrNotEnoughReplicas, kafka.ErrNotEnoughReplicasAfterAppend,
		kafka.ErrLeaderNotAvailable, kafka.ErrNotLeaderForPartition, kafka.ErrRequestTimedOut,
		kafka.ErrNetworkException, kafka.ErrBrokerNotAvailable, kafka.ErrResolve, kafka.ErrDestroy:
		return errorf(KindUnavailable, reason, "%s: Kafka did not acknowledge (%v); nothing was written, retry with backoff", what, ke)
	}
	if ke.IsFatal() {
		return errorf(KindInternal, reason, "%s: fatal Kafka client error (%v)", what, ke)
	}
	if ke.IsRetriable() || ke.IsTimeout() {
		return errorf(KindUnavailable, reason, "%s: %v; retry with backoff", what, ke)
	}
	return errorf(KindInternal, reason, "%s: %v", what, ke)
}

// kafkaReason turns a librdkafka error code into an UPPER_SNAKE_CASE reason
// from its description: "Local: Message timed out" gives MESSAGE_TIMED_OUT,
// "Broker: Not enough in-sync replicas" NOT_ENOUGH_IN_SYNC_REPLICAS.
func kafkaReason(c kafka.ErrorCode) string {
	s := c.String()
	if i := strings.Index(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	var b strings.Builder
	under := false
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
			fallthrough
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			if under && b.Len() > 0 {
				b.WriteByte('_')
			}
			under = false
			b.WriteRune(r)
		default:
			under = true
		}
	}
	if b.Len() == 0 {
		return "KAFKA_ERROR"
	}
	return b.String()
}
