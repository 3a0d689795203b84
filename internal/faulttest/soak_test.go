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

	"github.com/kgate/kgate/internal/gatewaytest"
	"github.com/kgate/kgate/internal/kafkatest"
	"github.com/kgate/kgate/internal/verify"
	"github.com/kgate/kgate/kafkaio"
)

// TestSoak publishes and subscribes for KGATE_SOAK_DURATION (make soak;
// SOAK_DURATION=2m make soak) under random faults: failed offset commits,
// produce errors, broker request delays, and a second stream of the group
// joining and leaving, alternately on the steady stream's gateway (a local
// hand-over of partitions) and on a second gateway whose group consumer
// lingers 300 ms (so it joins and leaves the Kafka group: rebalances).
// The steady stream must stay open throughout and never go longer than
// soakMaxIdle without a record while the load runs or records are left;
// at the end every OK'd record must have been received. The verifier's
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
	other := startGateway(t, kafkaio.ProducerConfig{Brokers: brokers}, func(s *kafkaio.SubscriberConfig) { s.Linger = 300 * time.Millisecond })
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
	// Streams live as long as the soak: a test stream otherwise ends by
	// itself after two minutes (which is what failed the soak before).
	life := d + 10*time.Minute
	steady := gatewaytest.OpenStreamFor(t, gw.sub, earliest(topic, group), life)
	idle := &idleMeter{}
	wg.Add(1)
	go func() { defer wg.Done(); ackAll(ctx, steady, rec, idle.delivered) }()
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
				on := gw
				if joins%2 == 1 {
					on = other
				}
				member = gatewaytest.OpenStreamFor(t, on.sub, earliest(topic, group), life)
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
	drained := poll(120*time.Second*timeoutScale, func() bool { return rec.Report().Lost == 0 })
	worst, deliveries := idle.stop()
	ends := endOffsets(t, brokers, topic)
	adm := kadm.NewClient(kafkatest.Client(t, brokers))
	t.Logf("soak %v: %d produce faults, %d joins (half of them on a second gateway), %d Kafka rebalances, %d failed commits, %d delayed requests, slowest publish %v; steady stream: %d deliveries, longest without one %v; %d redeliveries, %d stall recoveries; committed %v of %v",
		d, faults, joins, int(gw.metric(t, "kgate_subscribe_rebalances_total")+other.metric(t, "kgate_subscribe_rebalances_total")), commitFails.Load(), delays.Load(),
		load.slowest().Round(time.Millisecond), deliveries, worst.Round(time.Millisecond),
		int(gw.metric(t, "kgate_subscribe_redeliveries_total")+other.metric(t, "kgate_subscribe_redeliveries_total")),
		int(gw.metric(t, "kgate_subscribe_stall_recoveries_total")+other.metric(t, "kgate_subscribe_stall_recoveries_total")),
		committed(t, adm, group, topic), ends)
	select {
	case <-steady.Done:
		t.Errorf("the steady stream ended before the soak did: %v", steady.EndErr)
	default:
	}
	if !drained {
		t.Errorf("not every OK'd record was received within 2 minutes of the load's end")
	}
	if worst > soakMaxIdle*timeoutScale {
		t.Errorf("the steady stream went %v without a record while records were waiting; want at most %v", worst.Round(time.Millisecond), soakMaxIdle*timeoutScale)
	}
	rec.Check(t)
}

// soakMaxIdle is the longest the soak's steady stream may go without a
// record while records wait (issue 17: no stream idle longer than 5 s).
const soakMaxIdle = 5 * time.Second

// idleMeter measures the longest time between a stream's deliveries, from
// the first delivery until stop: in the soak, records wait for the steady
// stream all that time (the load publishes to every partition, and the
// drain ends with the last record).
type idleMeter struct {
	mu    sync.Mutex
	last  time.Time
	worst time.Duration
	n     int
}

func (m *idleMeter) delivered(at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.last.IsZero() {
		m.worst = max(m.worst, at.Sub(m.last))
	}
	m.last, m.n = at, m.n+1
}

// stop returns the longest gap between two deliveries, and the number of
// deliveries.
func (m *idleMeter) stop() (worst time.Duration, deliveries int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.worst, m.n
}
