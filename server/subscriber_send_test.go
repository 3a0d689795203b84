package server

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/kafkaio"
)

// A reused ReceivedMessage says exactly what a new one would, whatever it
// held before, and holds no payload once sent.
func TestFillReceivedReusesMessages(t *testing.T) {
	ts := time.Date(2026, 11, 30, 12, 0, 0, 123456789, time.UTC)
	recs := []*kafkaio.Record{
		{AckID: "a1", Topic: "t", Partition: 2, Offset: 7, Key: []byte("k"), Value: []byte("v"), Timestamp: ts, Attempt: 1,
			Headers: []kafkaio.Header{{Key: "h1", Value: []byte("x")}, {Key: "h2", Value: []byte("y")}}},
		{AckID: "a2", Topic: "u", Partition: 0, Offset: 8, Value: []byte("w"), Timestamp: ts.Add(time.Second), Attempt: 3},
		{AckID: "a3", Topic: "t", Partition: 1, Offset: 9, Timestamp: ts,
			Headers: []kafkaio.Header{{Key: "h3"}, {Key: "h4", Value: []byte("z")}, {Key: "h5", Value: []byte("q")}}},
		{AckID: "a4", Topic: "t", Headers: []kafkaio.Header{{Key: "h6", Value: []byte("r")}}},
	}
	want := func(r *kafkaio.Record) *kgatev1.ReceivedMessage {
		m := &kgatev1.ReceivedMessage{AckId: r.AckID, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value,
			Timestamp: timestamppb.New(r.Timestamp), DeliveryAttempt: r.Attempt}
		for _, h := range r.Headers {
			m.Headers = append(m.Headers, &kgatev1.Header{Key: h.Key, Value: h.Value})
		}
		return m
	}
	m := &kgatev1.ReceivedMessage{}
	for i, r := range recs {
		fillReceived(m, r)
		if !proto.Equal(m, want(r)) {
			t.Errorf("record %d: reused message %v, want %v", i, m, want(r))
		}
		forgetPayload(m)
		if m.Key != nil || m.Value != nil {
			t.Errorf("record %d: the sent message still holds the record's key or value", i)
		}
		for _, h := range m.Headers {
			if h.Value != nil {
				t.Errorf("record %d: the sent message still holds a header value", i)
			}
		}
	}
}
