package kafkaio

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/kgate/kgate/flowcontrol"
)

// TopicPartition names one partition of a topic.
type TopicPartition = flowcontrol.TopicPartition

// Record is one Kafka record delivered to a session.
type Record struct {
	AckID     string
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []Header
	Timestamp time.Time
	// Attempt is 1 for the first delivery, counted per record by the
	// group's consumer on this gateway (and from 2 for records an earlier
	// consumer of the group had delivered).
	Attempt int32
}

// Event is what a Session hands to its stream: a record, a change of the
// partitions it serves, or the end of a drain.
type Event struct {
	Record   *Record
	Assigned []TopicPartition
	Revoked  []TopicPartition
	// Drained: every record handed to the session before Drain has been
	// returned by Next; no more will come.
	Drained bool
}

// ErrSubscriberClosed is returned by Next when the gateway shuts down.
var ErrSubscriberClosed = errors.New("the gateway's subscriber is closed")

// Session is one Subscribe stream's attachment to its group's consumer. The
// consumer hands it records while its window has room; the stream takes
// them with Next and answers with Ack, Nack and Extend.
//
// All methods are safe for concurrent use; Next is meant for one reader.
// Close detaches the session: the records it had and did not ack go to the
// group's other sessions.
type Session struct {
	g      *groupConsumer
	id     flowcontrol.SessionID
	cfg    flowcontrol.SessionConfig
	client string // SubscriptionConfig.Client

	mu     sync.Mutex
	events []outItem
	sent   []*flowcontrol.Entry // handed out by Next, not yet reported to the owner
	sentAt time.Time
	err    error         // set when the session was ended by the consumer
	sig    chan struct{} // cap 1: events or err

	out []Event // what Next returned last, reused by the next Next (its one reader)

	closeOnce sync.Once
}

// outItem is one event queued for the session; entry (records only) is
// the owner's, never read by the session's goroutines.
type outItem struct {
	ev    Event
	entry *flowcontrol.Entry
}

// Next blocks until the session has events and returns them in order. It
// returns an error when ctx is done, when the gateway shuts down
// (ErrSubscriberClosed), or when the group's consumer failed. The slice
// returned is valid until the next call: Next reuses it, so that a stream
// taking a few hundred records at a time does not allocate as much again.
func (s *Session) Next(ctx context.Context) ([]Event, error) {
	for {
		s.mu.Lock()
		if len(s.events) > 0 {
			n := len(s.events)
			if n < len(s.out) {
				clear(s.out[n:]) // no stale records held
			}
			evs := slices.Grow(s.out[:0], n)[:n]
			s.out = evs
			first := len(s.sent) == 0
			for i, it := range s.events {
				evs[i] = it.ev
				if it.entry != nil {
					s.sent = append(s.sent, it.entry)
				}
			}
			clear(s.events)
			s.events = s.events[:0]
			if first && len(s.sent) > 0 {
				s.sentAt = time.Now()
			}
			s.mu.Unlock()
			if first {
				s.g.noteSent(s)
			}
			return evs, nil
		}
		err := s.err
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		select {
		case <-s.sig:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// push queues items for Next (owner goroutine).
func (s *Session) push(items ...outItem) {
	s.mu.Lock()
	s.events = append(s.events, items...)
	s.mu.Unlock()
	s.signal()
}

func (s *Session) signal() {
	select {
	case s.sig <- struct{}{}:
	default:
	}
}

// end makes Next return err once the queued events are taken (owner
// goroutine, or the registry at shutdown).
func (s *Session) end(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	s.signal()
}

// takeSent returns the entries Next handed out since the last call, and
// when (owner goroutine).
func (s *Session) takeSent() ([]*flowcontrol.Entry, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out, at := s.sent, s.sentAt
	s.sent = nil
	return out, at
}

// pullBack removes the queued (not yet taken) records that match, and
// returns their entries (owner goroutine).
func (s *Session) pullBack(match func(*flowcontrol.Entry) bool) []*flowcontrol.Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	var back []*flowcontrol.Entry
	w := 0
	for _, it := range s.events {
		if it.entry != nil && match(it.entry) {
			back = append(back, it.entry)
			continue
		}
		s.events[w] = it
		w++
	}
	clear(s.events[w:])
	s.events = s.events[:w]
	return back
}

// Ack acknowledges deliveries by ack id. Malformed, unknown and stale ids
// are ignored and counted. It blocks only while the consumer's owner
// goroutine is busy, and returns early when ctx is done or the consumer
// stopped.
func (s *Session) Ack(ctx context.Context, ids []string) {
	s.g.send(ctx, command{kind: cmdAck, sess: s, ids: s.g.parse(ids)})
}

// Nack asks for redelivery after delay, or after the session's backoff when
// useBackoff is set.
func (s *Session) Nack(ctx context.Context, ids []string, delay time.Duration, useBackoff bool) {
	s.g.send(ctx, command{kind: cmdNack, sess: s, ids: s.g.parse(ids), d: delay, useBackoff: useBackoff})
}

// Extend sets the deadline of deliveries to d from now.
func (s *Session) Extend(ctx context.Context, ids []string, d time.Duration) {
	s.g.send(ctx, command{kind: cmdExtend, sess: s, ids: s.g.parse(ids), d: d})
}

// Drain stops handing records to the session: those queued and not yet
// returned by Next go to the group's other sessions, and Next then returns
// an Event with Drained set. Records already returned can still be acked.
func (s *Session) Drain(ctx context.Context) {
	s.g.send(ctx, command{kind: cmdDrain, sess: s})
}

// Close detaches the session from its group's consumer: records it had and
// did not ack are delivered to the group's other sessions (or after a
// reconnect), those queued and not returned by Next go to them as they
// were. It waits until the consumer applied it and committed what the
// session acked (at most 5 s for the commit), or stopped. Safe to call
// more than once.
func (s *Session) Close() {
	s.closeOnce.Do(func() {
		done := make(chan struct{})
		var committed <-chan struct{}
		s.g.send(context.Background(), command{kind: cmdDetach, sess: s, done: done, committed: &committed})
		select {
		case <-done:
			t := time.NewTimer(revokeCommitWait)
			defer t.Stop()
			select { // the commit of what the stream acked
			case <-committed:
			case <-t.C:
			case <-s.g.done:
			}
		case <-s.g.done:
		}
		s.g.sub.detached(s.g)
	})
}
