package faulttest

import (
	"context"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kgate/kgate/internal/kafkatest"
	"github.com/kgate/kgate/internal/verify"
	"github.com/kgate/kgate/kafkaio"
)

// TestSoak publishes and subscribes for KGATE_SOAK_DURATION (make soak;
// SOAK_DURATION=2m make soak) under random faults: failed offset commits,
// produce errors, members joining and leaving, broker request delays.
// At the end every OK'd record must have been received and the verifier's
// totals are printed.
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("KGATE_SOAK_DURATION"))
	if err != nil || d <= 0 {
		t.Skip("the soak runs only with KGATE_SOAK_DURATION set (make soak, SOAK_DURATION=2m make soak)")
	}
	c := kafkatest.Cluster(t, kfake.AllowAutoTopicCreation(), kfake.GroupMinSessionTimeout(time.Second))
	brokers := c.ListenAddrs()[0]
	topic := kafkatest.CreateTopic(t, brokers, "soak", 6)
	gw := startGateway(t, kafkaio.ProducerConfig{Brokers: brokers})
	commitFails := failCommits(c, 5)
	var delays atomic.Int64
	var delayOn atomic.Bool
	c.Control(func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if delayOn.Load() && rand.IntN(20) == 0 {
			delays.Add(1)
			time.Sleep(time.Duration(20+rand.IntN(150)) * time.Millisecond) // an injected broker delay
		}
		return nil, nil, false
	})
	group := kafkatest.Name("soak")
	rec := verify.New("soak")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	steady := openStream(t, gw.sub, earliest(topic, group))
	wg.Add(1)
	go func() { defer wg.Done(); ackAll(ctx, steady, rec, nil) }()
	load := startLoad(t, gw.pub, rec, loadConfig{topic: topic, workers: 4, batch: 10, size: 256, callTimeout: 10 * time.Second, pace: 10 * time.Millisecond})

	errs := []*kerr.Error{kerr.NotEnoughReplicas, kerr.RequestTimedOut, kerr.NotLeaderForPartition, kerr.NotEnoughReplicasAfterAppend}
	faults, joins := 0, 0
	var member *stream
	var memberStop context.CancelFunc
	start := time.Now()
	for time.Since(start) < d {
		switch rand.IntN(4) {
		case 0:
			c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Err: errs[rand.IntN(len(errs))], Count: 1 + rand.IntN(3)})
			faults++
		case 1:
			delayOn.Store(!delayOn.Load())
		case 2, 3:
			if member != nil {
				memberStop()
				member.Cancel()
				member = nil
			} else {
				member = openStream(t, gw.sub, earliest(topic, group))
				mctx, mstop := context.WithCancel(ctx)
				m := member
				wg.Add(1)
				go func() { defer wg.Done(); ackAll(mctx, m, rec, nil) }()
				memberStop = mstop
				joins++
			}
		}
		time.Sleep(time.Second) // the faults' pace
	}
	delayOn.Store(false)
	load.Stop()
	if member != nil {
		memberStop()
		member.End(30 * time.Second)
	}
	if !poll(120*time.Second*timeoutScale, func() bool { return rec.Report().Lost == 0 }) {
		t.Errorf("not every OK'd record was received within 2 minutes of the load's end")
	}
	ends := endOffsets(t, brokers, topic)
	adm := kadm.NewClient(kafkatest.Client(t, brokers))
	t.Logf("soak %v: %d produce faults, %d joins, %d failed commits, %d delayed requests, slowest publish %v; committed %v of %v",
		d, faults, joins, commitFails.Load(), delays.Load(), load.slowest().Round(time.Millisecond), committed(t, adm, group, topic), ends)
	rec.Check(t)
}
