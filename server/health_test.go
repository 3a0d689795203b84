package server_test

import (
	"context"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"google.golang.org/grpc/status"

	"github.com/kgate/kgate/internal/kafkatest"
	"github.com/kgate/kgate/kafkaio"
	"github.com/kgate/kgate/server"
)

const healthInterval = 100 * time.Millisecond

// countingPinger counts the pings WatchKafka makes, so that a test can wait
// for more checks instead of sleeping.
type countingPinger struct {
	p server.Pinger
	n atomic.Int64
}

func (c *countingPinger) Ping(ctx context.Context) error {
	defer c.n.Add(1)
	return c.p.Ping(ctx)
}

// watchKafka runs server.WatchKafka for the test on a goroutine the test
// owns: it is stopped, and waited for, when the test ends (before the
// gateway's own cleanup, which was registered earlier).
func watchKafka(t *testing.T, hs *health.Server, p server.Pinger) {
	t.Helper()
	watchKafkaWith(t, hs, p, server.HealthPolicy{Interval: healthInterval})
}

func watchKafkaWith(t *testing.T, hs *health.Server, p server.Pinger, policy server.HealthPolicy) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		server.WatchKafka(ctx, hs, p, policy, testLogger(t), server.PublisherServiceName)
	}()
	t.Cleanup(func() {
		cancel()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second * timeoutScale):
			t.Errorf("WatchKafka did not return within 10s of its context's cancellation")
		}
	})
}

// healthOf asks the gateway's health service, as a load balancer does. A
// service the health server does not know is SERVICE_UNKNOWN (the Check
// RPC answers NOT_FOUND).
func healthOf(t *testing.T, gw *gateway, service string) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second*timeoutScale)
	defer cancel()
	resp, err := healthpb.NewHealthClient(gw.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if status.Code(err) == codes.NotFound {
		return healthpb.HealthCheckResponse_SERVICE_UNKNOWN
	}
	if err != nil {
		t.Fatalf("health Check(%q): %v", service, err)
	}
	return resp.GetStatus()
}

func waitHealth(t *testing.T, gw *gateway, timeout time.Duration, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	for _, svc := range []string{"", server.PublisherServiceName} {
		kafkatest.Eventually(t, timeout, "health of "+strconv.Quote(svc)+" is "+want.String(), func() bool {
			return healthOf(t, gw, svc) == want
		})
	}
}

func TestHealthFollowsKafkaReachability(t *testing.T) {
	t.Parallel()
	c := kafkatest.Cluster(t, kfake.AllowAutoTopicCreation())
	addr := c.ListenAddrs()[0]
	gw := startGateway(t, kafkaio.ProducerConfig{Brokers: addr})
	watchKafka(t, gw.health, gw.prod)

	waitHealth(t, gw, 10*time.Second*timeoutScale, healthpb.HealthCheckResponse_SERVING)

	c.Close()
	start := time.Now()
	waitHealth(t, gw, 5*time.Second*timeoutScale, healthpb.HealthCheckResponse_NOT_SERVING)
	t.Logf("NOT_SERVING %v after the broker stopped", time.Since(start).Round(time.Millisecond))

	// The broker comes back on the same address: SERVING again.
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	kafkatest.Cluster(t, kfake.AllowAutoTopicCreation(), kfake.Ports(p))
	start = time.Now()
	waitHealth(t, gw, 10*time.Second*timeoutScale, healthpb.HealthCheckResponse_SERVING)
	t.Logf("SERVING %v after the broker came back", time.Since(start).Round(time.Millisecond))
}

func TestHealthStaysNotServingAfterShutdown(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// shutdownFirst: hs.Shutdown before WatchKafka starts, else once
		// it reported SERVING.
		shutdownFirst bool
		// allowed is every status a client may see after Shutdown.
		allowed []healthpb.HealthCheckResponse_ServingStatus
	}{
		{"shutdown while serving", false, []healthpb.HealthCheckResponse_ServingStatus{healthpb.HealthCheckResponse_NOT_SERVING}},
		// grpc's health.Server ignores SetServingStatus after Shutdown, so
		// a service WatchKafka never registered stays unknown: not
		// SERVING either way.
		{"shutdown before the first check", true, []healthpb.HealthCheckResponse_ServingStatus{
			healthpb.HealthCheckResponse_NOT_SERVING, healthpb.HealthCheckResponse_SERVICE_UNKNOWN}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			gw := startGateway(t, kafkaio.ProducerConfig{Brokers: kafkatest.Brokers(t)})
			pinger := &countingPinger{p: gw.prod}
			if tc.shutdownFirst {
				gw.health.Shutdown()
			}
			watchKafka(t, gw.health, pinger)
			if !tc.shutdownFirst {
				waitHealth(t, gw, 10*time.Second*timeoutScale, healthpb.HealthCheckResponse_SERVING)
				gw.health.Shutdown()
			}

			// Watch every status change of both services from here on.
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			var mu sync.Mutex
			var seen []healthpb.HealthCheckResponse_ServingStatus
			for _, svc := range []string{"", server.PublisherServiceName} {
				stream, err := healthpb.NewHealthClient(gw.conn).Watch(ctx, &healthpb.HealthCheckRequest{Service: svc})
				if err != nil {
					cancel()
					t.Fatalf("health Watch(%q): %v", svc, err)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						resp, err := stream.Recv()
						if err != nil {
							return // the test cancelled ctx
						}
						mu.Lock()
						seen = append(seen, resp.GetStatus())
						mu.Unlock()
					}
				}()
			}
			stopWatching := func() { cancel(); wg.Wait() }
			t.Cleanup(stopWatching)

			// Let WatchKafka check Kafka, successfully, several more times.
			from := pinger.n.Load()
			kafkatest.Eventually(t, 10*time.Second*timeoutScale, "WatchKafka pings Kafka 5 more times", func() bool {
				return pinger.n.Load() >= from+5
			})
			if err := gw.prod.Ping(testContext(t, 5*time.Second)); err != nil {
				t.Fatalf("Kafka is not reachable, so this test shows nothing: %v", err)
			}
			for _, svc := range []string{"", server.PublisherServiceName} {
				if st := healthOf(t, gw, svc); !slices.Contains(tc.allowed, st) {
					t.Errorf("after Shutdown and %d successful pings, health of %q is %v, want one of %v", pinger.n.Load()-from, svc, st, tc.allowed)
				}
			}
			stopWatching()
			mu.Lock()
			defer mu.Unlock()
			if len(seen) == 0 {
				t.Errorf("the health watchers saw nothing; Watch sends the current status first")
			}
			for _, s := range seen {
				if !slices.Contains(tc.allowed, s) {
					t.Errorf("after Shutdown a health watcher saw %v (all it saw: %v)", s, seen)
				}
			}
		})
	}
}

// healthSample is what a load balancer saw of the gateway's health at the
// start of one of WatchKafka's checks, with the checks before it.
type healthSample struct {
	failedBefore int  // consecutive failed checks just before
	servedBefore bool // some check before succeeded
	status       healthpb.HealthCheckResponse_ServingStatus
	err          error
}

// samplingPinger asks the gateway's health service, as a client does, at the
// start of every check WatchKafka makes, then checks Kafka. WatchKafka
// checks one at a time and sets the status after each, so a sample shows
// exactly what the checks before it made of the health.
type samplingPinger struct {
	p     server.Pinger
	check func() (healthpb.HealthCheckResponse_ServingStatus, error)

	mu      sync.Mutex
	failed  int
	served  bool
	samples []healthSample
}

func (s *samplingPinger) Ping(ctx context.Context) error {
	st, err := s.check()
	s.mu.Lock()
	s.samples = append(s.samples, healthSample{failedBefore: s.failed, servedBefore: s.served, status: st, err: err})
	s.mu.Unlock()
	perr := s.p.Ping(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if perr != nil {
		s.failed++
	} else {
		s.failed, s.served = 0, true
	}
	return perr
}

func (s *samplingPinger) snapshot() []healthSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.samples)
}

// TestHealthNeedsConsecutiveFailuresAndRecoversAtTheFirstSuccess: with the
// broker process stopped (SIGSTOP) every check times out, yet the gateway
// stays SERVING for the first Failures-1 of them and turns NOT_SERVING only
// after Failures in a row; once the broker is continued (SIGCONT) the first
// successful check makes it SERVING again. One failed check on a loaded
// machine therefore no longer drops the instance from a load balancer.
func TestHealthNeedsConsecutiveFailuresAndRecoversAtTheFirstSuccess(t *testing.T) {
	t.Parallel()
	broker := kafkatest.StartBrokerProcess(t)
	gw := startGateway(t, kafkaio.ProducerConfig{Brokers: broker.Addr})
	t.Cleanup(func() { broker.Continue(t) }) // before the gateway closes its producer
	const failures = 3
	hc := healthpb.NewHealthClient(gw.conn)
	sp := &samplingPinger{p: gw.prod, check: func() (healthpb.HealthCheckResponse_ServingStatus, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second*timeoutScale)
		defer cancel()
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: server.PublisherServiceName})
		return resp.GetStatus(), err
	}}
	watchKafkaWith(t, gw.health, sp, server.HealthPolicy{Interval: 250 * time.Millisecond, Failures: failures})

	waitHealth(t, gw, 10*time.Second*timeoutScale, healthpb.HealthCheckResponse_SERVING)
	broker.Stop(t)
	stopped := time.Now()
	waitHealth(t, gw, 20*time.Second*timeoutScale, healthpb.HealthCheckResponse_NOT_SERVING)
	t.Logf("NOT_SERVING %v after the broker was stopped", time.Since(stopped).Round(time.Millisecond))
	broker.Continue(t)
	continued := time.Now()
	waitHealth(t, gw, 20*time.Second*timeoutScale, healthpb.HealthCheckResponse_SERVING)
	t.Logf("SERVING %v after the broker was continued", time.Since(continued).Round(time.Millisecond))
	n := len(sp.snapshot())
	kafkatest.Eventually(t, 10*time.Second*timeoutScale, "one more health check", func() bool { return len(sp.snapshot()) > n })

	var rodeOut, notServing, recovered bool
	afterNotServing := false
	for i, smp := range sp.snapshot() {
		if smp.err != nil {
			t.Fatalf("sample %d: health Check: %v", i, smp.err)
		}
		want := healthpb.HealthCheckResponse_NOT_SERVING
		if smp.servedBefore && smp.failedBefore < failures {
			want = healthpb.HealthCheckResponse_SERVING
		}
		if smp.status != want {
			t.Errorf("check %d: a client saw %v after %d failed checks in a row (Kafka answered before: %v), want %v",
				i, smp.status, smp.failedBefore, smp.servedBefore, want)
		}
		switch {
		case smp.servedBefore && smp.failedBefore > 0 && smp.failedBefore < failures:
			rodeOut = true
		case smp.failedBefore >= failures:
			notServing, afterNotServing = true, true
		case smp.failedBefore == 0 && afterNotServing:
			recovered = true
		}
	}
	if !rodeOut || !notServing || !recovered {
		t.Errorf("the checks did not show every step (SERVING through a failed check: %v, NOT_SERVING after %d: %v, SERVING at the first success after: %v)",
			rodeOut, failures, notServing, recovered)
	}
}
