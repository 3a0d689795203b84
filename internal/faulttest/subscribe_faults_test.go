package faulttest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/kgate/kgate/internal/kafkatest"
	"github.com/kgate/kgate/internal/verify"
	"github.com/kgate/kgate/kafkaio"
)

// failCommits makes the broker fail about one OffsetCommit request in
// every `every` with REBALANCE_IN_PROGRESS or NOT_COORDINATOR, until the
// test ends. It returns the count of failed requests.
func failCommits(c *kfake.Cluster, every int) *atomic.Int64 {
	var n, failed atomic.Int64
	c.ControlKey(int16(kmsg.OffsetCommit), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if n.Add(1)%int64(every) != 0 {
			return nil, nil, false
		}
		return kafkatest.FailedCommit(kr.(*kmsg.OffsetCommitRequest), failed.Add(1)), nil, true
	})
	return &failed
}

// ackAll consumes s until ctx is done or the stream ends: every message is
// recorded in rec and acked. deliveries, when set, gets each delivery's
// time.
func ackAll(ctx context.Context, s *stream, rec *verify.Recorder, deliveries func(time.Time)) {
	for {
		select {
		case m := <-s.Msgs:
			rec.Consumed(m.Value)
			if deliveries != nil {
				deliveries(time.Now())
			}
			s.Ack(m.AckId)
		case <-ctx.Done():
			return
		case <-s.Done:
			return
		}
	}
}

// endOffsets returns the topic's end offsets (partitions with records).
func endOffsets(t testing.TB, brokers, topic string) map[int32]int64 {
	t.Helper()
	ends, err := kadm.NewClient(kafkatest.Client(t, brokers)).ListEndOffsets(testContext(t, 10*time.Second), topic)
	if err != nil {
		t.Fatalf("end offsets: %v", err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			out[o.Partition] = o.Offset
		}
	})
	return out
}

func committed(t testing.TB, adm *kadm.Client, group, topic string) map[int32]int64 {
	t.Helper()
	offs, err := adm.FetchOffsetsForTopics(testContext(t, 10*time.Second), group, topic)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return map[int32]int64{} // nothing committed yet
	}
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

// rebalanceStorm runs a publish load while a stream joins the group every
// second and the previous joiner leaves (alternately cancelling and
// half-closing), with OffsetCommit failures injected. Joiners alternate
// between the steady stream's gateway (a local hand-over of partitions)
// and a second gateway whose group consumer lingers 300 ms (so its
// consumer joins and leaves the Kafka group: cooperative rebalances). It
// checks that the steady stream never stalls longer than maxGap while
// records are pending, that every OK'd record is received, and that the
// group finally commits the end of every partition.
func rebalanceStorm(t *testing.T, loadFor time.Duration, maxGap time.Duration) {
	c := kafkatest.Cluster(t, kfake.AllowAutoTopicCreation(), kfake.GroupMinSessionTimeout(time.Second))
	brokers := c.ListenAddrs()[0]
	topic := kafkatest.CreateTopic(t, brokers, "storm", 4)
	gw := startGateway(t, kafkaio.ProducerConfig{Brokers: brokers})
	other := startGateway(t, kafkaio.ProducerConfig{Brokers: brokers}, func(s *kafkaio.SubscriberConfig) { s.Linger = 300 * time.Millisecond })
	failed := failCommits(c, 3)
	group := kafkatest.Name("storm")
	rec := verify.New("storm")

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })

	var gapMu sync.Mutex
	var last time.Time
	var gaps []time.Duration
	steady := openStream(t, gw.sub, earliest(topic, group))
	wg.Add(1)
	go func() {
		defer wg.Done()
		ackAll(ctx, steady, rec, func(at time.Time) {
			gapMu.Lock()
			if !last.IsZero() {
				gaps = append(gaps, at.Sub(last))
			}
			last = at
			gapMu.Unlock()
		})
	}()

	load := startLoad(t, gw.pub, rec, loadConfig{topic: topic, workers: 2, batch: 8, size: 100, callTimeout: 20 * time.Second, pace: 20 * time.Millisecond})
	loadStart := time.Now()
	joins := 0
	var prev *stream
	var prevStop func() // stops prev's acker and waits for it, so that it sends nothing after the half-close
	for time.Since(loadStart) < loadFor {
		on := gw
		if joins%2 == 1 {
			on = other
		}
		s := openStream(t, on.sub, earliest(topic, group))
		sctx, sstop := context.WithCancel(ctx)
		acked := make(chan struct{})
		wg.Add(1)
		go func() { defer wg.Done(); defer close(acked); ackAll(sctx, s, rec, nil) }()
		if prev != nil {
			prevStop()
			if joins%2 == 0 {
				prev.Cancel()
			} else {
				prev.End(30 * time.Second)
			}
		}
		prev, prevStop = s, func() { sstop(); <-acked }
		joins++
		time.Sleep(time.Second) // the churn's pace
	}
	load.Stop()
	loadEnd := time.Now()
	if prev != nil {
		prevStop()
		prev.End(30 * time.Second)
	}
	gapMu.Lock()
	var worst time.Duration
	for _, g := range gaps {
		worst = max(worst, g)
	}
	deliveries := len(gaps) + 1
	gapMu.Unlock()

	ends := endOffsets(t, brokers, topic)
	adm := kadm.NewClient(kafkatest.Client(t, brokers))
	if !poll(60*time.Second*timeoutScale, func() bool { return rec.Report().Lost == 0 }) {
		select {
		case <-steady.Done:
			t.Logf("the steady stream ended: %v", steady.EndErr)
		default:
		}
		t.Fatalf("not every OK'd record was received by the group within %v: %s; committed %v, end offsets %v",
			60*time.Second*timeoutScale, rec.Report(), committed(t, adm, group, topic), ends)
	}
	kafkatest.Eventually(t, 30*time.Second*timeoutScale, "the group commits the end of every partition", func() bool {
		return fmt.Sprint(committed(t, adm, group, topic)) == fmt.Sprint(ends)
	})
	rep := rec.Check(t)
	t.Logf("storm %v: %d joins and leaves, %d commit requests failed by the broker, steady stream: %d deliveries, longest gap %v (load ran %v)",
		loadFor, joins, failed.Load(), deliveries, worst.Round(time.Millisecond), loadEnd.Sub(loadStart).Round(time.Millisecond))
	if worst > maxGap*timeoutScale {
		t.Errorf("the steady stream went %v without a delivery while records were pending; want at most %v", worst, maxGap*timeoutScale)
	}
	if failed.Load() == 0 {
		t.Error("no commit failure was injected: the test did not test anything")
	}
	if rep.OK == 0 {
		t.Error("nothing was published")
	}
}

func TestRebalanceStormWithCommitFailures(t *testing.T) {
	t.Parallel()
	rebalanceStorm(t, time.Duration(8*scale())*time.Second, 5*time.Second)
}

// poll polls cond every 20 ms until it holds or timeout passes.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// rssBytes is the process's resident set size (Go heap and librdkafka's C
// memory).
func rssBytes(t testing.TB) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status to read RSS from: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Skip("no VmRSS in /proc/self/status")
	return 0
}

func heapInuse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// TestSlowStalledAndNackingSubscribersKeepMemoryBoundedAndNeverCommitPastUnacked
// fills a topic with 50k records of 1 KB, then holds a stalled stream
// (max_outstanding 100, never acks), a nack storm, an ack-deadline storm
// (1 s deadline, never acks) and a consumer that acks everything except
// every 997th record. The gateway's memory stays bounded (the broker's
// copy of the records is already counted in the baseline), the stalled
// stream gets exactly its window, and the group's committed offset never
// passes a held (unacked) record.
func TestSlowStalledAndNackingSubscribersKeepMemoryBoundedAndNeverCommitPastUnacked(t *testing.T) {
	t.Parallel()
	// The broker runs as its own process, so that the RSS measured below
	// is the gateway's (and the test clients'), not the 50k records kfake
	// holds and copies into fetch responses.
	brokers := kafkatest.BrokerProcess(t)
	topic := kafkatest.CreateTopic(t, brokers, "memory", 3)
	rec := verify.New("mem")
	// 50k records with the faults build tag; 10k in `make test`, where the
	// race detector makes 50k take a minute.
	n, size := 10000, 1024
	if faultsBuild {
		n = 50000
	}
	cl := kafkatest.Client(t, brokers, kgo.ProducerLinger(5*time.Millisecond))
	for i := 0; i < n; i += 1000 {
		var batch []*kgo.Record
		var ids []string
		for j := 0; j < 1000; j++ {
			id := rec.ID()
			ids = append(ids, id)
			batch = append(batch, &kgo.Record{Topic: topic, Value: verify.Payload(id, size)})
		}
		err := cl.ProduceSync(testContext(t, 60*time.Second), batch...).FirstErr()
		rec.RecordPublish(ids, err)
		if err != nil {
			t.Fatalf("filling the topic: %v", err)
		}
	}
	gw := startGateway(t, kafkaio.ProducerConfig{Brokers: brokers})
	heap0, rss0 := heapInuse(), rssBytes(t)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })

	// The stalled client: takes its window and does nothing.
	stalledOpen := earliest(topic, kafkatest.Name("stalled"))
	stalledOpen.MaxOutstandingMessages = 100
	stalledOpen.AckDeadline = durationpb.New(10 * time.Minute) // no redelivery within the test
	stalled := openStream(t, gw.sub, stalledOpen)

	// The nack storm: nacks everything at once, for ever.
	nackOpen := earliest(topic, kafkatest.Name("nack"))
	nackOpen.MaxOutstandingMessages = 500
	nackOpen.MinBackoff, nackOpen.MaxBackoff = durationpb.New(time.Millisecond), durationpb.New(10*time.Millisecond)
	nacker := openStream(t, gw.sub, nackOpen)
	var nacked atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case m := <-nacker.Msgs:
				nacked.Add(1)
				nacker.Nack(nil, m.AckId)
			case <-ctx.Done():
				return
			case <-nacker.Done:
				return
			}
		}
	}()

	// The ack-deadline storm: 1 s deadline, never acks.
	expOpen := earliest(topic, kafkatest.Name("expire"))
	expOpen.MaxOutstandingMessages = 300
	expOpen.AckDeadline = durationpb.New(time.Second)
	expirer := openStream(t, gw.sub, expOpen)
	var expired, redelivered atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case m := <-expirer.Msgs:
				expired.Add(1)
				if m.DeliveryAttempt > 1 {
					redelivered.Add(1)
				}
			case <-ctx.Done():
				return
			case <-expirer.Done:
				return
			}
		}
	}()

	// The selective acker: acks all but every 997th record, which it holds
	// (extending its deadline is not needed within the test's time).
	selGroup := kafkatest.Name("selective")
	selOpen := earliest(topic, selGroup)
	// No redelivery within the test: a held record redelivered while the
	// final acks travel would make its old ack id stale, and nobody reads
	// sel.Msgs by then.
	selOpen.AckDeadline = durationpb.New(10 * time.Minute)
	sel := openStream(t, gw.sub, selOpen)
	var heldMu sync.Mutex
	held := map[int32]map[int64]string{} // partition -> offset -> ack id
	var got atomic.Int64
	selCtx, selStop := context.WithCancel(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case m := <-sel.Msgs:
				rec.Consumed(m.Value)
				heldMu.Lock()
				if _, ok := held[m.Partition][m.Offset]; ok { // redelivered after its deadline: keep holding it
					held[m.Partition][m.Offset] = m.AckId
					heldMu.Unlock()
					continue
				}
				if got.Add(1)%997 == 0 {
					if held[m.Partition] == nil {
						held[m.Partition] = map[int64]string{}
					}
					held[m.Partition][m.Offset] = m.AckId
					heldMu.Unlock()
					continue
				}
				heldMu.Unlock()
				sel.Ack(m.AckId)
			case <-selCtx.Done():
				return
			case <-sel.Done:
				return
			}
		}
	}()

	adm := kadm.NewClient(kafkatest.Client(t, brokers))
	checks, violations := 0, 0
	checkCommits := func() {
		heldMu.Lock()
		lowest := map[int32]int64{}
		for p, offs := range held {
			for o := range offs {
				if l, ok := lowest[p]; !ok || o < l {
					lowest[p] = o
				}
			}
		}
		heldMu.Unlock()
		for p, at := range committed(t, adm, selGroup, topic) {
			if l, ok := lowest[p]; ok && at > l {
				violations++
				t.Errorf("partition %d committed at %d, past the unacked record at offset %d", p, at, l)
			}
		}
		checks++
	}
	// Until the selective acker has read everything, check the commits
	// against what it holds; the held set only grows meanwhile, so a
	// commit read after the held set is safe to compare.
	kafkatest.Eventually(t, 120*time.Second*timeoutScale, "the selective acker reads every record", func() bool {
		checkCommits()
		return got.Load() >= int64(n)
	})
	kafkatest.Eventually(t, 30*time.Second*timeoutScale, "the ack-deadline storm redelivers", func() bool { return redelivered.Load() > 0 })
	kafkatest.Eventually(t, 30*time.Second*timeoutScale, "the nack storm runs", func() bool { return nacked.Load() > 2000 })
	checkCommits()

	// The stalled stream got exactly its window.
	if k := len(stalled.Msgs); k != 100 {
		t.Errorf("the stalled stream with max_outstanding_messages 100 holds %d messages", k)
	}
	heap1, rss1 := heapInuse(), rssBytes(t)
	const bound = 200 << 20
	t.Logf("memory with %d x 1 KB in the topic: heap in use %d -> %d MB, RSS %d -> %d MB; nacks %d, ack-deadline deliveries %d (%d redeliveries), commit checks %d",
		n, heap0>>20, heap1>>20, rss0>>20, rss1>>20, nacked.Load(), expired.Load(), redelivered.Load(), checks)
	if heap1-heap0 > bound {
		t.Errorf("Go heap grew by %d MB under slow and stalled subscribers; want < %d MB", (heap1-heap0)>>20, bound>>20)
	}
	// The race detector's shadow memory makes RSS follow allocation churn,
	// so RSS (which counts librdkafka's buffers) is bounded only in a
	// plain build (make test-faults).
	if !raceEnabled && rss1-rss0 > bound {
		t.Errorf("RSS grew by %d MB under slow and stalled subscribers; want < %d MB", (rss1-rss0)>>20, bound>>20)
	}

	// Acking the held records lets the commit reach the end.
	selStop()
	heldMu.Lock()
	var ids []string
	nheld := 0
	for _, offs := range held {
		for _, id := range offs {
			ids = append(ids, id)
			nheld++
		}
	}
	heldMu.Unlock()
	sel.Ack(ids...)
	ends := endOffsets(t, brokers, topic)
	kafkatest.Eventually(t, 30*time.Second*timeoutScale, "acking the held records commits every partition's end", func() bool {
		return fmt.Sprint(committed(t, adm, selGroup, topic)) == fmt.Sprint(ends)
	})
	t.Logf("%d records held unacked by the selective consumer; commits never passed them", nheld)
	rec.Check(t)
}
