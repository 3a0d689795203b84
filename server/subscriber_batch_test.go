package server_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/kafkatest"
)

// TestSubscribeBatches checks max_messages_per_response: records come only
// as `messages` batches of at most that many records and at most 1 MiB of
// payload (a larger record alone), every record exactly once, in offset
// order per partition, acked by their own ids and committed.
func TestSubscribeBatches(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	gw := startGateway(t, kafkaProducer(brokers))

	t.Run("count", func(t *testing.T) {
		topic := kafkatest.CreateTopic(t, brokers, "batch", 2)
		results := publishN(t, gw, topic, 300, nil)
		group := kafkatest.Name("g")
		open := earliest([]string{topic}, group)
		open.MaxMessagesPerResponse = 7
		s := openStream(t, gw, open)
		got := s.NextN(300, 30*time.Second)
		last := map[int32]int64{0: -1, 1: -1}
		for _, m := range got {
			if m.Offset <= last[m.Partition] {
				t.Fatalf("partition %d: offset %d after %d; want each record once, in offset order", m.Partition, m.Offset, last[m.Partition])
			}
			last[m.Partition] = m.Offset
			if m.AckId == "" || m.DeliveryAttempt != 1 {
				t.Fatalf("record %s: ack id %q attempt %d", key(m), m.AckId, m.DeliveryAttempt)
			}
		}
		ids := make([]string, len(got))
		for i, m := range got {
			ids[i] = m.AckId
		}
		s.Ack(ids...)
		if err := s.End(30 * time.Second); err != nil {
			t.Fatalf("half-close ended the stream with %v, want OK", err)
		}
		singles, batches := s.Shape()
		if singles != 0 {
			t.Errorf("%d records came as single `message` responses; want only `messages` batches", singles)
		}
		total := 0
		for _, n := range batches {
			if n < 1 || n > 7 {
				t.Errorf("a batch of %d records; want 1 to 7 (max_messages_per_response)", n)
			}
			total += n
		}
		if total != 300 {
			t.Errorf("batches hold %d records, want 300", total)
		}
		ends := map[int32]int64{}
		for _, r := range results {
			ends[r.Partition] = max(ends[r.Partition], r.Offset+1)
		}
		if c := committed(t, brokers, group, topic); fmt.Sprint(c) != fmt.Sprint(ends) {
			t.Fatalf("committed %v, want every partition's end %v", c, ends)
		}
	})

	t.Run("bytes", func(t *testing.T) {
		topic := kafkatest.CreateTopic(t, brokers, "batchbytes", 1)
		big := bytes.Repeat([]byte("x"), 400<<10)
		req := &kgatev1.PublishRequest{Topic: topic}
		for range 6 {
			req.Messages = append(req.Messages, &kgatev1.Message{Value: big})
		}
		if _, err := gw.pub.Publish(testContext(t, 30*time.Second), req); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		open := earliest([]string{topic}, kafkatest.Name("g"))
		open.MaxMessagesPerResponse = 100
		s := openStream(t, gw, open)
		for _, m := range s.NextN(6, 30*time.Second) {
			if !bytes.Equal(m.Value, big) {
				t.Fatalf("record %s: value of %d bytes, want the 400 KiB published", key(m), len(m.Value))
			}
		}
		_, batches := s.Shape()
		for _, n := range batches {
			if n > 2 {
				t.Errorf("a batch of %d records of 400 KiB; want at most 2 (1 MiB per response)", n)
			}
		}
	})
}
