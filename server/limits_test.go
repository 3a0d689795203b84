package server_test

import (
	"log/slog"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/gatewaytest"
	"github.com/kgate/kgate/internal/kafkatest"
	"github.com/kgate/kgate/server"
)

// TestPublishBoundsTheMessagesOfARequest: a Publish of more messages than
// the bound is INVALID_ARGUMENT TOO_MANY_MESSAGES and writes nothing, and
// two million empty messages in one 4 MB request cost the gateway no more
// than the bound's worth to decode. (Not parallel: it reads the process's
// allocation counter.)
func TestPublishBoundsTheMessagesOfARequest(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "many", 1)
	gw := startGatewayWith(t, kafkaProducer(brokers), security{maxPublishMessages: 100})
	ctx := testContext(t, 60*time.Second)
	batch := func(n int) *kgatev1.PublishRequest {
		req := &kgatev1.PublishRequest{Topic: topic}
		for range n {
			req.Messages = append(req.Messages, &kgatev1.Message{Value: []byte("m")})
		}
		return req
	}
	if resp, err := gw.pub.Publish(ctx, batch(100)); err != nil || len(resp.GetResults()) != 100 {
		t.Fatalf("100 messages, the bound: %v, %d results", err, len(resp.GetResults()))
	}
	tooMany := func(what string, err error) {
		t.Helper()
		st, d := detailsOf(t, err)
		if st.Code() != codes.InvalidArgument || d.info.GetReason() != "TOO_MANY_MESSAGES" || !strings.Contains(st.Message(), "more than 100 messages") {
			t.Errorf("%s: %v %s %q, want INVALID_ARGUMENT TOO_MANY_MESSAGES", what, st.Code(), d.info.GetReason(), st.Message())
		}
	}
	_, err := gw.pub.Publish(ctx, batch(101))
	tooMany("101 messages", err)

	req := gatewaytest.EmptyMessages(topic, 2_000_000)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var resp []byte
	err = gw.conn.Invoke(ctx, kgatev1.Publisher_Publish_FullMethodName, req, &resp, grpc.ForceCodecV2(gatewaytest.RawCodec{}))
	runtime.ReadMemStats(&after)
	tooMany("2 million empty messages", err)
	// Decoded whole, the request took ~150 MB; cut, the request's 4 MB
	// buffers on either side and 101 messages.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
		t.Errorf("the 4 MB request of 2 million messages allocated %d MB, want it decoded no further than the bound", alloc>>20)
	} else {
		t.Logf("a 4 MB request of 2 million messages allocated %.1f MB", float64(alloc)/(1<<20))
	}
	if recs := kafkatest.ReadAll(t, brokers, topic); len(recs) != 100 {
		t.Errorf("the topic holds %d records, want the 100 of the accepted batch", len(recs))
	}
}

// TestConnectionsBeyondTheLimitAreClosed: beyond --max-connections a new
// connection is closed at once (UNAVAILABLE to its client, counted), the
// connections held keep working, and a closed one makes room.
func TestConnectionsBeyondTheLimitAreClosed(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "conns", 1)
	gw := startGatewayWith(t, kafkaProducer(brokers), security{listener: func(l net.Listener, m *server.Metrics) net.Listener {
		return server.LimitListener(l, 2, m, slog.New(slog.DiscardHandler))
	}})
	req := &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: []byte("x")}}}
	dial := func() *grpc.ClientConn {
		c, err := grpc.NewClient(gw.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	publish := func(c *grpc.ClientConn) error {
		_, err := kgatev1.NewPublisherClient(c).Publish(testContext(t, 10*time.Second), req)
		return err
	}
	held := []*grpc.ClientConn{dial(), dial()}
	for i, c := range held {
		if err := publish(c); err != nil {
			t.Fatalf("connection %d of 2: %v", i+1, err)
		}
	}
	third := dial()
	if err := publish(third); codeOf(err) != codes.Unavailable {
		t.Errorf("a third connection: %v, want UNAVAILABLE (closed at once)", err)
	}
	if n, _ := sum(gatherSamples(t, gw), "kgate_refused_connections_total"); n < 1 {
		t.Errorf("kgate_refused_connections_total = %v, want the refusal counted", n)
	}
	if n, _ := sum(gatherSamples(t, gw), "kgate_connections"); n != 2 {
		t.Errorf("kgate_connections = %v, want 2", n)
	}
	for i, c := range held {
		if err := publish(c); err != nil {
			t.Errorf("connection %d, held while the third was refused: %v", i+1, err)
		}
	}
	held[0].Close()
	kafkatest.Eventually(t, 30*time.Second*timeoutScale, "a new connection is served once one closed", func() bool {
		return publish(third) == nil
	})
}

// TestOversizedHeadersAreRefusedUnread: headers beyond the bound (16 KiB)
// never reach a handler. A raw HTTP/2 client sending 1 MiB of them has
// its stream reset or its connection closed, unanswered; grpc-go refuses
// to send them (INTERNAL, naming the bound); the gateway serves on.
func TestOversizedHeadersAreRefusedUnread(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "hdr", 1)
	gw := startGatewayWith(t, kafkaProducer(brokers), security{auth: newAuth(t, server.AuthConfig{Tokens: map[string]string{"t": "alice"}}),
		serverOpts: server.ServerOptions(server.Limits{})})
	for _, size := range []int{20 << 10, 1 << 20} {
		h := gatewaytest.DialH2(t, gw.addr)
		_, werr := h.WriteCall(gw.addr, kgatev1.Publisher_Publish_FullMethodName, hpack.HeaderField{Name: "authorization", Value: "Bearer " + strings.Repeat("t", size)})
		o := h.ReadUntilClosed(10 * time.Second)
		t.Logf("%d KiB of headers: write %v; resets %v, GOAWAY %v, closed %v", size>>10, werr, o.Resets, o.GoAway, o.Closed)
		if o.Answered > 0 || (len(o.Resets) == 0 && !o.Closed) {
			t.Errorf("%d KiB of headers: %d answers, resets %v, closed %v; want the call reset or the connection closed, unanswered", size>>10, o.Answered, o.Resets, o.Closed)
		}
	}
	big := dialAs(t, gw, strings.Repeat("t", 20<<10))
	_, err := big.pub.Publish(testContext(t, 10*time.Second), &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: []byte("x")}}})
	if st := status.Convert(err); st.Code() != codes.Internal || !strings.Contains(st.Message(), "header list size") {
		t.Errorf("grpc-go with a 20 KiB token: %v %q, want INTERNAL naming the header list size", st.Code(), st.Message())
	}
	if _, err := dialAs(t, gw, "t").pub.Publish(testContext(t, 10*time.Second), &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: []byte("x")}}}); err != nil {
		t.Errorf("an honest call after the oversized ones: %v", err)
	}
}
