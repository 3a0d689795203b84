package server

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/kgate/kgate/flowcontrol"
	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/kafkaio"
)

// fakeSubscription is a Subscription whose events the test feeds, and
// which records what the handler asked of it: the session's side of the
// Subscribe handler, tested without Kafka.
type fakeSubscription struct {
	events chan []kafkaio.Event
	end    chan error // what Next returns once events is drained

	mu      sync.Mutex
	acked   []string
	nacked  []string
	drained bool
	closed  bool
	cfg     kafkaio.SubscriptionConfig

	drainCalled chan struct{} // closed by the first Drain, if not nil
}

func (f *fakeSubscription) Next(ctx context.Context) ([]kafkaio.Event, error) {
	select {
	case evs := <-f.events:
		return evs, nil
	case err := <-f.end:
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (f *fakeSubscription) Ack(_ context.Context, ids []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acked = append(f.acked, ids...)
}

func (f *fakeSubscription) Nack(_ context.Context, ids []string, _ time.Duration, _ bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nacked = append(f.nacked, ids...)
}

func (f *fakeSubscription) Extend(context.Context, []string, time.Duration) {}

func (f *fakeSubscription) Drain(context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.drained && f.drainCalled != nil {
		close(f.drainCalled)
	}
	f.drained = true
}

func (f *fakeSubscription) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
}

func reasonOfStatus(st *status.Status) string {
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei.Reason
		}
	}
	return ""
}

// fakeSubscriber hands out one fakeSubscription.
type fakeSubscriber struct{ sub *fakeSubscription }

func (f fakeSubscriber) Subscribe(_ context.Context, cfg kafkaio.SubscriptionConfig) (Subscription, error) {
	f.sub.mu.Lock()
	f.sub.cfg = cfg
	f.sub.mu.Unlock()
	return f.sub, nil
}

// TestSubscribeHandlerOverAFakeSubscription runs the Subscribe handler
// over bufconn against a fake subscription: the open reaches the
// subscriber as configured, events are sent in order (an assignment, a
// batch of records, the drain's end), auto-ack acks what was sent, drain
// reaches the subscription, and the subscriber's shutdown ends the stream
// with UNAVAILABLE GATEWAY_SHUTTING_DOWN after the subscription is closed.
func TestSubscribeHandlerOverAFakeSubscription(t *testing.T) {
	fake := &fakeSubscription{events: make(chan []kafkaio.Event, 4), end: make(chan error, 1), drainCalled: make(chan struct{})}
	subs := NewSubscriberService(fakeSubscriber{fake}, nil, nil)
	pubs := NewPublisherService(nil, nil)
	gs := NewGRPCServer(Config{Publisher: pubs, Subscriber: subs, Health: health.NewServer()})
	lis := bufconn.Listen(1 << 20)
	served := make(chan struct{})
	go func() { defer close(served); _ = gs.Serve(lis) }()
	defer func() { gs.Stop(); <-served; subs.Wait() }()
	conn, err := grpc.NewClient("passthrough:///bufconn", grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := kgatev1.NewSubscriberClient(conn).Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	open := &kgatev1.SubscribeOpen{Topics: []string{"t"}, Group: "g", Ordering: kgatev1.Ordering_ORDERING_KEY, AutoAck: true, MaxMessagesPerResponse: 10}
	if err := st.Send(&kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Open{Open: open}}); err != nil {
		t.Fatal(err)
	}
	tp := kafkaio.TopicPartition{Topic: "t", Partition: 0}
	fake.events <- []kafkaio.Event{{Assigned: []kafkaio.TopicPartition{tp}}}
	fake.events <- []kafkaio.Event{{Record: &kafkaio.Record{AckID: "1.0.1", Topic: "t", Value: []byte("a")}}, {Record: &kafkaio.Record{AckID: "1.1.1", Topic: "t", Offset: 1, Value: []byte("b")}}}
	recv := func() *kgatev1.SubscribeResponse {
		t.Helper()
		resp, err := st.Recv()
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		return resp
	}
	if a := recv().GetAssignment(); len(a.GetAssigned()) != 1 || a.GetAssigned()[0].GetTopic() != "t" {
		t.Fatalf("first response %v, want the assignment", a)
	}
	if ms := recv().GetMessages().GetMessages(); len(ms) != 2 || ms[0].GetAckId() != "1.0.1" || ms[1].GetOffset() != 1 {
		t.Fatalf("second response %v, want both records in one batch", ms)
	}
	if err := st.Send(&kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Drain{Drain: &kgatev1.SubscribeDrain{}}}); err != nil {
		t.Fatal(err)
	}
	// The subscription reports the drain's end only after the handler
	// asked it to drain; feeding the event sooner would let the handler
	// send it before it read the client's request.
	select {
	case <-fake.drainCalled:
	case <-ctx.Done():
		t.Fatal("the client's drain never reached the subscription")
	}
	fake.events <- []kafkaio.Event{{Drained: true}}
	if recv().GetDrained() == nil {
		t.Fatal("third response is not drained")
	}
	fake.end <- kafkaio.ErrSubscriberClosed
	_, err = st.Recv()
	st2 := status.Convert(err)
	if st2.Code() != codes.Unavailable || reasonOfStatus(st2) != kafkaio.ReasonClosed {
		t.Fatalf("the stream ended with %v (reason %q), want UNAVAILABLE %s", err, reasonOfStatus(st2), kafkaio.ReasonClosed)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if fake.cfg.Ordering != flowcontrol.OrderKey || fake.cfg.Group != "g" || fake.cfg.Client == "" {
		t.Errorf("the subscriber got %+v", fake.cfg)
	}
	if !slices.Equal(fake.acked, []string{"1.0.1", "1.1.1"}) || len(fake.nacked) != 0 {
		t.Errorf("acked %v, nacked %v: want the two records auto-acked once sent", fake.acked, fake.nacked)
	}
	if !fake.drained || !fake.closed {
		t.Errorf("drained %v, closed %v: want both", fake.drained, fake.closed)
	}
}
