package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/promtext"
)

// The shared-consumer phases (issue 11): what many streams of one group
// cost a gateway, and what a stream coming and going costs the others.

// freePort returns a free 127.0.0.1 port, for a gateway's metrics.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// metricSum scrapes the sum of a metric's samples from a gateway; -1 when
// it cannot.
func metricSum(addr, name string) float64 {
	v, err := promtext.Sum(addr, name)
	if err != nil {
		return -1
	}
	return v
}

// connectionsTo counts the TCP connections of process pid to port.
func connectionsTo(pid int, port string) int {
	inodes := map[string]bool{}
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return -1
	}
	want := fmt.Sprintf(":%04X", p)
	n := 0
	for _, file := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, file))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
			if len(f) > 9 && strings.HasSuffix(f[2], want) && f[3] == "01" && inodes[f[9]] {
				n++
			}
		}
	}
	return n
}

// sharedGateway starts a gateway of its own for a shared-consumer phase,
// with its metrics on a free port.
func (e *env) sharedGateway(ctx context.Context, name string) (*child, string, error) {
	maddr, err := freePort()
	if err != nil {
		return nil, "", err
	}
	gw, err := e.startGateway(ctx, name, nil, "--metrics-listen", maddr)
	return gw, maddr, err
}

// subscriber is one stream of a shared-consumer phase: it acks what it
// receives at once, and records end-to-end latency (the value starts with
// the publish time) and what it got.
type subscriber struct {
	st     kgatev1.Subscriber_SubscribeClient
	cancel context.CancelFunc
	got    atomic.Int64
	done   chan struct{}
	lat    *hist
	latMu  *sync.Mutex
	seen   *seen
	dups   *atomic.Int64
	drain  chan struct{} // closed when the gateway answered a drain
}

func openSubscriber(ctx context.Context, conn *grpc.ClientConn, open *kgatev1.SubscribeOpen, lat *hist, latMu *sync.Mutex, sn *seen, dups *atomic.Int64) (*subscriber, error) {
	sctx, cancel := context.WithCancel(ctx)
	st, err := kgatev1.NewSubscriberClient(conn).Subscribe(sctx)
	if err != nil {
		cancel()
		return nil, err
	}
	if err := st.Send(&kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Open{Open: open}}); err != nil {
		cancel()
		return nil, err
	}
	s := &subscriber{st: st, cancel: cancel, done: make(chan struct{}), lat: lat, latMu: latMu, seen: sn, dups: dups, drain: make(chan struct{})}
	go s.receive()
	return s, nil
}

func (s *subscriber) receive() {
	defer close(s.done)
	for {
		resp, err := s.st.Recv()
		if err != nil {
			return
		}
		if resp.GetDrained() != nil {
			close(s.drain)
			continue
		}
		ms := resp.GetMessages().GetMessages()
		if m := resp.GetMessage(); m != nil {
			ms = []*kgatev1.ReceivedMessage{m}
		}
		if len(ms) == 0 {
			continue
		}
		now := time.Now()
		ids := make([]string, 0, len(ms))
		for _, m := range ms {
			s.got.Add(1)
			if v := m.GetValue(); len(v) >= 8 && s.lat != nil {
				sent := time.Unix(0, int64(binary.BigEndian.Uint64(v)))
				s.latMu.Lock()
				s.lat.record(now.Sub(sent))
				s.latMu.Unlock()
			}
			if s.seen != nil && !s.seen.add(m.GetPartition(), m.GetOffset()) {
				s.dups.Add(1)
			}
			ids = append(ids, m.GetAckId())
		}
		if err := s.st.Send(&kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Ack{Ack: &kgatev1.SubscribeAck{AckIds: ids}}}); err != nil {
			return
		}
	}
}

// leave ends the stream cleanly: drain, wait for drained (the acks of what
// came before it are sent by then), half-close, wait for the end.
func (s *subscriber) leave() {
	_ = s.st.Send(&kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Drain{Drain: &kgatev1.SubscribeDrain{}}})
	select {
	case <-s.drain:
	case <-s.done:
	case <-time.After(10 * time.Second):
	}
	_ = s.st.CloseSend()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
	}
	s.cancel()
}

// publishPaced publishes rate records per second (in batches every 10 ms)
// to topic until ctx is done; each value starts with its publish time.
// Records get keys k0..k63 in turn.
func publishPaced(ctx context.Context, conn *grpc.ClientConn, topic string, rate, size int) {
	pub := kgatev1.NewPublisherClient(conn)
	per := max(rate/100, 1)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		req := &kgatev1.PublishRequest{Topic: topic}
		now := time.Now().UnixNano()
		for range per {
			v := make([]byte, max(size, 8))
			binary.BigEndian.PutUint64(v, uint64(now))
			req.Messages = append(req.Messages, &kgatev1.Message{Key: []byte("k" + strconv.Itoa(n%64)), Value: v})
			n++
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, _ = pub.Publish(cctx, req)
		cancel()
	}
}

// streams is phase f: 200 Subscribe streams of one group on one gateway.
// It reports the gateway's OS threads and its connections to the broker,
// its CPU while idle, and, under ORDERING_NONE, how many of the streams get
// records.
func (e *env) streams(ctx context.Context) error {
	const n = 200
	gw, maddr, err := e.sharedGateway(ctx, "gateway-streams")
	if err != nil {
		return err
	}
	defer gw.stop()
	_, port, _ := net.SplitHostPort(e.brokers)
	topic, err := e.createTopic(ctx, "bench-streams")
	if err != nil {
		return err
	}
	defer e.deleteTopic(topic)
	conns, err := dialAll(gw.addr, e.o.conns)
	if err != nil {
		return err
	}
	defer closeAll(conns)
	var latMu sync.Mutex
	lat := &hist{}
	group := fmt.Sprintf("bench-streams-%d", time.Now().UnixNano())
	var subs []*subscriber
	for i := range n {
		s, err := openSubscriber(ctx, conns[i%len(conns)], &kgatev1.SubscribeOpen{Topics: []string{topic}, Group: group,
			StartPosition: kgatev1.StartPosition_START_POSITION_EARLIEST, Ordering: kgatev1.Ordering_ORDERING_NONE, MaxOutstandingMessages: 50},
			lat, &latMu, nil, nil)
		if err != nil {
			return err
		}
		subs = append(subs, s)
	}
	defer func() {
		for _, s := range subs {
			s.cancel()
			<-s.done
		}
	}()
	sleepCtx(ctx, 3*time.Second) // joined, assigned, settled
	threads := statusKB(gw.pid, "Threads")
	kconns := connectionsTo(gw.pid, port)
	idle0, _ := cpuTime(gw.pid)
	const idleFor = 10 * time.Second
	sleepCtx(ctx, idleFor)
	idle1, _ := cpuTime(gw.pid)
	idlePct := 100 * float64(idle1-idle0) / float64(idleFor)
	pctx, stop := context.WithTimeout(ctx, 5*time.Second)
	publishPaced(pctx, conns[0], topic, 2000, e.o.size)
	stop()
	sleepCtx(ctx, 2*time.Second)
	busy := 0
	for _, s := range subs {
		if s.got.Load() > 0 {
			busy++
		}
	}
	rss := statusKB(gw.pid, "VmRSS") >> 10
	r := Result{Scenario: "f 200 streams, 1 group", Concurrency: n, Messages: 10000, PeakRSSMB: float64(rss), CPUusPerMsg: -1, ClientCPUusPerMsg: -1, BrokerCPUusPerMsg: -1,
		Note: fmt.Sprintf("%d OS threads, %d connections to the broker, idle CPU %.1f%% of a core, %d of %d streams got records (ORDERING_NONE), %v rebalances",
			threads, kconns, idlePct, busy, n, metricSum(maddr, "kgate_subscribe_rebalances_total"))}
	fmt.Printf("  %s: %s\n", r.Scenario, r.Note)
	e.add(r)
	return ctx.Err()
}

// churn is phase g: 12 streams of one group at 2000 records/s while one
// stream leaves (drain, ack, half-close) and another joins every 2 s, for
// each ordering. It reports Kafka rebalances, redeliveries and
// end-to-end latency.
func (e *env) churn(ctx context.Context) error {
	for _, o := range []kgatev1.Ordering{kgatev1.Ordering_ORDERING_PARTITION, kgatev1.Ordering_ORDERING_KEY, kgatev1.Ordering_ORDERING_NONE} {
		if err := e.churnOne(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

func (e *env) churnOne(ctx context.Context, ordering kgatev1.Ordering) error {
	const streams, rate, churnEvery, runFor = 12, 2000, 2 * time.Second, 20 * time.Second
	gw, maddr, err := e.sharedGateway(ctx, "gateway-churn")
	if err != nil {
		return err
	}
	defer gw.stop()
	topic, err := e.createTopic(ctx, "bench-churn")
	if err != nil {
		return err
	}
	defer e.deleteTopic(topic)
	conns, err := dialAll(gw.addr, e.o.conns)
	if err != nil {
		return err
	}
	defer closeAll(conns)
	var latMu sync.Mutex
	lat := &hist{}
	sn := &seen{parts: map[int32][]bool{}}
	var dups atomic.Int64
	group := fmt.Sprintf("bench-churn-%d", time.Now().UnixNano())
	open := &kgatev1.SubscribeOpen{Topics: []string{topic}, Group: group, StartPosition: kgatev1.StartPosition_START_POSITION_EARLIEST,
		Ordering: ordering, MaxMessagesPerResponse: 100}
	var subs []*subscriber
	for i := range streams {
		s, err := openSubscriber(ctx, conns[i%len(conns)], open, lat, &latMu, sn, &dups)
		if err != nil {
			return err
		}
		subs = append(subs, s)
	}
	defer func() {
		for _, s := range subs {
			s.cancel()
			<-s.done
		}
	}()
	sleepCtx(ctx, 2*time.Second) // joined and assigned
	rebalances0 := metricSum(maddr, "kgate_subscribe_rebalances_total")
	pctx, stopPub := context.WithCancel(ctx)
	pubDone := make(chan struct{})
	go func() { defer close(pubDone); publishPaced(pctx, conns[0], topic, rate, e.o.size) }()
	meter := newCPUMeter(gw.pid, e.brokerPID)
	meter.start()
	start := time.Now()
	churns := 0
	for i := 0; time.Since(start) < runFor && ctx.Err() == nil; i++ {
		sleepCtx(ctx, churnEvery)
		// The oldest stream leaves; a new one joins.
		old := subs[0]
		subs = subs[1:]
		old.leave()
		s, err := openSubscriber(ctx, conns[i%len(conns)], open, lat, &latMu, sn, &dups)
		if err != nil {
			stopPub()
			<-pubDone
			return err
		}
		subs = append(subs, s)
		churns++
	}
	stopPub()
	<-pubDone
	sleepCtx(ctx, 2*time.Second) // the last records arrive
	meter.stop()
	var got int64
	for _, s := range subs {
		got += s.got.Load()
	}
	elapsed := time.Since(start)
	latMu.Lock()
	p50, p99 := lat.quantile(0.5), lat.quantile(0.99)
	latMu.Unlock()
	r := Result{Scenario: "g churn " + strings.ToLower(strings.TrimPrefix(ordering.String(), "ORDERING_")), Concurrency: streams,
		Messages: int64(float64(rate) * runFor.Seconds()), Seconds: elapsed.Seconds(), MsgsPerSec: float64(rate),
		P50us: us(p50), P99us: us(p99), Duplicates: dups.Load(),
		CPUusPerMsg: meter.perMsg(0, int64(float64(rate)*elapsed.Seconds())), ClientCPUusPerMsg: -1, BrokerCPUusPerMsg: -1, PeakRSSMB: float64(meter.peak) / 1e6,
		Note: fmt.Sprintf("%d churns (drain, ack, half-close; a new stream joins): %v Kafka rebalances, %v redeliveries, %d records delivered twice; end-to-end p50 %s p99 %s",
			churns, metricSum(maddr, "kgate_subscribe_rebalances_total")-rebalances0, metricSum(maddr, "kgate_subscribe_redeliveries_total"), dups.Load(), fmtUS(us(p50)), fmtUS(us(p99)))}
	fmt.Printf("  %s: %s\n", r.Scenario, r.Note)
	e.add(r)
	return ctx.Err()
}
