package server

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

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
