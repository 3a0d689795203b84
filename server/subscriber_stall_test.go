package server_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kgate/kgate/internal/kafkatest"
)

// TestSubscribePartitionPausedForFlowControlIsFetchedAfterAKafkaRebalance
// reproduces the stall `make soak` found (issue 17). A stream's window
// fills, so the gateway pauses its partitions; then a member on another
// gateway joins the group, and Kafka rebalances. librdkafka keeps a
// partition's pause across its revocation and re-assignment, while the
// gateway forgot it with the revocation: the partition assigned back to
// the first gateway stayed paused for good, its records never delivered,
// its committed offset stuck. Every record must reach one of the two
// streams, and the group must commit the end of both partitions.
func TestSubscribePartitionPausedForFlowControlIsFetchedAfterAKafkaRebalance(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "paused", 2)
	gw1 := startGateway(t, kafkaProducer(brokers))
	gw2 := startGateway(t, kafkaProducer(brokers))
	for p := int32(0); p < 2; p++ {
		publishN(t, gw1, topic, 5, &p)
	}
	group := kafkatest.Name("g")

	// Stream a takes its window of 2 and acks nothing yet: every further
	// record is refused and both partitions are paused.
	open := earliest([]string{topic}, group)
	open.MaxOutstandingMessages = 2
	a := openStream(t, gw1, open)
	first := a.NextN(2, 30*time.Second)
	kafkatest.Eventually(t, 30*time.Second*timeoutScale, "gateway 1 pauses both partitions for flow control", func() bool {
		n, _ := sum(gatherSamples(t, gw1), "kgate_subscribe_paused_partitions")
		return n == 2
	})

	// A member on the second gateway joins: Kafka splits the partitions,
	// one for each gateway.
	b := openStream(t, gw2, earliest([]string{topic}, group))
	owned(t, b, 1, 30*time.Second)
	owned(t, a, 1, 30*time.Second)
	var mu sync.Mutex
	got := map[string]int{}
	for _, m := range first {
		got[key(m)]++
	}
	a.Ack(first[0].AckId, first[1].AckId) // stale after the rebalance, or not: either is fine
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, s := range []*stream{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case m := <-s.Msgs:
					mu.Lock()
					got[key(m)]++
					mu.Unlock()
					s.Ack(m.AckId)
				case <-done:
					return
				case <-s.Done:
					return
				}
			}
		}()
	}
	defer func() { close(done); wg.Wait() }()
	want := fmt.Sprint(map[int32]int64{0: 5, 1: 5})
	kafkatest.Eventually(t, 20*time.Second*timeoutScale, "the group commits the end of both partitions (a partition paused before the rebalance must be fetched after it)", func() bool {
		return fmt.Sprint(committed(t, brokers, group, topic)) == want
	})
	mu.Lock()
	defer mu.Unlock()
	for p := 0; p < 2; p++ {
		for o := 0; o < 5; o++ {
			if got[fmt.Sprintf("%d@%d", p, o)] == 0 {
				t.Errorf("record %d@%d never delivered", p, o)
			}
		}
	}
}
