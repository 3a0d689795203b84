package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/kafkaio"
)

// Tail and Ack: a server-streaming read for clients without bidi streams.
// A Tail is a Subscribe stream whose acks come through unary Ack calls.
// The Tail's handler registers its Subscription under a random id that it
// sends first; Ack finds the Subscription by that id and hands it the acks
// (Subscription's Ack, Nack and Extend are safe from any goroutine). The
// registry holds only open tails: the handler removes its entry when it
// returns, and the number open is bounded (maxTails, and each counts as a
// Subscribe stream of its principal).

// maxTails bounds the tails open on one gateway.
const maxTails = 10000

// maxAckIDs bounds the ack and nack ids of one Ack call.
const maxAckIDs = 10000

// Reasons of Tail and Ack.
const (
	ReasonUnknownTail    = "UNKNOWN_TAIL"
	ReasonTooManyTails   = "TOO_MANY_TAILS"
	ReasonTooManyAckIDs  = "TOO_MANY_ACK_IDS"
	ReasonInvalidSubOpen = "INVALID_SUBSCRIPTION"
)

// tailRegistry maps open tails' ids to their subscriptions. Safe for
// concurrent use.
type tailRegistry struct {
	// prefix starts every id this process makes, so that Ack can tell an
	// id of another instance (or of this one before a restart).
	prefix string
	mu     sync.Mutex
	open   map[string]*tailEntry
}

type tailEntry struct {
	sub       Subscription
	principal string
	autoAck   bool
}

func newTailRegistry() *tailRegistry {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &tailRegistry{prefix: hex.EncodeToString(b[:]), open: map[string]*tailEntry{}}
}

// add registers e under a new id, or fails when maxTails are open.
func (r *tailRegistry) add(e *tailEntry) (string, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := r.prefix + "-" + hex.EncodeToString(b[:])
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.open) >= maxTails {
		return "", toStatus(&kafkaio.Error{Kind: kafkaio.KindExhausted, Reason: ReasonTooManyTails, RetryAfter: time.Second,
			Message: fmt.Sprintf("the gateway holds %d tails, the most it allows at once: retry after the delay, or use another instance", maxTails)})
	}
	r.open[id] = e
	return id, nil
}

func (r *tailRegistry) remove(id string) {
	r.mu.Lock()
	delete(r.open, id)
	r.mu.Unlock()
}

func (r *tailRegistry) get(id string) *tailEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.open[id]
}

// authorizeOpen checks that the caller may open cfg.
func (s *SubscriberService) authorizeOpen(ctx context.Context, cfg kafkaio.SubscriptionConfig) error {
	for _, t := range cfg.Topics {
		if err := s.auth.authorize(ctx, ActionSubscribe, t, cfg.Group); err != nil {
			return toStatus(err)
		}
	}
	if cfg.Window.DeadLetterTopic != "" {
		if err := s.auth.authorize(ctx, ActionPublish, cfg.Window.DeadLetterTopic, ""); err != nil {
			return toStatus(err)
		}
	}
	return nil
}

// Tail implements kgate.v1.Subscriber/Tail.
func (s *SubscriberService) Tail(req *kgatev1.TailRequest, stream kgatev1.Subscriber_TailServer) error {
	ctx := stream.Context()
	open := req.GetOpen()
	if open == nil {
		return invalidf(ReasonInvalidSubOpen, "a Tail request needs `open` (topics, group, ...), as the first message of a Subscribe stream")
	}
	cfg, err := s.openConfig(ctx, open)
	if err != nil {
		return err
	}
	cfg.Client += " (Tail)"
	sub, err := s.sub.Subscribe(ctx, cfg)
	if err != nil {
		return toStatus(err)
	}
	defer sub.Close()
	id, err := s.tails.add(&tailEntry{sub: sub, principal: Principal(ctx), autoAck: open.GetAutoAck()})
	if err != nil {
		return err
	}
	defer s.tails.remove(id)
	s.metrics.stream("Tail", 1)
	defer s.metrics.stream("Tail", -1)
	defer s.metrics.groupStreamOpened(cfg.Group)()

	deadline := cfg.Window.AckDeadline
	if deadline == 0 {
		deadline = 30 * time.Second
	}
	if err := stream.Send(&kgatev1.TailResponse{Response: &kgatev1.TailResponse_Opened{Opened: &kgatev1.TailOpened{Tail: id, AckDeadline: durationpb.New(deadline)}}}); err != nil {
		return err
	}
	loopCtx, cancelLoop := context.WithCancelCause(ctx)
	defer cancelLoop(nil)
	stopOnShutdown := context.AfterFunc(s.stopping, func() { cancelLoop(errShuttingDown) })
	defer stopOnShutdown()

	snd := &sender{out: func(r *kgatev1.SubscribeResponse) error { return stream.Send(tailResponse(r)) }, batchMax: int(open.GetMaxMessagesPerResponse())}
	return s.deliver(ctx, loopCtx, sub, snd, open.GetAutoAck())
}

// tailResponse is a Subscribe response as a Tail sends it.
func tailResponse(r *kgatev1.SubscribeResponse) *kgatev1.TailResponse {
	switch v := r.GetResponse().(type) {
	case *kgatev1.SubscribeResponse_Message:
		return &kgatev1.TailResponse{Response: &kgatev1.TailResponse_Message{Message: v.Message}}
	case *kgatev1.SubscribeResponse_Messages:
		return &kgatev1.TailResponse{Response: &kgatev1.TailResponse_Messages{Messages: v.Messages}}
	case *kgatev1.SubscribeResponse_Assignment:
		return &kgatev1.TailResponse{Response: &kgatev1.TailResponse_Assignment{Assignment: v.Assignment}}
	}
	return &kgatev1.TailResponse{} // a tail never drains
}

// Ack implements kgate.v1.Subscriber/Ack.
func (s *SubscriberService) Ack(ctx context.Context, req *kgatev1.AckRequest) (*kgatev1.AckResponse, error) {
	id := req.GetTail()
	if id == "" {
		return nil, invalidArg("tail is empty: pass the id of TailOpened.tail, the first response of the Tail")
	}
	if n := len(req.GetAckIds()) + len(req.GetNackIds()); n > maxAckIDs {
		return nil, invalidf(ReasonTooManyAckIDs, "%d ack and nack ids in one call: send at most %d per call", n, maxAckIDs)
	}
	delay, useBackoff, err := nackDelay(req.GetNackDelay())
	if err != nil {
		return nil, err
	}
	e := s.tails.get(id)
	if e == nil {
		msg := "no open tail of this gateway has this id: it ended, and its records not acked are delivered again; open a new Tail"
		if !strings.HasPrefix(id, s.tails.prefix+"-") {
			msg = "no tail of this gateway instance has this id: it is served by another instance (send Ack to the instance that serves the Tail: the same connection, or sticky routing), or by this one before it restarted; open a new Tail if it ended"
		}
		return nil, toStatus(&kafkaio.Error{Kind: kafkaio.KindNotFound, Reason: ReasonUnknownTail, Message: msg})
	}
	if e.principal != Principal(ctx) {
		return nil, toStatus(&kafkaio.Error{Kind: kafkaio.KindPermission, Reason: ReasonNotAllowed,
			Message: fmt.Sprintf("the tail belongs to another principal than %s: ack with the principal that opened it", kafkaio.QuoteName(Principal(ctx)))})
	}
	if e.autoAck {
		return &kgatev1.AckResponse{}, nil // the gateway acks by itself
	}
	e.sub.Ack(ctx, req.GetAckIds())
	if len(req.GetNackIds()) > 0 {
		e.sub.Nack(ctx, req.GetNackIds(), delay, useBackoff)
	}
	return &kgatev1.AckResponse{}, nil
}
