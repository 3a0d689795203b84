package server_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/kafkatest"
	"github.com/kgate/kgate/kafkaio"
)

// owned follows a stream's assignment messages until it owns want
// partitions. Those already queued count first, so that a revocation
// that came since the last call is not overlooked.
func owned(t testing.TB, s *stream, want int, timeout time.Duration) map[string]bool {
	t.Helper()
	have := s.Own
	apply := func(a *kgatev1.Assignment) {
		for _, tp := range a.Assigned {
			have[fmt.Sprintf("%s/%d", tp.Topic, tp.Partition)] = true
		}
		for _, tp := range a.Revoked {
			delete(have, fmt.Sprintf("%s/%d", tp.Topic, tp.Partition))
		}
	}
	for len(s.Assigns) > 0 {
		apply(<-s.Assigns)
	}
	if len(have) == want {
		return have
	}
	deadline := time.After(timeout * timeoutScale)
	for {
		select {
		case a := <-s.Assigns:
			apply(a)
			if len(have) == want {
				return have
			}
		case <-deadline:
			t.Fatalf("stream owns %v, not %d partitions, after %v", have, want, timeout)
		}
	}
}

func TestSubscribeStreamsOfOneGroupSplitPartitionsAndGroupsEachGetAll(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "split", 4)
	gw := startGateway(t, kafkaProducer(brokers))
	g1, g2 := kafkatest.Name("g1"), kafkatest.Name("g2")

	a := openStream(t, gw, earliest([]string{topic}, g1))
	owned(t, a, 4, 30*time.Second)
	b := openStream(t, gw, earliest([]string{topic}, g1))
	owned(t, b, 2, 30*time.Second) // cooperative rebalance: b takes 2 of a's 4
	other := openStream(t, gw, earliest([]string{topic}, g2))
	owned(t, other, 4, 30*time.Second)

	publishN(t, gw, topic, 40, nil)
	var mu sync.Mutex
	got := map[string]string{}
	collect := func(name string, s *stream, n int) {
		for _, m := range s.NextN(n, 30*time.Second) {
			mu.Lock()
			if prev, dup := got[name+key(m)]; dup {
				t.Errorf("%s got %s twice (%s)", name, key(m), prev)
			}
			got[name+key(m)] = name
			mu.Unlock()
			s.Ack(m.AckId)
		}
	}
	collect("other", other, 40) // a second group gets every record
	// Group 1 streams together get every record once.
	total := 0
	deadline := time.Now().Add(30 * time.Second * timeoutScale)
	for total < 40 && time.Now().Before(deadline) {
		select {
		case m := <-a.Msgs:
			got["g1"+key(m)] = "a"
			a.Ack(m.AckId)
			total++
		case m := <-b.Msgs:
			got["g1"+key(m)] = "b"
			b.Ack(m.AckId)
			total++
		case <-time.After(100 * time.Millisecond):
		}
	}
	byStream := map[string]int{}
	for k, v := range got {
		if strings.HasPrefix(k, "g1") {
			byStream[v]++
		}
	}
	if total != 40 || byStream["a"] == 0 || byStream["b"] == 0 || byStream["a"]+byStream["b"] != 40 {
		t.Fatalf("group 1 got %d records (%v distinct by stream), want 40 split between both streams", total, byStream)
	}
}

func TestSubscribeRejectsBadOpensWithClearStatus(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "badopen", 1)
	gw := startGateway(t, kafkaProducer(brokers))
	ack := &kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Ack{Ack: &kgatev1.SubscribeAck{AckIds: []string{"1.0.1"}}}}
	for i, tc := range []struct {
		first    *kgatev1.SubscribeRequest
		wantCode codes.Code
		wantMsg  string
	}{
		0:  {ack, codes.InvalidArgument, "first message on a Subscribe stream must be `open`"},
		1:  {openReq(&kgatev1.SubscribeOpen{Topics: []string{topic}}), codes.InvalidArgument, "group is empty"},
		2:  {openReq(&kgatev1.SubscribeOpen{Group: "g"}), codes.InvalidArgument, "no topics"},
		3:  {openReq(&kgatev1.SubscribeOpen{Topics: []string{"bad topic"}, Group: "g"}), codes.InvalidArgument, "characters Kafka does not allow"},
		4:  {openReq(&kgatev1.SubscribeOpen{Topics: []string{kafkatest.Name("missing")}, Group: "g"}), codes.NotFound, "does not exist"},
		5:  {openReq(&kgatev1.SubscribeOpen{Topics: []string{topic}, Group: "g", MaxDeliveryAttempts: 3}), codes.InvalidArgument, "needs dead_letter_topic"},
		6:  {openReq(&kgatev1.SubscribeOpen{Topics: []string{topic}, Group: "g", AckDeadline: durationpb.New(time.Hour)}), codes.InvalidArgument, "ack_deadline"},
		7:  {openReq(&kgatev1.SubscribeOpen{Topics: []string{topic}, Group: "g", MaxOutstandingMessages: -1}), codes.InvalidArgument, "max_outstanding_messages"},
		8:  {openReq(&kgatev1.SubscribeOpen{Topics: []string{topic}, Group: "g", MinBackoff: durationpb.New(time.Minute), MaxBackoff: durationpb.New(time.Second)}), codes.InvalidArgument, "max_backoff"},
		9:  {openReq(&kgatev1.SubscribeOpen{Topics: []string{topic}, Group: "g", MaxMessagesPerResponse: 1001}), codes.InvalidArgument, "max_messages_per_response 1001 is out of range"},
		10: {openReq(&kgatev1.SubscribeOpen{Topics: []string{topic}, Group: "g", MaxMessagesPerResponse: -1}), codes.InvalidArgument, "max_messages_per_response"},
	} {
		s := openStream(t, gw, nil)
		s.Send(tc.first)
		err := s.WaitEnd(30 * time.Second)
		if st := status.Convert(err); st.Code() != tc.wantCode || !strings.Contains(st.Message(), tc.wantMsg) {
			t.Errorf("case %d: got %v %q, want %v saying %q", i, st.Code(), st.Message(), tc.wantCode, tc.wantMsg)
		}
	}

	// A second open on an open stream ends it.
	s := openStream(t, gw, earliest([]string{topic}, kafkatest.Name("g")))
	s.Send(openReq(earliest([]string{topic}, "other")))
	if st := status.Convert(s.WaitEnd(30 * time.Second)); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "already open") {
		t.Fatalf("second open: %v %q", st.Code(), st.Message())
	}
}

func openReq(o *kgatev1.SubscribeOpen) *kgatev1.SubscribeRequest {
	return &kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Open{Open: o}}
}

func TestSubscribeIgnoresBadAckIdsWithoutBreakingTheStream(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "badack", 1)
	gw := startGateway(t, kafkaProducer(brokers))
	publishN(t, gw, topic, 2, nil)
	group := kafkatest.Name("g")
	s := openStream(t, gw, earliest([]string{topic}, group))
	recs := s.NextN(2, 30*time.Second)
	s.Ack("", "garbage", "1.2", "9999.0.1", "1.zzzzzzzzzzzzzzzzzzzzzzzzz.1", "-1.0.1")
	s.Nack(nil, "garbage")
	s.Extend(time.Minute, "1.5.1")
	s.Ack(recs[0].AckId, recs[1].AckId)
	s.Ack(recs[0].AckId) // twice: ignored
	if err := s.End(30 * time.Second); err != nil {
		t.Fatalf("stream ended with %v, want OK", err)
	}
	if c := committed(t, brokers, group, topic); c[0] != 2 {
		t.Fatalf("committed %v, want 2", c)
	}
}

func TestSubscribeStreamEndLeavesGroupPromptly(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"cancel", "half-close"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			brokers := kafkatest.Brokers(t)
			topic := kafkatest.CreateTopic(t, brokers, "leave", 4)
			// A long session timeout: only an explicit LeaveGroup moves the
			// partitions within the test's bound.
			gw := startGateway(t, kafkaProducer(brokers), func(s *kafkaio.SubscriberConfig) {
				s.Kafka = map[string]string{"session.timeout.ms": "45000"}
			})
			group := kafkatest.Name("g")
			a := openStream(t, gw, earliest([]string{topic}, group))
			owned(t, a, 4, 30*time.Second)
			b := openStream(t, gw, earliest([]string{topic}, group))
			owned(t, b, 2, 30*time.Second)
			start := time.Now()
			if how == "cancel" {
				a.Cancel()
			} else if err := a.End(30 * time.Second); err != nil {
				t.Fatalf("half-close: %v", err)
			}
			owned(t, b, 4, 20*time.Second)
			t.Logf("%s: the other stream owned all partitions %v after the stream ended", how, time.Since(start))
		})
	}
}

func TestSubscribeGatewayShutdownEndsStreamsUnavailableAfterCommitting(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "shutdown", 1)
	gw := startGateway(t, kafkaProducer(brokers))
	publishN(t, gw, topic, 5, nil)
	group := kafkatest.Name("g")
	s := openStream(t, gw, earliest([]string{topic}, group))
	recs := s.NextN(5, 30*time.Second)
	s.Ack(recs[0].AckId, recs[1].AckId, recs[2].AckId)
	kafkatest.Eventually(t, 10*time.Second*timeoutScale, "acks reach the committed offset", func() bool {
		return committed(t, brokers, group, topic)[0] == 3
	})
	// As cmd/gateway shuts down: the group consumers commit and end their
	// streams, then the service refuses new ones.
	gw.ksub.Close(testContext(t, 20*time.Second))
	gw.subs.Shutdown()
	if st := status.Convert(s.WaitEnd(30 * time.Second)); st.Code() != codes.Unavailable {
		t.Fatalf("stream ended with %v %q, want Unavailable", st.Code(), st.Message())
	}
	if c := committed(t, brokers, group, topic); c[0] != 3 {
		t.Fatalf("committed %v after shutdown, want 3", c)
	}
}

// TestSubscribeSurvivesCommitFailuresAndMemberChurn publishes under load
// while streams join and leave the group and the broker fails offset
// commits; every record is received and acked at least once, the streams
// keep flowing, and the group finally commits everything.
func TestSubscribeSurvivesCommitFailuresAndMemberChurn(t *testing.T) {
	t.Parallel()
	c := kafkatest.Cluster(t, kfake.AllowAutoTopicCreation(), kfake.GroupMinSessionTimeout(time.Second))
	brokers := c.ListenAddrs()[0]
	topic := kafkatest.CreateTopic(t, brokers, "churn", 4)
	gw := startGateway(t, kafkaProducer(brokers), func(s *kafkaio.SubscriberConfig) {
		s.Kafka = map[string]string{"session.timeout.ms": "6000"}
	})

	var failed atomic.Int32
	c.ControlKey(int16(kmsg.OffsetCommit), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if failed.Load() >= 15 {
			return nil, nil, false
		}
		return kafkatest.FailedCommit(kr.(*kmsg.OffsetCommitRequest), int64(failed.Add(1))), nil, true
	})

	group := kafkatest.Name("g")
	var mu sync.Mutex
	received := map[string]int{}
	consume := func(ctx context.Context, s *stream) {
		for {
			select {
			case m := <-s.Msgs:
				mu.Lock()
				received[key(m)]++
				mu.Unlock()
				s.Ack(m.AckId)
			case <-ctx.Done():
				return
			case <-s.Done:
				return
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	steady := openStream(t, gw, earliest([]string{topic}, group))
	wg.Add(1)
	go func() { defer wg.Done(); consume(ctx, steady) }()

	// Publish 400 records in 20 batches while members come and go.
	var published []*kgatev1.PublishResult
	wg.Add(1)
	pubDone := make(chan struct{})
	go func() {
		defer wg.Done()
		defer close(pubDone)
		for i := 0; i < 20 && ctx.Err() == nil; i++ {
			res := publishN(t, gw, topic, 20, nil)
			mu.Lock()
			published = append(published, res...)
			mu.Unlock()
			time.Sleep(100 * time.Millisecond) // pacing the load, not synchronisation
		}
	}()
	for i := 0; i < 4; i++ {
		s := openStream(t, gw, earliest([]string{topic}, group))
		sctx, scancel := context.WithTimeout(ctx, 700*time.Millisecond)
		consume(sctx, s) // consume for a while as a member, then leave
		scancel()
		if i%2 == 0 {
			s.Cancel()
		} else {
			_ = s.End(30 * time.Second)
		}
	}
	<-pubDone
	kafkatest.Eventually(t, 60*time.Second*timeoutScale, "every published record is received and acked", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range published {
			if received[fmt.Sprintf("%d@%d", r.Partition, r.Offset)] == 0 {
				return false
			}
		}
		return len(published) == 400
	})
	ends := map[int32]int64{}
	mu.Lock()
	dups := 0
	for _, r := range published {
		ends[r.Partition] = max(ends[r.Partition], r.Offset+1)
		dups += received[fmt.Sprintf("%d@%d", r.Partition, r.Offset)] - 1
	}
	mu.Unlock()
	kafkatest.Eventually(t, 30*time.Second*timeoutScale, "the group commits every record", func() bool {
		return fmt.Sprint(committed(t, brokers, group, topic)) == fmt.Sprint(ends)
	})
	t.Logf("400 published, all received and committed; %d duplicate deliveries; %d commit requests failed by the broker", dups, failed.Load())
	if failed.Load() == 0 {
		t.Fatal("no commit failure was injected: the test did not test anything")
	}
}
