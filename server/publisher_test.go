package server_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/kafkatest"
	"github.com/kgate/kgate/kafkaio"
	"github.com/kgate/kgate/server"
)

// statusDetails picks kgate's documented details out of a status.
type statusDetails struct {
	info    *errdetails.ErrorInfo
	retry   *errdetails.RetryInfo
	failure *kgatev1.PublishFailure
}

func detailsOf(t testing.TB, err error) (*status.Status, statusDetails) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("not a gRPC status: %v", err)
	}
	var d statusDetails
	for _, x := range st.Details() {
		switch v := x.(type) {
		case *errdetails.ErrorInfo:
			d.info = v
		case *errdetails.RetryInfo:
			d.retry = v
		case *kgatev1.PublishFailure:
			d.failure = v
		default:
			t.Fatalf("unexpected detail %T in %v", x, st)
		}
	}
	return st, d
}

func TestPublishWritesEveryMessageAndReportsWhereItLanded(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "publish", 4)
	gw := startGateway(t, kafkaio.ProducerConfig{Brokers: brokers})

	ts := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	two := int32(2)
	req := &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{
		{Key: []byte("order-1"), Value: []byte(`{"total":42}`), Headers: []*kgatev1.Header{{Key: "h", Value: []byte("1")}, {Key: "h", Value: []byte("2")}}},
		{Key: []byte("order-2"), Value: []byte("second"), Timestamp: timestamppb.New(ts)},
		{Value: []byte("to partition 2"), Partition: &two},
		{Key: []byte("order-1"), Value: []byte("same key, same partition")},
		{Value: nil},
	}}
	resp, err := gw.pub.Publish(testContext(t, 30*time.Second), req)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if len(resp.Results) != len(req.Messages) {
		t.Fatalf("got %d results for %d messages", len(resp.Results), len(req.Messages))
	}
	for i, m := range req.Messages {
		if m.Key != nil {
			if got, want := resp.Results[i].Partition, kafkatest.ExpectedPartition(m.Key, 4); got != want {
				t.Errorf("message %d key %q went to partition %d; murmur2 (Java client) says %d", i, m.Key, got, want)
			}
		}
	}
	if resp.Results[2].Partition != 2 {
		t.Errorf("message with partition 2 landed in partition %d", resp.Results[2].Partition)
	}
	if got := resp.Results[1].Timestamp.AsTime(); !got.Equal(ts.Truncate(time.Millisecond)) {
		t.Errorf("result timestamp %v, want the message's %v", got, ts)
	}
	if resp.Results[3].Offset <= resp.Results[0].Offset {
		t.Errorf("same key, later message: offset %d not after %d", resp.Results[3].Offset, resp.Results[0].Offset)
	}

	recs := kafkatest.ReadAll(t, brokers, topic)
	if len(recs) != len(req.Messages) {
		t.Fatalf("broker has %d records, want %d", len(recs), len(req.Messages))
	}
	for i, m := range req.Messages {
		r := resp.Results[i]
		var found bool
		for _, rec := range recs {
			if rec.Partition != r.Partition || rec.Offset != r.Offset {
				continue
			}
			found = true
			if !bytes.Equal(rec.Key, m.Key) || !bytes.Equal(rec.Value, m.Value) {
				t.Errorf("message %d: broker has %s at its reported offset", i, kafkatest.Describe(rec))
			}
			if len(rec.Headers) != len(m.Headers) {
				t.Errorf("message %d: broker has %d headers, want %d", i, len(rec.Headers), len(m.Headers))
			}
			for j, h := range m.Headers {
				if j < len(rec.Headers) && (rec.Headers[j].Key != h.Key || !bytes.Equal(rec.Headers[j].Value, h.Value)) {
					t.Errorf("message %d header %d: broker has %s=%q", i, j, rec.Headers[j].Key, rec.Headers[j].Value)
				}
			}
			if !rec.Timestamp.Equal(r.Timestamp.AsTime()) {
				t.Errorf("message %d: broker timestamp %v, result says %v", i, rec.Timestamp, r.Timestamp.AsTime())
			}
		}
		if !found {
			t.Errorf("message %d: no record at the reported %d@%d", i, r.Partition, r.Offset)
		}
	}
}

func TestPublishRejectsInvalidRequestsAndWritesNothing(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "invalid", 3)
	gw := startGateway(t, kafkaio.ProducerConfig{Brokers: brokers, MaxMessageBytes: 1000})
	msg := func(v string) []*kgatev1.Message { return []*kgatev1.Message{{Value: []byte(v)}} }
	nine, minus := int32(9), int32(-2)
	for i, tc := range []struct {
		req        *kgatev1.PublishRequest
		wantReason string
		wantInMsg  string
	}{
		0: {&kgatev1.PublishRequest{Topic: "", Messages: msg("x")}, "INVALID_TOPIC", "topic is empty"},
		1: {&kgatev1.PublishRequest{Topic: "has space", Messages: msg("x")}, "INVALID_TOPIC", "characters Kafka does not allow"},
		2: {&kgatev1.PublishRequest{Topic: "..", Messages: msg("x")}, "INVALID_TOPIC", "not allowed"},
		3: {&kgatev1.PublishRequest{Topic: strings.Repeat("t", 250), Messages: msg("x")}, "INVALID_TOPIC", "at most 249"},
		4: {&kgatev1.PublishRequest{Topic: topic}, "NO_MESSAGES", "at least one message"},
		5: {&kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: []byte("ok")}, {Value: bytes.Repeat([]byte("x"), 1001)}}}, "MESSAGE_TOO_LARGE", "message 1 is 1001 bytes"},
		6: {&kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: []byte("x"), Partition: &nine}}}, "UNKNOWN_PARTITION", "partitions 0 to 2, not 9"},
		7: {&kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: []byte("x"), Partition: &minus}}}, "UNKNOWN_PARTITION", "numbered from 0"},
		8: {&kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: []byte("x"), Timestamp: &timestamppb.Timestamp{Nanos: -1}}}}, "INVALID_TIMESTAMP", "timestamp"},
	} {
		_, err := gw.pub.Publish(testContext(t, 30*time.Second), tc.req)
		st, d := detailsOf(t, err)
		if st.Code() != codes.InvalidArgument {
			t.Errorf("case %d: code %v (%v), want InvalidArgument", i, st.Code(), st.Message())
			continue
		}
		if !strings.Contains(st.Message(), tc.wantInMsg) {
			t.Errorf("case %d: message %q does not say %q", i, st.Message(), tc.wantInMsg)
		}
		if d.info == nil || d.info.Reason != tc.wantReason || d.info.Domain != "kgate.v1" {
			t.Errorf("case %d: ErrorInfo %v, want reason %s", i, d.info, tc.wantReason)
		}
	}
	if recs := kafkatest.ReadAll(t, brokers, topic); len(recs) != 0 {
		t.Fatalf("rejected requests wrote %d records, first %s", len(recs), kafkatest.Describe(recs[0]))
	}
}

// TestPublishUnknownTopicIsNotFoundWhenAutoCreateIsOff: Publish and
// Subscribe answer a topic that does not exist alike, NOT_FOUND with
// ErrorInfo reason UNKNOWN_TOPIC, as the proto documents.
func TestPublishUnknownTopicIsNotFoundWhenAutoCreateIsOff(t *testing.T) {
	t.Parallel()
	c := kafkatest.Cluster(t) // no AllowAutoTopicCreation
	gw := startGateway(t, kafkaio.ProducerConfig{Brokers: c.ListenAddrs()[0]})
	_, err := gw.pub.Publish(testContext(t, 30*time.Second), &kgatev1.PublishRequest{Topic: "no-such-topic", Messages: []*kgatev1.Message{{Value: []byte("x")}}})
	st, d := detailsOf(t, err)
	if st.Code() != codes.NotFound || !strings.Contains(st.Message(), `topic "no-such-topic" does not exist`) {
		t.Fatalf("got %v %q, want NotFound naming the topic", st.Code(), st.Message())
	}
	if d.info == nil || d.info.Reason != "UNKNOWN_TOPIC" || d.info.Domain != "kgate.v1" {
		t.Errorf("Publish: ErrorInfo %v, want reason UNKNOWN_TOPIC in domain kgate.v1", d.info)
	}

	s := openStream(t, gw, &kgatev1.SubscribeOpen{Topics: []string{"no-such-topic"}, Group: kafkatest.Name("g")})
	st, d = detailsOf(t, s.WaitEnd(30*time.Second))
	if st.Code() != codes.NotFound || !strings.Contains(st.Message(), `topic "no-such-topic" does not exist`) {
		t.Fatalf("Subscribe: got %v %q, want NotFound naming the topic", st.Code(), st.Message())
	}
	if d.info == nil || d.info.Reason != "UNKNOWN_TOPIC" || d.info.Domain != "kgate.v1" {
		t.Errorf("Subscribe: ErrorInfo %v, want reason UNKNOWN_TOPIC in domain kgate.v1", d.info)
	}
}

// flood publishes n single-message requests from conc goroutines, each value
// unique, and returns what each got.
func flood(t *testing.T, pub kgatev1.PublisherClient, topic string, conc, n, size int) (ok map[string]*kgatev1.PublishResult, rejected map[string]error) {
	t.Helper()
	var mu sync.Mutex
	ok, rejected = map[string]*kgatev1.PublishResult{}, map[string]error{}
	var wg sync.WaitGroup
	ctx := testContext(t, 60*time.Second)
	for g := 0; g < conc; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n/conc; i++ {
				id := fmt.Sprintf("g%02d-%04d-", g, i)
				v := id + strings.Repeat("x", max(0, size-len(id)))
				resp, err := pub.Publish(ctx, &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: []byte(v)}}})
				mu.Lock()
				if err != nil {
					rejected[v] = err
				} else {
					ok[v] = resp.Results[0]
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return ok, rejected
}

func TestPublishBackpressureAnswersResourceExhaustedAndLosesNothing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		cfg        kafkaio.ProducerConfig
		size       int
		wantReason string
	}{
		{"producer queue full", kafkaio.ProducerConfig{Kafka: map[string]string{"queue.buffering.max.messages": "4", "linger.ms": "20"}}, 100, "PRODUCER_QUEUE_FULL"},
		{"in-flight budget spent", kafkaio.ProducerConfig{MaxInflightBytes: 2000, Kafka: map[string]string{"linger.ms": "20"}}, 600, "INFLIGHT_BUDGET_EXHAUSTED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			brokers := kafkatest.Brokers(t)
			topic := kafkatest.CreateTopic(t, brokers, "flood", 3)
			tc.cfg.Brokers = brokers
			gw := startGateway(t, tc.cfg)
			ok, rejected := flood(t, gw.pub, topic, 32, 640, tc.size)
			t.Logf("%s: %d OK, %d rejected", tc.name, len(ok), len(rejected))
			if len(ok) == 0 || len(rejected) == 0 {
				t.Fatalf("want some OK and some rejected; got %d OK, %d rejected", len(ok), len(rejected))
			}
			for v, err := range rejected {
				st, d := detailsOf(t, err)
				if st.Code() != codes.ResourceExhausted {
					t.Fatalf("%s: %v %q, want ResourceExhausted", v, st.Code(), st.Message())
				}
				if d.retry == nil || d.retry.RetryDelay.AsDuration() <= 0 {
					t.Fatalf("%s: RESOURCE_EXHAUSTED without a RetryInfo delay: %v", v, st.Details())
				}
				if d.info == nil || d.info.Reason != tc.wantReason {
					t.Fatalf("%s: ErrorInfo %v, want reason %s", v, d.info, tc.wantReason)
				}
			}
			recs := kafkatest.ReadAll(t, brokers, topic)
			seen := map[string]bool{}
			for _, r := range recs {
				v := string(r.Value)
				if seen[v] {
					t.Errorf("duplicate in broker: %s", kafkatest.Describe(r))
				}
				seen[v] = true
				res, wasOK := ok[v]
				switch {
				case !wasOK && rejected[v] != nil:
					t.Errorf("rejected payload is in Kafka: %s", kafkatest.Describe(r))
				case !wasOK:
					t.Errorf("unexpected record: %s", kafkatest.Describe(r))
				case res.Partition != r.Partition || res.Offset != r.Offset:
					t.Errorf("OK said %d@%d, broker has it at %d@%d", res.Partition, res.Offset, r.Partition, r.Offset)
				}
			}
			for v := range ok {
				if !seen[v] {
					t.Errorf("OK'd message %q is not in Kafka", v[:12])
				}
			}
		})
	}
}

// TestPublishPartialBatchSaysWhichMessagesToRetry: messages 5 to 7 are
// refused at once (queue full), yet the answer comes only once the broker
// acknowledged messages 0 to 4 (linger.ms 200), as the proto documents:
// their outcomes are OK with the offsets the broker holds them at.
func TestPublishPartialBatchSaysWhichMessagesToRetry(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "partial", 1)
	gw := startGateway(t, kafkaio.ProducerConfig{Brokers: brokers, Kafka: map[string]string{"queue.buffering.max.messages": "5", "linger.ms": "200"}})
	req := &kgatev1.PublishRequest{Topic: topic}
	for i := 0; i < 8; i++ {
		req.Messages = append(req.Messages, &kgatev1.Message{Value: []byte(fmt.Sprintf("m%d", i))})
	}
	_, err := gw.pub.Publish(testContext(t, 30*time.Second), req)
	st, d := detailsOf(t, err)
	if st.Code() != codes.ResourceExhausted || d.retry == nil || d.info == nil || d.info.Reason != "PRODUCER_QUEUE_FULL" {
		t.Fatalf("got %v %q %v, want ResourceExhausted with RetryInfo and PRODUCER_QUEUE_FULL", st.Code(), st.Message(), st.Details())
	}
	if d.failure == nil || len(d.failure.Outcomes) != 8 {
		t.Fatalf("want a PublishFailure with 8 outcomes, got %v", d.failure)
	}
	written := map[int64]string{}
	for i, o := range d.failure.Outcomes {
		if i < 5 {
			if o.Code != int32(codes.OK) || o.Result == nil {
				t.Fatalf("outcome %d: %v, want OK with a result", i, o)
			}
			written[o.Result.Offset] = string(req.Messages[i].Value)
		} else if o.Code != int32(codes.ResourceExhausted) || o.Reason != "PRODUCER_QUEUE_FULL" || o.Result != nil {
			t.Fatalf("outcome %d: %v, want RESOURCE_EXHAUSTED PRODUCER_QUEUE_FULL", i, o)
		}
	}
	recs := kafkatest.ReadAll(t, brokers, topic)
	if len(recs) != 5 {
		t.Fatalf("broker has %d records, want the 5 written", len(recs))
	}
	for _, r := range recs {
		if written[r.Offset] != string(r.Value) {
			t.Errorf("broker has %s; outcomes said offset %d holds %q", kafkatest.Describe(r), r.Offset, written[r.Offset])
		}
	}

	// Retrying only the failed messages completes the batch.
	retry := &kgatev1.PublishRequest{Topic: topic}
	for i, o := range d.failure.Outcomes {
		if o.Code != int32(codes.OK) {
			retry.Messages = append(retry.Messages, req.Messages[i])
		}
	}
	kafkatest.Eventually(t, 10*time.Second, "retry of the failed messages succeeds", func() bool {
		_, err := gw.pub.Publish(testContext(t, 30*time.Second), retry)
		return err == nil
	})
	if recs := kafkatest.ReadAll(t, brokers, topic); len(recs) != 8 {
		t.Fatalf("after the retry the broker has %d records, want 8", len(recs))
	}
}

func TestPublishBrokerDownIsUnavailable(t *testing.T) {
	t.Parallel()
	t.Run("delivery timeout", func(t *testing.T) {
		t.Parallel()
		c := kafkatest.Cluster(t, kfake.AllowAutoTopicCreation())
		gw := startGateway(t, kafkaio.ProducerConfig{Brokers: c.ListenAddrs()[0], Kafka: map[string]string{"message.timeout.ms": "1500"}})
		req := &kgatev1.PublishRequest{Topic: "down", Messages: []*kgatev1.Message{{Value: []byte("before")}}}
		if _, err := gw.pub.Publish(testContext(t, 30*time.Second), req); err != nil {
			t.Fatalf("publish while up: %v", err)
		}
		c.Close()
		_, err := gw.pub.Publish(testContext(t, 30*time.Second), req)
		st, d := detailsOf(t, err)
		if st.Code() != codes.Unavailable || d.info == nil || d.info.Reason != "MESSAGE_TIMED_OUT" {
			t.Fatalf("got %v %q %v, want Unavailable MESSAGE_TIMED_OUT", st.Code(), st.Message(), d.info)
		}
	})
	t.Run("never reachable", func(t *testing.T) {
		t.Parallel()
		c := kafkatest.Cluster(t)
		addr := c.ListenAddrs()[0]
		c.Close() // nothing listens there now
		gw := startGateway(t, kafkaio.ProducerConfig{Brokers: addr})
		_, err := gw.pub.Publish(testContext(t, 30*time.Second), &kgatev1.PublishRequest{Topic: "t", Messages: []*kgatev1.Message{{Value: []byte("x")}}})
		if st, _ := detailsOf(t, err); st.Code() != codes.Unavailable {
			t.Fatalf("got %v %q, want Unavailable", st.Code(), st.Message())
		}
	})
}

// TestPublishRetriesRunOutAfterAnAppliedWrite: with librdkafka's retries
// set low, a delivery report can carry the broker's last error instead of
// MSG_TIMED_OUT. After an error a broker gives having applied the write,
// the answer must be "outcome unknown", never "not written".
func TestPublishRetriesRunOutAfterAnAppliedWrite(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err         *kerr.Error
		wantCode    codes.Code
		wantReason  string
		wantWritten bool
	}{
		{kerr.RequestTimedOut, codes.Unknown, "REQUEST_TIMED_OUT", true},
		{kerr.NotEnoughReplicasAfterAppend, codes.Unknown, "MESSAGE_S_WRITTEN_TO_INSUFFICIENT_NUMBER_OF_IN_SYNC_REPLICAS", true},
		{kerr.NotEnoughReplicas, codes.Unavailable, "NOT_ENOUGH_IN_SYNC_REPLICAS", false},
	} {
		t.Run(tc.err.Message, func(t *testing.T) {
			t.Parallel()
			c := kafkatest.Cluster(t, kfake.AllowAutoTopicCreation())
			brokers := c.ListenAddrs()[0]
			gw := startGateway(t, kafkaio.ProducerConfig{Brokers: brokers, Kafka: map[string]string{"retries": "1"}})
			warm := &kgatev1.PublishRequest{Topic: "retries", Messages: []*kgatev1.Message{{Value: []byte("warm")}}}
			if _, err := gw.pub.Publish(testContext(t, 30*time.Second), warm); err != nil {
				t.Fatalf("publish before the fault: %v", err)
			}
			h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "retries", Err: tc.err, Count: -1})
			_, err := gw.pub.Publish(testContext(t, 30*time.Second), &kgatev1.PublishRequest{Topic: "retries", Messages: []*kgatev1.Message{{Value: []byte("faulted")}}})
			h.Remove()
			st, d := detailsOf(t, err)
			if st.Code() != tc.wantCode || d.info == nil || d.info.Reason != tc.wantReason {
				t.Errorf("got %v %q %v, want %v with reason %s", st.Code(), st.Message(), d.info, tc.wantCode, tc.wantReason)
			}
			written := false
			for _, r := range kafkatest.ReadAll(t, brokers, "retries") {
				written = written || string(r.Value) == "faulted"
			}
			if written != tc.wantWritten {
				t.Errorf("the message is in the topic: %v, want %v (answer %v %q)", written, tc.wantWritten, st.Code(), st.Message())
			}
		})
	}
}

func TestPublishDeadlineExceededMeansOutcomeUnknown(t *testing.T) {
	t.Parallel()
	c := kafkatest.Cluster(t, kfake.AllowAutoTopicCreation())
	gw := startGateway(t, kafkaio.ProducerConfig{Brokers: c.ListenAddrs()[0]})
	req := &kgatev1.PublishRequest{Topic: "slow", Messages: []*kgatev1.Message{{Value: []byte("x")}}}
	if _, err := gw.pub.Publish(testContext(t, 30*time.Second), req); err != nil {
		t.Fatalf("publish while fast: %v", err)
	}
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		<-release // hold the produce request until the client gave up
		c.DropControl()
		return nil, nil, false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := gw.pub.Publish(ctx, req)
	unblock()
	if st, _ := detailsOf(t, err); st.Code() != codes.DeadlineExceeded {
		t.Fatalf("got %v %q, want DeadlineExceeded", st.Code(), st.Message())
	}
	// "Unknown" is not "failed": the message was handed to Kafka and, once
	// the broker answers, it is written.
	kafkatest.Eventually(t, 10*time.Second*timeoutScale, "the message whose outcome was unknown is written", func() bool {
		return len(kafkatest.ReadAll(t, c.ListenAddrs()[0], "slow")) == 2
	})

	// The gateway's own answer, when its deadline is the one that passes,
	// says the outcome is unknown.
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		time.Sleep(300 * time.Millisecond) // stalls the broker; fine for this one request
		c.DropControl()
		return nil, nil, false
	})
	pctx, pcancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer pcancel()
	_, perr := gw.prod.Publish(pctx, "slow", []kafkaio.Message{{Value: []byte("y"), Partition: kafkaio.PartitionAny}})
	if got := server.CodeOf(perr); got != codes.DeadlineExceeded || !strings.Contains(perr.Error(), "outcome is unknown") {
		t.Fatalf("server-side deadline: %v %q, want DeadlineExceeded saying the outcome is unknown", got, perr)
	}
}

func TestStatusDetailsRoundTrip(t *testing.T) {
	// A PublishFailure survives the trip through status details.
	f := &kgatev1.PublishFailure{Outcomes: []*kgatev1.MessageOutcome{{Code: 8, Reason: "PRODUCER_QUEUE_FULL"}}}
	st, err := status.New(codes.ResourceExhausted, "x").WithDetails(f)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Details()[0].(*kgatev1.PublishFailure); !proto.Equal(got, f) {
		t.Fatalf("got %v", got)
	}
}

// TestPublishStringNotUTF8IsInvalidArgument: a unary Publish whose topic
// or header key is not valid UTF-8 (which a non-Go client can send) is
// INVALID_ARGUMENT, reason MALFORMED_REQUEST, naming the string, not
// grpc-go's INTERNAL for a request that does not decode; nothing of it is
// written.
func TestPublishStringNotUTF8IsInvalidArgument(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "pub-utf8", 1)
	gw := startGateway(t, kafkaio.ProducerConfig{Brokers: brokers})
	ctx := testContext(t, 30*time.Second)
	message := func(headerKey []byte) []byte {
		m := rawField(&kgatev1.Message{}, "value", []byte("v"))
		if headerKey != nil {
			m = append(m, rawField(&kgatev1.Message{}, "headers", rawField(&kgatev1.Header{}, "key", headerKey))...)
		}
		return m
	}
	request := func(topic string, msgs ...[]byte) []byte {
		b := rawField(&kgatev1.PublishRequest{}, "topic", []byte(topic))
		for _, m := range msgs {
			b = append(b, rawField(&kgatev1.PublishRequest{}, "messages", m)...)
		}
		return b
	}
	for _, c := range []struct {
		name  string
		req   []byte
		field string
	}{
		{"topic", request(topic+"\xff", message(nil)), "topic"},
		{"header key", request(topic, message([]byte("ok")), message([]byte{0xc3, 0x28})), "messages[1].headers[0].key"},
	} {
		var resp kgatev1.PublishResponse
		err := gw.conn.Invoke(ctx, kgatev1.Publisher_Publish_FullMethodName, c.req, &resp, grpc.ForceCodec(rawCodec{}))
		st, d := detailsOf(t, err)
		if st.Code() != codes.InvalidArgument || d.info.GetReason() != server.ReasonMalformedRequest ||
			!strings.Contains(st.Message(), "not a valid kgate.v1.PublishRequest: "+c.field+" is not valid UTF-8") {
			t.Errorf("%s not UTF-8: got %v %s %q, want INVALID_ARGUMENT MALFORMED_REQUEST naming %s", c.name, st.Code(), d.info.GetReason(), st.Message(), c.field)
		}
	}
	// The same request with valid strings is written, and only it.
	var resp kgatev1.PublishResponse
	if err := gw.conn.Invoke(ctx, kgatev1.Publisher_Publish_FullMethodName, request(topic, message([]byte("ok"))), &resp, grpc.ForceCodec(rawCodec{})); err != nil {
		t.Fatal(err)
	}
	if recs := kafkatest.ReadAll(t, brokers, topic); len(recs) != 1 {
		t.Errorf("the topic holds %d records, want only the valid request's one", len(recs))
	}
}
