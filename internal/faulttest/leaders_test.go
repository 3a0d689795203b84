package faulttest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/kafkatest"
	"github.com/kgate/kgate/internal/verify"
	"github.com/kgate/kgate/kafkaio"
)

// TestSubscribeWhilePartitionLeadersMove publishes to a 3-broker cluster
// whose partition leaders move every half second, and the group
// coordinator's node once, while two gateways consume: one group by
// partition (two streams on one gateway, one on the other), one by key
// (three streams). Each group receives every OK'd record.
func TestSubscribeWhilePartitionLeadersMove(t *testing.T) {
	t.Parallel()
	c := kafkatest.Cluster(t, kfake.NumBrokers(3), kfake.AllowAutoTopicCreation(), kfake.GroupMinSessionTimeout(time.Second))
	brokers := c.ListenAddrs()[0]
	topic := kafkatest.CreateTopic(t, brokers, "leaders", 6)
	a := startGateway(t, kafkaio.ProducerConfig{Brokers: brokers})
	b := startGateway(t, kafkaio.ProducerConfig{Brokers: brokers})
	byPartition, byKey := kafkatest.Name("by-partition"), kafkatest.Name("by-key")

	rec := verify.New("leaders")
	var mu sync.Mutex
	var keyed [][]byte // what the key group consumed, checked against a fork at the end
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	consume := func(s *stream, into func([]byte)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case m := <-s.Msgs:
					into(m.Value)
					s.Ack(m.AckId)
				case <-ctx.Done():
					return
				case <-s.Done:
					return
				}
			}
		}()
	}
	toRec := func(v []byte) { rec.Consumed(v) }
	toKeyed := func(v []byte) { mu.Lock(); keyed = append(keyed, v); mu.Unlock() }
	for _, gw := range []*gateway{a, a, b} {
		consume(openStream(t, gw.sub, earliest(topic, byPartition)), toRec)
	}
	for _, gw := range []*gateway{a, a, b} {
		open := earliest(topic, byKey)
		open.Ordering = kgatev1.Ordering_ORDERING_KEY
		consume(openStream(t, gw.sub, open), toKeyed)
	}
	load := startLoad(t, a.pub, rec, loadConfig{topic: topic, workers: 2, batch: 10, size: 64, callTimeout: 20 * time.Second, pace: 10 * time.Millisecond})
	moves := 0
	for start := time.Now(); time.Since(start) < time.Duration(3*scale())*time.Second; moves++ {
		c.ShufflePartitionLeaders()
		if moves == 2 {
			c.RehashCoordinators() // the group coordinator moves too
		}
		time.Sleep(500 * time.Millisecond) // the faults' pace
	}
	load.Stop()
	if !poll(60*time.Second*timeoutScale, func() bool { return rec.Report().Lost == 0 }) {
		t.Errorf("the partition-ordered group did not receive every OK'd record: %s", rec.Report())
	}
	forKey := rec.Fork()
	if !poll(60*time.Second*timeoutScale, func() bool {
		mu.Lock()
		vs := keyed
		keyed = nil
		mu.Unlock()
		for _, v := range vs {
			forKey.Consumed(v)
		}
		return forKey.Report().Lost == 0
	}) {
		t.Errorf("the key-ordered group did not receive every OK'd record: %s", forKey.Report())
	}
	t.Logf("%d leader moves", moves)
	rec.Check(t)
	forKey.Check(t)
}
