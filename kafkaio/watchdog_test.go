package kafkaio

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kgate/kgate/internal/kafkatest"
)

// countingObserver counts stalls and their recoveries.
type countingObserver struct {
	NopObserver
	mu                 sync.Mutex
	stalled, recovered int
}

func (o *countingObserver) Stalled(_ string, d int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stalled += d
}

func (o *countingObserver) StallRecovered(string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.recovered++
}

func (o *countingObserver) counts() (stalled, recovered int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.stalled, o.recovered
}

// TestWatchdogRecoversAStalledPartition pauses a partition in librdkafka
// behind the group consumer's back (as librdkafka's kept pause did across a
// rebalance, issue 17) while records keep coming: the watchdog counts the
// stall, seeks the partition to its next offset, and the records arrive.
func TestWatchdogRecoversAStalledPartition(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "stall", 1)
	obs := &countingObserver{}
	sub, err := NewSubscriber(SubscriberConfig{Brokers: brokers, Observer: obs, StallAfter: 500 * time.Millisecond,
		CommitInterval: 200 * time.Millisecond, Kafka: map[string]string{"session.timeout.ms": "6000"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	defer sub.Close(ctx)
	sess, err := sub.Subscribe(ctx, SubscriptionConfig{Topics: []string{topic}, Group: kafkatest.Name("g"), StartEarliest: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	cl := kafkatest.Client(t, brokers)
	produce := func(from, n int) {
		for i := from; i < from+n; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// records reads until n records came, acking them.
	records := func(n int) {
		t.Helper()
		for got := 0; got < n; {
			evs, err := sess.Next(ctx)
			if err != nil {
				t.Fatalf("after %d of %d records: %v", got, n, err)
			}
			var ids []string
			for _, ev := range evs {
				if ev.Record != nil {
					ids = append(ids, ev.Record.AckID)
					got++
				}
			}
			sess.Ack(ctx, ids)
		}
	}
	produce(0, 5)
	records(5)

	topicName := topic
	if err := sess.g.c.Pause([]kafka.TopicPartition{{Topic: &topicName, Partition: 0}}); err != nil {
		t.Fatal(err)
	}
	produce(5, 5)
	records(5)
	if _, recovered := obs.counts(); recovered == 0 {
		t.Fatal("the records came without a stall recovery: the test paused nothing")
	}
	kafkatest.Eventually(t, 30*time.Second, "the stalled gauge goes back to 0", func() bool {
		stalled, _ := obs.counts()
		return stalled == 0
	})
}
