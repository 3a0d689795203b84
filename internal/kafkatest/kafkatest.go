// Package kafkatest gives tests a real Kafka-protocol broker and an
// independent client (franz-go) to check what reached it.
//
// Brokers returns the cluster named by KGATE_TEST_BROKERS when it is set,
// so the same tests run unchanged against Apache Kafka or Redpanda;
// otherwise each call starts franz-go's kfake in process, listening on
// 127.0.0.1. Tests that need kfake's fault injection call Cluster and say
// so when an external cluster is configured.
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// EnvBrokers names an external cluster for the tests, host:port[,...].
const EnvBrokers = "KGATE_TEST_BROKERS"

// External reports the external cluster's brokers, if one is configured.
func External() (string, bool) {
	b := strings.TrimSpace(os.Getenv(EnvBrokers))
	return b, b != ""
}

// Brokers returns bootstrap servers for a test: the external cluster, or a
// new in-process kfake that creates topics on first use with 3 partitions,
// stopped when the test ends.
func Brokers(t testing.TB) string {
	t.Helper()
	if b, ok := External(); ok {
		return b
	}
	return Cluster(t, kfake.AllowAutoTopicCreation()).ListenAddrs()[0]
}

// Cluster starts an in-process kfake cluster with opts (plus one broker and
// 3 partitions per new topic), closed when the test ends. It is for tests
// whose point is broker behaviour only kfake can inject; when
// KGATE_TEST_BROKERS is set the test is skipped, saying why.
func Cluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	if b, ok := External(); ok {
		t.Skipf("this test injects broker faults with the in-process kfake broker; %s=%s names an external cluster, which cannot be faulted from here", EnvBrokers, b)
	}
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.DefaultNumPartitions(3)}, opts...)...)
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// Name returns a unique name with prefix, for topics and groups, so that
// tests can run in parallel against one cluster.
func Name(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// Client returns a franz-go client for brokers, closed when the test ends.
func Client(t testing.TB, brokers string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(strings.Split(brokers, ",")...)}, opts...)...)
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// CreateTopic creates a topic with a unique name from prefix and returns the
// name.
func CreateTopic(t testing.TB, brokers, prefix string, partitions int32) string {
	t.Helper()
	topic := Name(prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(Client(t, brokers))
	resp, err := adm.CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("creating topic %s: %v", topic, err)
	}
	return topic
}

// ReadAll reads every record of topic, from the start of each partition up
// to the high watermark at the time of the call.
func ReadAll(t testing.TB, brokers, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(Client(t, brokers))
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("listing end offsets of %s: %v", topic, err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %s/%d: %v", topic, o.Partition, o.Err)
		}
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	var recs []*kgo.Record
	if len(want) == 0 {
		return recs
	}
	offsets := map[string]map[int32]kgo.Offset{topic: {}}
	for p := range want {
		offsets[topic][p] = kgo.NewOffset().AtStart()
	}
	cl := Client(t, brokers, kgo.ConsumePartitions(offsets))
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: timed out with partitions %v unread", topic, want)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("reading %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := want[r.Partition]; ok && r.Offset < end {
				recs = append(recs, r)
				if r.Offset+1 >= end {
					delete(want, r.Partition)
				}
			}
		})
	}
	return recs
}

// Eventually polls cond every 20 ms until it returns true, failing the test
// with msg when it has not within timeout.
func Eventually(t testing.TB, timeout time.Duration, msg string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ExpectedPartition is the partition a Java or librdkafka murmur2
// producer chooses for key among n partitions, computed by franz-go's
// independent implementation.
func ExpectedPartition(key []byte, n int) int32 {
	p := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	return int32(p.Partition(&kgo.Record{Key: key}, n))
}

// Describe formats a record for failure messages.
func Describe(r *kgo.Record) string {
	return fmt.Sprintf("%s/%d@%d key=%q value=%q", r.Topic, r.Partition, r.Offset, r.Key, r.Value)
}
