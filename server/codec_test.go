package server

import (
	"strings"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
)

func TestKeepMessages(t *testing.T) {
	msgs := func(n int) []*kgatev1.Message {
		var out []*kgatev1.Message
		for i := range n {
			out = append(out, &kgatev1.Message{Value: []byte{byte(i)}})
		}
		return out
	}
	// The topic after the messages: fields may come in any order.
	topicLast := func(n int) []byte {
		b, _ := proto.Marshal(&kgatev1.PublishRequest{Messages: msgs(n)})
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		return protowire.AppendString(b, "late")
	}
	marshal := func(r *kgatev1.PublishRequest) []byte { b, _ := proto.Marshal(r); return b }
	for i, tc := range []struct {
		wire      []byte
		keep      int
		wantN     int
		wantTopic string
		same      bool // b returned as it is
	}{
		0: {marshal(&kgatev1.PublishRequest{Topic: "t", Messages: msgs(3)}), 3, 3, "t", true},
		1: {marshal(&kgatev1.PublishRequest{Topic: "t", Messages: msgs(10)}), 4, 4, "t", false},
		2: {topicLast(10), 4, 4, "late", false},
		3: {marshal(&kgatev1.PublishRequest{Topic: "t"}), 0, 0, "t", true},
		4: {marshal(&kgatev1.PublishRequest{Topic: "t", Messages: msgs(2)}), 0, 0, "t", false},
	} {
		got := keepMessages(tc.wire, tc.keep)
		if same := len(got) == len(tc.wire) && (len(got) == 0 || &got[0] == &tc.wire[0]); same != tc.same {
			t.Errorf("case %d: returned the input itself %v, want %v", i, same, tc.same)
		}
		var r kgatev1.PublishRequest
		if err := proto.Unmarshal(got, &r); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if len(r.GetMessages()) != tc.wantN || r.GetTopic() != tc.wantTopic {
			t.Errorf("case %d: %d messages, topic %q; want %d, %q", i, len(r.GetMessages()), r.GetTopic(), tc.wantN, tc.wantTopic)
		}
		for j, m := range r.GetMessages() {
			if len(m.GetValue()) != 1 || m.GetValue()[0] != byte(j) {
				t.Errorf("case %d: message %d is %v, want the request's own, in order", i, j, m.GetValue())
			}
		}
	}
	// Malformed input comes back unchanged, for proto.Unmarshal to refuse.
	if bad := []byte{0x12, 0x05, 0x00}; &keepMessages(bad, 0)[0] != &bad[0] {
		t.Error("a malformed request was changed")
	}
}

// The codec decodes kgate's messages with vtprotobuf's code and checks
// their strings itself: it must accept what proto.Unmarshal accepts,
// decoding the same message, and refuse what it refuses. The one
// difference allowed is a field of the wrong wire type, which proto keeps
// as an unknown field and vtprotobuf refuses: no client of the API sends
// one.
func FuzzCodecAgreesWithProto(f *testing.F) {
	for _, m := range []proto.Message{
		&kgatev1.PublishRequest{Topic: "t", Messages: []*kgatev1.Message{{Key: []byte("k"), Value: []byte("v"), Headers: []*kgatev1.Header{{Key: "h", Value: []byte("x")}}}}},
		&kgatev1.PublishStreamRequest{CorrelationId: "1", Topic: "t", Message: &kgatev1.Message{Value: []byte("v")}},
		&kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Ack{Ack: &kgatev1.SubscribeAck{AckIds: []string{"a", "b"}}}},
		&kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Open{Open: &kgatev1.SubscribeOpen{Topics: []string{"t"}, Group: "g"}}},
		&kgatev1.SubscribeResponse{Response: &kgatev1.SubscribeResponse_Messages{Messages: &kgatev1.ReceivedMessages{Messages: []*kgatev1.ReceivedMessage{
			{AckId: "a", Topic: "t", Key: []byte("k"), Headers: []*kgatev1.Header{{Key: "h"}}}, {AckId: "b"}}}}},
		&kgatev1.SubscribeResponse{Response: &kgatev1.SubscribeResponse_Drained{Drained: &kgatev1.Drained{}}},
	} {
		b, _ := proto.Marshal(m)
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0x02, 0xff, 0xfe})             // field 1, a string of bytes that are not UTF-8
	f.Add([]byte{0x12, 0x04, 0x12, 0x02, 0xc3, 0x28}) // a nested string that is not UTF-8
	f.Add([]byte{0x0a, 0x05, 0x61})                   // truncated
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, newMsg := range []func() vtMessage{
			func() vtMessage { return new(kgatev1.PublishRequest) },
			func() vtMessage { return new(kgatev1.PublishStreamRequest) },
			func() vtMessage { return new(kgatev1.SubscribeRequest) },
			// Responses, for the way out.
			func() vtMessage { return new(kgatev1.SubscribeResponse) },
			func() vtMessage { return new(kgatev1.PublishStreamResponse) },
			func() vtMessage { return new(kgatev1.PublishResponse) },
		} {
			p, v := newMsg(), newMsg()
			perr := proto.Unmarshal(b, p)
			verr := unmarshalVT(b, v)
			name := p.ProtoReflect().Descriptor().FullName()
			switch {
			case perr == nil && verr == nil:
				// Unknown fields are kept as they came by vtprotobuf, with
				// their tags re-encoded by proto; kgate never reads them.
				dropUnknown(p.ProtoReflect())
				dropUnknown(v.ProtoReflect())
				if !proto.Equal(p, v) {
					t.Fatalf("%s: %x decodes as %v with proto, %v with the codec", name, b, p, v)
				}
			case perr != nil && verr == nil:
				t.Fatalf("%s: the codec accepted %x, which proto refuses: %v", name, b, perr)
			case perr == nil && verr != nil:
				if !strings.Contains(verr.Error(), "wrong wireType") {
					t.Fatalf("%s: the codec refused %x, which proto accepts: %v", name, b, verr)
				}
			}
			if perr != nil {
				continue
			}
			// What decoded encodes back to what proto would send. (The
			// gateway encodes only messages it built, without unknown
			// fields; vtprotobuf drops those of a Timestamp.)
			dropUnknown(p.ProtoReflect())
			c := newRequestCodec(DefaultMaxPublishMessages)
			out, err := c.Marshal(p)
			want, werr := proto.Marshal(p)
			if (err == nil) != (werr == nil) {
				t.Fatalf("%s: marshalling %v: codec %v, proto %v", name, p, err, werr)
			}
			if err == nil {
				back := newMsg()
				if err := proto.Unmarshal(out.Materialize(), back); err != nil || !proto.Equal(back, p) {
					t.Fatalf("%s: %v encodes as %x (%v), proto as %x", name, p, out.Materialize(), err, want)
				}
				out.Free()
			}
		}
	})
}

// dropUnknown forgets the unknown fields of m and its nested messages.
func dropUnknown(m protoreflect.Message) {
	m.SetUnknown(nil)
	m.Range(func(f protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case f.IsList() && f.Message() != nil:
			for i := range v.List().Len() {
				dropUnknown(v.List().Get(i).Message())
			}
		case f.Message() != nil && !f.IsMap():
			dropUnknown(v.Message())
		}
		return true
	})
}

// Strings that are not UTF-8 are refused on the way out too, as
// proto.Marshal refuses them, naming the field.
func TestCodecRefusesBadUTF8OnMarshal(t *testing.T) {
	const bad = "\xff\xfe"
	rec := func(f func(*kgatev1.ReceivedMessage)) *kgatev1.ReceivedMessage {
		m := &kgatev1.ReceivedMessage{AckId: "a", Topic: "t", Headers: []*kgatev1.Header{{Key: "h", Value: []byte("v")}}}
		f(m)
		return m
	}
	batch := func(m *kgatev1.ReceivedMessage) *kgatev1.SubscribeResponse {
		return &kgatev1.SubscribeResponse{Response: &kgatev1.SubscribeResponse_Messages{Messages: &kgatev1.ReceivedMessages{
			Messages: []*kgatev1.ReceivedMessage{rec(func(*kgatev1.ReceivedMessage) {}), m}}}}
	}
	one := func(m *kgatev1.ReceivedMessage) *kgatev1.SubscribeResponse {
		return &kgatev1.SubscribeResponse{Response: &kgatev1.SubscribeResponse_Message{Message: m}}
	}
	c := newRequestCodec(DefaultMaxPublishMessages)
	for i, tc := range []struct {
		m     vtMessage
		field string // "": valid
	}{
		0: {one(rec(func(m *kgatev1.ReceivedMessage) {})), ""},
		1: {one(rec(func(m *kgatev1.ReceivedMessage) { m.Headers[0].Key = bad })), "message.headers.key"},
		2: {one(rec(func(m *kgatev1.ReceivedMessage) { m.AckId = bad })), "message.ack_id"},
		3: {one(rec(func(m *kgatev1.ReceivedMessage) { m.Topic = bad })), "message.topic"},
		4: {batch(rec(func(m *kgatev1.ReceivedMessage) { m.Headers[0].Key = bad })), "messages.messages.headers.key"},
		5: {batch(rec(func(m *kgatev1.ReceivedMessage) {})), ""},
		6: {&kgatev1.SubscribeResponse{Response: &kgatev1.SubscribeResponse_Assignment{Assignment: &kgatev1.Assignment{
			Assigned: []*kgatev1.TopicPartition{{Topic: bad}}}}}, "assignment.assigned.topic"},
		7: {&kgatev1.PublishStreamResponse{CorrelationId: bad}, "correlation_id"},
		8: {&kgatev1.PublishStreamResponse{CorrelationId: "1", Outcome: &kgatev1.MessageOutcome{Message: bad}}, "outcome.message"},
	} {
		out, err := c.Marshal(tc.m)
		_, perr := proto.Marshal(tc.m)
		if (err == nil) != (perr == nil) {
			t.Errorf("case %d: codec %v, proto %v: want both to accept or both to refuse", i, err, perr)
		}
		if tc.field == "" {
			if err != nil {
				t.Errorf("case %d: %v", i, err)
				continue
			}
			back := tc.m.ProtoReflect().New().Interface()
			if err := proto.Unmarshal(out.Materialize(), back); err != nil || !proto.Equal(back, tc.m) {
				t.Errorf("case %d: encoded %v as something else (%v)", i, tc.m, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "string field "+tc.field+" ") {
			t.Errorf("case %d: error %v, want one naming %s", i, err, tc.field)
		}
	}
}

// BenchmarkUnmarshalStreamRequest measures decoding one PublishStream
// request of 100 bytes with the codec (vtprotobuf and the wire check) and
// with proto.
func BenchmarkUnmarshalStreamRequest(b *testing.B) {
	wire, _ := proto.Marshal(&kgatev1.PublishStreamRequest{CorrelationId: "12345", Topic: "bench-grpc-1234567890",
		Message: &kgatev1.Message{Value: make([]byte, 100), Headers: []*kgatev1.Header{{Key: "trace", Value: []byte("x")}}}})
	b.Run("codec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := unmarshalVT(wire, new(kgatev1.PublishStreamRequest)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("check-only", func(b *testing.B) {
		md := (&kgatev1.PublishStreamRequest{}).ProtoReflect().Descriptor()
		for b.Loop() {
			if f, err := checkWire(wire, md); f != "" || err != nil {
				b.Fatal(f, err)
			}
		}
	})
	b.Run("proto", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := proto.Unmarshal(wire, new(kgatev1.PublishStreamRequest)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestCodecLetsPublishRefuseBadUTF8: the codec passes a PublishRequest
// whose topic or header key is not UTF-8 to the handler (which refuses it,
// naming the string), and refuses one whose bad string a later value of
// the field replaced, as proto does, since the handler would not see it.
func TestCodecLetsPublishRefuseBadUTF8(t *testing.T) {
	c := newRequestCodec(DefaultMaxPublishMessages)
	topic := func(v string) []byte { // PublishRequest.topic, field 1
		return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte(v))
	}
	var req kgatev1.PublishRequest
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(topic("t\xff"))}, &req); err != nil || badUTF8Publish(&req) != "topic" {
		t.Errorf("a topic not UTF-8: codec %v, handler's check %q; want it decoded and named", err, badUTF8Publish(&req))
	}
	req = kgatev1.PublishRequest{}
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(append(topic("t\xff"), topic("t")...))}, &req); err == nil {
		t.Errorf("a bad topic replaced by a good one was accepted as %q; proto refuses it", req.GetTopic())
	}
}
