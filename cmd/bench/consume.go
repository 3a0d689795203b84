package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
)

// consumeStats is what a consumption run measured.
type consumeStats struct {
	unique, dup int64
	firstAfter  time.Duration // from opening the streams to the first record
	elapsed     time.Duration // from the first record to the n-th distinct one
	err         error
}

// seen tracks which records (partition, offset) arrived, to count
// redeliveries after rebalances separately.
type seen struct {
	mu    sync.Mutex
	parts map[int32][]bool
}

func (s *seen) add(p int32, off int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.parts[p]
	if int64(len(b)) <= off {
		nb := make([]bool, max(off+1, int64(2*len(b))))
		copy(nb, b)
		b = nb
		s.parts[p] = b
	}
	if b[off] {
		return false
	}
	b[off] = true
	return true
}

// subscribeN opens streams Subscribe streams in one new group on topic,
// from the earliest offset, over conns, and receives until n distinct
// records arrived. Each stream acks what it received in batches of
// ackBatch. With batch > 1 the streams ask for up to batch records per
// response (max_messages_per_response).
func subscribeN(ctx context.Context, conns []*grpc.ClientConn, topic string, streams, n, ackBatch, batch int) consumeStats {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	group := fmt.Sprintf("kgate-bench-%d", time.Now().UnixNano())
	sn := &seen{parts: map[int32][]bool{}}
	var unique, dup atomic.Int64
	var firstOnce, lastOnce sync.Once
	var first, last time.Time
	errs := make(chan error, streams)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := kgatev1.NewSubscriberClient(conns[i%len(conns)]).Subscribe(ctx)
			if err != nil {
				errs <- err
				return
			}
			open := &kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Open{Open: &kgatev1.SubscribeOpen{
				Topics: []string{topic}, Group: group, StartPosition: kgatev1.StartPosition_START_POSITION_EARLIEST,
				MaxMessagesPerResponse: int32(batch),
			}}}
			if err := st.Send(open); err != nil {
				errs <- err
				return
			}
			acks := make([]string, 0, ackBatch)
			for {
				resp, err := st.Recv()
				if err != nil {
					if ctx.Err() == nil {
						errs <- err
					}
					return
				}
				ms := resp.GetMessages().GetMessages()
				if m := resp.GetMessage(); m != nil {
					ms = []*kgatev1.ReceivedMessage{m}
				}
				for _, m := range ms {
					firstOnce.Do(func() { first = time.Now() })
					if sn.add(m.GetPartition(), m.GetOffset()) {
						if unique.Add(1) == int64(n) {
							lastOnce.Do(func() { last = time.Now() })
							cancel()
							return
						}
					} else {
						dup.Add(1)
					}
					acks = append(acks, m.GetAckId())
				}
				if len(acks) >= ackBatch {
					if err := st.Send(&kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Ack{Ack: &kgatev1.SubscribeAck{AckIds: acks}}}); err != nil {
						if ctx.Err() == nil {
							errs <- err
						}
						return
					}
					acks = acks[:0]
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	s := consumeStats{unique: unique.Load(), dup: dup.Load()}
	if !first.IsZero() {
		s.firstAfter = first.Sub(start)
	}
	if !last.IsZero() {
		s.elapsed = last.Sub(first)
	}
	for err := range errs {
		s.err = errors.Join(s.err, err)
	}
	if s.err == nil && s.unique < int64(n) {
		s.err = fmt.Errorf("only %d of %d records arrived: %v", s.unique, n, ctx.Err())
	}
	return s
}
