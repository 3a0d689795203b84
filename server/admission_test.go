package server_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/grpc/codes"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/kafkatest"
	"github.com/kgate/kgate/kafkaio"
)

// TestPublishRefusedBeforeReadingWhileSaturated fills the producer queue
// with messages the broker holds, then checks that a Publish is refused at
// once (before its request is read, as kgate_publish_refused_calls_total
// shows) with RESOURCE_EXHAUSTED, RetryInfo and PRODUCER_QUEUE_FULL; that
// the held messages are written once the broker answers; and that Publish
// is accepted again then.
func TestPublishRefusedBeforeReadingWhileSaturated(t *testing.T) {
	t.Parallel()
	c := kafkatest.Cluster(t, kfake.AllowAutoTopicCreation())
	brokers := c.ListenAddrs()[0]
	gw := startGateway(t, kafkaio.ProducerConfig{Brokers: brokers, Kafka: map[string]string{"queue.buffering.max.messages": "3", "linger.ms": "0"}})
	one := func(v string) *kgatev1.PublishRequest {
		return &kgatev1.PublishRequest{Topic: "saturated", Messages: []*kgatev1.Message{{Value: []byte(v)}}}
	}
	if _, err := gw.pub.Publish(testContext(t, 30*time.Second), one("warm")); err != nil {
		t.Fatalf("publish before the broker stalls: %v", err)
	}

	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		<-release // the broker stalls until the test has seen the refusal
		c.DropControl()
		return nil, nil, false
	})
	held := make(chan error, 3)
	for i := range 3 {
		go func() {
			_, err := gw.pub.Publish(testContext(t, 60*time.Second), one(fmt.Sprintf("held-%d", i)))
			held <- err
		}()
	}
	kafkatest.Eventually(t, 10*time.Second*timeoutScale, "the producer queue holds the 3 messages", func() bool {
		return gw.prod.QueueMessages() >= 3
	})

	start := time.Now()
	_, err := gw.pub.Publish(testContext(t, 30*time.Second), one("refused"))
	took := time.Since(start)
	st, d := detailsOf(t, err)
	if st.Code() != codes.ResourceExhausted || d.retry == nil || d.retry.RetryDelay.AsDuration() <= 0 || d.info == nil || d.info.Reason != "PRODUCER_QUEUE_FULL" {
		t.Fatalf("got %v %q %v, want RESOURCE_EXHAUSTED with RetryInfo and PRODUCER_QUEUE_FULL", st.Code(), st.Message(), st.Details())
	}
	if d.failure != nil {
		t.Errorf("a refused call carries a PublishFailure %v; nothing of it was read, so none is due", d.failure)
	}
	t.Logf("refused in %v", took)
	if n, _ := sum(gatherSamples(t, gw), "kgate_publish_refused_calls_total", `reason="PRODUCER_QUEUE_FULL"`); n < 1 {
		t.Errorf("kgate_publish_refused_calls_total{reason=PRODUCER_QUEUE_FULL} = %v, want the refusal counted", n)
	}

	unblock()
	for range 3 {
		if err := <-held; err != nil {
			t.Errorf("a message held by the stalled broker: %v, want OK once it answers", err)
		}
	}
	if _, err := gw.pub.Publish(testContext(t, 30*time.Second), one("after")); err != nil {
		t.Fatalf("publish after the queue drained: %v, want OK", err)
	}
	got := map[string]int{}
	for _, r := range kafkatest.ReadAll(t, brokers, "saturated") {
		got[string(r.Value)]++
	}
	want := map[string]int{"warm": 1, "held-0": 1, "held-1": 1, "held-2": 1, "after": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the topic holds %v, want %v (the refused message not among them)", got, want)
	}
}
