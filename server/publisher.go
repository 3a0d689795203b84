package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/kafkaio"
)

// Publisher writes messages to Kafka; *kafkaio.Producer implements it.
// Both methods must be safe for concurrent use.
type Publisher interface {
	// Publish writes msgs to topic and blocks until each was acknowledged
	// or rejected by the broker, or ctx is done. It returns a nil slice and
	// an error when no message was handed to Kafka, else one result per
	// message in order and a nil error. See kafkaio.Producer.Publish.
	Publish(ctx context.Context, topic string, msgs []kafkaio.Message) ([]kafkaio.Result, error)
	// PublishAsync hands one message to Kafka without waiting. On a nil
	// error done is called exactly once, later, and must not block; on an
	// error it is never called. See kafkaio.Producer.PublishAsync.
	PublishAsync(ctx context.Context, topic string, m kafkaio.Message, done func(kafkaio.Result)) error
}

// Saturation is implemented by Publishers that can tell, cheaply, that any
// message of a principal would be refused for capacity right now
// (*kafkaio.Producer does). The service then refuses Publish calls before
// their requests are read.
type Saturation interface {
	// Saturated returns the KindExhausted error any message of principal
	// would get now, or nil. It must not block: it runs on the
	// connection's reader.
	Saturated(principal string) *kafkaio.Error
}

// PublisherService implements kgate.v1.Publisher.
type PublisherService struct {
	kgatev1.UnimplementedPublisherServer
	pub Publisher
	sat Saturation // pub, when it implements Saturation
	// refusals caches the status error of each *kafkaio.Error that
	// Saturated returned (they are made once), so that refusing a call
	// does not build a status with details every time.
	refusals sync.Map
	metrics  *Metrics
	auth     *Auth // set by NewGRPCServer
	// maxMessages bounds a Publish request's messages (0: no bound); set
	// by NewGRPCServer, whose codec decodes no more than one beyond it.
	maxMessages int

	shutdown     chan struct{} // closed by Shutdown
	shutdownOnce sync.Once
	receivers    sync.WaitGroup // one Recv loop per PublishStream
}

// NewPublisherService returns the Publisher service backed by pub,
// recording metrics in m (which may be nil).
func NewPublisherService(pub Publisher, m *Metrics) *PublisherService {
	s := &PublisherService{pub: pub, metrics: m, shutdown: make(chan struct{})}
	s.sat, _ = pub.(Saturation)
	return s
}

// admit is the second of the gRPC server's taps, after authentication.
// While the publisher is saturated for the caller's principal it refuses
// unary Publish calls with the RESOURCE_EXHAUSTED status (with
// RetryInfo and ErrorInfo) that the call would get anyway, before the
// request is read and before any handler, interceptor or goroutine runs
// for it: under overload a refusal then costs almost nothing, so it is
// answered at once and leaves the CPU to the calls that are accepted.
// Refused calls are counted, not logged. PublishStream checks each message
// in its handler instead.
func (s *PublisherService) admit(ctx context.Context, info *tap.Info) (context.Context, error) {
	if s.sat == nil || info.FullMethodName != kgatev1.Publisher_Publish_FullMethodName {
		return ctx, nil
	}
	ke := s.sat.Saturated(Principal(ctx))
	if ke == nil {
		return ctx, nil
	}
	s.metrics.refused(ke.Reason)
	if err, ok := s.refusals.Load(ke); ok {
		return ctx, err.(error)
	}
	err := toStatus(ke)
	s.refusals.Store(ke, err)
	return ctx, err
}

// Shutdown ends every PublishStream with UNAVAILABLE once the responses
// for messages already handed to Kafka are sent (the producer's Close
// bounds that wait). Unary Publish is unaffected. It does not wait.
func (s *PublisherService) Shutdown() { s.shutdownOnce.Do(func() { close(s.shutdown) }) }

// Wait waits for the streams' receive goroutines, which end when their
// RPCs end: call it after the gRPC server stopped.
func (s *PublisherService) Wait() { s.receivers.Wait() }

// Publish implements kgate.v1.Publisher/Publish.
func (s *PublisherService) Publish(ctx context.Context, req *kgatev1.PublishRequest) (resp *kgatev1.PublishResponse, err error) {
	start := time.Now()
	defer func() { s.metrics.published(start, codeOf(err)) }()
	resp, err = s.publish(ctx, req)
	if err != nil {
		st := status.Convert(err)
		var failure *kgatev1.PublishFailure
		var reason string
		for _, d := range st.Details() {
			switch d := d.(type) {
			case *kgatev1.PublishFailure:
				failure = d
			case *errdetails.ErrorInfo:
				reason = d.Reason
			}
		}
		if failure == nil {
			s.metrics.messages(st.Code(), reason, len(req.GetMessages()))
		}
		for _, o := range failure.GetOutcomes() {
			s.metrics.messages(codes.Code(o.GetCode()), o.GetReason(), 1)
		}
		return nil, err
	}
	s.metrics.messages(codes.OK, "", len(resp.GetResults()))
	return resp, nil
}

// ReasonTooManyMessages is the ErrorInfo reason of a Publish request with
// more messages than the gateway takes in one request.
const ReasonTooManyMessages = "TOO_MANY_MESSAGES"

func (s *PublisherService) publish(ctx context.Context, req *kgatev1.PublishRequest) (*kgatev1.PublishResponse, error) {
	if f := badUTF8Publish(req); f != "" {
		return nil, invalidf(ReasonMalformedRequest, "the request is not a valid kgate.v1.PublishRequest: %s is not valid UTF-8 (protobuf strings must be; keys and values are bytes and may hold anything); nothing of this request was written", f)
	}
	if s.maxMessages > 0 && len(req.GetMessages()) > s.maxMessages {
		return nil, invalidf(ReasonTooManyMessages, "the request has more than %d messages, the most one Publish takes: split it, or use PublishStream", s.maxMessages)
	}
	if err := s.auth.authorize(ctx, ActionPublish, req.GetTopic(), ""); err != nil {
		return nil, toStatus(err)
	}
	msgs := make([]kafkaio.Message, len(req.GetMessages()))
	for i, m := range req.GetMessages() {
		var err error
		if msgs[i], err = toKafkaMessage(i, m); err != nil {
			return nil, toStatus(err)
		}
	}
	results, err := s.pub.Publish(kafkaio.WithBudgetOwner(ctx, Principal(ctx)), req.GetTopic(), msgs)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &kgatev1.PublishResponse{Results: make([]*kgatev1.PublishResult, len(results))}
	firstFailed := -1
	for i := range results {
		r := &results[i]
		if r.Err != nil {
			if firstFailed < 0 {
				firstFailed = i
			}
			continue
		}
		resp.Results[i] = publishResult(r)
	}
	if firstFailed < 0 {
		return resp, nil
	}
	failure := &kgatev1.PublishFailure{Outcomes: make([]*kgatev1.MessageOutcome, len(results))}
	failed := 0
	for i := range results {
		r := &results[i]
		if r.Err == nil {
			failure.Outcomes[i] = &kgatev1.MessageOutcome{Result: resp.Results[i]}
			continue
		}
		failed++
		failure.Outcomes[i] = outcomeOf(r)
	}
	first := results[firstFailed].Err
	if ke, ok := first.(*kafkaio.Error); ok {
		c := *ke
		c.Message = fmt.Sprintf("%d of %d messages failed (kgate.v1.PublishFailure in the details gives each message's outcome; retry only those not OK); message %d: %s",
			failed, len(results), firstFailed, ke.Message)
		first = &c
	}
	return nil, toStatus(first, failure)
}

// streamMessage is toKafkaMessage's index of PublishStream's one message.
const streamMessage = -1

// messageName names message i of a request (streamMessage: the one of a
// PublishStream request) for error messages: made only for them, since a
// Sprintf per message cost 1% of the gateway's CPU.
func messageName(i int) string {
	if i == streamMessage {
		return "message"
	}
	return "messages[" + strconv.Itoa(i) + "]"
}

// toKafkaMessage converts and checks what only the API knows of message i
// of a request (partition sign, timestamp validity); kafkaio checks the
// rest.
func toKafkaMessage(i int, m *kgatev1.Message) (kafkaio.Message, error) {
	km := kafkaio.Message{Key: m.GetKey(), Value: m.GetValue(), Partition: kafkaio.PartitionAny}
	if m.Partition != nil {
		km.Partition = m.GetPartition()
		if km.Partition < 0 {
			return km, &kafkaio.Error{Kind: kafkaio.KindInvalid, Reason: kafkaio.ReasonUnknownPartition,
				Message: fmt.Sprintf("%s.partition is %d: partitions are numbered from 0; leave it unset to let the key choose", messageName(i), km.Partition)}
		}
	}
	if ts := m.GetTimestamp(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			return km, &kafkaio.Error{Kind: kafkaio.KindInvalid, Reason: "INVALID_TIMESTAMP",
				Message: fmt.Sprintf("%s.timestamp is not a valid time (%v): leave it unset to use the time of the request", messageName(i), err)}
		}
		km.Timestamp = ts.AsTime()
	}
	if hs := m.GetHeaders(); len(hs) > 0 {
		km.Headers = make([]kafkaio.Header, len(hs))
		for j, h := range hs {
			if kafkaio.IsGatewayHeader(h.GetKey()) {
				return km, &kafkaio.Error{Kind: kafkaio.KindInvalid, Reason: ReasonReservedHeader,
					Message: fmt.Sprintf("%s.headers[%d]: key %s starts with %q, which the gateway reserves for the headers it writes itself (dead letters): rename the header",
						messageName(i), j, kafkaio.QuoteName(h.GetKey()), kafkaio.GatewayHeaderPrefix)}
			}
			km.Headers[j] = kafkaio.Header{Key: h.GetKey(), Value: h.GetValue()}
		}
	}
	return km, nil
}

// ReasonReservedHeader is the ErrorInfo reason of a message refused for a
// header key of the gateway's own.
const ReasonReservedHeader = "RESERVED_HEADER"

// outcomeOf is the per-message outcome clients see in PublishFailure and
// PublishStreamResponse.
func outcomeOf(r *kafkaio.Result) *kgatev1.MessageOutcome {
	if r.Err == nil {
		return &kgatev1.MessageOutcome{Result: publishResult(r)}
	}
	o := &kgatev1.MessageOutcome{Code: int32(codeOf(r.Err)), Message: r.Err.Error()}
	var ke *kafkaio.Error
	if errors.As(r.Err, &ke) {
		o.Reason = ke.Reason
		if ke.Kind == kafkaio.KindExhausted {
			o.RetryDelay = durationpb.New(retryDelay(ke))
		}
	}
	return o
}

func publishResult(r *kafkaio.Result) *kgatev1.PublishResult {
	return &kgatev1.PublishResult{Partition: r.Partition, Offset: r.Offset, Timestamp: timestamppb.New(r.Timestamp)}
}
