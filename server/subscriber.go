package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kgate/kgate/flowcontrol"
	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/kafkaio"
)

// Subscriber opens subscriptions: one Kafka consumer group member per
// Subscribe stream. kafkaio.Subscriber implements it.
type Subscriber interface {
	// Subscribe joins cfg.Group and starts consuming cfg.Topics; see
	// kafkaio.Subscribe for its errors. The caller closes the subscription.
	Subscribe(ctx context.Context, cfg kafkaio.SubscriptionConfig) (*kafkaio.Subscription, error)
}

// maxDeadline bounds ack deadlines, extensions and nack delays.
const maxDeadline = 10 * time.Minute

// SubscriberService implements kgate.v1.Subscriber.
type SubscriberService struct {
	kgatev1.UnimplementedSubscriberServer
	sub     Subscriber
	log     *slog.Logger
	metrics *Metrics
	auth    *Auth // set by NewGRPCServer

	// stopping is done once Shutdown was called; stop makes it so.
	stopping  context.Context
	stop      context.CancelFunc
	receivers sync.WaitGroup // one Recv loop per stream
}

// NewSubscriberService returns the Subscriber service backed by sub,
// recording metrics in m (which may be nil).
func NewSubscriberService(sub Subscriber, log *slog.Logger, m *Metrics) *SubscriberService {
	if log == nil {
		log = slog.Default()
	}
	stopping, stop := context.WithCancel(context.Background())
	return &SubscriberService{sub: sub, log: log.With("component", "subscriber"), metrics: m, stopping: stopping, stop: stop}
}

// Shutdown ends every stream, present and future, with UNAVAILABLE after
// committing its acked offsets. It does not wait; see Wait.
func (s *SubscriberService) Shutdown() {
	s.stop()
}

// Wait waits for the streams' receive goroutines, which end when their
// RPCs end: call it after the gRPC server stopped.
func (s *SubscriberService) Wait() { s.receivers.Wait() }

var errShuttingDown = status.Error(codes.Unavailable, "the gateway is shutting down: acked offsets were committed; reconnect, to another instance if there is one")

// Subscribe implements kgate.v1.Subscriber/Subscribe.
func (s *SubscriberService) Subscribe(stream kgatev1.Subscriber_SubscribeServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return err
	}
	open := first.GetOpen()
	if open == nil {
		return invalidf("FIRST_MESSAGE_NOT_OPEN", "the first message on a Subscribe stream must be `open` (topics, group, ...), got %s", requestKind(first))
	}
	cfg, err := subscriptionConfig(open)
	if err != nil {
		return err
	}
	for _, t := range cfg.Topics {
		if err := s.auth.authorize(ctx, ActionSubscribe, t, cfg.Group); err != nil {
			return toStatus(err)
		}
	}
	if cfg.DeadLetterTopic != "" {
		if err := s.auth.authorize(ctx, ActionPublish, cfg.DeadLetterTopic, ""); err != nil {
			return toStatus(err)
		}
	}
	select {
	case <-s.stopping.Done():
		return errShuttingDown
	default:
	}
	sub, err := s.sub.Subscribe(ctx, cfg)
	if err != nil {
		return toStatus(err)
	}
	defer sub.Close()
	s.metrics.stream("Subscribe", 1)
	defer s.metrics.stream("Subscribe", -1)
	defer s.metrics.groupStreamOpened(cfg.Group)()

	loopCtx, cancelLoop := context.WithCancelCause(ctx)
	defer cancelLoop(nil)
	stopOnShutdown := context.AfterFunc(s.stopping, func() { cancelLoop(errShuttingDown) })
	defer stopOnShutdown()

	s.receivers.Add(1)
	go func() {
		defer s.receivers.Done()
		cancelLoop(s.receive(loopCtx, stream, sub, cfg.Window.AckDeadline, open.GetAutoAck()))
	}()

	snd := sender{stream: stream, batchMax: int(open.GetMaxMessagesPerResponse())}
	var sent []string // ack ids to auto-ack once sent
	for {
		evs, err := sub.Next(loopCtx)
		if err != nil {
			return s.endOf(ctx, loopCtx, sub, err)
		}
		if err := snd.send(evs); err != nil {
			return err
		}
		if open.GetAutoAck() {
			for _, ev := range evs {
				if ev.Record != nil {
					sent = append(sent, ev.Record.AckID)
				}
			}
			if len(sent) > 0 {
				sub.Ack(loopCtx, sent)
				sent = sent[:0]
			}
		}
	}
}

// maxBatchBytes bounds the keys, values and headers in one `messages`
// response, well below gRPC's default 4 MiB limit on received messages.
const maxBatchBytes = 1 << 20

// maxBatchMessages bounds open.max_messages_per_response.
const maxBatchMessages = 1000

// sender sends a stream's events in order: an assignment in a response of
// its own; records one per response, or with batchMax > 1 as batches of
// the records that are ready, up to batchMax records and maxBatchBytes.
type sender struct {
	stream   kgatev1.Subscriber_SubscribeServer
	batchMax int
	batch    []*kgatev1.ReceivedMessage
	bytes    int
}

func (s *sender) send(evs []kafkaio.Event) error {
	for _, ev := range evs {
		r := ev.Record
		if r == nil {
			if err := s.flush(); err != nil {
				return err
			}
			a := &kgatev1.Assignment{Assigned: topicPartitions(ev.Assigned), Revoked: topicPartitions(ev.Revoked)}
			if err := s.stream.Send(&kgatev1.SubscribeResponse{Response: &kgatev1.SubscribeResponse_Assignment{Assignment: a}}); err != nil {
				return err
			}
			continue
		}
		if s.batchMax <= 1 {
			if err := s.stream.Send(&kgatev1.SubscribeResponse{Response: &kgatev1.SubscribeResponse_Message{Message: receivedMessage(r)}}); err != nil {
				return err
			}
			continue
		}
		size := len(r.Key) + len(r.Value)
		for _, h := range r.Headers {
			size += len(h.Key) + len(h.Value)
		}
		if len(s.batch) > 0 && (len(s.batch) >= s.batchMax || s.bytes+size > maxBatchBytes) {
			if err := s.flush(); err != nil {
				return err
			}
		}
		s.batch = append(s.batch, receivedMessage(r))
		s.bytes += size
	}
	return s.flush()
}

// flush sends the batch, if any. The batch's slice is reused: Send has
// marshalled the response when it returns.
func (s *sender) flush() error {
	if len(s.batch) == 0 {
		return nil
	}
	err := s.stream.Send(&kgatev1.SubscribeResponse{Response: &kgatev1.SubscribeResponse_Messages{Messages: &kgatev1.ReceivedMessages{Messages: s.batch}}})
	clear(s.batch)
	s.batch, s.bytes = s.batch[:0], 0
	return err
}

// endOf turns the reason the stream loop stopped into the RPC's status,
// after the subscription committed and left the group.
func (s *SubscriberService) endOf(ctx, loopCtx context.Context, sub *kafkaio.Subscription, err error) error {
	sub.Close()
	if ferr := sub.Err(); ferr != nil {
		return toStatus(ferr)
	}
	cause := context.Cause(loopCtx)
	switch {
	case ctx.Err() != nil:
		return status.FromContextError(ctx.Err()).Err()
	case errors.Is(cause, io.EOF):
		return nil // the client half-closed: done
	case cause != nil && !errors.Is(cause, context.Canceled):
		return cause
	}
	return toStatus(err)
}

// receive reads the client's acks, nacks and extensions until the stream
// ends. It returns io.EOF when the client half-closed, or a status error.
func (s *SubscriberService) receive(ctx context.Context, stream kgatev1.Subscriber_SubscribeServer, sub *kafkaio.Subscription, ackDeadline time.Duration, autoAck bool) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			return err
		}
		if _, isOpen := req.GetRequest().(*kgatev1.SubscribeRequest_Open); autoAck && !isOpen && req.GetRequest() != nil {
			continue // the gateway acks by itself
		}
		switch r := req.GetRequest().(type) {
		case *kgatev1.SubscribeRequest_Ack:
			sub.Ack(ctx, r.Ack.GetAckIds())
		case *kgatev1.SubscribeRequest_Nack:
			d, useBackoff := time.Duration(0), r.Nack.GetDelay() == nil
			if !useBackoff {
				d = clampDuration(r.Nack.GetDelay())
			}
			sub.Nack(ctx, r.Nack.GetAckIds(), d, useBackoff)
		case *kgatev1.SubscribeRequest_Extend:
			d := ackDeadline
			if r.Extend.GetDeadline() != nil {
				d = clampDuration(r.Extend.GetDeadline())
			}
			sub.Extend(ctx, r.Extend.GetAckIds(), d)
		case *kgatev1.SubscribeRequest_Open:
			return invalidf("ALREADY_OPEN", "the stream is already open: send `open` only once; open another stream for another subscription")
		default:
			return invalidf("EMPTY_REQUEST", "empty request: set one of ack, nack or extend")
		}
	}
}

// clampDuration reads a client duration as [0, maxDeadline].
func clampDuration(d *durationpb.Duration) time.Duration {
	if err := d.CheckValid(); err != nil {
		return 0
	}
	return min(max(d.AsDuration(), 0), maxDeadline)
}

func requestKind(r *kgatev1.SubscribeRequest) string {
	switch r.GetRequest().(type) {
	case *kgatev1.SubscribeRequest_Ack:
		return "ack"
	case *kgatev1.SubscribeRequest_Nack:
		return "nack"
	case *kgatev1.SubscribeRequest_Extend:
		return "extend"
	}
	return "an empty request"
}

// subscriptionConfig checks what only the API knows (durations) and maps
// open to kafkaio's configuration, which checks the rest.
func subscriptionConfig(o *kgatev1.SubscribeOpen) (kafkaio.SubscriptionConfig, error) {
	cfg := kafkaio.SubscriptionConfig{
		Topics:          o.GetTopics(),
		Group:           o.GetGroup(),
		StartEarliest:   o.GetStartPosition() == kgatev1.StartPosition_START_POSITION_EARLIEST,
		DeadLetterTopic: o.GetDeadLetterTopic(),
		Window: flowcontrol.TrackerConfig{
			MaxMessages: int(o.GetMaxOutstandingMessages()),
			MaxBytes:    o.GetMaxOutstandingBytes(),
			MaxAttempts: o.GetMaxDeliveryAttempts(),
		},
	}
	if n := o.GetMaxMessagesPerResponse(); n < 0 || n > maxBatchMessages {
		return cfg, invalidf("INVALID_SUBSCRIPTION", "max_messages_per_response %d is out of range: use 1 to %d, or 0 for one record per response", n, maxBatchMessages)
	}
	if o.GetMaxOutstandingMessages() > 1_000_000 {
		return cfg, invalidf("INVALID_SUBSCRIPTION", "max_outstanding_messages %d is out of range: use 1 to 1000000, or 0 for the default", o.GetMaxOutstandingMessages())
	}
	for _, d := range []struct {
		name string
		in   *durationpb.Duration
		out  *time.Duration
	}{
		{"ack_deadline", o.GetAckDeadline(), &cfg.Window.AckDeadline},
		{"min_backoff", o.GetMinBackoff(), &cfg.Window.MinBackoff},
		{"max_backoff", o.GetMaxBackoff(), &cfg.Window.MaxBackoff},
	} {
		if d.in == nil {
			continue
		}
		if err := d.in.CheckValid(); err != nil {
			return cfg, invalidf("INVALID_SUBSCRIPTION", "%s: %v", d.name, err)
		}
		if v := d.in.AsDuration(); v < 0 || v > maxDeadline {
			return cfg, invalidf("INVALID_SUBSCRIPTION", "%s %v is out of range: use 0 (the default) to %v", d.name, v, maxDeadline)
		}
		*d.out = d.in.AsDuration()
	}
	return cfg, nil
}

func receivedMessage(r *kafkaio.Record) *kgatev1.ReceivedMessage {
	m := &kgatev1.ReceivedMessage{
		AckId:           r.AckID,
		Topic:           r.Topic,
		Partition:       r.Partition,
		Offset:          r.Offset,
		Key:             r.Key,
		Value:           r.Value,
		Timestamp:       timestamppb.New(r.Timestamp),
		DeliveryAttempt: r.Attempt,
	}
	if len(r.Headers) > 0 {
		m.Headers = make([]*kgatev1.Header, len(r.Headers))
		for i, h := range r.Headers {
			m.Headers[i] = &kgatev1.Header{Key: h.Key, Value: h.Value}
		}
	}
	return m
}

func topicPartitions(tps []kafkaio.TopicPartition) []*kgatev1.TopicPartition {
	out := make([]*kgatev1.TopicPartition, len(tps))
	for i, tp := range tps {
		out[i] = &kgatev1.TopicPartition{Topic: tp.Topic, Partition: tp.Partition}
	}
	return out
}
