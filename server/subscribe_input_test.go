package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/kafkatest"
	"github.com/kgate/kgate/server"
)

// TestSubscribeRefusesOutOfRangeRequestsNamingTheValidRange: a nack delay,
// an extend deadline or a start position outside the documented range ends
// the stream with INVALID_ARGUMENT whose message names the valid range;
// the bounds themselves are accepted.
func TestSubscribeRefusesOutOfRangeRequestsNamingTheValidRange(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "ranges", 1)
	gw := startGateway(t, kafkaProducer(brokers))
	nack := func(d *durationpb.Duration) *kgatev1.SubscribeRequest {
		return &kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Nack{Nack: &kgatev1.SubscribeNack{AckIds: []string{"1.0.1"}, Delay: d}}}
	}
	extend := func(d *durationpb.Duration) *kgatev1.SubscribeRequest {
		return &kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Extend{Extend: &kgatev1.SubscribeExtend{AckIds: []string{"1.0.1"}, Deadline: d}}}
	}
	for i, tc := range []struct {
		open       *kgatev1.SubscribeOpen // nil: earliest on topic
		req        *kgatev1.SubscribeRequest
		wantReason string
		wantMsg    string
	}{
		0: {req: nack(durationpb.New(-time.Second)), wantReason: "INVALID_NACK",
			wantMsg: "nack delay -1s is out of range: use 0s (redeliver at once) to 10m0s, or leave it unset for the subscription's backoff"},
		1: {req: nack(durationpb.New(11 * time.Minute)), wantReason: "INVALID_NACK", wantMsg: "nack delay 11m0s is out of range: use 0s (redeliver at once) to 10m0s"},
		2: {req: nack(&durationpb.Duration{Seconds: 1, Nanos: 2e9}), wantReason: "INVALID_NACK", wantMsg: "nack delay is not a valid duration"},
		3: {req: extend(durationpb.New(11 * time.Minute)), wantReason: "INVALID_EXTEND",
			wantMsg: "extend deadline 11m0s is out of range: use 0s to 10m0s, or leave it unset for the subscription's ack_deadline"},
		4: {req: extend(durationpb.New(-time.Millisecond)), wantReason: "INVALID_EXTEND", wantMsg: "extend deadline -1ms is out of range: use 0s to 10m0s"},
		5: {open: &kgatev1.SubscribeOpen{Topics: []string{topic}, Group: "g", StartPosition: 7}, wantReason: "INVALID_SUBSCRIPTION",
			wantMsg: "start_position 7 is not a StartPosition: use START_POSITION_EARLIEST (1) or START_POSITION_LATEST (2)"},
		6: {open: &kgatev1.SubscribeOpen{Topics: []string{topic}, Group: "g", MaxDeliveryAttempts: -3}, wantReason: "INVALID_SUBSCRIPTION",
			wantMsg: "max_delivery_attempts -3 is out of range: use 1 or more (with dead_letter_topic), or 0 for unlimited redelivery"},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			open := tc.open
			if open == nil {
				open = earliest([]string{topic}, kafkatest.Name("g"))
			}
			s := openStream(t, gw, open)
			if tc.req != nil {
				s.Send(tc.req)
			}
			st, d := detailsOf(t, s.WaitEnd(30*time.Second))
			if st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), tc.wantMsg) {
				t.Errorf("got %v %q, want INVALID_ARGUMENT saying %q", st.Code(), st.Message(), tc.wantMsg)
			}
			if d.info.GetReason() != tc.wantReason || d.info.GetDomain() != "kgate.v1" {
				t.Errorf("ErrorInfo %v, want reason %s", d.info, tc.wantReason)
			}
		})
	}

	t.Run("bounds", func(t *testing.T) {
		t.Parallel()
		publishN(t, gw, topic, 1, nil)
		s := openStream(t, gw, earliest([]string{topic}, kafkatest.Name("g")))
		m := s.Next(30 * time.Second)
		s.Extend(10*time.Minute, m.AckId)
		s.Nack(durationpb.New(0), m.AckId)
		again := s.Next(30 * time.Second)
		if again.Offset != m.Offset || again.DeliveryAttempt != 2 {
			t.Fatalf("after a nack with delay 0 got offset %d attempt %d, want offset %d attempt 2", again.Offset, again.DeliveryAttempt, m.Offset)
		}
		s.Extend(0, again.AckId) // due at once: delivered again after the backoff
		third := s.Next(30 * time.Second)
		if third.Offset != m.Offset || third.DeliveryAttempt != 3 {
			t.Fatalf("after extend 0 got offset %d attempt %d, want offset %d attempt 3", third.Offset, third.DeliveryAttempt, m.Offset)
		}
		s.Ack(third.AckId)
		if err := s.End(30 * time.Second); err != nil {
			t.Fatalf("a stream that sent only values in range ended with %v", err)
		}
	})
}

// rawCodec lets a test client send bytes of its own making, such as a
// string field that is not UTF-8, which no protobuf library sends.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	switch v := v.(type) {
	case []byte:
		return v, nil
	case proto.Message:
		return proto.Marshal(v)
	}
	return nil, fmt.Errorf("rawCodec cannot marshal %T", v)
}

func (rawCodec) Unmarshal(data []byte, v any) error { return proto.Unmarshal(data, v.(proto.Message)) }
func (rawCodec) Name() string                       { return "proto" }

// rawField is the wire encoding of one length-delimited field, named as in
// the proto, of message m.
func rawField(m proto.Message, name string, value []byte) []byte {
	f := m.ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(name))
	if f == nil {
		panic("no field " + name)
	}
	return protowire.AppendBytes(protowire.AppendTag(nil, f.Number(), protowire.BytesType), value)
}

// rawStream opens a bidi stream of method that sends what it is given as
// is; it ends when the test does.
func rawStream(t *testing.T, gw *gateway, method string) grpc.ClientStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second*timeoutScale)
	t.Cleanup(cancel)
	cs, err := gw.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method, grpc.ForceCodec(rawCodec{}))
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// TestSubscribeRequestThatDoesNotDecodeEndsTheStreamInvalidArgument: an
// ack id that is not valid UTF-8 (which a non-Go client can send) makes
// the request undecodable. The stream ends with INVALID_ARGUMENT, reason
// MALFORMED_REQUEST, naming the field, not INTERNAL; nothing of that
// request is applied, what came before it is.
func TestSubscribeRequestThatDoesNotDecodeEndsTheStreamInvalidArgument(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "badutf8", 1)
	gw := startGateway(t, kafkaProducer(brokers))
	publishN(t, gw, topic, 2, nil)
	group := kafkatest.Name("g")

	cs := rawStream(t, gw, kgatev1.Subscriber_Subscribe_FullMethodName)
	if err := cs.SendMsg(openReq(earliest([]string{topic}, group))); err != nil {
		t.Fatal(err)
	}
	var recs []*kgatev1.ReceivedMessage
	for len(recs) < 2 {
		var resp kgatev1.SubscribeResponse
		if err := cs.RecvMsg(&resp); err != nil {
			t.Fatalf("stream ended before 2 records: %v", err)
		}
		if m := resp.GetMessage(); m != nil {
			recs = append(recs, m)
		}
	}
	if err := cs.SendMsg(&kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Ack{Ack: &kgatev1.SubscribeAck{AckIds: []string{recs[0].AckId}}}}); err != nil {
		t.Fatal(err)
	}
	ack := append(rawField(&kgatev1.SubscribeAck{}, "ack_ids", []byte(recs[1].AckId)), rawField(&kgatev1.SubscribeAck{}, "ack_ids", []byte("\xff\xfe"))...)
	if err := cs.SendMsg(rawField(&kgatev1.SubscribeRequest{}, "ack", ack)); err != nil {
		t.Fatal(err)
	}
	err := recvUntilEnd(t, cs, new(kgatev1.SubscribeResponse))
	st, d := detailsOf(t, err)
	if st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "not a valid kgate.v1.SubscribeRequest: ack.ack_ids is not valid UTF-8") ||
		!strings.Contains(st.Message(), "send ack ids back exactly as the gateway sent them") {
		t.Errorf("got %v %q, want INVALID_ARGUMENT saying that ack_ids is not UTF-8", st.Code(), st.Message())
	}
	if d.info.GetReason() != server.ReasonMalformedRequest || d.info.GetDomain() != "kgate.v1" {
		t.Errorf("ErrorInfo %v, want reason %s", d.info, server.ReasonMalformedRequest)
	}
	// The ack before the malformed request is committed; the valid ack id
	// inside it is not applied.
	kafkatest.Eventually(t, 10*time.Second*timeoutScale, "the group commits offset 1", func() bool {
		return committed(t, brokers, group, topic)[0] == 1
	})

	// An open that does not decode ends the same way.
	cs = rawStream(t, gw, kgatev1.Subscriber_Subscribe_FullMethodName)
	open := append(rawField(&kgatev1.SubscribeOpen{}, "topics", []byte("t\xc0")), rawField(&kgatev1.SubscribeOpen{}, "group", []byte("g"))...)
	if err := cs.SendMsg(rawField(&kgatev1.SubscribeRequest{}, "open", open)); err != nil {
		t.Fatal(err)
	}
	st, d = detailsOf(t, recvUntilEnd(t, cs, new(kgatev1.SubscribeResponse)))
	if st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "open.topics is not valid UTF-8") ||
		d.info.GetReason() != server.ReasonMalformedRequest {
		t.Errorf("an open that does not decode: %v %q %v, want INVALID_ARGUMENT %s naming topics", st.Code(), st.Message(), d.info, server.ReasonMalformedRequest)
	}
}

// recvUntilEnd receives into m until the stream ends and returns how (nil
// for OK).
func recvUntilEnd(t *testing.T, cs grpc.ClientStream, m proto.Message) error {
	t.Helper()
	for {
		if err := cs.RecvMsg(m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}
