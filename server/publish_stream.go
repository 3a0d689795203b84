package server

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/kafkaio"
)

// outbox hands responses from any goroutine to the one goroutine that sends
// them, without blocking the producer of a response.
type outbox[T any] struct {
	mu  sync.Mutex
	buf []T
	sig chan struct{} // cap 1: buf is not empty
}

func newOutbox[T any]() *outbox[T] { return &outbox[T]{sig: make(chan struct{}, 1)} }

func (o *outbox[T]) push(v T) {
	o.mu.Lock()
	o.buf = append(o.buf, v)
	o.mu.Unlock()
	select {
	case o.sig <- struct{}{}:
	default:
	}
}

// take returns everything pushed so far, reusing spare for the next batch.
func (o *outbox[T]) take(spare []T) []T {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.buf
	o.buf = spare[:0]
	return out
}

// PublishStream implements kgate.v1.Publisher/PublishStream. A receive
// goroutine reads messages and hands each to Kafka at once; delivery
// reports push responses into an outbox; this handler is the only sender.
// Memory is bounded by the producer's in-flight budget: a message that does
// not fit is answered RESOURCE_EXHAUSTED at once.
func (s *PublisherService) PublishStream(stream kgatev1.Publisher_PublishStreamServer) error {
	ctx := stream.Context()
	s.metrics.stream("PublishStream", 1)
	defer s.metrics.stream("PublishStream", -1)
	out := newOutbox[*kgatev1.PublishStreamResponse]()
	var pending atomic.Int64 // handed to Kafka, response not yet pushed
	recvDone := make(chan error, 1)
	s.receivers.Add(1)
	go func() {
		defer s.receivers.Done()
		recvDone <- s.receivePublishes(ctx, stream, out, &pending)
	}()

	var batch []*kgatev1.PublishStreamResponse
	send := func() error {
		batch = out.take(batch)
		for i, r := range batch {
			if err := stream.Send(r); err != nil {
				return err
			}
			recycleResponse(r)
			batch[i] = nil
		}
		return nil
	}
	var recvErr error
	recvEnded := false
	for {
		select {
		case <-out.sig:
		case recvErr = <-recvDone:
			recvEnded = true
		case <-s.shutdown:
			// Answer what Kafka still answers in time (the producer's
			// Close bounds this), then end the stream.
			for pending.Load() > 0 && ctx.Err() == nil {
				if err := send(); err != nil {
					return err
				}
				select {
				case <-out.sig:
				case <-ctx.Done():
				}
			}
			if err := send(); err != nil {
				return err
			}
			return errShuttingDown
		}
		if err := send(); err != nil {
			return err
		}
		if recvEnded {
			// After a half-close, or a request the gateway refused
			// (INVALID_ARGUMENT), answer every message already handed to
			// Kafka, then end the stream.
			halfClosed := errors.Is(recvErr, io.EOF)
			if !halfClosed && status.Code(recvErr) != codes.InvalidArgument {
				return recvErr
			}
			if pending.Load() == 0 {
				if err := send(); err != nil || halfClosed {
					return err // everything answered: done
				}
				return recvErr
			}
		}
	}
}

// receivePublishes reads the client's messages until the stream ends and
// returns why: io.EOF after a half-close, or a status error.
func (s *PublisherService) receivePublishes(ctx context.Context, stream kgatev1.Publisher_PublishStreamServer,
	out *outbox[*kgatev1.PublishStreamResponse], pending *atomic.Int64) error {
	owned := kafkaio.WithBudgetOwner(ctx, Principal(ctx))
	for {
		req := new(kgatev1.PublishStreamRequest)
		if err := recvDecoded(stream, req, "every string field (correlation_id, topic, header keys) must be valid UTF-8"); err != nil {
			return err
		}
		id := req.GetCorrelationId()
		if id == "" || req.GetMessage() == nil {
			return invalidf("INVALID_STREAM_MESSAGE", "every PublishStream message needs a correlation_id and a message")
		}
		respond := func(r *kafkaio.Result) {
			if r.Err == nil {
				s.metrics.messages(codes.OK, "", 1)
				out.push(okResponse(id, r))
				return
			}
			o := outcomeOf(r)
			s.metrics.messages(codes.Code(o.Code), o.Reason, 1)
			out.push(&kgatev1.PublishStreamResponse{CorrelationId: id, Outcome: o})
		}
		fail := func(err error) { respond(&kafkaio.Result{Err: err}) }
		m, err := toKafkaMessage(streamMessage, req.GetMessage())
		if err != nil {
			fail(err)
			continue
		}
		if err := s.auth.authorize(ctx, ActionPublish, req.GetTopic(), ""); err != nil {
			fail(err)
			continue
		}
		select {
		case <-s.shutdown:
			fail(&kafkaio.Error{Kind: kafkaio.KindUnavailable, Reason: kafkaio.ReasonClosed, Message: "the gateway is shutting down: send it to another instance"})
			continue
		default:
		}
		pending.Add(1)
		err = s.pub.PublishAsync(owned, req.GetTopic(), m, func(r kafkaio.Result) {
			respond(&r)
			pending.Add(-1)
			// Wake the sender again: it may be waiting for pending to reach 0.
			select {
			case out.sig <- struct{}{}:
			default:
			}
		})
		if err != nil {
			pending.Add(-1)
			fail(err)
		}
	}
}

// okResponses holds PublishStream responses of written messages (with
// their outcome, result and timestamp) sent already, for okResponse to
// fill again: Send has marshalled a response when it returns (the server
// has no stats handler that would read it later), and making four objects
// per message was a tenth of PublishStream's allocations.
var okResponses = sync.Pool{New: func() any {
	return &kgatev1.PublishStreamResponse{Outcome: &kgatev1.MessageOutcome{Result: &kgatev1.PublishResult{Timestamp: &timestamppb.Timestamp{}}}}
}}

// okResponse is the response to message id, written as r says.
func okResponse(id string, r *kafkaio.Result) *kgatev1.PublishStreamResponse {
	resp := okResponses.Get().(*kgatev1.PublishStreamResponse)
	resp.CorrelationId = id
	res := resp.Outcome.Result
	res.Partition, res.Offset = r.Partition, r.Offset
	res.Timestamp.Seconds, res.Timestamp.Nanos = r.Timestamp.Unix(), int32(r.Timestamp.Nanosecond())
	return resp
}

// recycleResponse gives a sent response made by okResponse back.
func recycleResponse(r *kgatev1.PublishStreamResponse) {
	if o := r.GetOutcome(); o.GetCode() == 0 && o.GetResult().GetTimestamp() != nil && o.GetMessage() == "" && o.GetReason() == "" && o.GetRetryDelay() == nil {
		r.CorrelationId = ""
		okResponses.Put(r)
	}
}
