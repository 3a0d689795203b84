package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
)

type outcome int

const (
	opOK outcome = iota
	opRejected
	opError
)

// op is one request of a closed-loop worker; w is the worker's index.
type op func(ctx context.Context, w int) (outcome, error)

// loadStats is what one closed-loop run measured in its measurement window.
type loadStats struct {
	ok, rejected, errors int64
	okLat, rejLat        hist
	elapsed              time.Duration
	firstErr             string
}

// record counts one finished request of outcome res that took d.
func (s *loadStats) record(res outcome, d time.Duration, err error) {
	switch res {
	case opOK:
		s.ok++
		s.okLat.record(d)
	case opRejected:
		s.rejected++
		s.rejLat.record(d)
	default:
		s.errors++
		if s.firstErr == "" && err != nil {
			s.firstErr = err.Error()
		}
	}
}

const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseStop
)

// runLoad runs conc workers, each issuing op back to back, for warmup (not
// recorded) and then dur (recorded: requests completing inside the
// window). meter brackets the measurement window.
func runLoad(ctx context.Context, conc int, warmup, dur time.Duration, o op, meter *cpuMeter) loadStats {
	var phase atomic.Int32
	ws := make([]*loadStats, conc)
	opCtx, cancelOps := context.WithCancel(ctx)
	defer cancelOps()
	var wg sync.WaitGroup
	for i := range ws {
		w := &loadStats{}
		ws[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for phase.Load() != phaseStop && opCtx.Err() == nil {
				t := time.Now()
				res, err := o(opCtx, i)
				d := time.Since(t)
				if phase.Load() != phaseMeasure {
					continue
				}
				w.record(res, d, err)
				if res == opError {
					time.Sleep(time.Millisecond) // do not spin on a broken connection
				}
			}
		}()
	}
	sleepCtx(ctx, warmup)
	meter.start()
	start := time.Now()
	phase.Store(phaseMeasure)
	sleepCtx(ctx, dur)
	phase.Store(phaseStop)
	elapsed := time.Since(start)
	meter.stop()
	// Let the last requests finish; cancel the stragglers.
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		cancelOps()
		<-stopped
	}
	s := loadStats{elapsed: elapsed}
	for _, w := range ws {
		s.ok += w.ok
		s.rejected += w.rejected
		s.errors += w.errors
		s.okLat.merge(&w.okLat)
		s.rejLat.merge(&w.rejLat)
		if s.firstErr == "" {
			s.firstErr = w.firstErr
		}
	}
	return s
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// dialAll opens n client connections to addr.
func dialAll(addr string, n int) ([]*grpc.ClientConn, error) {
	conns := make([]*grpc.ClientConn, 0, n)
	for range n {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			closeAll(conns)
			return nil, err
		}
		cc.Connect()
		conns = append(conns, cc)
	}
	return conns, nil
}

func closeAll(conns []*grpc.ClientConn) {
	for _, c := range conns {
		_ = c.Close()
	}
}

func classify(err error) (outcome, error) {
	switch {
	case err == nil:
		return opOK, nil
	case status.Code(err) == codes.ResourceExhausted:
		return opRejected, err
	}
	return opError, err
}

// unaryOp publishes one message of size bytes per call, worker w on
// connection w mod len(conns).
func unaryOp(conns []*grpc.ClientConn, topic string, size int) op {
	clients := make([]kgatev1.PublisherClient, len(conns))
	for i, c := range conns {
		clients[i] = kgatev1.NewPublisherClient(c)
	}
	req := &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: make([]byte, size)}}}
	return func(ctx context.Context, w int) (outcome, error) {
		_, err := clients[w%len(clients)].Publish(ctx, req)
		return classify(err)
	}
}

// pubStream is one kgate.v1.Publisher/PublishStream shared by many
// workers: each worker has at most one message outstanding and uses its
// index as correlation id.
type pubStream struct {
	mu      sync.Mutex // serializes Send
	cs      kgatev1.Publisher_PublishStreamClient
	waiters []chan int32 // outcome codes, by worker
	dead    chan struct{}
	err     error
}

type streamOps struct {
	streams []*pubStream
	reqs    []*kgatev1.PublishStreamRequest
	cancel  context.CancelFunc
}

// newStreamOps opens one PublishStream per connection (at most conc) for
// conc workers.
func newStreamOps(ctx context.Context, conns []*grpc.ClientConn, topic string, size, conc int) (*streamOps, error) {
	sctx, cancel := context.WithCancel(ctx)
	so := &streamOps{cancel: cancel}
	for i := range min(len(conns), conc) {
		cs, err := kgatev1.NewPublisherClient(conns[i]).PublishStream(sctx)
		if err != nil {
			cancel()
			return nil, err
		}
		ps := &pubStream{cs: cs, waiters: make([]chan int32, conc), dead: make(chan struct{})}
		for w := range conc {
			ps.waiters[w] = make(chan int32, 1)
		}
		so.streams = append(so.streams, ps)
		go ps.receive()
	}
	value := make([]byte, size)
	for w := range conc {
		so.reqs = append(so.reqs, &kgatev1.PublishStreamRequest{CorrelationId: strconv.Itoa(w), Topic: topic, Message: &kgatev1.Message{Value: value}})
	}
	return so, nil
}

func (ps *pubStream) receive() {
	defer close(ps.dead)
	for {
		m, err := ps.cs.Recv()
		if err != nil {
			ps.err = err
			return
		}
		w, err := strconv.Atoi(m.GetCorrelationId())
		if err != nil || w < 0 || w >= len(ps.waiters) {
			ps.err = fmt.Errorf("response with unknown correlation id %q", m.GetCorrelationId())
			return
		}
		select {
		case ps.waiters[w] <- m.GetOutcome().GetCode():
		default: // a late answer to a cancelled wait
		}
	}
}

func (so *streamOps) op() op {
	return func(ctx context.Context, w int) (outcome, error) {
		ps := so.streams[w%len(so.streams)]
		ps.mu.Lock()
		err := ps.cs.Send(so.reqs[w])
		ps.mu.Unlock()
		if err != nil {
			return opError, err
		}
		select {
		case c := <-ps.waiters[w]:
			switch codes.Code(c) {
			case codes.OK:
				return opOK, nil
			case codes.ResourceExhausted:
				return opRejected, status.Error(codes.ResourceExhausted, "rejected")
			}
			return opError, status.Errorf(codes.Code(c), "PublishStream outcome %v", codes.Code(c))
		case <-ps.dead:
			return opError, fmt.Errorf("stream ended: %w", ps.err)
		case <-ctx.Done():
			return opError, ctx.Err()
		}
	}
}

func (so *streamOps) close() {
	for _, ps := range so.streams {
		ps.mu.Lock()
		_ = ps.cs.CloseSend()
		ps.mu.Unlock()
	}
	for _, ps := range so.streams {
		select {
		case <-ps.dead:
		case <-time.After(5 * time.Second):
		}
	}
	so.cancel()
}

// runOpenLoad starts op at rate calls per second, each call on its own
// goroutine and never retried, the way calls from many independent
// producers arrive: a slow answer does not slow the arrivals. Calls started
// during warmup are not recorded; calls started during dur are. At most
// maxInflight calls run at once; a call due beyond that is not made and
// counted in skipped (the client, not the gateway, could not keep up).
// meter brackets the measurement window.
func runOpenLoad(ctx context.Context, rate int, warmup, dur time.Duration, o op, meter *cpuMeter, maxInflight int) (s loadStats, skipped int64) {
	opCtx, cancelOps := context.WithCancel(ctx)
	defer cancelOps()
	var (
		mu  sync.Mutex // guards s
		wg  sync.WaitGroup
		sem = make(chan struct{}, maxInflight)
	)
	call := func(i int, measured bool) {
		defer wg.Done()
		defer func() { <-sem }()
		t := time.Now()
		res, err := o(opCtx, i)
		d := time.Since(t)
		if !measured {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		s.record(res, d, err)
	}
	begin := time.Now()
	measureFrom, end := begin.Add(warmup), begin.Add(warmup+dur)
	started := 0
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	metering := false
	for now := begin; now.Before(end) && ctx.Err() == nil; now = <-tick.C {
		if !metering && !now.Before(measureFrom) {
			metering = true
			meter.start()
		}
		due := int(float64(rate) * now.Sub(begin).Seconds())
		for ; started < due; started++ {
			select {
			case sem <- struct{}{}:
				wg.Add(1)
				go call(started, metering)
			default:
				if metering {
					skipped++
				}
			}
		}
	}
	s.elapsed = time.Since(measureFrom)
	meter.stop()
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		cancelOps()
		<-stopped
	}
	return s, skipped
}
