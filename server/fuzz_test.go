package server

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/kafkaio"
)

// FuzzSubscriptionConfig feeds arbitrary bytes, decoded as a SubscribeOpen,
// to the open-message check: it never panics, refuses with
// INVALID_ARGUMENT, and what it accepts is within the documented ranges.
// Run longer with `make fuzz`.
func FuzzSubscriptionConfig(f *testing.F) {
	seed := func(o *kgatev1.SubscribeOpen) {
		b, err := proto.Marshal(o)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(&kgatev1.SubscribeOpen{Topics: []string{"t"}, Group: "g"})
	seed(&kgatev1.SubscribeOpen{Topics: []string{"t"}, Group: "g", MaxOutstandingMessages: 1_000_001})
	seed(&kgatev1.SubscribeOpen{Topics: []string{"t"}, Group: "g", MaxOutstandingMessages: -5, MaxOutstandingBytes: -1})
	seed(&kgatev1.SubscribeOpen{Topics: []string{"t"}, Group: "g", AckDeadline: &durationpb.Duration{Seconds: -1}})
	seed(&kgatev1.SubscribeOpen{Topics: []string{"t"}, Group: "g", AckDeadline: &durationpb.Duration{Seconds: 1, Nanos: -1}})
	seed(&kgatev1.SubscribeOpen{Topics: []string{"t"}, Group: "g", MinBackoff: &durationpb.Duration{Seconds: 315576000001}})
	seed(&kgatev1.SubscribeOpen{Topics: []string{"t"}, Group: "g", MaxBackoff: durationpb.New(11 * time.Minute)})
	seed(&kgatev1.SubscribeOpen{Topics: []string{"t"}, Group: "g", MaxMessagesPerResponse: 1001})
	seed(&kgatev1.SubscribeOpen{StartPosition: 99, MaxDeliveryAttempts: -3, DeadLetterTopic: ".."})
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var o kgatev1.SubscribeOpen
		if proto.Unmarshal(b, &o) != nil {
			return
		}
		cfg, err := subscriptionConfig(&o)
		if err != nil {
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("subscriptionConfig(%v) = %v, want INVALID_ARGUMENT", &o, err)
			}
			return
		}
		w := cfg.Window
		for _, d := range []time.Duration{w.AckDeadline, w.MinBackoff, w.MaxBackoff} {
			if d < 0 || d > maxDeadline {
				t.Fatalf("subscriptionConfig(%v) accepted a duration %v outside [0, %v]", &o, d, maxDeadline)
			}
		}
		if w.MaxMessages > 1_000_000 || int64(w.MaxMessages) != o.GetMaxOutstandingMessages() {
			t.Fatalf("subscriptionConfig(%v): max messages %d from %d", &o, w.MaxMessages, o.GetMaxOutstandingMessages())
		}
		if n := o.GetMaxMessagesPerResponse(); n < 0 || n > maxBatchMessages {
			t.Fatalf("subscriptionConfig(%v) accepted max_messages_per_response %d", &o, n)
		}
		if p := o.GetStartPosition(); kgatev1.StartPosition_name[int32(p)] == "" {
			t.Fatalf("subscriptionConfig(%v) accepted start_position %d", &o, p)
		}
		if cfg.StartEarliest != (o.GetStartPosition() == kgatev1.StartPosition_START_POSITION_EARLIEST) {
			t.Fatalf("subscriptionConfig(%v): StartEarliest %v", &o, cfg.StartEarliest)
		}
		if o.GetMaxDeliveryAttempts() < 0 {
			t.Fatalf("subscriptionConfig(%v) accepted max_delivery_attempts %d", &o, o.GetMaxDeliveryAttempts())
		}
	})
}

// FuzzToKafkaMessage feeds arbitrary bytes, decoded as a Message, to the
// conversion Publish and PublishStream use: it never panics, refuses only
// with an invalid-kind error, and keeps key, value and headers as sent.
func FuzzToKafkaMessage(f *testing.F) {
	p := int32(-1)
	for _, m := range []*kgatev1.Message{
		{Value: []byte("v")},
		{Key: []byte("k"), Partition: &p},
		{Timestamp: &timestamppb.Timestamp{Seconds: -62135596801}},
		{Timestamp: &timestamppb.Timestamp{Nanos: 2e9}},
		{Headers: []*kgatev1.Header{{Key: "a"}, {Key: "", Value: []byte{0}}}},
		{Headers: []*kgatev1.Header{{Key: "kgate.dlq.topic", Value: []byte("forged")}}},
		{Headers: []*kgatev1.Header{{Key: "KGate.x"}, {Key: "kgate"}}},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m kgatev1.Message
		if proto.Unmarshal(b, &m) != nil {
			return
		}
		km, err := toKafkaMessage(0, &m)
		reserved := false
		for _, h := range m.GetHeaders() {
			k := []byte(h.GetKey()) // "kgate." in any ASCII case
			for i := 0; i < len(k) && i < 6; i++ {
				if 'A' <= k[i] && k[i] <= 'Z' {
					k[i] += 'a' - 'A'
				}
			}
			reserved = reserved || strings.HasPrefix(string(k), "kgate.")
		}
		if reserved && err == nil {
			t.Fatalf("toKafkaMessage(%v) accepted a header of the gateway's own", &m)
		}
		if err != nil {
			if kafkaio.KindOf(err) != kafkaio.KindInvalid || codeOf(err) != codes.InvalidArgument {
				t.Fatalf("toKafkaMessage(%v) = %v, want an invalid-argument error", &m, err)
			}
			return
		}
		if km.Partition < kafkaio.PartitionAny || (m.Partition == nil) != (km.Partition == kafkaio.PartitionAny) {
			t.Fatalf("toKafkaMessage(%v): partition %d", &m, km.Partition)
		}
		if string(km.Key) != string(m.GetKey()) || string(km.Value) != string(m.GetValue()) || len(km.Headers) != len(m.GetHeaders()) {
			t.Fatalf("toKafkaMessage(%v) changed the message: %+v", &m, km)
		}
		for i, h := range m.GetHeaders() {
			if km.Headers[i].Key != h.GetKey() || string(km.Headers[i].Value) != string(h.GetValue()) {
				t.Fatalf("header %d changed: %+v", i, km.Headers[i])
			}
		}
	})
}

// FuzzKeepMessages: for any bytes that decode as a PublishRequest, the
// request keepMessages leaves decodes too, with the same topic and the
// first keep messages (all of them when there are no more).
func FuzzKeepMessages(f *testing.F) {
	for _, r := range []*kgatev1.PublishRequest{
		{Topic: "t", Messages: []*kgatev1.Message{{Value: []byte("a")}, {Key: []byte("k")}, {}}},
		{Messages: []*kgatev1.Message{{Headers: []*kgatev1.Header{{Key: "h"}}}}},
		{Topic: "only"},
	} {
		b, err := proto.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(1))
		f.Add(append(b, 0x0a, 0x01, 'z'), uint8(0)) // a second topic field, after the messages
	}
	f.Add([]byte{0x12, 0x00, 0x12, 0x00, 0x12}, uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, keep uint8) {
		var whole kgatev1.PublishRequest
		if proto.Unmarshal(b, &whole) != nil {
			return
		}
		var cut kgatev1.PublishRequest
		if err := proto.Unmarshal(keepMessages(b, int(keep)), &cut); err != nil {
			t.Fatalf("keepMessages(%x, %d) does not decode: %v", b, keep, err)
		}
		want := whole.GetMessages()
		if len(want) > int(keep) {
			want = want[:keep]
		}
		if cut.GetTopic() != whole.GetTopic() || len(cut.GetMessages()) != len(want) {
			t.Fatalf("keepMessages(%x, %d): topic %q, %d messages; want %q, %d", b, keep, cut.GetTopic(), len(cut.GetMessages()), whole.GetTopic(), len(want))
		}
		for i := range want {
			if !proto.Equal(cut.GetMessages()[i], want[i]) {
				t.Fatalf("keepMessages(%x, %d): message %d is %v, want %v", b, keep, i, cut.GetMessages()[i], want[i])
			}
		}
	})
}

// FuzzRequestDuration: client durations (nack delays, extensions) are
// either taken as sent, within [0, maxDeadline], or refused with
// INVALID_ARGUMENT naming the valid range, whatever their fields.
func FuzzRequestDuration(f *testing.F) {
	f.Add(int64(0), int32(0))
	f.Add(int64(-1), int32(0))
	f.Add(int64(1), int32(-1))
	f.Add(int64(600), int32(1))
	f.Add(int64(315576000001), int32(0))
	f.Add(int64(-9223372036854775808), int32(-999999999))
	f.Fuzz(func(t *testing.T, s int64, n int32) {
		in := &durationpb.Duration{Seconds: s, Nanos: n}
		nack, useBackoff, nerr := nackDelay(in)
		ext, eerr := extendDeadline(in, time.Second)
		valid := in.CheckValid() == nil && in.AsDuration() >= 0 && in.AsDuration() <= maxDeadline
		for _, c := range []struct {
			what string
			d    time.Duration
			err  error
		}{{"nack delay", nack, nerr}, {"extend deadline", ext, eerr}} {
			switch {
			case c.err == nil && !valid:
				t.Fatalf("%s %ds %dns accepted as %v", c.what, s, n, c.d)
			case c.err == nil && c.d != in.AsDuration():
				t.Fatalf("%s %ds %dns read as %v", c.what, s, n, c.d)
			case c.err != nil && valid:
				t.Fatalf("%s %ds %dns refused: %v", c.what, s, n, c.err)
			case c.err != nil && (status.Code(c.err) != codes.InvalidArgument || !strings.Contains(status.Convert(c.err).Message(), "use 0s")):
				t.Fatalf("%s %ds %dns: %v, want INVALID_ARGUMENT naming the valid range", c.what, s, n, c.err)
			}
		}
		if useBackoff {
			t.Fatalf("a nack with a delay uses the backoff")
		}
	})
}
