package faulttest

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"golang.org/x/net/http2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/gatewaytest"
	"github.com/kgate/kgate/internal/kafkatest"
	"github.com/kgate/kgate/kafkaio"
)

// TestBadInputIsRejectedAndWritesNothing: oversized records and invalid
// topic names answer INVALID_ARGUMENT and write nothing; a message with
// 100k headers is written or refused, never a panic or a hang.
func TestBadInputIsRejectedAndWritesNothing(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "bad-input", 1)
	gw := startGateway(t, kafkaio.ProducerConfig{Brokers: brokers})
	ctx := testContext(t, 60*time.Second)

	big := bytes.Repeat([]byte("x"), 1_000_001)
	for name, req := range map[string]*kgatev1.PublishRequest{
		"value over the limit":         {Topic: topic, Messages: []*kgatev1.Message{{Value: big}}},
		"key over the limit":           {Topic: topic, Messages: []*kgatev1.Message{{Key: big}}},
		"headers over the limit":       {Topic: topic, Messages: []*kgatev1.Message{{Headers: []*kgatev1.Header{{Key: "h", Value: big}}}}},
		"one bad message in a batch":   {Topic: topic, Messages: []*kgatev1.Message{{Value: []byte("fine")}, {Value: big}}},
		"empty batch":                  {Topic: topic},
		"empty topic":                  {Messages: []*kgatev1.Message{{Value: []byte("x")}}},
		"topic with a slash":           {Topic: "a/b", Messages: []*kgatev1.Message{{Value: []byte("x")}}},
		"topic with a space":           {Topic: "a b", Messages: []*kgatev1.Message{{Value: []byte("x")}}},
		"topic dot":                    {Topic: ".", Messages: []*kgatev1.Message{{Value: []byte("x")}}},
		"topic dotdot":                 {Topic: "..", Messages: []*kgatev1.Message{{Value: []byte("x")}}},
		"topic of 250 characters":      {Topic: strings.Repeat("t", 250), Messages: []*kgatev1.Message{{Value: []byte("x")}}},
		"topic not ASCII":              {Topic: "tôpic", Messages: []*kgatev1.Message{{Value: []byte("x")}}},
		"topic with a NUL":             {Topic: "a\x00b", Messages: []*kgatev1.Message{{Value: []byte("x")}}},
		"negative partition":           {Topic: topic, Messages: []*kgatev1.Message{{Value: []byte("x"), Partition: ptr(int32(-2))}}},
		"partition that doesn't exist": {Topic: topic, Messages: []*kgatev1.Message{{Value: []byte("x"), Partition: ptr(int32(7))}}},
	} {
		_, err := gw.pub.Publish(ctx, req)
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: got %v, want INVALID_ARGUMENT", name, err)
		}
	}
	if recs := kafkatest.ReadAll(t, brokers, topic); len(recs) != 0 {
		t.Errorf("rejected requests wrote %d records, e.g. %s", len(recs), kafkatest.Describe(recs[0]))
	}
	topics, err := kadm.NewClient(kafkatest.Client(t, brokers)).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range topics.Names() {
		if strings.ContainsAny(name, "/ \x00ô") || len(name) > 249 || name == "." || name == ".." {
			t.Errorf("an invalid topic name was created: %q", name)
		}
	}

	// 100k headers in one message: about 100 KB, under the size limit.
	const nh = 100_000
	m := &kgatev1.Message{Value: []byte("many headers")}
	for i := 0; i < nh; i++ {
		m.Headers = append(m.Headers, &kgatev1.Header{Key: "h"})
	}
	start := time.Now()
	_, err = gw.pub.Publish(testContext(t, 60*time.Second), &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{m}})
	took := time.Since(start)
	recs := kafkatest.ReadAll(t, brokers, topic)
	switch status.Code(err) {
	case codes.OK:
		if len(recs) != 1 || len(recs[0].Headers) != nh {
			t.Errorf("100k headers answered OK; the topic has %d records (want 1 with %d headers)", len(recs), nh)
		}
	case codes.InvalidArgument, codes.ResourceExhausted:
		if len(recs) != 0 {
			t.Errorf("100k headers refused (%v) yet written", err)
		}
	default:
		t.Errorf("100k headers: got %v, want OK or INVALID_ARGUMENT", err)
	}
	t.Logf("a message with %d headers: %v in %v", nh, status.Code(err), took.Round(time.Millisecond))
	// The gateway still serves.
	if _, err := gw.pub.Publish(ctx, &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: []byte("after")}}}); err != nil {
		t.Fatalf("publish after the bad input: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

// goroutinesSettle waits until the goroutine count is back to at most
// base+slack, and reports the count.
func goroutinesSettle(t *testing.T, base, slack int, timeout time.Duration, what string) int {
	t.Helper()
	n := 0
	if !poll(timeout, func() bool { n = runtime.NumGoroutine(); return n <= base+slack }) {
		t.Errorf("%s: %d goroutines, %d before; they did not return to the baseline within %v", what, n, base, timeout)
	}
	return n
}

// TestThousandsOfAbandonedStreams opens 2000 Subscribe streams that never
// send `open` and 100 that open a subscription, then abandons them all
// (cancel). The gateway keeps serving and its goroutines return to the
// baseline. (100 real subscriptions, not 1000: each is a librdkafka
// consumer with its own threads and group join, too heavy for 2 cores in
// the fast suite.)
func TestThousandsOfAbandonedStreams(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "abandon", 2)
	gw := startGateway(t, kafkaio.ProducerConfig{Brokers: brokers})
	if _, err := gw.pub.Publish(testContext(t, 30*time.Second), &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: []byte("x")}}}); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	base := runtime.NumGoroutine()
	const silent, opened = 2000, 100
	var cancels []context.CancelFunc
	for i := 0; i < silent+opened; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		cancels = append(cancels, cancel)
		cl, err := gw.sub.Subscribe(ctx)
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		if i >= silent {
			if err := cl.Send(&kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Open{Open: earliest(topic, kafkatest.Name("abandon"))}}); err != nil {
				t.Fatalf("open %d: %v", i, err)
			}
		}
	}
	t.Cleanup(func() {
		for _, c := range cancels {
			c()
		}
	})
	peak := runtime.NumGoroutine()
	if _, err := gw.pub.Publish(testContext(t, 30*time.Second), &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: []byte("y")}}}); err != nil {
		t.Fatalf("publish with %d streams open: %v", silent+opened, err)
	}
	for _, c := range cancels {
		c()
	}
	after := goroutinesSettle(t, base, 20, 60*time.Second*timeoutScale, "after abandoning the streams")
	t.Logf("%d silent + %d opened streams abandoned: goroutines %d before, %d with them open, %d after", silent, opened, base, peak, after)
}

// TestHTTP2PingFloodIsCutOff sends PING frames as fast as it can on a
// connection with no streams. A server must stop answering such a flood
// (grpc-go's keepalive enforcement: GOAWAY ENHANCE_YOUR_CALM
// "too_many_pings" and a closed connection).
func TestHTTP2PingFloodIsCutOff(t *testing.T) {
	gw := startGateway(t, kafkaio.ProducerConfig{Brokers: kafkatest.Brokers(t)})
	h := gatewaytest.DialH2(t, gw.addr)
	sent := 0
	for ; sent < 10000; sent++ {
		if err := h.Framer.WritePing(false, [8]byte{byte(sent)}); err != nil {
			break // the server closed the connection
		}
	}
	o := h.ReadUntilClosed(10 * time.Second)
	goaway, closed := o.GoAway, o.Closed
	t.Logf("ping flood: %d pings written; GOAWAY %v; connection closed %v", sent, goaway, closed)
	if !closed || goaway == nil || goaway.ErrCode != http2.ErrCodeEnhanceYourCalm {
		t.Errorf("the server did not cut off a ping flood (GOAWAY %v, closed %v): set a keepalive.EnforcementPolicy in server/grpc.go", goaway, closed)
	}
	if _, err := gw.pub.Publish(testContext(t, 30*time.Second), &kgatev1.PublishRequest{Topic: kafkatest.Name("after-ping"), Messages: []*kgatev1.Message{{Value: []byte("x")}}}); err != nil {
		t.Fatalf("the gateway stopped serving after a ping flood: %v", err)
	}
}

// TestHTTP2RapidReset opens streams and resets each at once (CVE-2023-44487).
// The gateway must not panic, must keep serving other clients, and its
// goroutines return to the baseline.
func TestHTTP2RapidReset(t *testing.T) {
	gw := startGateway(t, kafkaio.ProducerConfig{Brokers: kafkatest.Brokers(t)})
	if _, err := gw.pub.Publish(testContext(t, 30*time.Second), &kgatev1.PublishRequest{Topic: kafkatest.Name("rr"), Messages: []*kgatev1.Message{{Value: []byte("x")}}}); err != nil {
		t.Fatal(err)
	}
	base := runtime.NumGoroutine()
	h := gatewaytest.DialH2(t, gw.addr)
	sent := 0
	for ; sent < 20000; sent++ {
		id, err := h.WriteCall(gw.addr, "/kgate.v1.Subscriber/Subscribe")
		if err != nil {
			break
		}
		if err := h.Framer.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
			break
		}
	}
	o := h.ReadUntilClosed(2 * time.Second)
	goaway, closed := o.GoAway, o.Closed
	t.Logf("rapid reset: %d streams opened and reset; GOAWAY %v; connection closed %v", sent, goaway, closed)
	if _, err := gw.pub.Publish(testContext(t, 30*time.Second), &kgatev1.PublishRequest{Topic: kafkatest.Name("rr"), Messages: []*kgatev1.Message{{Value: []byte("y")}}}); err != nil {
		t.Fatalf("the gateway stopped serving after a rapid-reset flood: %v", err)
	}
	h.Conn.Close()
	goroutinesSettle(t, base, 20, 30*time.Second*timeoutScale, "after the rapid-reset flood")
}
