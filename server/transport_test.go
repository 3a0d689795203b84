package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/kafkatest"
	"github.com/kgate/kgate/kafkaio"
	"github.com/kgate/kgate/server"
)

// tooLarge checks the answer to a request over --max-request-bytes, as the
// proto documents it: RESOURCE_EXHAUSTED without kgate's ErrorInfo or
// RetryInfo (gRPC's own, not "at capacity"), saying how large.
func tooLarge(t *testing.T, what string, err error) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "grpc: received message larger than max") {
		t.Errorf("%s: got %v %q, want RESOURCE_EXHAUSTED \"grpc: received message larger than max (N vs. M)\"", what, st.Code(), st.Message())
	}
	if d := st.Details(); len(d) != 0 {
		t.Errorf("%s: details %v, want none (no ErrorInfo, no RetryInfo: a retry will not help)", what, d)
	}
}

// TestRequestsOverMaxRequestBytes: a Publish request, a PublishStream
// message or a Subscribe request larger than --max-request-bytes is
// RESOURCE_EXHAUSTED without details; the stream it came on ends, nothing
// of it is written, and the gateway goes on serving.
func TestRequestsOverMaxRequestBytes(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "too-large", 1)
	const limit = 64 << 10
	gw := startGatewayWith(t, kafkaio.ProducerConfig{Brokers: brokers, MaxMessageBytes: limit - server.RequestOverheadBytes},
		security{serverOpts: server.ServerOptions(server.Limits{MaxRequestBytes: limit})})
	big := &kgatev1.Message{Value: make([]byte, limit)}

	_, err := gw.pub.Publish(testContext(t, 30*time.Second), &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{big}})
	tooLarge(t, "Publish", err)
	// The largest message the gateway accepts fits in a request.
	largest := &kgatev1.Message{Value: make([]byte, limit-server.RequestOverheadBytes)}
	if _, err := gw.pub.Publish(testContext(t, 30*time.Second), &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{largest}}); err != nil {
		t.Errorf("Publish of a message of --max-message-bytes: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second*timeoutScale)
	defer cancel()
	ps, err := gw.pub.PublishStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := ps.Send(streamReq("a", topic, "small")); err != nil {
		t.Fatal(err)
	}
	if resp, err := ps.Recv(); err != nil || resp.GetOutcome().GetCode() != 0 {
		t.Fatalf("PublishStream: first response %v, %v", resp, err)
	}
	if err := ps.Send(&kgatev1.PublishStreamRequest{CorrelationId: "big", Topic: topic, Message: big}); err != nil {
		t.Fatal(err)
	}
	_, err = ps.Recv()
	tooLarge(t, "PublishStream", err)

	s := openStream(t, gw, earliest([]string{topic}, kafkatest.Name("g")))
	s.Ack(strings.Repeat("x", limit))
	tooLarge(t, "Subscribe", s.WaitEnd(30*time.Second))

	if recs := kafkatest.ReadAll(t, brokers, topic); len(recs) != 2 {
		t.Errorf("the topic holds %d records, want 2: the largest message and the small one", len(recs))
	}
	// The gateway still serves, on the same connection.
	if _, err := gw.pub.Publish(testContext(t, 30*time.Second), &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: []byte("after")}}}); err != nil {
		t.Errorf("Publish after the large requests: %v", err)
	}
}
