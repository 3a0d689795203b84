package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/kafkatest"
	"github.com/kgate/kgate/kafkaio"
)

// publishStream sends reqs on one PublishStream, half-closes, and returns
// the responses by correlation id and the stream's final status.
func publishStream(t *testing.T, gw *gateway, reqs []*kgatev1.PublishStreamRequest) (map[string]*kgatev1.MessageOutcome, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second*timeoutScale)
	defer cancel()
	st, err := gw.pub.PublishStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sendErr := make(chan error, 1)
	go func() {
		for _, r := range reqs {
			if err := st.Send(r); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- st.CloseSend()
	}()
	got := map[string]*kgatev1.MessageOutcome{}
	for {
		resp, err := st.Recv()
		if err != nil {
			if serr := <-sendErr; serr != nil && !errors.Is(serr, io.EOF) {
				t.Errorf("send: %v", serr)
			}
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return got, err
		}
		if _, dup := got[resp.CorrelationId]; dup {
			t.Errorf("two responses for %q", resp.CorrelationId)
		}
		got[resp.CorrelationId] = resp.Outcome
	}
}

func streamReq(id, topic, value string) *kgatev1.PublishStreamRequest {
	return &kgatev1.PublishStreamRequest{CorrelationId: id, Topic: topic, Message: &kgatev1.Message{Key: []byte(id), Value: []byte(value)}}
}

func TestPublishStreamAnswersEveryMessageWithWhereItLanded(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "pstream", 3)
	gw := startGateway(t, kafkaio.ProducerConfig{Brokers: brokers, MaxMessageBytes: 1000})
	var reqs []*kgatev1.PublishStreamRequest
	for i := 0; i < 300; i++ {
		reqs = append(reqs, streamReq(fmt.Sprintf("id-%03d", i), topic, fmt.Sprintf("v%d", i)))
	}
	minus := int32(-1)
	bad := []*kgatev1.PublishStreamRequest{
		{CorrelationId: "bad-topic", Topic: "bad topic", Message: &kgatev1.Message{Value: []byte("x")}},
		{CorrelationId: "too-large", Topic: topic, Message: &kgatev1.Message{Value: bytes.Repeat([]byte("x"), 1001)}},
		{CorrelationId: "bad-partition", Topic: topic, Message: &kgatev1.Message{Value: []byte("x"), Partition: &minus}},
	}
	reqs = append(reqs[:150], append(bad, reqs[150:]...)...)
	got, err := publishStream(t, gw, reqs)
	if err != nil {
		t.Fatalf("stream ended with %v, want OK after the half-close", err)
	}
	if len(got) != len(reqs) {
		t.Fatalf("got %d responses for %d messages", len(got), len(reqs))
	}
	for _, b := range bad {
		if o := got[b.CorrelationId]; o.Code != int32(codes.InvalidArgument) || o.Reason == "" || o.Message == "" || o.Result != nil {
			t.Errorf("%s: outcome %v, want INVALID_ARGUMENT with reason and message", b.CorrelationId, o)
		}
	}
	byOffset := map[string]string{}
	for _, r := range reqs {
		if strings.HasPrefix(r.CorrelationId, "id-") {
			o := got[r.CorrelationId]
			if o.Code != 0 || o.Result == nil {
				t.Fatalf("%s: outcome %v, want OK", r.CorrelationId, o)
			}
			byOffset[fmt.Sprintf("%d@%d", o.Result.Partition, o.Result.Offset)] = string(r.Message.Value)
		}
	}
	recs := kafkatest.ReadAll(t, brokers, topic)
	if len(recs) != 300 {
		t.Fatalf("broker has %d records, want the 300 valid messages", len(recs))
	}
	for _, r := range recs {
		if want := byOffset[fmt.Sprintf("%d@%d", r.Partition, r.Offset)]; want != string(r.Value) {
			t.Errorf("broker has %s where the outcome said %q", kafkatest.Describe(r), want)
		}
	}
}

func TestPublishStreamBackpressureIsPerMessage(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "pstream-bp", 3)
	gw := startGateway(t, kafkaio.ProducerConfig{Brokers: brokers, MaxInflightBytes: 4000, Kafka: map[string]string{"linger.ms": "50"}})
	var reqs []*kgatev1.PublishStreamRequest
	for i := 0; i < 200; i++ {
		reqs = append(reqs, streamReq(fmt.Sprintf("id-%03d", i), topic, strings.Repeat("x", 500)+fmt.Sprint(i)))
	}
	got, err := publishStream(t, gw, reqs)
	if err != nil {
		t.Fatalf("stream ended with %v", err)
	}
	ok, exhausted := map[string]bool{}, 0
	for _, r := range reqs {
		o := got[r.CorrelationId]
		switch {
		case o.Code == 0:
			ok[string(r.Message.Value)] = true
		case o.Code == int32(codes.ResourceExhausted) && o.Reason == "INFLIGHT_BUDGET_EXHAUSTED" && o.RetryDelay.AsDuration() > 0:
			exhausted++
		default:
			t.Fatalf("%s: unexpected outcome %v", r.CorrelationId, o)
		}
	}
	if len(ok) == 0 || exhausted == 0 {
		t.Fatalf("%d OK and %d RESOURCE_EXHAUSTED; want both", len(ok), exhausted)
	}
	recs := kafkatest.ReadAll(t, brokers, topic)
	for _, r := range recs {
		if !ok[string(r.Value)] {
			t.Errorf("a refused message is in Kafka: %s", kafkatest.Describe(r))
		}
	}
	if len(recs) != len(ok) {
		t.Fatalf("broker has %d records, %d were OK", len(recs), len(ok))
	}
}

func TestPublishStreamEnds(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "pstream-end", 1)
	gw := startGateway(t, kafkaio.ProducerConfig{Brokers: brokers})

	_, err := publishStream(t, gw, []*kgatev1.PublishStreamRequest{{Topic: topic, Message: &kgatev1.Message{Value: []byte("x")}}})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "correlation_id") {
		t.Fatalf("message without correlation id: %v %q, want InvalidArgument", st.Code(), st.Message())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second*timeoutScale)
	defer cancel()
	st, err := gw.pub.PublishStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(streamReq("a", topic, "before shutdown")); err != nil {
		t.Fatal(err)
	}
	if resp, err := st.Recv(); err != nil || resp.Outcome.Code != 0 {
		t.Fatalf("first response: %v %v", resp, err)
	}
	gw.subs.Shutdown()
	gw.pubsShutdown()
	for {
		_, err := st.Recv()
		if err != nil {
			s, d := detailsOf(t, err)
			if s.Code() != codes.Unavailable {
				t.Fatalf("stream ended with %v %q at shutdown, want Unavailable", s.Code(), s.Message())
			}
			// UNAVAILABLE without kgate's ErrorInfo means a broken
			// connection (outcome unknown); the gateway's own carries it.
			if d.info == nil || d.info.Reason != kafkaio.ReasonClosed || d.info.Domain != "kgate.v1" {
				t.Errorf("stream ended UNAVAILABLE at shutdown with ErrorInfo %v, want reason %s in domain kgate.v1", d.info, kafkaio.ReasonClosed)
			}
			break
		}
	}
}

// TestPublishStreamRequestThatDoesNotDecodeEndsItAfterAnsweringTheRest: a
// stream message that does not decode (a correlation_id that is not valid
// UTF-8) ends the stream with INVALID_ARGUMENT, reason MALFORMED_REQUEST,
// naming the field, not INTERNAL; the messages sent before it are answered
// first.
func TestPublishStreamRequestThatDoesNotDecodeEndsItAfterAnsweringTheRest(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "pstream-utf8", 1)
	gw := startGateway(t, kafkaio.ProducerConfig{Brokers: brokers})

	cs := rawStream(t, gw, kgatev1.Publisher_PublishStream_FullMethodName)
	if err := cs.SendMsg(streamReq("a", topic, "before")); err != nil {
		t.Fatal(err)
	}
	bad := append(rawField(&kgatev1.PublishStreamRequest{}, "correlation_id", []byte("b\xff")), rawField(&kgatev1.PublishStreamRequest{}, "topic", []byte(topic))...)
	if err := cs.SendMsg(bad); err != nil {
		t.Fatal(err)
	}
	got := map[string]*kgatev1.MessageOutcome{}
	var end error
	for {
		var resp kgatev1.PublishStreamResponse
		if end = cs.RecvMsg(&resp); end != nil {
			break
		}
		got[resp.GetCorrelationId()] = resp.GetOutcome()
	}
	if o := got["a"]; len(got) != 1 || o == nil || o.GetCode() != 0 {
		t.Errorf("responses %v, want one: OK for message a, sent before the malformed one", got)
	}
	st, d := detailsOf(t, end)
	if st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "not a valid kgate.v1.PublishStreamRequest: correlation_id is not valid UTF-8") {
		t.Errorf("stream ended %v %q, want INVALID_ARGUMENT naming correlation_id", st.Code(), st.Message())
	}
	if d.info.GetReason() != "MALFORMED_REQUEST" {
		t.Errorf("ErrorInfo %v, want reason MALFORMED_REQUEST", d.info)
	}
	if recs := kafkatest.ReadAll(t, brokers, topic); len(recs) != 1 || string(recs[0].Value) != "before" {
		t.Errorf("the topic holds %d records, want only the one sent before the malformed message", len(recs))
	}
}
