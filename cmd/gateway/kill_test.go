package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/kafkatest"
	"github.com/kgate/kgate/internal/verify"
)

// Bounds of the kill test.
const (
	// killSessionTimeout is the gateways' consumer session.timeout.ms
	// (kfake's minimum): the killed gateway's members leave the group only
	// when it expires.
	killSessionTimeout = 6 * time.Second
	// killConsumeTimeout bounds the new streams' joining (the dead members
	// time out first) and consuming every record; a poll's bound, generous
	// for a loaded machine under -race.
	killConsumeTimeout = 60 * time.Second
	killLoadFor        = 1500 * time.Millisecond // load on the first gateway before SIGKILL
	killPublishers     = 8
	killPayloadSize    = 64
	killMorePerWorker  = 25 // publishes per worker through the second gateway
)

// killPub is what one Publish call of one message returned.
type killPub struct {
	id         string
	gateway    int // 1 or 2
	start, end time.Time
	code       codes.Code
	msg        string
	partition  int32
	offset     int64
	class      verify.Class // as recorded
}

// killLoad publishes unique verify payloads, one per call, and records each
// outcome with the verifier as the call returned it. A call in flight at
// the kill may have been written before the connection broke; it ends
// UNAVAILABLE without kgate's ErrorInfo, which the proto documents, and
// the verifier classes, as an unknown outcome.
type killLoad struct {
	rec   *verify.Recorder
	topic string

	mu    sync.Mutex
	calls []killPub
}

func (l *killLoad) publish(ctx context.Context, pub kgatev1.PublisherClient, gateway int) killPub {
	id := l.rec.ID()
	c := killPub{id: id, gateway: gateway, start: time.Now()}
	cctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	resp, err := pub.Publish(cctx, &kgatev1.PublishRequest{Topic: l.topic, Messages: []*kgatev1.Message{
		{Key: []byte(id), Value: verify.Payload(id, killPayloadSize)},
	}})
	cancel()
	c.end = time.Now()
	if err == nil && len(resp.GetResults()) != 1 {
		err = status.Errorf(codes.Internal, "OK with %d results for 1 message", len(resp.GetResults()))
	}
	st := status.Convert(err)
	c.code, c.msg = st.Code(), st.Message()
	if err == nil {
		c.partition, c.offset = resp.Results[0].GetPartition(), resp.Results[0].GetOffset()
	}
	c.class = l.rec.Record(id, err)
	l.mu.Lock()
	l.calls = append(l.calls, c)
	l.mu.Unlock()
	return c
}

func (l *killLoad) snapshot() []killPub {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// TestGatewayKilledAndRestarted: a gateway process under publish load with
// two Subscribe streams of one group is killed with SIGKILL (no graceful
// shutdown). A new gateway process against the same broker takes over:
// Kafka holds every record that got OK (through either gateway) and none
// that failed; the new streams of the group resume from the committed
// offsets, so that the streams of both gateways together received every
// OK'd record; every record is acked at least once and in the end the
// group has committed the end offsets.
func TestGatewayKilledAndRestarted(t *testing.T) {
	testStart := time.Now()
	dir := t.TempDir()
	gateway := goBuild(t, dir, "gateway", "github.com/kgate/kgate/cmd/gateway")
	brokers := kafkatest.BrokerProcess(t)
	const partitions = 3
	topic := kafkatest.CreateTopic(t, brokers, "kill", partitions)
	group := kafkatest.Name("kill-g")
	gwArgs := []string{"--kafka", fmt.Sprintf("session.timeout.ms=%d", killSessionTimeout.Milliseconds())}

	gw1, conn1 := startGatewayProc(t, gateway, "gateway-1", brokers, gwArgs...)
	open := &kgatev1.SubscribeOpen{Topics: []string{topic}, Group: group, StartPosition: kgatev1.StartPosition_START_POSITION_EARLIEST}
	old := []*subStream{openSubStream(t, conn1, "gateway-1/s1", open), openSubStream(t, conn1, "gateway-1/s2", open)}
	waitSplit(t, old, partitions)

	// Phase 1: load through gateway-1 until it is killed.
	load := &killLoad{rec: verify.New("kill"), topic: topic}
	loadCtx, cancelLoad := context.WithCancel(context.Background())
	stopLoad := make(chan struct{})
	var stopOnce sync.Once
	stop := func() { stopOnce.Do(func() { close(stopLoad) }) }
	var loadWG sync.WaitGroup
	t.Cleanup(func() {
		stop()
		cancelLoad()
		loadWG.Wait()
	})
	pub1 := kgatev1.NewPublisherClient(conn1)
	loadStart := time.Now()
	for range killPublishers {
		loadWG.Add(1)
		go func() {
			defer loadWG.Done()
			for {
				select {
				case <-stopLoad:
					return
				default:
				}
				if c := load.publish(loadCtx, pub1, 1); c.code != codes.OK {
					time.Sleep(5 * time.Millisecond) // pacing: failed calls return at once
				}
			}
		}()
	}
	kafkatest.Eventually(t, groupTimeout, "load ran 1.5 s and both streams received records", func() bool {
		return time.Since(loadStart) >= killLoadFor && old[0].count() > 0 && old[1].count() > 0
	})

	killAt := time.Now()
	if err := gw1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL to gateway-1: %v", err)
	}
	select {
	case <-gw1.done:
	case <-time.After(exitTimeout):
		t.Fatalf("gateway-1 still running %v after SIGKILL", exitTimeout)
	}
	deadAt := time.Now()
	stop()
	loadDone := make(chan struct{})
	go func() { loadWG.Wait(); close(loadDone) }()
	select {
	case <-loadDone:
	case <-time.After(rpcTimeout):
		t.Fatalf("Publish calls still running %v after gateway-1 was killed", rpcTimeout)
	}
	t.Logf("gateway-1 killed after %v of load; reaped %v after SIGKILL (%v)",
		killAt.Sub(loadStart).Round(time.Millisecond), deadAt.Sub(killAt).Round(time.Millisecond), gw1.waitErr)

	phase1 := load.snapshot()
	byCode := map[codes.Code]int{}
	inFlight := map[codes.Code]int{}
	for _, c := range phase1 {
		byCode[c.code]++
		if !c.end.Before(killAt) {
			inFlight[c.code]++
			switch {
			case c.code == codes.OK:
			case c.code != codes.Unavailable:
				t.Errorf("Publish %s, in flight at the kill, ended %v %q; want OK or UNAVAILABLE (connection lost)", c.id, c.code, c.msg)
			case c.class != verify.Unknown && c.start.Before(killAt):
				t.Errorf("Publish %s, in flight at the kill, ended %v %q, which the verifier classes %v; want unknown (UNAVAILABLE without kgate's ErrorInfo)", c.id, c.code, c.msg, c.class)
			}
		}
	}
	t.Logf("phase 1: %d Publish calls by %d publishers through gateway-1: %v; ending at or after the kill: %v",
		len(phase1), killPublishers, byCode, inFlight)
	if byCode[codes.OK] == 0 {
		t.Fatalf("no Publish through gateway-1 succeeded: the load did not run")
	}
	for _, s := range old {
		err := s.waitEnd(t, exitTimeout)
		t.Logf("stream %s ended %v after the kill: %v", s.name, s.endAt.Sub(killAt).Round(time.Millisecond), err)
		if st := status.Convert(err); st.Code() != codes.Unavailable {
			t.Errorf("stream %s ended with %v after its gateway was killed; want UNAVAILABLE", s.name, err)
		}
	}

	// What the killed gateway left committed; nobody commits for the group
	// until the new streams have received records.
	atKill := committedOffsets(t, brokers, group, topic)
	oldAcked := ackedOffsets(old)
	for p := range int32(partitions) {
		prefix := int64(0)
		for oldAcked[p][prefix] {
			prefix++
		}
		t.Logf("partition %d: gateway-1's streams acked %d records, contiguous prefix %d; committed after the kill %d",
			p, len(oldAcked[p]), prefix, atKill[p])
		if atKill[p] > prefix {
			t.Errorf("partition %d: the group committed %d, past offset %d, which no stream acked", p, atKill[p], prefix)
		}
	}

	// Phase 2: a new gateway against the same broker; publish a little more.
	restartAt := time.Now()
	gw2, conn2 := startGatewayProc(t, gateway, "gateway-2", brokers, gwArgs...)
	t.Logf("gateway-2 serving %v after the kill", time.Since(killAt).Round(time.Millisecond))
	pub2 := kgatev1.NewPublisherClient(conn2)
	var moreWG sync.WaitGroup
	for range killPublishers {
		moreWG.Add(1)
		go func() {
			defer moreWG.Done()
			for range killMorePerWorker {
				if c := load.publish(loadCtx, pub2, 2); c.code != codes.OK {
					t.Errorf("Publish %s through gateway-2: %v %q", c.id, c.code, c.msg)
				}
			}
		}()
	}
	moreWG.Wait()
	calls := load.snapshot()
	t.Logf("phase 2: %d Publish calls through gateway-2", len(calls)-len(phase1))

	// The same group on gateway-2: its streams join once the killed
	// members' sessions expired, and consume from the committed offsets.
	committed := committedOffsets(t, brokers, group, topic)
	for p := range int32(partitions) {
		if committed[p] != atKill[p] {
			t.Errorf("partition %d: committed offset moved from %d to %d with no member alive", p, atKill[p], committed[p])
		}
	}
	newStart := time.Now()
	fresh := []*subStream{openSubStream(t, conn2, "gateway-2/s3", open), openSubStream(t, conn2, "gateway-2/s4", open)}
	all := append(slices.Clone(old), fresh...)

	// Kafka now holds everything either phase wrote.
	recs := kafkatest.ReadAll(t, brokers, topic)
	type pos struct {
		p int32
		o int64
	}
	inKafka := map[pos]string{} // -> id
	for _, r := range recs {
		inKafka[pos{r.Partition, r.Offset}] = verify.IDOf(r.Value)
	}
	okAt := map[string]pos{}
	for _, c := range calls {
		if c.code == codes.OK {
			okAt[c.id] = pos{c.partition, c.offset}
		}
	}

	// Consume until some stream received every OK'd record and every
	// record in Kafka has been acked by some stream.
	var missingOK []string
	var unacked []pos
	consumed := pollUntil(killConsumeTimeout, func() bool {
		got := map[string]bool{}
		acked := map[pos]bool{}
		for _, s := range all {
			s.mu.Lock()
			for _, r := range s.recs {
				got[verify.IDOf([]byte(r.value))] = true
				if r.acked {
					acked[pos{r.partition, r.offset}] = true
				}
			}
			s.mu.Unlock()
		}
		missingOK, unacked = missingOK[:0], unacked[:0]
		for id := range okAt {
			if !got[id] {
				missingOK = append(missingOK, id)
			}
		}
		for at := range inKafka {
			if !acked[at] {
				unacked = append(unacked, at)
			}
		}
		return len(missingOK) == 0 && len(unacked) == 0
	})
	took := time.Since(newStart)
	for _, s := range fresh {
		s.mu.Lock()
		t.Logf("stream %s: owns %v after %d assignment messages, received %d records, acked %d",
			s.name, s.ownedList(), s.assignments, len(s.recs), s.ackedCount())
		s.mu.Unlock()
	}
	if !consumed {
		sort.Strings(missingOK)
		sort.Slice(unacked, func(i, j int) bool {
			return unacked[i].p < unacked[j].p || unacked[i].p == unacked[j].p && unacked[i].o < unacked[j].o
		})
		t.Errorf("not within %v of opening gateway-2's streams (session.timeout.ms %v): %d OK'd records received by no stream (e.g. %v), %d records in Kafka acked by no stream (e.g. %v); committed now %v",
			killConsumeTimeout, killSessionTimeout, len(missingOK), missingOK[:min(len(missingOK), 10)],
			len(unacked), unacked[:min(len(unacked), 10)], committedOffsets(t, brokers, group, topic))
	} else {
		t.Logf("gateway-2's streams joined and consumed the rest in %v (%v after the kill)",
			took.Round(time.Millisecond), time.Since(killAt).Round(time.Millisecond))
	}

	// Resume from committed offsets: per partition, the first offset a
	// new stream received is at most the committed offset when it got the
	// partition: what gateway-1 left, or, when the partition moved between
	// gateway-2's streams, what the other one had received and committed.
	maxRecv := map[string]map[int32]int64{}
	first := map[string]map[int32]int64{}
	for _, s := range fresh {
		s.mu.Lock()
		maxRecv[s.name], first[s.name] = map[int32]int64{}, map[int32]int64{}
		for _, r := range s.recs {
			if _, ok := first[s.name][r.partition]; !ok {
				first[s.name][r.partition] = r.offset
			}
			maxRecv[s.name][r.partition] = max(maxRecv[s.name][r.partition], r.offset)
		}
		s.mu.Unlock()
	}
	for p := range int32(partitions) {
		for _, s := range fresh {
			f, ok := first[s.name][p]
			if !ok {
				continue
			}
			bound, from := atKill[p], "the offset gateway-1 committed"
			for _, o := range fresh {
				if m, ok := maxRecv[o.name][p]; ok && o != s && m+1 > bound {
					bound, from = m+1, "1 + the last offset "+o.name+" received"
				}
			}
			t.Logf("partition %d: %s first received offset %d (committed after the kill: %d)", p, s.name, f, atKill[p])
			if f > bound {
				t.Errorf("partition %d: %s started at offset %d, past %d (%s): records %d..%d skipped",
					p, s.name, f, bound, from, bound, f-1)
			}
		}
	}
	// Offsets the old streams had received past the commit come again.
	oldGot := map[pos]bool{}
	for _, s := range old {
		s.mu.Lock()
		for _, r := range s.recs {
			oldGot[pos{r.partition, r.offset}] = true
		}
		s.mu.Unlock()
	}
	redelivered := 0
	for _, s := range fresh {
		s.mu.Lock()
		for _, r := range s.recs {
			if oldGot[pos{r.partition, r.offset}] {
				redelivered++
			}
		}
		s.mu.Unlock()
	}
	t.Logf("gateway-2's streams received %d records gateway-1's streams had received before (at least once)", redelivered)

	// Every stream record is where Kafka has it.
	for _, s := range all {
		s.mu.Lock()
		for _, r := range s.recs {
			if id, ok := inKafka[pos{r.partition, r.offset}]; !ok || id != verify.IDOf([]byte(r.value)) {
				t.Errorf("stream %s received %.30q at %d@%d; Kafka has %q there", s.name, r.value, r.partition, r.offset, id)
			}
		}
		s.mu.Unlock()
	}

	// Kafka: every OK'd record, at the position Publish reported; none
	// that failed; none twice (one call per id, idempotent producer).
	for id, at := range okAt {
		if got, ok := inKafka[at]; !ok || got != id {
			t.Errorf("Publish of %s said %d@%d; Kafka has %q there", id, at.p, at.o, got)
		}
	}
	inTopic := load.rec.Fork()
	inTopic.AddRecords(recs)
	kr := inTopic.Check(t)
	if kr.Duplicates > 0 {
		t.Errorf("Kafka holds %d duplicate records, though every id was published by one call", kr.Duplicates)
	}
	// Streams of both gateways: every OK'd record received by some stream.
	byStreams := load.rec.Fork()
	for _, s := range all {
		s.mu.Lock()
		for _, r := range s.recs {
			byStreams.Consumed([]byte(r.value))
		}
		s.mu.Unlock()
	}
	sr := byStreams.Check(t)
	t.Logf("figures: published=%d OK=%d failed=%d unknown=%d (written: %d); in Kafka: consumed=%d lost=%d duplicates=%d; by the streams: consumed=%d lost=%d duplicates=%d",
		kr.Published, kr.OK, kr.Failed, kr.Unknown, kr.UnknownFound, kr.Consumed, kr.Lost, kr.Duplicates, sr.Consumed, sr.Lost, sr.Duplicates)

	// Half-close gateway-2's streams: they commit what they acked, which
	// is everything.
	for _, s := range fresh {
		s.closeSend()
	}
	for _, s := range fresh {
		if err := s.waitEnd(t, exitTimeout); err != nil {
			t.Errorf("stream %s ended with %v after half-close, want OK", s.name, err)
		}
	}
	ends := endOffsets(t, brokers, topic)
	final := committedOffsets(t, brokers, group, topic)
	if consumed && !maps.Equal(final, ends) {
		t.Errorf("after gateway-2's streams acked everything and ended, the group committed %v; want the end offsets %v", final, ends)
	} else {
		t.Logf("committed %v, end offsets %v", final, ends)
	}

	gw2.terminate(t)
	if out := gw2.stderr.String(); strings.Contains(out, "level=ERROR") {
		t.Logf("gateway-2 logged errors:\n%s", grepLines(out, "level=ERROR"))
	}
	t.Logf("restart to end %v; test ran %v", time.Since(restartAt).Round(time.Millisecond), time.Since(testStart).Round(time.Millisecond))
}

// ackedOffsets is, per partition, the offsets the streams sent acks for.
func ackedOffsets(streams []*subStream) map[int32]map[int64]bool {
	acked := map[int32]map[int64]bool{}
	for _, s := range streams {
		s.mu.Lock()
		for _, r := range s.recs {
			if r.acked {
				if acked[r.partition] == nil {
					acked[r.partition] = map[int64]bool{}
				}
				acked[r.partition][r.offset] = true
			}
		}
		s.mu.Unlock()
	}
	return acked
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
