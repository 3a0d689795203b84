package faulttest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/kafkatest"
	"github.com/kgate/kgate/internal/verify"
	"github.com/kgate/kgate/kafkaio"
)

// outage makes the whole cluster unreachable while down is set: every
// request's connection is closed before the broker acts on it, which is
// what clients see of stopped brokers. kfake keeps its data in memory, so
// stopping its process would lose the records this suite checks for.
type outage struct {
	down    atomic.Bool
	refused atomic.Int64
}

func newOutage(c *kfake.Cluster) *outage {
	o := &outage{}
	c.Control(func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if o.down.Load() {
			o.refused.Add(1)
			return nil, errors.New("broker down (injected)"), true
		}
		return nil, nil, false
	})
	return o
}

// waitOK polls until the load has had n successful calls since at.
func waitOK(t *testing.T, p *publisher, at time.Time, n int, timeout time.Duration, what string) time.Time {
	t.Helper()
	var when time.Time
	kafkatest.Eventually(t, timeout*timeoutScale, what, func() bool {
		ok := 0
		for _, e := range p.eventsSince(at) {
			if e.class == verify.OK {
				ok++
				if ok == n {
					when = e.at
					return true
				}
			}
		}
		return false
	})
	return when
}

// TestBrokerOutageDuringPublishLoad stops the whole cluster for a few
// seconds under publish load: calls during the outage answer UNAVAILABLE
// or DEADLINE_EXCEEDED, publishing recovers once the brokers are back, and
// no record that got OK is missing from the topic.
func TestBrokerOutageDuringPublishLoad(t *testing.T) {
	t.Parallel()
	c := kafkatest.Cluster(t, kfake.AllowAutoTopicCreation())
	brokers := c.ListenAddrs()[0]
	topic := kafkatest.CreateTopic(t, brokers, "outage", 3)
	out := newOutage(c)
	gw := startGateway(t, kafkaio.ProducerConfig{Brokers: brokers, Kafka: map[string]string{"message.timeout.ms": "2000"}})
	rec := verify.New("outage")
	// Calls outlive the message timeout, so most calls caught by the
	// outage get the gateway's UNAVAILABLE; a few, with a shorter
	// deadline, end DEADLINE_EXCEEDED (outcome unknown).
	load := startLoad(t, gw.pub, rec, loadConfig{topic: topic, workers: 4, batch: 5, size: 100, callTimeout: 4 * time.Second, pace: 5 * time.Millisecond})
	short := startLoad(t, gw.pub, rec, loadConfig{topic: topic, workers: 1, batch: 1, size: 100, callTimeout: 500 * time.Millisecond, pace: 50 * time.Millisecond})

	start := time.Now()
	waitOK(t, load, start, 20, 30*time.Second, "20 calls succeed before the outage")
	outageLen := 4 * time.Second
	down := time.Now()
	out.down.Store(true)
	time.Sleep(outageLen) // the fault's duration, not a synchronisation
	out.down.Store(false)
	up := time.Now()
	recovered := waitOK(t, load, up, 20, 30*time.Second, "publishing recovers after the outage")
	load.Stop()
	short.Stop()

	// Calls that completed in the outage's second half were answered
	// while nothing was reachable.
	during := map[codes.Code]int{}
	for _, e := range append(load.eventsSince(down.Add(outageLen/2)), short.eventsSince(down.Add(outageLen/2))...) {
		if e.at.Before(up) {
			during[status.Code(e.err)]++
		}
	}
	for c, n := range during {
		if c != codes.Unavailable && c != codes.DeadlineExceeded {
			t.Errorf("%d calls answered %v during the outage; want UNAVAILABLE or DEADLINE_EXCEEDED", n, c)
		}
	}
	if during[codes.Unavailable]+during[codes.DeadlineExceeded] == 0 {
		t.Errorf("no call was answered UNAVAILABLE or DEADLINE_EXCEEDED during the outage: %v", during)
	}
	t.Logf("outage %v: %d requests refused by the brokers; answers in its second half %v; 20 OK calls %v after the brokers came back",
		outageLen, out.refused.Load(), during, recovered.Sub(up).Round(time.Millisecond))

	rec.AddRecords(kafkatest.ReadAll(t, brokers, topic))
	rep := rec.Check(t)
	if rep.Duplicates > 0 {
		t.Errorf("%d duplicates in the topic: the idempotent producer wrote a record twice", rep.Duplicates)
	}
}

// TestInjectedProduceErrors fails produce requests with the errors brokers
// answer during leader moves and ISR shrinks, under load. librdkafka retries
// them; the idempotent producer writes each record once; nothing OK'd is
// lost and nothing failed is written.
func TestInjectedProduceErrors(t *testing.T) {
	t.Parallel()
	c := kafkatest.Cluster(t, kfake.AllowAutoTopicCreation())
	brokers := c.ListenAddrs()[0]
	topic := kafkatest.CreateTopic(t, brokers, "produce-faults", 3)
	gw := startGateway(t, kafkaio.ProducerConfig{Brokers: brokers})
	rec := verify.New("pfault")
	load := startLoad(t, gw.pub, rec, loadConfig{topic: topic, workers: 8, batch: 10, size: 200, callTimeout: 10 * time.Second, pace: 2 * time.Millisecond})

	errs := []*kerr.Error{kerr.NotEnoughReplicas, kerr.RequestTimedOut, kerr.NotLeaderForPartition, kerr.NotEnoughReplicasAfterAppend}
	hits := map[string]int{}
	var handles []*kfake.FaultHandle
	start := time.Now()
	waitOK(t, load, start, 10, 30*time.Second, "publishing starts")
	for i := 0; i < 12*int(scale()); i++ {
		e := errs[i%len(errs)]
		h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Err: e, Count: 3})
		handles = append(handles, h)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second*timeoutScale)
		err := h.Wait(ctx, 3) // the load's next produce requests meet the fault
		cancel()
		if err != nil {
			t.Fatalf("fault %v was not hit 3 times within 10s (%d hits): is the load running?", e, h.Hits())
		}
		hits[e.Message] += h.Hits()
	}
	waitOK(t, load, time.Now(), 10, 30*time.Second, "publishing goes on after the faults")
	load.Stop()
	for _, h := range handles {
		h.Remove()
	}
	t.Logf("produce requests faulted: %v; slowest call %v", hits, load.slowest().Round(time.Millisecond))

	rec.AddRecords(kafkatest.ReadAll(t, brokers, topic))
	rep := rec.Check(t)
	// Records whose call ended DEADLINE_EXCEEDED may be in the topic any
	// number of times (reported); an OK'd record twice means a retry
	// was written twice.
	if rep.DuplicatesOK > 0 {
		t.Errorf("%d duplicates of OK'd records in the topic: a retried produce was written twice (idempotence broken)", rep.DuplicatesOK)
	}
	for c, n := range rep.Codes {
		// DEADLINE_EXCEEDED is a legal answer (outcome unknown) when
		// librdkafka's retries outlast the call; see the report on
		// partition drains for why they sometimes do.
		if c != codes.OK && c != codes.Unavailable && c != codes.DeadlineExceeded {
			t.Errorf("%d attempts answered %v; want OK (retried transparently), UNAVAILABLE or DEADLINE_EXCEEDED", n, c)
		}
	}
}

// TestProduceAppliedButUnacknowledgedIsNotReportedAsNotWritten: the broker
// writes a record but answers REQUEST_TIMED_OUT (as a real broker does when
// replication is slower than the request timeout) until librdkafka's
// message.timeout.ms passes. The record is in the topic, so the gateway
// must not tell the client that nothing was written (a "failed" outcome
// the client may safely retry); it must say the outcome is unknown.
func TestProduceAppliedButUnacknowledgedIsNotReportedAsNotWritten(t *testing.T) {
	t.Parallel()
	c := kafkatest.Cluster(t, kfake.AllowAutoTopicCreation())
	brokers := c.ListenAddrs()[0]
	topic := kafkatest.CreateTopic(t, brokers, "applied", 1)
	gw := startGateway(t, kafkaio.ProducerConfig{Brokers: brokers, Kafka: map[string]string{"message.timeout.ms": "1500"}})
	rec := verify.New("applied")
	id := rec.ID()
	warm := rec.ID()
	_, err := gw.pub.Publish(testContext(t, 30*time.Second), &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: verify.Payload(warm, 10)}}})
	rec.RecordPublish([]string{warm}, err)

	h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Err: kerr.RequestTimedOut, Count: -1})
	_, err = gw.pub.Publish(testContext(t, 30*time.Second), &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: verify.Payload(id, 10)}}})
	h.Remove()
	class := rec.RecordPublish([]string{id}, err)
	t.Logf("publish while the broker applies but answers REQUEST_TIMED_OUT (%d times): %v (%s)", h.Hits(), status.Code(err), errMsg(err))
	rec.AddRecords(kafkatest.ReadAll(t, brokers, topic))
	rep := rec.Check(t)
	if rep.Phantom > 0 {
		t.Errorf("the gateway answered %v (%q) for a record the broker wrote: a client that retries writes it twice, "+
			"and one that gives up believes it was never written. librdkafka's MSG_TIMED_OUT after a request was sent means "+
			"\"possibly persisted\"; the gateway must document it as an unknown outcome", status.Code(err), errMsg(err))
	}
	_ = class
}

func errMsg(err error) string {
	if err == nil {
		return "ok"
	}
	return fmt.Sprint(status.Convert(err).Message())
}
