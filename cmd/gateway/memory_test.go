package main

import (
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/kafkatest"
	"github.com/kgate/kgate/internal/promtext"
)

var metricsListeningRE = regexp.MustCompile(`msg="kgate listening" .*metrics=(\S+)`)

// TestNeverReadingGroupsStayWithinTheSubscriptionBudget opens 100
// Subscribe streams on the gateway process, each of its own group, that
// never read, on a topic holding 60 MB. The gateway's RSS stays within the
// subscription budget (--subscribe-memory 256 MiB: each group consumer's
// librdkafka buffers and the records held) plus 64 MB; the streams it
// cannot hold are refused with RESOURCE_EXHAUSTED and RetryInfo. When the
// streams end, the consumers leave after their linger, the budget is free
// again, and the memory goes back to the system.
func TestNeverReadingGroupsStayWithinTheSubscriptionBudget(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.BrokerProcess(t)
	topic := kafkatest.CreateTopic(t, brokers, "never", 3)
	cl := kafkatest.Client(t, brokers, kgo.ProducerLinger(5*time.Millisecond))
	value := make([]byte, 1000)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	for i := 0; i < 60000; i += 500 {
		batch := make([]*kgo.Record, 500)
		for j := range batch {
			batch[j] = &kgo.Record{Topic: topic, Value: value}
		}
		if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	const budget = 256 << 20
	gateway := goBuild(t, t.TempDir(), "gateway", "github.com/kgate/kgate/cmd/gateway")
	gw, _ := startGatewayProc(t, gateway, "gateway", brokers, "--subscribe-memory", strconv.Itoa(budget), "--subscribe-linger", "500ms",
		"--kafka-consumer", "session.timeout.ms=6000")
	metricsAddr := gw.waitFor(t, metricsListeningRE, startTimeout, "the metrics address")[1]
	addr := gw.waitFor(t, grpcListeningRE, startTimeout, "the gRPC address")[1]
	budgetUsed := func() float64 { return scrapeMetric(t, metricsAddr, "kgate_subscribe_memory_bytes") }
	rss0 := vmRSS(t, gw.cmd.Process.Pid)

	// Clients that never read, on connections that keep HTTP/2's initial
	// windows: what the gateway sends them is bounded by those.
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sctx, stopStreams := context.WithCancel(ctx)
	defer stopStreams()
	refused := 0
	for i := 0; i < 100; i++ {
		st, err := kgatev1.NewSubscriberClient(conn).Subscribe(sctx)
		if err != nil {
			t.Fatal(err)
		}
		open := &kgatev1.SubscribeOpen{Topics: []string{topic}, Group: kafkatest.Name("never"), StartPosition: kgatev1.StartPosition_START_POSITION_EARLIEST}
		if err := st.Send(&kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Open{Open: open}}); err != nil {
			t.Fatal(err)
		}
		// A refused stream ends at once; an accepted one is sent records,
		// which this client then stops reading.
		if _, err := st.Recv(); err != nil {
			if c := status.Code(err); c != codes.ResourceExhausted {
				t.Fatalf("stream %d: %v, want records or RESOURCE_EXHAUSTED", i, err)
			}
			refused++
		}
	}
	if !pollUntil(60*time.Second, func() bool { return budgetUsed() >= budget*9/10 }) {
		t.Fatalf("the budget used reached only %.0f MB", budgetUsed()/(1<<20))
	}
	time.Sleep(3 * time.Second) // the held state settles; its size is what is measured
	rss1 := vmRSS(t, gw.cmd.Process.Pid)
	t.Logf("100 never-reading groups: %d refused; budget used %.0f MB; gateway RSS %d -> %d MB", refused, budgetUsed()/(1<<20), rss0>>20, rss1>>20)
	if refused == 0 {
		t.Error("no stream was refused: the budget bounded nothing")
	}
	if bound := int64(budget + 64<<20); rss1-rss0 > bound {
		t.Errorf("the gateway's RSS grew by %d MB; want within the budget plus 64 MB (%d MB)", (rss1-rss0)>>20, bound>>20)
	}
	stopStreams()
	if !pollUntil(60*time.Second, func() bool { return budgetUsed() == 0 }) {
		t.Fatalf("the budget is still used after the streams ended: %.0f MB", budgetUsed()/(1<<20))
	}
	var rss2 int64
	pollUntil(10*time.Second, func() bool { rss2 = vmRSS(t, gw.cmd.Process.Pid); return rss2-rss0 < 64<<20 })
	t.Logf("after the streams ended and the consumers left: gateway RSS %d MB", rss2>>20)
	if rss2-rss0 > 64<<20 {
		t.Errorf("the gateway kept %d MB after every consumer left; want it given back (within 64 MB of its idle RSS)", (rss2-rss0)>>20)
	}
}

// scrapeMetric returns the sum of a metric's samples on the gateway's
// metrics endpoint.
func scrapeMetric(t *testing.T, addr, name string) float64 {
	t.Helper()
	v, err := promtext.Sum(addr, name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// With --brokers, the gateway bounds its Go heap from its budgets
// (GOMEMLIMIT = --max-inflight-bytes + --subscribe-memory + 128 MiB) and
// lets garbage collections run less often than GOGC=100 while its live
// heap is small; GOGC and GOMEMLIMIT in its environment win. An operator
// sees both on /metrics.
func TestMemoryLimitAndGCHeadroom(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.BrokerProcess(t)
	topic := kafkatest.CreateTopic(t, brokers, "gc", 3)
	gateway := goBuild(t, t.TempDir(), "gateway", "github.com/kgate/kgate/cmd/gateway")
	for _, tc := range []struct {
		name      string
		env       []string
		wantLimit float64
		tuned     bool // GOGC above 100
	}{
		{"defaults", nil, 64<<20 + 256<<20 + 128<<20, true},
		{"GOGC and GOMEMLIMIT set", []string{"GOGC=100", "GOMEMLIMIT=300MiB"}, 300 << 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw := startProc(t, "gateway", gateway, childEnv(tc.env...), "--listen", "127.0.0.1:0", "--brokers", brokers)
			m := gw.waitFor(t, regexp.MustCompile(`msg="kgate listening" grpc=(\S+) brokers=\S+ metrics=(\S+)`), startTimeout, "the gateway logs that it is listening")
			conn := dial(t, m[1])
			waitServing(t, conn, "kgate.v1.Publisher")
			// Garbage, so that collections run.
			pub := kgatev1.NewPublisherClient(conn)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for i := range 200 {
				if _, err := pub.Publish(ctx, &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: make([]byte, 10_000)}}}); err != nil {
					t.Fatalf("publish %d: %v", i, err)
				}
			}
			if got := scrapeMetric(t, m[2], "go_gc_gomemlimit_bytes"); got != tc.wantLimit {
				t.Errorf("go_gc_gomemlimit_bytes = %.0f, want %.0f", got, tc.wantLimit)
			}
			gogc := scrapeMetric(t, m[2], "go_gc_gogc_percent")
			if tuned := gogc > 100; tuned != tc.tuned {
				t.Errorf("go_gc_gogc_percent = %.0f; want it above 100: %v", gogc, tc.tuned)
			}
			gw.terminate(t)
		})
	}
}
