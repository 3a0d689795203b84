package server_test

import (
	"fmt"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/types/known/durationpb"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/gatewaytest"
	"github.com/kgate/kgate/internal/kafkatest"
	"github.com/kgate/kgate/kafkaio"
)

func kafkaProducer(brokers string) kafkaio.ProducerConfig {
	return kafkaio.ProducerConfig{Brokers: brokers}
}

// stream is a test client's Subscribe stream (see gatewaytest.Stream).
type stream = gatewaytest.Stream

// openStream opens a Subscribe stream on the test gateway; it is cancelled
// and its receiver waited for when the test ends.
func openStream(t testing.TB, gw *gateway, open *kgatev1.SubscribeOpen) *stream {
	t.Helper()
	return gatewaytest.OpenStream(t, gw.sub, open)
}

// publishN publishes n records to topic (values "v<i>", keys "k<i>") and
// returns them in order, with where they landed.
func publishN(t testing.TB, gw *gateway, topic string, n int, partition *int32) []*kgatev1.PublishResult {
	t.Helper()
	req := &kgatev1.PublishRequest{Topic: topic}
	for i := 0; i < n; i++ {
		req.Messages = append(req.Messages, &kgatev1.Message{Key: []byte("k" + strconv.Itoa(i)), Value: []byte("v" + strconv.Itoa(i)), Partition: partition})
	}
	resp, err := gw.pub.Publish(testContext(t, 30*time.Second), req)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	return resp.Results
}

func committed(t testing.TB, brokers, group, topic string) map[int32]int64 {
	t.Helper()
	adm := kadm.NewClient(kafkatest.Client(t, brokers))
	offs, err := adm.FetchOffsetsForTopics(testContext(t, 10*time.Second), group, topic)
	if err != nil {
		t.Fatalf("fetching committed offsets: %v", err)
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out
}

func earliest(topics []string, group string) *kgatev1.SubscribeOpen {
	return &kgatev1.SubscribeOpen{Topics: topics, Group: group, StartPosition: kgatev1.StartPosition_START_POSITION_EARLIEST}
}

func key(m *kgatev1.ReceivedMessage) string { return fmt.Sprintf("%d@%d", m.Partition, m.Offset) }

func TestSubscribeDeliversEveryRecordAndCommitsOnStreamEnd(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "sub", 3)
	gw := startGateway(t, kafkaProducer(brokers))
	results := publishN(t, gw, topic, 30, nil)
	group := kafkatest.Name("g")
	s := openStream(t, gw, earliest([]string{topic}, group))

	select {
	case a := <-s.Assigns:
		if len(a.Assigned) != 3 {
			t.Fatalf("first assignment %v, want the 3 partitions", a)
		}
	case <-time.After(30 * time.Second * timeoutScale):
		t.Fatal("no assignment message")
	}
	got := s.NextN(30, 30*time.Second)
	seen := map[string]bool{}
	for _, m := range got {
		if seen[key(m)] {
			t.Fatalf("record %s delivered twice", key(m))
		}
		seen[key(m)] = true
		if m.DeliveryAttempt != 1 || m.AckId == "" || m.Topic != topic || m.Timestamp == nil {
			t.Fatalf("record %s: attempt %d ack id %q topic %q ts %v", key(m), m.DeliveryAttempt, m.AckId, m.Topic, m.Timestamp)
		}
		s.Ack(m.AckId)
	}
	for i, r := range results {
		if !seen[fmt.Sprintf("%d@%d", r.Partition, r.Offset)] {
			t.Fatalf("published record %d (%d@%d) not delivered", i, r.Partition, r.Offset)
		}
	}
	if err := s.End(30 * time.Second); err != nil {
		t.Fatalf("half-close ended the stream with %v, want OK", err)
	}
	ends := map[int32]int64{}
	for _, r := range results {
		ends[r.Partition] = max(ends[r.Partition], r.Offset+1)
	}
	if got := committed(t, brokers, group, topic); fmt.Sprint(got) != fmt.Sprint(ends) {
		t.Fatalf("committed %v, want every partition's end %v", got, ends)
	}
}

func TestSubscribeOutOfOrderAcksResumeAtFirstUnacked(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "ooo", 1)
	gw := startGateway(t, kafkaProducer(brokers))
	publishN(t, gw, topic, 10, nil)
	group := kafkatest.Name("g")

	s := openStream(t, gw, earliest([]string{topic}, group))
	got := s.NextN(10, 30*time.Second)
	for i := len(got) - 1; i >= 0; i-- { // ack in reverse, all but offset 3
		if got[i].Offset != 3 {
			s.Ack(got[i].AckId)
		}
	}
	if err := s.End(30 * time.Second); err != nil {
		t.Fatalf("stream end: %v", err)
	}
	if c := committed(t, brokers, group, topic); c[0] != 3 {
		t.Fatalf("committed %v, want 3 (the first unacked offset)", c)
	}

	// The group's consumer still holds offset 3 (it lingers after the
	// stream's end): a new stream gets it as its second delivery, and
	// nothing acked again.
	s2 := openStream(t, gw, earliest([]string{topic}, group))
	if m := s2.Next(30 * time.Second); m.Offset != 3 || m.DeliveryAttempt != 2 {
		t.Fatalf("new stream starts at %d (attempt %d), want offset 3 at attempt 2", m.Offset, m.DeliveryAttempt)
	}
	s2.None(time.Second)
}

func TestSubscribeNackRedeliversOnlyTheNackedRecord(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "nack", 1)
	gw := startGateway(t, kafkaProducer(brokers))
	publishN(t, gw, topic, 6, nil)
	s := openStream(t, gw, earliest([]string{topic}, kafkatest.Name("g")))

	first := s.NextN(6, 30*time.Second)
	// Ack 0 and 5, leave 2 and 4 outstanding, nack 1 and 3.
	s.Ack(first[0].AckId, first[5].AckId)
	nackedAt := time.Now()
	s.Nack(durationpb.New(200*time.Millisecond), first[1].AckId, first[3].AckId)
	again := s.NextN(2, 30*time.Second)
	t.Logf("redelivery %v after a 200ms-delay nack", time.Since(nackedAt))
	sort.Slice(again, func(i, j int) bool { return again[i].Offset < again[j].Offset })
	if again[0].Offset != 1 || again[1].Offset != 3 || again[0].DeliveryAttempt != 2 || again[1].DeliveryAttempt != 2 {
		t.Fatalf("redelivered %s attempt %d and %s attempt %d, want offsets 1 and 3 at attempt 2",
			key(again[0]), again[0].DeliveryAttempt, key(again[1]), again[1].DeliveryAttempt)
	}
	if string(again[0].Value) != "v1" || again[0].AckId == first[1].AckId {
		t.Fatalf("redelivery of offset 1: value %q ack id %q (first %q)", again[0].Value, again[0].AckId, first[1].AckId)
	}
	// Acked (0, 5) and still-outstanding (2, 4) records must not come again.
	s.None(time.Second)
	// Nack without delay uses the backoff and comes again at attempt 3.
	s.Nack(nil, again[0].AckId)
	if m := s.Next(30 * time.Second); m.Offset != 1 || m.DeliveryAttempt != 3 {
		t.Fatalf("got %s attempt %d, want offset 1 attempt 3", key(m), m.DeliveryAttempt)
	}
}

func TestSubscribeDeadLettersAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "poison", 1)
	dlq := kafkatest.CreateTopic(t, brokers, "poison-dlq", 1)
	gw := startGateway(t, kafkaProducer(brokers))
	publishN(t, gw, topic, 3, nil)
	group := kafkatest.Name("g")
	open := earliest([]string{topic}, group)
	open.MaxDeliveryAttempts, open.DeadLetterTopic = 2, dlq
	open.MinBackoff, open.MaxBackoff = durationpb.New(10*time.Millisecond), durationpb.New(10*time.Millisecond)
	s := openStream(t, gw, open)

	recs := s.NextN(3, 30*time.Second)
	s.Ack(recs[0].AckId, recs[2].AckId)
	s.Nack(nil, recs[1].AckId)
	m := s.Next(30 * time.Second)
	if m.Offset != 1 || m.DeliveryAttempt != 2 {
		t.Fatalf("got %s attempt %d, want offset 1 attempt 2", key(m), m.DeliveryAttempt)
	}
	s.Nack(nil, m.AckId) // second failed attempt: dead-letter it

	var dead []string
	kafkatest.Eventually(t, 30*time.Second*timeoutScale, "the poison record reaches the dead-letter topic", func() bool {
		recs := kafkatest.ReadAll(t, brokers, dlq)
		dead = dead[:0]
		for _, r := range recs {
			hs := map[string]string{}
			for _, h := range r.Headers {
				hs[h.Key] = string(h.Value)
			}
			dead = append(dead, fmt.Sprintf("%s %s %s/%s@%s attempts=%s reason=%t", r.Key, r.Value, hs["kgate.dlq.topic"], hs["kgate.dlq.partition"], hs["kgate.dlq.offset"], hs["kgate.dlq.attempts"], hs["kgate.dlq.reason"] != ""))
		}
		return len(recs) > 0
	})
	if want := fmt.Sprintf("k1 v1 %s/0@1 attempts=2 reason=true", topic); len(dead) != 1 || dead[0] != want {
		t.Fatalf("dead letters %q, want [%q]", dead, want)
	}
	s.None(500 * time.Millisecond) // dead-lettered: not delivered again
	if err := s.End(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if c := committed(t, brokers, group, topic); c[0] != 3 {
		t.Fatalf("committed %v, want 3: a dead-lettered record counts as acked", c)
	}
}

func TestSubscribeAckDeadlineRedeliversAndExtendPostpones(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "deadline", 1)
	gw := startGateway(t, kafkaProducer(brokers))
	publishN(t, gw, topic, 2, nil)
	open := earliest([]string{topic}, kafkatest.Name("g"))
	// Long enough for the Extend to reach the gateway on a loaded machine
	// before offset 1's first deadline passes.
	open.AckDeadline = durationpb.New(2 * time.Second * timeoutScale)
	open.MinBackoff = durationpb.New(10 * time.Millisecond)
	s := openStream(t, gw, open)

	recs := s.NextN(2, 30*time.Second)
	s.Extend(time.Minute, recs[1].AckId) // offset 1 gets a minute; offset 0 expires
	m := s.Next(30 * time.Second)
	if m.Offset != 0 || m.DeliveryAttempt != 2 {
		t.Fatalf("got %s attempt %d, want offset 0 redelivered at attempt 2 after its deadline", key(m), m.DeliveryAttempt)
	}
	s.Ack(m.AckId)
	s.None(1500 * time.Millisecond) // offset 1 was extended: not redelivered
}

func TestSubscribeStalledClientGetsExactlyTheWindowAndStaysInGroup(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "stall", 2)
	// A short max.poll.interval.ms: a gateway that stopped polling while
	// paused would be evicted within the test.
	gw := startGateway(t, kafkaProducer(brokers), func(s *kafkaio.SubscriberConfig) {
		s.Kafka = map[string]string{"session.timeout.ms": "6000", "max.poll.interval.ms": "7000"}
	})
	publishN(t, gw, topic, 40, nil)
	group := kafkatest.Name("g")
	open := earliest([]string{topic}, group)
	open.MaxOutstandingMessages = 5
	s := openStream(t, gw, open)
	s.NextN(5, 30*time.Second)
	s.None(9 * time.Second) // longer than max.poll.interval.ms
	select {
	case a := <-s.Assigns:
		if len(a.Revoked) > 0 {
			t.Fatalf("partitions revoked while paused: %v", a)
		}
	default:
	}
	adm := kadm.NewClient(kafkatest.Client(t, brokers))
	groups, err := adm.DescribeGroups(testContext(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	if g := groups[group]; len(g.Members) != 1 || g.State != "Stable" {
		t.Fatalf("group %s: state %s with %d members, want the stream still a Stable member", group, g.State, len(g.Members))
	}
}

// TestDeadLetterCarriesOnlyTheGatewaysHeaders: a record written to Kafka
// directly with forged kgate.dlq.* headers is dead-lettered with the
// gateway's headers only, so a redrive can trust them; its other headers
// are kept.
func TestDeadLetterCarriesOnlyTheGatewaysHeaders(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "forged", 1)
	dlq := kafkatest.CreateTopic(t, brokers, "forged-dlq", 1)
	gw := startGateway(t, kafkaProducer(brokers))
	cl := kafkatest.Client(t, brokers)
	forged := &kgo.Record{Topic: topic, Value: []byte("v"), Headers: []kgo.RecordHeader{
		{Key: "kgate.dlq.topic", Value: []byte("elsewhere")}, {Key: "KGATE.dlq.offset", Value: []byte("99")}, {Key: "trace", Value: []byte("t1")}}}
	if err := cl.ProduceSync(testContext(t, 10*time.Second), forged).FirstErr(); err != nil {
		t.Fatal(err)
	}
	open := earliest([]string{topic}, kafkatest.Name("g"))
	open.MaxDeliveryAttempts, open.DeadLetterTopic = 1, dlq
	s := openStream(t, gw, open)
	s.Nack(durationpb.New(0), s.Next(30*time.Second).AckId)
	var hs []string
	kafkatest.Eventually(t, 30*time.Second*timeoutScale, "the record reaches the dead-letter topic", func() bool {
		recs := kafkatest.ReadAll(t, brokers, dlq)
		if len(recs) == 0 {
			return false
		}
		hs = hs[:0]
		for _, h := range recs[0].Headers {
			if h.Key != "kgate.dlq.reason" {
				hs = append(hs, h.Key+"="+string(h.Value))
			}
		}
		return true
	})
	want := fmt.Sprintf("[trace=t1 kgate.dlq.topic=%s kgate.dlq.partition=0 kgate.dlq.offset=0 kgate.dlq.attempts=1]", topic)
	if fmt.Sprint(hs) != want {
		t.Fatalf("dead letter headers %v, want %s", hs, want)
	}
}
