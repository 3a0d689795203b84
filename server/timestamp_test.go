package server_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/kafkatest"
)

// TestSubscribeTimestampIsTheRecordsCreateTime: on a CreateTime topic
// (Kafka's default) ReceivedMessage.timestamp is the producer's CreateTime,
// as the proto documents: the message's own timestamp, else the one
// Publish reported. (kfake does not rewrite timestamps of LogAppendTime
// topics, so that case is documented, not tested.)
func TestSubscribeTimestampIsTheRecordsCreateTime(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "timestamps", 1)
	gw := startGateway(t, kafkaProducer(brokers))
	own := time.Date(2026, 1, 2, 3, 4, 5, 6_789_000, time.UTC)
	resp, err := gw.pub.Publish(testContext(t, 30*time.Second), &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{
		{Value: []byte("own"), Timestamp: timestamppb.New(own)},
		{Value: []byte("gateway's")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	s := openStream(t, gw, earliest([]string{topic}, kafkatest.Name("g")))
	got := s.NextN(2, 30*time.Second)
	for i, want := range []time.Time{own.Truncate(time.Millisecond), resp.Results[1].Timestamp.AsTime()} {
		if ts := got[i].GetTimestamp().AsTime(); !ts.Equal(want) {
			t.Errorf("record %d (%s): timestamp %v, want %v", i, got[i].Value, ts, want)
		}
	}
	if !resp.Results[0].Timestamp.AsTime().Equal(own.Truncate(time.Millisecond)) {
		t.Errorf("Publish reported %v for a message with timestamp %v", resp.Results[0].Timestamp.AsTime(), own)
	}
}
