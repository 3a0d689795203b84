package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/kafkatest"
)

// Bounds of the operation tests, on top of those in gateway_test.go.
const (
	opShutdownTimeout = 5 * time.Second // the gateway's --shutdown-timeout
	// opExitMargin is what SIGTERM may take beyond --shutdown-timeout: the
	// consumers' close and the health watcher's last metadata request are
	// not bounded by it.
	opExitMargin = 10 * time.Second
	// opCallTimeout is every load Publish call's deadline, well beyond the
	// shutdown timeout: a call that needs it hung.
	opCallTimeout = opShutdownTimeout + 40*time.Second
	groupTimeout  = 60 * time.Second // streams joining a group and splitting it
	opLinger      = "50"             // the gateway producer's linger.ms under load
)

// grpcListeningRE finds the gRPC address in the "kgate listening" line,
// whatever else the line says.
var grpcListeningRE = regexp.MustCompile(`msg="kgate listening" grpc=(\S+)`)

// TestGatewayOperation runs gateway processes against one broker process
// (brokerd, or KGATE_TEST_BROKERS) the way an operator does: a SIGTERM
// under load, and several instances sharing a consumer group.
func TestGatewayOperation(t *testing.T) {
	dir := t.TempDir()
	gateway := goBuild(t, dir, "gateway", "github.com/kgate/kgate/cmd/gateway")
	brokers := kafkatest.BrokerProcess(t)

	t.Run("SIGTERM under load", func(t *testing.T) {
		t.Parallel()
		testShutdownUnderLoad(t, gateway, brokers)
	})
	t.Run("several instances", func(t *testing.T) {
		t.Parallel()
		testSeveralInstances(t, gateway, brokers)
	})
}

// startGatewayProc starts a gateway on a free port against brokers, waits
// until it serves Publisher and Subscriber, and returns it with a client
// connection.
func startGatewayProc(t *testing.T, gateway, name, brokers string, args ...string) (*proc, *grpc.ClientConn) {
	t.Helper()
	gw := startProc(t, name, gateway, childEnv(), append([]string{"--listen", "127.0.0.1:0", "--brokers", brokers}, args...)...)
	m := gw.waitFor(t, grpcListeningRE, startTimeout, name+" logs that it is listening")
	conn := dial(t, m[1])
	waitServing(t, conn, "", "kgate.v1.Publisher", "kgate.v1.Subscriber")
	return gw, conn
}

// outcome is what one Publish call of one message returned.
type outcome struct {
	worker    int
	value     string
	code      codes.Code
	msg       string
	partition int32
	offset    int64
	start     time.Time
	took      time.Duration
}

// testShutdownUnderLoad: SIGTERM while publishers and two streams of one
// group are busy. The gateway exits 0 within --shutdown-timeout and a
// margin; every Publish returns (OK, UNAVAILABLE, RESOURCE_EXHAUSTED or an
// unknown outcome); the streams end UNAVAILABLE; Kafka holds every OK'd
// record and none that was refused; the group's commits pass no record the
// streams did not ack.
func testShutdownUnderLoad(t *testing.T, gateway, brokers string) {
	topic := kafkatest.CreateTopic(t, brokers, "shutdown", 3)
	group := kafkatest.Name("shutdown-g")
	// linger.ms keeps each publish in librdkafka for a while, so that
	// SIGTERM finds messages waiting for their delivery reports.
	gw, conn := startGatewayProc(t, gateway, "gateway", brokers, "--shutdown-timeout", opShutdownTimeout.String(), "--kafka-producer", "linger.ms="+opLinger, "--kafka-consumer", "fetch.wait.max.ms=100")

	open := &kgatev1.SubscribeOpen{Topics: []string{topic}, Group: group, StartPosition: kgatev1.StartPosition_START_POSITION_EARLIEST}
	streams := []*subStream{openSubStream(t, conn, "s1", open), openSubStream(t, conn, "s2", open)}
	waitSplit(t, streams, 3)

	// Load: publishers, each one message per call with a unique value,
	// until the gateway process exited.
	const publishers = 8
	var (
		loadMu   sync.Mutex
		outcomes []outcome
		loadWG   sync.WaitGroup
	)
	stopLoad := make(chan struct{})
	var stopOnce sync.Once
	stop := func() { stopOnce.Do(func() { close(stopLoad) }) }
	// loadCtx is cancelled only by the cleanup, so that a failing test does
	// not wait for the calls' deadlines.
	loadCtx, cancelLoad := context.WithCancel(context.Background())
	pub := kgatev1.NewPublisherClient(conn)
	loadStart := time.Now()
	for w := range publishers {
		loadWG.Add(1)
		go func() {
			defer loadWG.Done()
			for i := 0; ; i++ {
				select {
				case <-stopLoad:
					return
				default:
				}
				v := fmt.Sprintf("w%d-%06d", w, i)
				ctx, cancel := context.WithTimeout(loadCtx, opCallTimeout)
				o := outcome{worker: w, value: v, start: time.Now()}
				resp, err := pub.Publish(ctx, &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Key: []byte(v), Value: []byte(v)}}})
				o.took = time.Since(o.start)
				cancel()
				st := status.Convert(err)
				o.code, o.msg = st.Code(), st.Message()
				if err == nil && len(resp.GetResults()) == 1 {
					o.partition, o.offset = resp.Results[0].GetPartition(), resp.Results[0].GetOffset()
				} else if err == nil {
					o.code, o.msg = codes.Internal, fmt.Sprintf("OK with %d results for 1 message", len(resp.GetResults()))
				}
				loadMu.Lock()
				outcomes = append(outcomes, o)
				loadMu.Unlock()
				if err != nil {
					time.Sleep(5 * time.Millisecond) // pacing: refused calls return at once
				}
			}
		}()
	}
	t.Cleanup(func() {
		stop()
		cancelLoad()
		loadWG.Wait()
	})

	// Let the load run 1.5 s, with both streams receiving records.
	kafkatest.Eventually(t, groupTimeout, "load ran 1.5 s and both streams received records", func() bool {
		return time.Since(loadStart) >= 1500*time.Millisecond && streams[0].count() > 0 && streams[1].count() > 0
	})
	sigterm := time.Now()
	if err := gw.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}

	// The streams end first (step 2 of the shutdown), then the process.
	for _, s := range streams {
		err := s.waitEnd(t, opShutdownTimeout+opExitMargin)
		st := status.Convert(err)
		t.Logf("stream %s ended %v after SIGTERM: %v %q", s.name, s.endAt.Sub(sigterm).Round(time.Millisecond), st.Code(), st.Message())
		switch {
		case st.Code() != codes.Unavailable:
			t.Errorf("stream %s ended with %v (%v); on shutdown a stream ends UNAVAILABLE so that the client reconnects", s.name, st.Code(), err)
		case !strings.Contains(st.Message(), "shutting down"):
			t.Logf("stream %s: UNAVAILABLE from the connection closing, not the gateway's own shutdown status", s.name)
		}
	}
	select {
	case <-gw.done:
	case <-time.After(opShutdownTimeout + opExitMargin - time.Since(sigterm)):
		t.Fatalf("the gateway did not exit within --shutdown-timeout %v + %v of SIGTERM", opShutdownTimeout, opExitMargin)
	}
	exitAfter := time.Since(sigterm)
	t.Logf("gateway exited %v after SIGTERM (--shutdown-timeout %v), code %d", exitAfter.Round(time.Millisecond), opShutdownTimeout, gw.cmd.ProcessState.ExitCode())
	if code := gw.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("the gateway exited %d after SIGTERM, want 0", code)
	}
	if !stoppedRE.MatchString(gw.stderr.String()) {
		t.Errorf("the gateway did not log \"stopped\"")
	}
	// Scoped properties reach only their kind of client: librdkafka warns
	// "... is a producer property and will be ignored by this consumer
	// instance" otherwise, once per Subscribe stream.
	if strings.Contains(gw.stderr.String(), "will be ignored by this") {
		t.Errorf("librdkafka warned of a property given to the wrong kind of client:\n%s", gw.stderr.String())
	}

	// Every call returns once the gateway is gone.
	stop()
	loadDone := make(chan struct{})
	go func() { loadWG.Wait(); close(loadDone) }()
	select {
	case <-loadDone:
	case <-time.After(opCallTimeout):
		t.Fatalf("Publish calls still running %v after the gateway exited", opCallTimeout)
	}

	loadMu.Lock()
	calls := slices.Clone(outcomes)
	loadMu.Unlock()
	byCode := map[codes.Code]int{}
	var inShutdown, maxShutdownTook time.Duration
	for _, o := range calls {
		byCode[o.code]++
		switch o.code {
		case codes.OK, codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded, codes.Canceled, codes.Unknown:
		default:
			t.Errorf("Publish %s: %v %q; want OK, UNAVAILABLE, RESOURCE_EXHAUSTED or an unknown outcome", o.value, o.code, o.msg)
		}
		if o.took >= opShutdownTimeout+opExitMargin {
			t.Errorf("Publish %s took %v (%v %q): longer than --shutdown-timeout %v + %v", o.value, o.took, o.code, o.msg, opShutdownTimeout, opExitMargin)
		}
		if end := o.start.Add(o.took); end.After(sigterm) && o.start.Before(sigterm.Add(exitAfter)) {
			inShutdown++
			maxShutdownTook = max(maxShutdownTook, o.took)
		}
	}
	t.Logf("%d Publish calls in %v by %d publishers: %v; %d overlapped the shutdown, the slowest took %v",
		len(calls), time.Since(loadStart).Round(time.Millisecond), publishers, byCode, inShutdown, maxShutdownTook.Round(time.Millisecond))
	// The broker stays healthy and answers well within --shutdown-timeout:
	// the gateway waits for every delivery report, so no call that was in
	// flight at SIGTERM learns only that its outcome is unknown.
	inFlight := map[codes.Code]int{}
	for _, o := range calls {
		if o.start.Before(sigterm) && o.start.Add(o.took).After(sigterm) {
			inFlight[o.code]++
			if o.code == codes.Unknown || o.code == codes.DeadlineExceeded || o.code == codes.Canceled {
				t.Errorf("Publish %s, in flight at SIGTERM, ended %v %q after %v: with a healthy broker the gateway waits for its delivery report",
					o.value, o.code, o.msg, o.took.Round(time.Millisecond))
			}
		}
	}
	t.Logf("calls in flight at SIGTERM: %v", inFlight)
	if strings.Contains(gw.stderr.String(), "abandoning unacknowledged messages") {
		t.Errorf("the gateway abandoned unacknowledged messages at shutdown, though the broker is healthy")
	}
	if byCode[codes.OK] == 0 {
		t.Fatalf("no Publish succeeded: the load did not run")
	}
	lastOK := map[int]time.Time{}
	for _, o := range calls {
		if o.code == codes.Unknown || o.code == codes.DeadlineExceeded || o.code == codes.Canceled {
			t.Logf("unknown outcome: %s %v %q after %v", o.value, o.code, o.msg, o.took.Round(time.Millisecond))
		}
		if o.code == codes.OK {
			if end := o.start.Add(o.took); end.After(lastOK[o.worker]) {
				lastOK[o.worker] = end
			}
		}
	}
	for w, at := range lastOK {
		t.Logf("publisher %d: last OK %v after SIGTERM", w, at.Sub(sigterm).Round(time.Millisecond))
	}

	// Kafka holds every OK'd record where Publish said, and no refused one.
	byValue := map[string]outcome{}
	for _, o := range calls {
		byValue[o.value] = o
	}
	recs := kafkatest.ReadAll(t, brokers, topic)
	type pos struct {
		p int32
		o int64
	}
	inKafka := map[string]pos{}
	for _, r := range recs {
		v := string(r.Value)
		if prev, dup := inKafka[v]; dup {
			t.Errorf("%s is in Kafka twice: %d@%d and %d@%d", v, prev.p, prev.o, r.Partition, r.Offset)
		}
		inKafka[v] = pos{r.Partition, r.Offset}
		o, ok := byValue[v]
		switch {
		case !ok:
			t.Errorf("Kafka has a record no Publish call sent: %s", kafkatest.Describe(r))
		case o.code == codes.Unavailable || o.code == codes.ResourceExhausted:
			t.Errorf("Publish of %s failed with %v (%q), yet Kafka has it: %s", v, o.code, o.msg, kafkatest.Describe(r))
		}
	}
	var okd, unknownWritten, unknownNot int
	for _, o := range calls {
		at, ok := inKafka[o.value]
		switch o.code {
		case codes.OK:
			okd++
			if !ok {
				t.Errorf("Publish of %s was OK (%d@%d) but Kafka does not have it", o.value, o.partition, o.offset)
			} else if at != (pos{o.partition, o.offset}) {
				t.Errorf("Publish of %s said %d@%d; Kafka has it at %d@%d", o.value, o.partition, o.offset, at.p, at.o)
			}
		case codes.Unknown, codes.DeadlineExceeded, codes.Canceled:
			if ok {
				unknownWritten++
			} else {
				unknownNot++
			}
		}
	}
	t.Logf("Kafka holds %d records: %d OK'd (all present), %d of unknown outcome written, %d not", len(recs), okd, unknownWritten, unknownNot)

	// Commits pass no record the streams did not ack.
	acked := map[int32]map[int64]bool{}
	received := 0
	for _, s := range streams {
		s.mu.Lock()
		for _, r := range s.recs {
			received++
			if _, ok := inKafka[r.value]; !ok {
				t.Errorf("stream %s received %s at %d@%d, which is not in Kafka", s.name, r.value, r.partition, r.offset)
			}
			if r.acked {
				if acked[r.partition] == nil {
					acked[r.partition] = map[int64]bool{}
				}
				acked[r.partition][r.offset] = true
			}
		}
		t.Logf("stream %s: owned %v, received %d records, acked %d", s.name, s.ownedList(), len(s.recs), s.ackedCount())
		s.mu.Unlock()
	}
	committed := committedOffsets(t, brokers, group, topic)
	ends := endOffsets(t, brokers, topic)
	var totalCommitted int64
	for p := range int32(3) {
		c := committed[p]
		prefix := int64(0)
		for acked[p][prefix] {
			prefix++
		}
		t.Logf("partition %d: end offset %d, acked %d, contiguous acked prefix %d, committed %d", p, ends[p], len(acked[p]), prefix, c)
		if c > prefix {
			t.Errorf("partition %d: the group committed %d, past offset %d, which no stream acked", p, c, prefix)
		}
		totalCommitted += max(c, 0)
	}
	if totalCommitted == 0 {
		t.Errorf("the group committed nothing, though the streams acked %d records before SIGTERM", received)
	}
}

// testSeveralInstances: two gateways against one broker. Records published
// through both land in one topic; two streams of one group, one on each
// gateway, split its partitions, together receive and ack every record,
// the group commits the end offsets, and half-closing both streams ends
// them OK with the commits still there.
func testSeveralInstances(t *testing.T, gateway, brokers string) {
	const n, partitions = 200, 4
	topic := kafkatest.CreateTopic(t, brokers, "instances", partitions)
	group := kafkatest.Name("instances-g")
	gw1, conn1 := startGatewayProc(t, gateway, "gateway-1", brokers)
	gw2, conn2 := startGatewayProc(t, gateway, "gateway-2", brokers)

	open := &kgatev1.SubscribeOpen{Topics: []string{topic}, Group: group, StartPosition: kgatev1.StartPosition_START_POSITION_EARLIEST}
	s1 := openSubStream(t, conn1, "gateway-1", open)
	s2 := openSubStream(t, conn2, "gateway-2", open)
	streams := []*subStream{s1, s2}
	start := time.Now()
	waitSplit(t, streams, partitions)
	t.Logf("the streams split the %d partitions in %v: gateway-1 owns %v, gateway-2 owns %v",
		partitions, time.Since(start).Round(time.Millisecond), s1.owned(), s2.owned())

	type pos struct {
		p int32
		o int64
	}
	published := map[string]pos{}
	pubs := []kgatev1.PublisherClient{kgatev1.NewPublisherClient(conn1), kgatev1.NewPublisherClient(conn2)}
	start = time.Now()
	for i := range n {
		v := fmt.Sprintf("r%03d", i)
		ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
		resp, err := pubs[i%2].Publish(ctx, &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Key: []byte(v), Value: []byte(v)}}})
		cancel()
		if err != nil {
			t.Fatalf("Publish %s through gateway-%d: %v", v, i%2+1, err)
		}
		published[v] = pos{resp.Results[0].GetPartition(), resp.Results[0].GetOffset()}
	}
	t.Logf("published %d records through both gateways in %v", n, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	var distinct map[string]string // value -> stream
	kafkatest.Eventually(t, groupTimeout, fmt.Sprintf("the streams together receive and ack all %d records", n), func() bool {
		distinct = map[string]string{}
		for _, s := range streams {
			s.mu.Lock()
			for _, r := range s.recs {
				if r.acked {
					distinct[r.value] = s.name
				}
			}
			s.mu.Unlock()
		}
		return len(distinct) >= n
	})
	t.Logf("received and acked all %d in %v", n, time.Since(start).Round(time.Millisecond))
	// The first acks are not yet the end: when a partition moves between
	// the gateways after the split (a missed heartbeat under load), what
	// the stream losing it acks afterwards is stale and comes again to
	// the other stream. The group's commits say when every record is done.
	ends := endOffsets(t, brokers, topic)
	var sum int64
	for _, e := range ends {
		sum += e
	}
	if sum != n {
		t.Errorf("the topic's end offsets %v sum to %d, want %d", ends, sum, n)
	}
	kafkatest.Eventually(t, groupTimeout, fmt.Sprintf("the group commits the end offsets %v while both streams are open", ends), func() bool {
		return maps.Equal(committedOffsets(t, brokers, group, topic), ends)
	})
	for _, s := range streams {
		s.mu.Lock()
		dups := 0
		seen := map[string]bool{}
		for _, r := range s.recs {
			want, ok := published[r.value]
			switch {
			case !ok:
				t.Errorf("stream %s received %q, which was not published", s.name, r.value)
			case want != (pos{r.partition, r.offset}):
				t.Errorf("stream %s received %s at %d@%d; Publish said %d@%d", s.name, r.value, r.partition, r.offset, want.p, want.o)
			}
			if seen[r.value] {
				dups++
			}
			seen[r.value] = true
		}
		t.Logf("stream on %s: owns %v after %d assignment messages, received %d records (%d distinct, %d redelivered)",
			s.name, s.ownedList(), s.assignments, len(s.recs), len(seen), dups)
		if len(s.recs) == 0 {
			t.Errorf("the stream on %s received no record", s.name)
		}
		s.mu.Unlock()
	}

	// Half-close both; each ends OK, and the commits stay at the end.
	for _, s := range streams {
		s.closeSend()
	}
	for _, s := range streams {
		if err := s.waitEnd(t, exitTimeout); err != nil {
			t.Errorf("the stream on %s ended with %v after half-close, want OK", s.name, err)
		}
	}
	committed := committedOffsets(t, brokers, group, topic)
	if !maps.Equal(committed, ends) {
		t.Errorf("after both streams ended the group has committed %v; want the end offsets %v", committed, ends)
		var late map[int32]int64
		ok := pollUntil(10*time.Second, func() bool {
			late = committedOffsets(t, brokers, group, topic)
			return maps.Equal(late, ends)
		})
		t.Errorf("10 s later: committed %v (end offsets reached: %v)", late, ok)
	} else {
		t.Logf("committed %v = end offsets", committed)
	}

	gw1.terminate(t)
	gw2.terminate(t)
}

// pollUntil polls cond every 20 ms for up to timeout, reporting whether it
// became true; for diagnosis after a failure.
func pollUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// waitSplit waits until every stream owns at least one partition and
// together they own all partitions of the topic.
func waitSplit(t *testing.T, streams []*subStream, partitions int) {
	t.Helper()
	var last []string
	kafkatest.Eventually(t, groupTimeout, fmt.Sprintf("%d streams of one group split %d partitions", len(streams), partitions), func() bool {
		all := map[int32]bool{}
		last = last[:0]
		ok := true
		for _, s := range streams {
			own := s.owned()
			last = append(last, fmt.Sprintf("%s owns %v", s.name, own))
			if len(own) == 0 {
				ok = false
			}
			for _, p := range own {
				all[p] = true
			}
			select {
			case <-s.done:
				t.Fatalf("stream %s ended while joining: %v", s.name, s.endErr)
			default:
			}
		}
		return ok && len(all) == partitions
	})
}

func committedOffsets(t *testing.T, brokers, group, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	offs, err := kadm.NewClient(kafkatest.Client(t, brokers)).FetchOffsetsForTopics(ctx, group, topic)
	if err != nil {
		t.Fatalf("fetching the committed offsets of %s: %v", group, err)
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Err != nil {
			t.Errorf("committed offset of %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		if o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out
}

func endOffsets(t *testing.T, brokers, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	ends, err := kadm.NewClient(kafkatest.Client(t, brokers)).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("listing end offsets of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Errorf("end offset of %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		if o.Offset > 0 {
			out[o.Partition] = o.Offset
		}
	})
	return out
}

// subStream is a test client's Subscribe stream that acks every record it
// receives. One goroutine receives and acks; the test reads what it
// recorded under mu.
type subStream struct {
	name   string
	cl     kgatev1.Subscriber_SubscribeClient
	sendMu sync.Mutex // Send and CloseSend are not safe concurrently
	done   chan struct{}
	endErr error     // read after done
	endAt  time.Time // read after done

	mu          sync.Mutex
	recs        []rec
	own         map[int32]bool
	assignments int
}

type rec struct {
	partition int32
	offset    int64
	value     string
	acked     bool // the ack was sent
}

// openSubStream opens a stream with open on conn; when the test ends it is
// cancelled and its goroutine waited for.
func openSubStream(t *testing.T, conn *grpc.ClientConn, name string, open *kgatev1.SubscribeOpen) *subStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cl, err := kgatev1.NewSubscriberClient(conn).Subscribe(ctx)
	if err != nil {
		cancel()
		t.Fatalf("Subscribe on %s: %v", name, err)
	}
	s := &subStream{name: name, cl: cl, done: make(chan struct{}), own: map[int32]bool{}}
	if err := s.send(&kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Open{Open: open}}); err != nil {
		cancel()
		t.Fatalf("Subscribe on %s: sending open: %v", name, err)
	}
	go s.receive()
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	return s
}

func (s *subStream) send(req *kgatev1.SubscribeRequest) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return s.cl.Send(req)
}

func (s *subStream) closeSend() {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	_ = s.cl.CloseSend()
}

func (s *subStream) receive() {
	defer close(s.done)
	for {
		resp, err := s.cl.Recv()
		if err != nil {
			s.endErr, s.endAt = err, time.Now()
			return
		}
		if a := resp.GetAssignment(); a != nil {
			s.mu.Lock()
			s.assignments++
			for _, tp := range a.GetAssigned() {
				s.own[tp.GetPartition()] = true
			}
			for _, tp := range a.GetRevoked() {
				delete(s.own, tp.GetPartition())
			}
			s.mu.Unlock()
			continue
		}
		m := resp.GetMessage()
		if m == nil {
			continue
		}
		r := rec{partition: m.GetPartition(), offset: m.GetOffset(), value: string(m.GetValue())}
		ackErr := s.send(&kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Ack{Ack: &kgatev1.SubscribeAck{AckIds: []string{m.GetAckId()}}}})
		r.acked = ackErr == nil
		s.mu.Lock()
		s.recs = append(s.recs, r)
		s.mu.Unlock()
	}
}

// waitEnd waits for the stream to end and returns its status: nil for OK.
func (s *subStream) waitEnd(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(timeout):
		t.Fatalf("stream %s did not end within %v", s.name, timeout)
	}
	if errors.Is(s.endErr, io.EOF) {
		return nil
	}
	return s.endErr
}

func (s *subStream) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.recs)
}

func (s *subStream) owned() []int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ownedList()
}

// ownedList is owned with mu held.
func (s *subStream) ownedList() []int32 {
	ps := slices.Collect(maps.Keys(s.own))
	slices.Sort(ps)
	return ps
}

// ackedCount is the number of acks sent, with mu held.
func (s *subStream) ackedCount() int {
	n := 0
	for _, r := range s.recs {
		if r.acked {
			n++
		}
	}
	return n
}
