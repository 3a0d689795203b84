package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kgate/kgate/flowcontrol"
	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/kafkaio"
)

// Subscriber attaches Subscribe streams to their group's consumer; see
// kafkaio.Subscriber.Subscribe for its errors. The caller closes the
// subscription. KafkaSubscriber adapts a *kafkaio.Subscriber.
type Subscriber interface {
	Subscribe(ctx context.Context, cfg kafkaio.SubscriptionConfig) (Subscription, error)
}

// Subscription is one stream's attachment to its group's consumer, as
// *kafkaio.Session implements it: Next hands out the stream's events (in a
// slice that may be reused by its next call); Ack, Nack, Extend and Drain
// go to the consumer; Close detaches.
type Subscription interface {
	Next(ctx context.Context) ([]kafkaio.Event, error)
	Ack(ctx context.Context, ids []string)
	Nack(ctx context.Context, ids []string, delay time.Duration, useBackoff bool)
	Extend(ctx context.Context, ids []string, d time.Duration)
	Drain(ctx context.Context)
	Close()
}

// KafkaSubscriber adapts s to Subscriber.
func KafkaSubscriber(s *kafkaio.Subscriber) Subscriber { return kafkaSubscriber{s} }

type kafkaSubscriber struct{ s *kafkaio.Subscriber }

func (k kafkaSubscriber) Subscribe(ctx context.Context, cfg kafkaio.SubscriptionConfig) (Subscription, error) {
	sess, err := k.s.Subscribe(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return sess, nil
}

// maxDeadline bounds ack deadlines, extensions, nack delays and backoffs.
const maxDeadline = 10 * time.Minute

// SubscriberService implements kgate.v1.Subscriber.
type SubscriberService struct {
	kgatev1.UnimplementedSubscriberServer
	sub     Subscriber
	log     *slog.Logger
	metrics *Metrics
	auth    *Auth // set by NewGRPCServer
	tails   *tailRegistry

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
	return &SubscriberService{sub: sub, log: log.With("component", "subscriber"), metrics: m, stopping: stopping, stop: stop, tails: newTailRegistry()}
}

// Shutdown refuses new streams and ends the open ones with UNAVAILABLE.
// Call it after the Subscriber's Close, which commits what the streams
// acked and ends their sessions first. It does not wait; see Wait.
func (s *SubscriberService) Shutdown() {
	s.stop()
}

// Wait waits for the streams' receive goroutines, which end when their
// RPCs end: call it after the gRPC server stopped.
func (s *SubscriberService) Wait() { s.receivers.Wait() }

// errShuttingDown ends Subscribe and PublishStream streams at shutdown. Like
// every UNAVAILABLE the gateway answers, it carries kgate's ErrorInfo
// (GATEWAY_SHUTTING_DOWN): one without it is gRPC's, a broken connection.
var errShuttingDown = toStatus(&kafkaio.Error{Kind: kafkaio.KindUnavailable, Reason: kafkaio.ReasonClosed,
	Message: "the gateway is shutting down: acked offsets were committed; reconnect, to another instance if there is one"})

// Subscribe implements kgate.v1.Subscriber/Subscribe.
func (s *SubscriberService) Subscribe(stream kgatev1.Subscriber_SubscribeServer) error {
	ctx := stream.Context()
	first, err := recvSubscribeRequest(stream)
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
	cfg, err := s.openConfig(ctx, open)
	if err != nil {
		return err
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

	snd := &sender{out: stream.Send, batchMax: int(open.GetMaxMessagesPerResponse())}
	return s.deliver(ctx, loopCtx, sub, snd, open.GetAutoAck())
}

// openConfig checks open and the caller's permission for it (Subscribe's
// and Tail's), refuses it while the gateway shuts down, and returns its
// subscription with the client named by principal and peer.
func (s *SubscriberService) openConfig(ctx context.Context, open *kgatev1.SubscribeOpen) (kafkaio.SubscriptionConfig, error) {
	cfg, err := subscriptionConfig(open)
	if err != nil {
		return cfg, err
	}
	if err := s.authorizeOpen(ctx, cfg); err != nil {
		return cfg, err
	}
	select {
	case <-s.stopping.Done():
		return cfg, errShuttingDown
	default:
	}
	cfg.Client = Principal(ctx)
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		cfg.Client += "@" + p.Addr.String()
	}
	return cfg, nil
}

// deliver sends sub's events with snd until the stream or sub ends (the
// send loop of Subscribe and Tail), acking each record once sent when
// autoAck.
func (s *SubscriberService) deliver(ctx, loopCtx context.Context, sub Subscription, snd *sender, autoAck bool) error {
	var sent []string // ack ids to auto-ack once sent
	for {
		evs, err := sub.Next(loopCtx)
		if err != nil {
			return s.endOf(ctx, loopCtx, sub, err)
		}
		if err := snd.send(evs); err != nil {
			return err
		}
		if !autoAck {
			continue
		}
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

// maxBatchBytes bounds the keys, values and headers in one `messages`
// response, well below gRPC's default 4 MiB limit on received messages.
const maxBatchBytes = 1 << 20

// maxBatchMessages bounds open.max_messages_per_response.
const maxBatchMessages = 1000

// sender sends a stream's events in order: an assignment or the drain's
// end in a response of its own; records one per response, or with
// batchMax > 1 as batches of the records that are ready, up to batchMax
// records and maxBatchBytes.
//
// Its responses and their messages are reused from one Send to the next:
// Send has marshalled a response when it returns (the server has no stats
// handler that would read it later), and allocating them per record was a
// tenth of a Subscribe stream's CPU. After each Send the messages drop
// their references to the records' keys, values and headers, so that a
// stream holds no payload beyond its window.
type sender struct {
	out      func(*kgatev1.SubscribeResponse) error // the stream's Send
	batchMax int
	msgs     []*kgatev1.ReceivedMessage // msgs[:n] are the batch being filled
	n        int
	bytes    int
	// The responses, made once.
	one  *kgatev1.SubscribeResponse_Message
	many *kgatev1.ReceivedMessages
	resp kgatev1.SubscribeResponse
}

func (s *sender) send(evs []kafkaio.Event) error {
	for _, ev := range evs {
		r := ev.Record
		if r == nil {
			if err := s.flush(); err != nil {
				return err
			}
			resp := &kgatev1.SubscribeResponse{Response: &kgatev1.SubscribeResponse_Drained{Drained: &kgatev1.Drained{}}}
			if !ev.Drained {
				a := &kgatev1.Assignment{Assigned: topicPartitions(ev.Assigned), Revoked: topicPartitions(ev.Revoked)}
				resp = &kgatev1.SubscribeResponse{Response: &kgatev1.SubscribeResponse_Assignment{Assignment: a}}
			}
			if err := s.out(resp); err != nil {
				return err
			}
			continue
		}
		if s.batchMax <= 1 {
			if err := s.sendOne(r); err != nil {
				return err
			}
			continue
		}
		size := len(r.Key) + len(r.Value)
		for _, h := range r.Headers {
			size += len(h.Key) + len(h.Value)
		}
		if s.n > 0 && (s.n >= s.batchMax || s.bytes+size > maxBatchBytes) {
			if err := s.flush(); err != nil {
				return err
			}
		}
		if s.n == len(s.msgs) {
			s.msgs = append(s.msgs, &kgatev1.ReceivedMessage{})
		}
		fillReceived(s.msgs[s.n], r)
		s.n++
		s.bytes += size
	}
	return s.flush()
}

// sendOne sends r in a response of its own.
func (s *sender) sendOne(r *kafkaio.Record) error {
	if s.one == nil {
		s.one = &kgatev1.SubscribeResponse_Message{Message: &kgatev1.ReceivedMessage{}}
	}
	fillReceived(s.one.Message, r)
	s.resp.Response = s.one
	err := s.out(&s.resp)
	forgetPayload(s.one.Message)
	return err
}

// flush sends the batch, if any.
func (s *sender) flush() error {
	if s.n == 0 {
		return nil
	}
	if s.many == nil {
		s.many = &kgatev1.ReceivedMessages{}
	}
	s.many.Messages = s.msgs[:s.n]
	s.resp.Response = &kgatev1.SubscribeResponse_Messages{Messages: s.many}
	err := s.out(&s.resp)
	for _, m := range s.msgs[:s.n] {
		forgetPayload(m)
	}
	s.many.Messages = nil
	s.n, s.bytes = 0, 0
	return err
}

// endOf turns the reason the stream loop stopped into the RPC's status,
// after the session detached from its group's consumer.
func (s *SubscriberService) endOf(ctx, loopCtx context.Context, sub Subscription, err error) error {
	sub.Close()
	cause := context.Cause(loopCtx)
	switch {
	case errors.Is(err, kafkaio.ErrSubscriberClosed):
		return errShuttingDown
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
func (s *SubscriberService) receive(ctx context.Context, stream kgatev1.Subscriber_SubscribeServer, sub Subscription, ackDeadline time.Duration, autoAck bool) error {
	for {
		req, err := recvSubscribeRequest(stream)
		if err != nil {
			return err
		}
		switch req.GetRequest().(type) {
		case *kgatev1.SubscribeRequest_Ack, *kgatev1.SubscribeRequest_Nack, *kgatev1.SubscribeRequest_Extend:
			if autoAck {
				continue // the gateway acks by itself
			}
		}
		switch r := req.GetRequest().(type) {
		case *kgatev1.SubscribeRequest_Ack:
			sub.Ack(ctx, r.Ack.GetAckIds())
		case *kgatev1.SubscribeRequest_Nack:
			d, useBackoff, err := nackDelay(r.Nack.GetDelay())
			if err != nil {
				return err
			}
			sub.Nack(ctx, r.Nack.GetAckIds(), d, useBackoff)
		case *kgatev1.SubscribeRequest_Extend:
			d, err := extendDeadline(r.Extend.GetDeadline(), ackDeadline)
			if err != nil {
				return err
			}
			sub.Extend(ctx, r.Extend.GetAckIds(), d)
		case *kgatev1.SubscribeRequest_Drain:
			sub.Drain(ctx)
		case *kgatev1.SubscribeRequest_Open:
			return invalidf("ALREADY_OPEN", "the stream is already open: send `open` only once; open another stream for another subscription")
		default:
			return invalidf("EMPTY_REQUEST", "empty request: set one of ack, nack, extend or drain")
		}
	}
}

func requestKind(r *kgatev1.SubscribeRequest) string {
	switch r.GetRequest().(type) {
	case *kgatev1.SubscribeRequest_Ack:
		return "ack"
	case *kgatev1.SubscribeRequest_Nack:
		return "nack"
	case *kgatev1.SubscribeRequest_Extend:
		return "extend"
	case *kgatev1.SubscribeRequest_Drain:
		return "drain"
	}
	return "an empty request"
}

// subscriptionConfig checks what only the API knows (durations) and maps
// open to kafkaio's configuration, which checks the rest.
func subscriptionConfig(o *kgatev1.SubscribeOpen) (kafkaio.SubscriptionConfig, error) {
	earliest, err := startEarliest(o.GetStartPosition())
	cfg := kafkaio.SubscriptionConfig{
		Topics:        o.GetTopics(),
		Group:         o.GetGroup(),
		StartEarliest: earliest,
		Window: flowcontrol.SessionConfig{
			MaxMessages:     int(o.GetMaxOutstandingMessages()),
			MaxBytes:        o.GetMaxOutstandingBytes(),
			MaxAttempts:     o.GetMaxDeliveryAttempts(),
			DeadLetterTopic: o.GetDeadLetterTopic(),
		},
	}
	if err != nil {
		return cfg, err
	}
	switch o.GetOrdering() {
	case kgatev1.Ordering_ORDERING_UNSPECIFIED, kgatev1.Ordering_ORDERING_PARTITION:
		cfg.Ordering = flowcontrol.OrderPartition
	case kgatev1.Ordering_ORDERING_KEY:
		cfg.Ordering = flowcontrol.OrderKey
	case kgatev1.Ordering_ORDERING_NONE:
		cfg.Ordering = flowcontrol.OrderNone
	default:
		return cfg, invalidf("INVALID_SUBSCRIPTION", "ordering %d is not known: use ORDERING_PARTITION (1, the default), ORDERING_KEY (2) or ORDERING_NONE (3)", o.GetOrdering())
	}
	if n := o.GetMaxMessagesPerResponse(); n < 0 || n > maxBatchMessages {
		return cfg, invalidf("INVALID_SUBSCRIPTION", "max_messages_per_response %d is out of range: use 1 to %d, or 0 for one record per response", n, maxBatchMessages)
	}
	if n := o.GetMaxDeliveryAttempts(); n < 0 {
		return cfg, invalidf("INVALID_SUBSCRIPTION", "max_delivery_attempts %d is out of range: use 1 or more (with dead_letter_topic), or 0 for unlimited redelivery", n)
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

// fillReceived sets every field of m, a new or reused message, from r. A
// reused message keeps its Timestamp and header messages.
func fillReceived(m *kgatev1.ReceivedMessage, r *kafkaio.Record) {
	m.AckId, m.Topic, m.Partition, m.Offset = r.AckID, r.Topic, r.Partition, r.Offset
	m.Key, m.Value, m.DeliveryAttempt = r.Key, r.Value, r.Attempt
	if m.Timestamp == nil {
		m.Timestamp = &timestamppb.Timestamp{}
	}
	m.Timestamp.Seconds, m.Timestamp.Nanos = r.Timestamp.Unix(), int32(r.Timestamp.Nanosecond())
	n := len(r.Headers)
	if cap(m.Headers) < n {
		hs := make([]*kgatev1.Header, n)
		copy(hs, m.Headers[:cap(m.Headers)])
		m.Headers = hs
	}
	m.Headers = m.Headers[:n]
	for i, h := range r.Headers {
		if m.Headers[i] == nil {
			m.Headers[i] = &kgatev1.Header{}
		}
		m.Headers[i].Key, m.Headers[i].Value = h.Key, h.Value
	}
}

// forgetPayload drops m's references to a record's key, value and header
// values once it was sent.
func forgetPayload(m *kgatev1.ReceivedMessage) {
	m.Key, m.Value = nil, nil
	for _, h := range m.Headers {
		h.Key, h.Value = "", nil
	}
}

func topicPartitions(tps []kafkaio.TopicPartition) []*kgatev1.TopicPartition {
	out := make([]*kgatev1.TopicPartition, len(tps))
	for i, tp := range tps {
		out[i] = &kgatev1.TopicPartition{Topic: tp.Topic, Partition: tp.Partition}
	}
	return out
}
