package gatewaytest

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
)

// Stream is a test client's Subscribe stream: one goroutine receives into
// channels that the test reads; the test acks, nacks and extends. Waits
// are stretched by TimeoutScale.
type Stream struct {
	t      testing.TB
	cl     kgatev1.Subscriber_SubscribeClient
	sendMu sync.Mutex

	// Cancel ends the stream from the client side.
	Cancel context.CancelFunc
	// Msgs receives every record, those of `messages` batches one by one.
	Msgs chan *kgatev1.ReceivedMessage
	// Assigns receives assignment changes; with 1000 unread, more are
	// dropped rather than stall the records.
	Assigns chan *kgatev1.Assignment
	// Done is closed when the stream ended; EndErr is then its end.
	Done   chan struct{}
	EndErr error
	// Own is the test's record of the partitions the stream owns.
	Own map[string]bool

	shapeMu sync.Mutex
	singles int   // records that came as `message`
	batches []int // sizes of the `messages` responses
}

// OpenStream opens a Subscribe stream and sends open unless it is nil. The
// stream is cancelled, and its receiver waited for, when the test ends;
// it ends by itself (DEADLINE_EXCEEDED) after two minutes.
func OpenStream(t testing.TB, sub kgatev1.SubscriberClient, open *kgatev1.SubscribeOpen) *Stream {
	t.Helper()
	return OpenStreamFor(t, sub, open, 120*time.Second)
}

// OpenStreamFor is OpenStream for a stream that ends by itself after life
// (stretched by TimeoutScale), for tests that run longer than two minutes.
func OpenStreamFor(t testing.TB, sub kgatev1.SubscriberClient, open *kgatev1.SubscribeOpen, life time.Duration) *Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), life*TimeoutScale)
	cl, err := sub.Subscribe(ctx)
	if err != nil {
		cancel()
		t.Fatalf("Subscribe: %v", err)
	}
	s := &Stream{t: t, cl: cl, Cancel: cancel, Msgs: make(chan *kgatev1.ReceivedMessage, 200000),
		Assigns: make(chan *kgatev1.Assignment, 1000), Done: make(chan struct{}), Own: map[string]bool{}}
	if open != nil {
		s.Send(&kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Open{Open: open}})
	}
	go s.receive()
	t.Cleanup(func() {
		cancel()
		<-s.Done
	})
	return s
}

func (s *Stream) receive() {
	defer close(s.Done)
	for {
		resp, err := s.cl.Recv()
		if err != nil {
			s.EndErr = err
			return
		}
		if m := resp.GetMessage(); m != nil {
			s.shapeMu.Lock()
			s.singles++
			s.shapeMu.Unlock()
			s.Msgs <- m
		} else if b := resp.GetMessages(); b != nil {
			s.shapeMu.Lock()
			s.batches = append(s.batches, len(b.GetMessages()))
			s.shapeMu.Unlock()
			for _, m := range b.GetMessages() {
				s.Msgs <- m
			}
		} else if a := resp.GetAssignment(); a != nil {
			select {
			case s.Assigns <- a:
			default:
			}
		}
	}
}

// Shape returns how many records came as single `message` responses, and
// the sizes of the `messages` batches, so far.
func (s *Stream) Shape() (singles int, batches []int) {
	s.shapeMu.Lock()
	defer s.shapeMu.Unlock()
	return s.singles, append([]int(nil), s.batches...)
}

// Send sends req; it fails the test on an error, unless the stream has
// ended (its end status is then what the test checks).
func (s *Stream) Send(req *kgatev1.SubscribeRequest) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if err := s.cl.Send(req); err != nil && !errors.Is(err, io.EOF) {
		select {
		case <-s.Done:
		default:
			s.t.Errorf("Send: %v", err)
		}
	}
}

// Ack acks ids.
func (s *Stream) Ack(ids ...string) {
	s.Send(&kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Ack{Ack: &kgatev1.SubscribeAck{AckIds: ids}}})
}

// Nack nacks ids, to come again after delay (nil: the stream's default).
func (s *Stream) Nack(delay *durationpb.Duration, ids ...string) {
	s.Send(&kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Nack{Nack: &kgatev1.SubscribeNack{AckIds: ids, Delay: delay}}})
}

// Extend moves the ack deadline of ids to d from now.
func (s *Stream) Extend(d time.Duration, ids ...string) {
	s.Send(&kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Extend{Extend: &kgatev1.SubscribeExtend{AckIds: ids, Deadline: durationpb.New(d)}}})
}

// Next returns the next record, failing the test after timeout.
func (s *Stream) Next(timeout time.Duration) *kgatev1.ReceivedMessage {
	s.t.Helper()
	select {
	case m := <-s.Msgs:
		return m
	case <-s.Done:
		s.t.Fatalf("stream ended while waiting for a record: %v", s.EndErr)
	case <-time.After(timeout * TimeoutScale):
		s.t.Fatalf("no record within %v", timeout)
	}
	return nil
}

// NextN returns the next n records, failing the test after timeout.
func (s *Stream) NextN(n int, timeout time.Duration) []*kgatev1.ReceivedMessage {
	s.t.Helper()
	out := make([]*kgatev1.ReceivedMessage, 0, n)
	deadline := time.After(timeout * TimeoutScale)
	for len(out) < n {
		select {
		case m := <-s.Msgs:
			out = append(out, m)
		case <-s.Done:
			s.t.Fatalf("stream ended after %d of %d records: %v", len(out), n, s.EndErr)
		case <-deadline:
			s.t.Fatalf("got %d of %d records within %v", len(out), n, timeout)
		}
	}
	return out
}

// None checks that no record arrives for d: for tests where "nothing more
// comes" is the behaviour under test, after everything expected arrived.
func (s *Stream) None(d time.Duration) {
	s.t.Helper()
	select {
	case m := <-s.Msgs:
		s.t.Fatalf("unexpected record %s/%d@%d attempt %d", m.Topic, m.Partition, m.Offset, m.DeliveryAttempt)
	case <-time.After(d):
	}
}

// End half-closes the stream and returns how it ended (nil for OK).
func (s *Stream) End(timeout time.Duration) error {
	s.t.Helper()
	s.sendMu.Lock()
	_ = s.cl.CloseSend()
	s.sendMu.Unlock()
	return s.WaitEnd(timeout)
}

// WaitEnd waits for the stream to end and returns how (nil for OK).
func (s *Stream) WaitEnd(timeout time.Duration) error {
	s.t.Helper()
	select {
	case <-s.Done:
	case <-time.After(timeout * TimeoutScale):
		s.t.Fatalf("stream did not end within %v", timeout)
	}
	if errors.Is(s.EndErr, io.EOF) {
		return nil
	}
	return s.EndErr
}
