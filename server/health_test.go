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
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		server.WatchKafka(ctx, hs, p, healthInterval, testLogger(t), server.PublisherServiceName)
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
