package server_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kgate/kgate/flowcontrol"
	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/kafkatest"
	"github.com/kgate/kgate/kafkaio"
)

// metric returns the sum of a metric's samples whose labels contain every
// one of labels.
func metric(t testing.TB, gw *gateway, name string, labels ...string) float64 {
	t.Helper()
	n, _ := sum(gatherSamples(t, gw), name, labels...)
	return n
}

// publishKeyed publishes n records with keys k0..k(keys-1) in turn and
// values "v<i>".
func publishKeyed(t testing.TB, gw *gateway, topic string, n, keys int) {
	t.Helper()
	req := &kgatev1.PublishRequest{Topic: topic}
	for i := 0; i < n; i++ {
		req.Messages = append(req.Messages, &kgatev1.Message{Key: []byte("k" + strconv.Itoa(i%keys)), Value: []byte("v" + strconv.Itoa(i))})
	}
	if _, err := gw.pub.Publish(testContext(t, 30*time.Second), req); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

// reported returns what the gateway's consumer of group last reported of
// itself, if it has one.
func reported(gw *gateway, group string) (kafkaio.GroupInfo, bool) {
	for _, info := range gw.ksub.Groups() {
		if info.Group == group {
			return info, true
		}
	}
	return kafkaio.GroupInfo{}, false
}

func ordered(open *kgatev1.SubscribeOpen, o kgatev1.Ordering) *kgatev1.SubscribeOpen {
	open.Ordering = o
	return open
}

// TestSubscribeStreamsShareOneConsumerAndChurnCausesNoRebalance opens and
// closes streams of one group on one gateway: the group has one Kafka
// member throughout, Kafka assigns its partitions once, the partitions
// move between the streams locally, and every record is delivered with
// nothing acked delivered again.
func TestSubscribeStreamsShareOneConsumerAndChurnCausesNoRebalance(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "shared", 4)
	gw := startGateway(t, kafkaProducer(brokers))
	group := kafkatest.Name("g")
	a := openStream(t, gw, earliest([]string{topic}, group))
	owned(t, a, 4, 30*time.Second)
	acked := map[string]bool{}
	var streams []*stream
	for i := 0; i < 5; i++ {
		s := openStream(t, gw, earliest([]string{topic}, group))
		streams = append(streams, s)
		publishN(t, gw, topic, 20, nil)
		// Read what came to any stream, ack it, then end one stream.
		deadline := time.After(30 * time.Second * timeoutScale)
		for got := 0; got < 20; {
			var m *kgatev1.ReceivedMessage
			var from *stream
			select {
			case m = <-a.Msgs:
				from = a
			case m = <-s.Msgs:
				from = s
			case <-deadline:
				t.Fatalf("round %d: %d of 20 records", i, got)
			}
			for j, o := range streams[:len(streams)-1] {
				if len(o.Msgs) > 0 {
					t.Fatalf("stream %d got a record after it ended", j)
				}
			}
			if acked[key(m)] {
				t.Fatalf("record %s acked and delivered again (attempt %d)", key(m), m.DeliveryAttempt)
			}
			acked[key(m)] = true
			from.Ack(m.AckId)
			got++
		}
		if i%2 == 0 {
			// A cancelled stream's acks still in flight are lost (and their
			// records delivered again): wait until the gateway has them.
			kafkatest.Eventually(t, 10*time.Second*timeoutScale, "the acks are committed", func() bool {
				n := 0
				for _, off := range committed(t, brokers, group, topic) {
					n += int(off)
				}
				return n == 20*(i+1)
			})
			s.Cancel()
		} else if err := s.End(30 * time.Second); err != nil {
			t.Fatalf("half-close: %v", err)
		}
		owned(t, a, 4, 30*time.Second) // the partitions come back to a
	}
	if n := metric(t, gw, "kgate_subscribe_rebalances_total", `group="`+group+`"`); n != 1 {
		t.Errorf("%v Kafka rebalances assigned partitions to the gateway; want 1 (streams opening and ending cause none)", n)
	}
	groups, err := kadm.NewClient(kafkatest.Client(t, brokers)).DescribeGroups(testContext(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	if g := groups[group]; len(g.Members) != 1 {
		t.Errorf("group %s has %d members, want the gateway's one consumer", group, len(g.Members))
	}
	// What the gateway reports of the group: one stream serving all four
	// partitions, everything acked.
	kafkatest.Eventually(t, 10*time.Second*timeoutScale, "the group's report shows its one stream", func() bool {
		info, ok := reported(gw, group)
		return ok && len(info.Sessions) == 1 && len(info.Sessions[0].Partitions) == 4 && len(info.Partitions) == 4 &&
			info.HeldRecords == 0 && strings.HasPrefix(info.Sessions[0].Client, "anonymous@127.0.0.1:")
	})
}

// TestSubscribeOrderingWithMoreStreamsThanPartitions runs each ordering
// with 5 streams on 2 partitions, the streams acking after a short delay.
// Under key and none every stream gets records; under partition at most
// two do. Order holds per partition (partition) or per key (key): a
// record comes only after the previous one of its partition or key was
// acked. Every record is delivered once (no nacks, no ends).
func TestSubscribeOrderingWithMoreStreamsThanPartitions(t *testing.T) {
	t.Parallel()
	for _, o := range []kgatev1.Ordering{kgatev1.Ordering_ORDERING_PARTITION, kgatev1.Ordering_ORDERING_KEY, kgatev1.Ordering_ORDERING_NONE} {
		t.Run(o.String(), func(t *testing.T) {
			t.Parallel()
			brokers := kafkatest.Brokers(t)
			topic := kafkatest.CreateTopic(t, brokers, "order", 2)
			gw := startGateway(t, kafkaProducer(brokers))
			group := kafkatest.Name("g")
			const n, keys = 300, 12
			var mu sync.Mutex
			var violations []string
			got := map[string]int{}        // p@off -> deliveries
			holding := map[string]string{} // key ordering: partition/key -> record sent and not acked
			last := map[string]int64{}     // partition or partition/key -> last offset delivered
			streamOf := map[int32]int{}    // partition ordering: the stream a partition's records go to
			perStream := make([]int, 5)
			violate := func(format string, args ...any) { violations = append(violations, fmt.Sprintf(format, args...)) }
			var wg sync.WaitGroup
			ctx, cancel := context.WithCancel(context.Background())
			defer func() { cancel(); wg.Wait() }()
			for i := range perStream {
				open := earliest([]string{topic}, group)
				open.MaxOutstandingMessages = 4
				s := openStream(t, gw, ordered(open, o))
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case m := <-s.Msgs:
							k := fmt.Sprintf("%d/%s", m.Partition, m.Key)
							mu.Lock()
							got[key(m)]++
							perStream[i]++
							switch o {
							case kgatev1.Ordering_ORDERING_PARTITION:
								if st, seen := streamOf[m.Partition]; seen && st != i {
									violate("partition %d went to streams %d and %d", m.Partition, st, i)
								}
								streamOf[m.Partition] = i
								k = fmt.Sprint(m.Partition)
							case kgatev1.Ordering_ORDERING_KEY:
								if h, busy := holding[k]; busy {
									violate("%s came while %s of key %s was unacked", key(m), h, k)
								}
								holding[k] = key(m)
							}
							if prev, seen := last[k]; o != kgatev1.Ordering_ORDERING_NONE && seen && prev >= m.Offset {
								violate("%s came after offset %d of %s", key(m), prev, k)
							}
							last[k] = m.Offset
							mu.Unlock()
							time.Sleep(time.Millisecond) // processing
							mu.Lock()
							delete(holding, k)
							mu.Unlock()
							s.Ack(m.AckId)
						case <-ctx.Done():
							return
						case <-s.Done:
							return
						}
					}
				}()
			}
			// All five streams attached before the records: under partition
			// ordering a stream that attached later may rightly take a
			// partition over, and under key and none it might find no work.
			kafkatest.Eventually(t, 30*time.Second*timeoutScale, "the group's five streams attached", func() bool {
				info, ok := reported(gw, group)
				return ok && len(info.Sessions) == len(perStream)
			})
			publishKeyed(t, gw, topic, n, keys)
			kafkatest.Eventually(t, 60*time.Second*timeoutScale, "every record delivered", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(got) == n
			})
			mu.Lock()
			defer mu.Unlock()
			for k, c := range got {
				if c != 1 {
					t.Errorf("record %s delivered %d times", k, c)
				}
			}
			if len(violations) > 0 {
				t.Errorf("%d order violations, e.g. %v", len(violations), violations[0])
			}
			busy := 0
			for _, c := range perStream {
				if c > 0 {
					busy++
				}
			}
			switch {
			case o == kgatev1.Ordering_ORDERING_PARTITION && busy > 2:
				t.Errorf("%d streams got records, want at most one per partition: %v", busy, perStream)
			case o != kgatev1.Ordering_ORDERING_PARTITION && busy != len(perStream):
				t.Errorf("records per stream %v: every stream must get work", perStream)
			}
			t.Logf("%s: records per stream %v", o, perStream)
		})
	}
}

// TestSubscribeAcksAboveAGapSurviveARestart acks every record but one and
// stops the gateway; a new gateway of the same group delivers only that
// one again: the acks above it travelled in the commit's metadata.
func TestSubscribeAcksAboveAGapSurviveARestart(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "gap", 1)
	gw := startGateway(t, kafkaProducer(brokers))
	publishN(t, gw, topic, 1001, nil)
	group := kafkatest.Name("g")
	s := openStream(t, gw, earliest([]string{topic}, group))
	var ids []string
	for _, m := range s.NextN(1001, 60*time.Second) {
		if m.Offset != 1 {
			ids = append(ids, m.AckId)
		}
	}
	s.Ack(ids...)
	kafkatest.Eventually(t, 20*time.Second*timeoutScale, "the commit at offset 1 carries the acks above it", func() bool {
		offs, err := kadm.NewClient(kafkatest.Client(t, brokers)).FetchOffsetsForTopics(testContext(t, 10*time.Second), group, topic)
		if err != nil {
			return false
		}
		o, ok := offs.Lookup(topic, 0)
		if !ok || o.At != 1 {
			return false
		}
		m, err := flowcontrol.DecodeCommitMetadata(1, o.Metadata)
		return err == nil && len(m.Acked) == 1 && m.Acked[0] == flowcontrol.OffsetRange{Start: 2, End: 1001}
	})
	gw.ksub.Close(testContext(t, 20*time.Second)) // the gateway stops

	gw2 := startGateway(t, kafkaProducer(brokers))
	s2 := openStream(t, gw2, earliest([]string{topic}, group))
	m := s2.Next(30 * time.Second)
	if m.Offset != 1 || m.DeliveryAttempt != 2 {
		t.Fatalf("after the restart: offset %d attempt %d, want offset 1 at attempt 2", m.Offset, m.DeliveryAttempt)
	}
	s2.None(2 * time.Second)
	s2.Ack(m.AckId)
	kafkatest.Eventually(t, 20*time.Second*timeoutScale, "the group commits the end", func() bool {
		return committed(t, brokers, group, topic)[0] == 1001
	})
	// Both gateways of this test have the same instance name (the test's):
	// the second knows the record from its own earlier commit.
	if n := metric(t, gw2, "kgate_subscribe_redeliveries_total", `reason="restart"`); n != 1 {
		t.Errorf("redeliveries{reason=restart} = %v, want 1", n)
	}
}

// TestSubscribeSharesOneWindowFairlyBetweenPartitions fills three
// partitions with a backlog and reads them with one stream of window 300:
// every partition is delivered among the first three windows' worth of
// records, instead of one partition's backlog first.
func TestSubscribeSharesOneWindowFairlyBetweenPartitions(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "fair", 3)
	gw := startGateway(t, kafkaProducer(brokers))
	for p := int32(0); p < 3; p++ {
		for i := 0; i < 4; i++ {
			publishN(t, gw, topic, 1000, &p)
		}
	}
	open := earliest([]string{topic}, kafkatest.Name("g"))
	open.MaxOutstandingMessages = 300
	open.MaxMessagesPerResponse = 100
	s := openStream(t, gw, open)
	first := map[int32]int{}
	for i := 0; i < 900; i++ {
		m := s.Next(30 * time.Second)
		if _, ok := first[m.Partition]; !ok {
			first[m.Partition] = i
		}
		s.Ack(m.AckId)
	}
	if len(first) != 3 {
		t.Fatalf("partitions delivered among the first 900 records: %v, want all three", first)
	}
	t.Logf("position of each partition's first record: %v", first)
}

// TestSubscribeStreamEndHandsItsRecordsToAnotherStream: a stream that ends
// with records unacked gives them to the group's other stream on the
// gateway, at once, with their true delivery attempt, counted as revoked.
func TestSubscribeStreamEndHandsItsRecordsToAnotherStream(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "handoff", 1)
	gw := startGateway(t, kafkaProducer(brokers))
	group := kafkatest.Name("g")
	publishN(t, gw, topic, 3, nil)
	a := openStream(t, gw, ordered(earliest([]string{topic}, group), kgatev1.Ordering_ORDERING_NONE))
	a.NextN(3, 30*time.Second)
	b := openStream(t, gw, ordered(earliest([]string{topic}, group), kgatev1.Ordering_ORDERING_NONE))
	a.Cancel()
	for _, m := range b.NextN(3, 30*time.Second) {
		if m.DeliveryAttempt != 2 {
			t.Errorf("%s came with attempt %d, want 2", key(m), m.DeliveryAttempt)
		}
		b.Ack(m.AckId)
	}
	if n := metric(t, gw, "kgate_subscribe_redeliveries_total", `group="`+group+`"`, `reason="revoked"`); n != 3 {
		t.Errorf("redeliveries{reason=revoked} = %v, want 3", n)
	}
}

// TestSubscribeReconnectWithinTheLingerFindsItsRecords: the last stream of
// a group ends and a new one opens within the linger: no Kafka rebalance,
// and the unacked records come with their true attempt.
func TestSubscribeReconnectWithinTheLingerFindsItsRecords(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "linger", 2)
	gw := startGateway(t, kafkaProducer(brokers))
	group := kafkatest.Name("g")
	publishN(t, gw, topic, 4, nil)
	a := openStream(t, gw, earliest([]string{topic}, group))
	recs := a.NextN(4, 30*time.Second)
	a.Ack(recs[0].AckId)
	if err := a.End(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	b := openStream(t, gw, earliest([]string{topic}, group))
	for _, m := range b.NextN(3, 30*time.Second) {
		if m.DeliveryAttempt != 2 || key(m) == key(recs[0]) {
			t.Errorf("after the reconnect: %s attempt %d", key(m), m.DeliveryAttempt)
		}
	}
	if n := metric(t, gw, "kgate_subscribe_rebalances_total", `group="`+group+`"`); n != 1 {
		t.Errorf("%v Kafka rebalances, want 1: a reconnect within the linger rejoins nothing", n)
	}
}

// TestSubscribeDrainLeavesWithoutRedeliveries: a stream that drains, acks
// what it has and half-closes causes no redelivery; what was queued for it
// goes to the other stream as first deliveries.
func TestSubscribeDrainLeavesWithoutRedeliveries(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "drain", 2)
	gw := startGateway(t, kafkaProducer(brokers))
	group := kafkatest.Name("g")
	publishN(t, gw, topic, 200, nil)
	openA := ordered(earliest([]string{topic}, group), kgatev1.Ordering_ORDERING_NONE)
	openA.MaxOutstandingMessages = 50
	a := openStream(t, gw, openA)
	got := map[string]int{}
	for _, m := range a.NextN(10, 30*time.Second) {
		got[key(m)]++
		a.Ack(m.AckId)
	}
	// b opens once a has records, so that a cannot find b holding them all.
	b := openStream(t, gw, ordered(earliest([]string{topic}, group), kgatev1.Ordering_ORDERING_NONE))
	a.Send(&kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Drain{Drain: &kgatev1.SubscribeDrain{}}})
	// Records may still arrive until Drained; then none.
	var ids []string
	for drained := false; !drained; {
		select {
		case m := <-a.Msgs:
			got[key(m)]++
			ids = append(ids, m.AckId)
		case <-a.Drained:
			// Every record sent before the drain's answer is queued
			// already; the select may have picked this case first.
			for len(a.Msgs) > 0 {
				m := <-a.Msgs
				got[key(m)]++
				ids = append(ids, m.AckId)
			}
			drained = true
		case <-time.After(30 * time.Second * timeoutScale):
			t.Fatal("no drained")
		}
	}
	a.Ack(ids...)
	if err := a.End(30 * time.Second); err != nil {
		t.Fatalf("half-close after drain: %v", err)
	}
	deadline := time.After(30 * time.Second * timeoutScale)
	for len(got) < 200 {
		select {
		case m := <-b.Msgs:
			got[key(m)]++
			b.Ack(m.AckId)
		case <-deadline:
			t.Fatalf("%d of 200 records", len(got))
		}
	}
	for k, n := range got {
		if n != 1 {
			t.Errorf("record %s delivered %d times", k, n)
		}
	}
	if n := metric(t, gw, "kgate_subscribe_redeliveries_total", `group="`+group+`"`); n != 0 {
		t.Errorf("%v redeliveries after a drain, want 0", n)
	}
}

// TestSubscribeOrderingMismatchIsFailedPrecondition: a second stream of a
// group asking for another ordering is refused with a reason.
func TestSubscribeOrderingMismatchIsFailedPrecondition(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "mismatch", 1)
	gw := startGateway(t, kafkaProducer(brokers))
	group := kafkatest.Name("g")
	a := openStream(t, gw, ordered(earliest([]string{topic}, group), kgatev1.Ordering_ORDERING_KEY))
	owned(t, a, 1, 30*time.Second)
	b := openStream(t, gw, ordered(earliest([]string{topic}, group), kgatev1.Ordering_ORDERING_NONE))
	st := status.Convert(b.WaitEnd(30 * time.Second))
	if st.Code() != codes.FailedPrecondition || reasonOf(st.Err()) != "ORDERING_MISMATCH" {
		t.Fatalf("got %v %q (reason %q), want FailedPrecondition ORDERING_MISMATCH", st.Code(), st.Message(), reasonOf(st.Err()))
	}
	c := openStream(t, gw, earliest([]string{topic}, group)) // unspecified is partition
	if st := status.Convert(c.WaitEnd(30 * time.Second)); st.Code() != codes.FailedPrecondition {
		t.Fatalf("unspecified ordering against key: %v", st.Code())
	}
}

// TestSubscribeBudgetSpentRefusesNewGroups: with a subscription budget that
// holds one group's consumer, a second group's stream gets
// RESOURCE_EXHAUSTED with RetryInfo; after the first group's consumer
// leaves, it opens.
func TestSubscribeBudgetSpentRefusesNewGroups(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "budget", 1)
	gw := startGateway(t, kafkaProducer(brokers), func(s *kafkaio.SubscriberConfig) {
		s.MemoryBudget = 9 << 20 // one consumer's 8 MiB of fetch buffers, and a little
		s.Linger = time.Millisecond
	})
	a := openStream(t, gw, earliest([]string{topic}, kafkatest.Name("g")))
	owned(t, a, 1, 30*time.Second)
	b := openStream(t, gw, earliest([]string{topic}, kafkatest.Name("g")))
	st := status.Convert(b.WaitEnd(30 * time.Second))
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			retry = r
		}
	}
	if st.Code() != codes.ResourceExhausted || reasonOf(st.Err()) != kafkaio.ReasonSubscriptionBudget || retry == nil {
		t.Fatalf("got %v %q (reason %q, retry %v), want ResourceExhausted %s with RetryInfo", st.Code(), st.Message(), reasonOf(st.Err()), retry, kafkaio.ReasonSubscriptionBudget)
	}
	a.Cancel()
	kafkatest.Eventually(t, 30*time.Second*timeoutScale, "the first group's consumer gives its budget back", func() bool {
		return gw.ksub.MemoryUsed() == 0
	})
	c := openStream(t, gw, earliest([]string{topic}, kafkatest.Name("g")))
	owned(t, c, 1, 30*time.Second)
}

// TestSubscribeChurnUnderLoadCausesNoRedelivery: 12 streams of a group,
// by key, under a steady load, while every half second one stream drains,
// acks what it holds and leaves, and another joins. Every record is
// delivered once: a stream's acks are never refused (a client acks what it
// was just sent, before the gateway has marked it sent: that race made
// acks be ignored, and their records come again after the deadline), and
// nothing leaves with a stream.
func TestSubscribeChurnUnderLoadCausesNoRedelivery(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "keychurn", 8)
	gw := startGateway(t, kafkaProducer(brokers))
	group := kafkatest.Name("g")
	open := ordered(earliest([]string{topic}, group), kgatev1.Ordering_ORDERING_KEY)
	open.MaxMessagesPerResponse = 100
	var mu sync.Mutex
	got := map[string]int{}
	type member struct {
		s          *stream
		stop, done chan struct{}
	}
	join := func() *member {
		m := &member{s: openStream(t, gw, open), stop: make(chan struct{}), done: make(chan struct{})}
		go func() {
			defer close(m.done)
			for {
				select {
				case r := <-m.s.Msgs:
					mu.Lock()
					got[key(r)]++
					mu.Unlock()
					m.s.Ack(r.AckId)
				case <-m.stop:
					return
				case <-m.s.Done:
					return
				}
			}
		}()
		return m
	}
	var members []*member
	for range 12 {
		members = append(members, join())
	}
	defer func() {
		for _, m := range members {
			close(m.stop)
			<-m.done
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	published := 0
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for ctx.Err() == nil {
			publishKeyed(t, gw, topic, 20, 64)
			published += 20
			time.Sleep(10 * time.Millisecond) // pacing the load
		}
	}()
	for range 8 {
		time.Sleep(500 * time.Millisecond) // the churn's pace
		old := members[0]
		members = members[1:]
		old.s.Send(&kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Drain{Drain: &kgatev1.SubscribeDrain{}}})
		select {
		case <-old.s.Drained:
		case <-time.After(10 * time.Second * timeoutScale):
			t.Fatal("no drained")
		}
		// What came before drained is acked by the member's goroutine;
		// wait for that before it stops.
		kafkatest.Eventually(t, 10*time.Second*timeoutScale, "the leaving member acked what it got", func() bool { return len(old.s.Msgs) == 0 })
		close(old.stop)
		<-old.done
		if err := old.s.End(10 * time.Second); err != nil {
			t.Fatalf("half-close after drain: %v", err)
		}
		members = append(members, join())
	}
	cancel()
	<-pubDone
	kafkatest.Eventually(t, 20*time.Second*timeoutScale, "every record delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == published
	})
	mu.Lock()
	defer mu.Unlock()
	for k, n := range got {
		if n != 1 {
			t.Errorf("record %s delivered %d times", k, n)
		}
	}
	if n := metric(t, gw, "kgate_subscribe_redeliveries_total"); n != 0 {
		t.Errorf("%v redeliveries, want 0", n)
	}
	if n := metric(t, gw, "kgate_subscribe_ignored_acks_total"); n != 0 {
		t.Errorf("%v acks ignored, want 0", n)
	}
}
