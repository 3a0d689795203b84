package faulttest

import (
	"context"
	"runtime/debug"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/kafkatest"
	"github.com/kgate/kgate/kafkaio"
)

// fill writes n records of size bytes to topic.
func fill(t *testing.T, brokers, topic string, n, size int) {
	t.Helper()
	cl := kafkatest.Client(t, brokers, kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20))
	value := make([]byte, size)
	for i := 0; i < n; i += 100 {
		batch := make([]*kgo.Record, 0, 100)
		for j := 0; j < 100 && i+j < n; j++ {
			batch = append(batch, &kgo.Record{Topic: topic, Value: value})
		}
		if err := cl.ProduceSync(testContext(t, 60*time.Second), batch...).FirstErr(); err != nil {
			t.Fatalf("filling %s: %v", topic, err)
		}
	}
}

// settled returns the Go heap in use and the RSS once the garbage
// collector has run and returned what it freed: the memory the gateway
// holds, not what the collector has yet to give back (the gateway's
// GOMEMLIMIT keeps that bounded too).
func settled(t *testing.T) (heap, rss int64) {
	heap = heapInuse()
	debug.FreeOSMemory()
	return heap, rssBytes(t)
}

// silentStream opens a Subscribe stream that never calls Recv: a client
// that stopped reading. It is cancelled when the test ends. Its connection
// keeps HTTP/2's initial 64 KiB windows (no BDP growth), so that what the
// test measures is the gateway's memory, not what this client buffers.
func silentStream(t *testing.T, gw *gateway, open *kgatev1.SubscribeOpen) (kgatev1.Subscriber_SubscribeClient, context.CancelFunc) {
	t.Helper()
	conn, err := grpc.NewClient(gw.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cl, err := kgatev1.NewSubscriberClient(conn).Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Send(&kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Open{Open: open}}); err != nil {
		t.Fatal(err)
	}
	return cl, cancel
}

// TestSubscriberThatStopsReadingKeepsMemoryFlat: a client that stops
// calling Recv, with 32 KiB records and a 1 s ack deadline. What it was
// sent expires, and what the gateway holds for it stays within its window
// (records queued for it and not sent do not expire): memory is as flat
// after four more deadlines as after the first. When it reads again, the
// expired records come again.
func TestSubscriberThatStopsReadingKeepsMemoryFlat(t *testing.T) {
	// Not parallel: what it measures is the process's memory.
	brokers := kafkatest.BrokerProcess(t)
	topic := kafkatest.CreateTopic(t, brokers, "unread", 2)
	fill(t, brokers, topic, 2000, 32<<10) // 64 MB
	gw := startGateway(t, kafkaio.ProducerConfig{Brokers: brokers})
	open := earliest(topic, kafkatest.Name("unread"))
	open.AckDeadline = durationpb.New(time.Second)
	cl, _ := silentStream(t, gw, open)
	// The window fills (10 MiB by default) and its records expire once.
	kafkatest.Eventually(t, 30*time.Second*timeoutScale, "the stream's window is held", func() bool {
		return gw.metric(t, "kgate_subscribe_outstanding_records") >= 300
	})
	time.Sleep(2 * time.Second) // the behaviour under test is what time does: deadlines pass
	heap0, rss0 := settled(t)
	time.Sleep(4 * time.Second) // four more ack deadlines
	heap1, rss1 := settled(t)
	t.Logf("over 4 ack deadlines: heap %d -> %d MB, RSS %d -> %d MB", heap0>>20, heap1>>20, rss0>>20, rss1>>20)
	const bound = 16 << 20
	if heap1-heap0 > bound {
		t.Errorf("the Go heap grew by %d MB over 4 ack deadlines; want < %d MB", (heap1-heap0)>>20, bound>>20)
	}
	if !raceEnabled && rss1-rss0 > bound {
		t.Errorf("RSS grew by %d MB over 4 ack deadlines; want < %d MB", (rss1-rss0)>>20, bound>>20)
	}
	// The deadlines did pass: once the client reads again, the records
	// it had been sent come again, at attempt 2.
	for {
		resp, err := cl.Recv()
		if err != nil {
			t.Fatalf("reading again: %v", err)
		}
		if m := resp.GetMessage(); m != nil && m.DeliveryAttempt >= 2 {
			break
		}
	}
}
