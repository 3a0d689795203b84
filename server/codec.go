package server

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
)

// ReasonMalformedRequest is the ErrorInfo reason of a stream request that
// does not decode as the API's message, for example because a string field
// is not valid UTF-8.
const ReasonMalformedRequest = "MALFORMED_REQUEST"

// DefaultMaxPublishMessages is the default bound on the messages of one
// Publish request.
const DefaultMaxPublishMessages = 10_000

// requestCodec is the server's codec: protobuf, marshalled and unmarshalled
// with the methods vtprotobuf generates for kgate's own messages (2 to 4
// times faster than the reflection of gRPC's proto codec, which still
// serves the other messages: health, reflection), with two kinds of
// receive target of its own.
//
//   - A PublishRequest of more than maxMessages messages is decoded with only
//     its first maxMessages+1 messages. Decoding is the one cost a call pays
//     before its handler can refuse it, and an empty message takes 2 bytes
//     on the wire but about 100 in memory: without this, one 4 MiB request
//     of two million empty messages cost 150 MB to decode. The handler then
//     refuses the request with INVALID_ARGUMENT (TOO_MANY_MESSAGES), so a
//     request cut here is never published.
//   - Receiving into a *lenient never fails. When a stream's RecvMsg fails
//     to decode, grpc-go writes INTERNAL to the client at once, whatever the
//     handler returns afterwards; a string field that is not valid UTF-8 (an
//     ack id a client built from bytes, say) fails proto3 decoding.
//     Receiving into a *lenient leaves the decoding error to the handler,
//     which answers INVALID_ARGUMENT saying what was wrong.
//
// vtprotobuf's code does not check that strings are UTF-8, as proto3
// requires and the proto codec does both ways; this codec checks every
// string field it decodes or encodes (badUTF8Field), so that what it
// accepts and refuses is what the proto codec did (FuzzCodecAgreesWithProto).
type requestCodec struct {
	maxMessages int
	proto       encoding.CodecV2
}

// vtMessage is a message with vtprotobuf's generated methods.
type vtMessage interface {
	proto.Message
	SizeVT() int
	MarshalToSizedBufferVT(dAtA []byte) (int, error)
	UnmarshalVT(dAtA []byte) error
}

func newRequestCodec(maxMessages int) *requestCodec {
	return &requestCodec{maxMessages: maxMessages, proto: encoding.GetCodecV2(protocodec.Name)}
}

// codecOption makes the server use a requestCodec.
func codecOption(maxMessages int) grpc.ServerOption {
	return grpc.ForceServerCodecV2(newRequestCodec(maxMessages))
}

func (c *requestCodec) Name() string { return protocodec.Name }

func (c *requestCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(vtMessage)
	if !ok {
		return c.proto.Marshal(v)
	}
	size := m.SizeVT()
	if mem.IsBelowBufferPoolingThreshold(size) {
		b := make([]byte, size)
		if err := marshalVT(m, b); err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	pool := mem.DefaultBufferPool()
	b := pool.Get(size)
	if err := marshalVT(m, (*b)[:size]); err != nil {
		pool.Put(b)
		return nil, err
	}
	return mem.BufferSlice{mem.NewBuffer(b, pool)}, nil
}

// marshalVT encodes m into b, of m.SizeVT() bytes, refusing strings that
// are not UTF-8 as proto.Marshal does.
func marshalVT(m vtMessage, b []byte) error {
	f, checked := badUTF8Records(m)
	if !checked {
		if _, err := m.MarshalToSizedBufferVT(b); err != nil {
			return err
		}
		f = badUTF8Field(b, m.ProtoReflect().Descriptor())
	}
	if f != "" {
		return fmt.Errorf("string field %s contains invalid UTF-8", f)
	}
	if checked {
		_, err := m.MarshalToSizedBufferVT(b)
		return err
	}
	return nil
}

// badUTF8Records checks the strings of a Subscribe response carrying
// records in the message itself, which costs a fifth of walking its
// encoding (badUTF8Field) for a batch of records, and returns the first
// that is not UTF-8 as badUTF8Field would name it. checked is false for
// any other message.
func badUTF8Records(m vtMessage) (field string, checked bool) {
	resp, ok := m.(*kgatev1.SubscribeResponse)
	if !ok {
		return "", false
	}
	var recs []*kgatev1.ReceivedMessage
	var prefix string
	switch r := resp.GetResponse().(type) {
	case *kgatev1.SubscribeResponse_Message:
		recs, prefix = []*kgatev1.ReceivedMessage{r.Message}, "message."
	case *kgatev1.SubscribeResponse_Messages:
		recs, prefix = r.Messages.GetMessages(), "messages.messages."
	default:
		return "", false
	}
	for _, rec := range recs {
		switch {
		case !utf8.ValidString(rec.GetAckId()):
			return prefix + "ack_id", true
		case !utf8.ValidString(rec.GetTopic()):
			return prefix + "topic", true
		}
		for _, h := range rec.GetHeaders() {
			if !utf8.ValidString(h.GetKey()) {
				return prefix + "headers.key", true
			}
		}
	}
	return "", true
}

// unmarshalVT decodes b into m, which must be empty, refusing strings
// that are not UTF-8 (and unknown groups that do not end where they should)
// as proto.Unmarshal does.
func unmarshalVT(b []byte, m vtMessage) error {
	if err := m.UnmarshalVT(b); err != nil {
		return err
	}
	f, err := checkWire(b, m.ProtoReflect().Descriptor())
	if f != "" {
		return &notUTF8Error{field: f}
	}
	return err
}

// notUTF8Error is unmarshalVT's error for a string field that is not
// valid UTF-8 in a message that otherwise decoded.
type notUTF8Error struct{ field string }

func (e *notUTF8Error) Error() string { return e.field + " is not valid UTF-8" }

// badUTF8Publish returns the first string of req that is not valid UTF-8,
// named for a person ("topic", "messages[2].headers[0].key"), or "". The
// codec lets such a request through (unary decoding errors would be
// INTERNAL); Publish refuses it.
func badUTF8Publish(req *kgatev1.PublishRequest) string {
	if !utf8.ValidString(req.GetTopic()) {
		return "topic"
	}
	for i, m := range req.GetMessages() {
		for j, h := range m.GetHeaders() {
			if !utf8.ValidString(h.GetKey()) {
				return messageName(i) + ".headers[" + strconv.Itoa(j) + "].key"
			}
		}
	}
	return ""
}

// unmarshal decodes b into m (empty, as gRPC's receive targets are), with
// vtprotobuf's code when m has it.
func unmarshal(b []byte, m proto.Message) error {
	if vm, ok := m.(vtMessage); ok {
		return unmarshalVT(b, vm)
	}
	return proto.Unmarshal(b, m)
}

func (c *requestCodec) Unmarshal(data mem.BufferSlice, v any) error {
	switch m := v.(type) {
	case *kgatev1.PublishRequest:
		buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
		defer buf.Free()
		err := unmarshalVT(keepMessages(buf.ReadOnlyData(), c.maxMessages+1), m)
		var bad *notUTF8Error
		if errors.As(err, &bad) && badUTF8Publish(m) != "" {
			// Decoded in full all the same: the handler refuses it with
			// INVALID_ARGUMENT naming the string (badUTF8Publish), where
			// grpc-go would answer a unary call's decoding error INTERNAL.
			// (A bad string that a later value of the field replaced is
			// still refused here: the handler would not see it.)
			return nil
		}
		return err
	case *lenient:
		buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
		defer buf.Free()
		if err := unmarshal(buf.ReadOnlyData(), m.Message); err != nil {
			m.err = err
			if f := badUTF8Field(buf.ReadOnlyData(), m.ProtoReflect().Descriptor()); f != "" {
				m.err = fmt.Errorf("%s is not valid UTF-8", f)
			}
		}
		return nil
	case vtMessage:
		buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
		defer buf.Free()
		return unmarshalVT(buf.ReadOnlyData(), m)
	}
	return c.proto.Unmarshal(data, v)
}

// badUTF8Field returns the path of the first string field of b, the
// encoding of a message md, that is not valid UTF-8 (such as
// "ack.ack_ids"), or "" when there is none or b does not parse.
func badUTF8Field(b []byte, md protoreflect.MessageDescriptor) string {
	f, _ := checkWire(b, md)
	return f
}

// errMalformed is proto.Unmarshal's error for bytes that do not parse.
var errMalformed = errors.New("proto: cannot parse invalid wire-format data")

// checkWire walks b, the encoding of a message md, and returns the path of
// its first string field that is not valid UTF-8, or errMalformed where it
// does not parse (vtprotobuf's code skips unknown groups without checking
// that they end where they should, and takes field numbers too large;
// proto refuses both).
func checkWire(b []byte, md protoreflect.MessageDescriptor) (string, error) {
	return shapeOf(md).check(b)
}

// wireShape is what checkWire needs to know of a message's fields, looked
// up once per message type (shapeOf) rather than in its descriptor for
// every field of every message.
type wireShape struct {
	fields []fieldShape // by field number; numbers beyond are not checked
}

type fieldShape struct {
	name    string
	str     bool       // a string: must be UTF-8
	message *wireShape // a message: walked
}

// shapes caches wireShape by message name.
var shapes sync.Map // protoreflect.FullName → *wireShape

func shapeOf(md protoreflect.MessageDescriptor) *wireShape {
	if v, ok := shapes.Load(md.FullName()); ok {
		return v.(*wireShape)
	}
	return buildShape(md, map[protoreflect.FullName]*wireShape{})
}

// buildShape makes md's shape and those of the messages it holds; building
// holds those under way, for message types that hold themselves.
func buildShape(md protoreflect.MessageDescriptor, building map[protoreflect.FullName]*wireShape) *wireShape {
	if v, ok := shapes.Load(md.FullName()); ok {
		return v.(*wireShape)
	}
	if ws, ok := building[md.FullName()]; ok {
		return ws
	}
	ws := &wireShape{}
	building[md.FullName()] = ws
	fields := md.Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		var fs fieldShape
		switch f.Kind() {
		case protoreflect.StringKind:
			fs = fieldShape{name: string(f.Name()), str: true}
		case protoreflect.MessageKind:
			fs = fieldShape{name: string(f.Name()), message: buildShape(f.Message(), building)}
		default:
			continue
		}
		n := int(f.Number())
		if n >= 1<<10 {
			continue // not in kgate's messages; a sparse table would do
		}
		for len(ws.fields) <= n {
			ws.fields = append(ws.fields, fieldShape{})
		}
		ws.fields[n] = fs
	}
	shapes.Store(md.FullName(), ws)
	return ws
}

func (ws *wireShape) check(b []byte) (string, error) {
	for len(b) > 0 {
		tag, n := protowire.ConsumeVarint(b)
		if n < 0 || tag>>3 < uint64(protowire.MinValidNumber) || tag>>3 > uint64(protowire.MaxValidNumber) {
			return "", errMalformed // ConsumeTag would truncate a field number too large
		}
		num, typ := protowire.DecodeTag(tag)
		b = b[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return "", errMalformed
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return "", errMalformed
		}
		b = b[n:]
		if int(num) >= len(ws.fields) {
			continue
		}
		switch f := &ws.fields[num]; {
		case f.str:
			if !utf8.Valid(v) {
				return f.name, nil
			}
		case f.message != nil:
			p, err := f.message.check(v)
			if p != "" {
				return f.name + "." + p, err
			}
			if err != nil {
				return "", err
			}
		}
	}
	return "", nil
}

// lenient is a receive target whose decoding error goes to the handler
// (err) instead of failing the RPC. It embeds the message to decode into,
// so that a server without requestCodec decodes it as before.
type lenient struct {
	proto.Message
	err error
}

// recvDecoded receives the next message of stream into m. It returns
// RecvMsg's error as is (io.EOF after a half-close; a request larger than
// the server accepts has then already ended the RPC with grpc-go's
// RESOURCE_EXHAUSTED), and INVALID_ARGUMENT with reason MALFORMED_REQUEST
// naming the field when the message does not decode. hint tells the client
// what to do.
func recvDecoded(stream grpc.ServerStream, m proto.Message, hint string) error {
	l := lenient{Message: m}
	if err := stream.RecvMsg(&l); err != nil {
		return err
	}
	if l.err != nil {
		return invalidf(ReasonMalformedRequest, "the request is not a valid %s: %v; %s; nothing of this request was applied",
			m.ProtoReflect().Descriptor().FullName(), l.err, hint)
	}
	return nil
}

// publishMessagesField is PublishRequest.messages' field number.
const publishMessagesField = 2

// keepMessages returns the wire form b of a PublishRequest with at most
// keep of its messages: b itself when it has no more (the common case,
// which costs one pass over the request's field tags and allocates
// nothing), else a copy without the messages beyond keep. A malformed b is
// returned as it is, for proto.Unmarshal to refuse.
func keepMessages(b []byte, keep int) []byte {
	n, rest := 0, b
	cut := -1 // offset of the first message beyond keep
	for len(rest) > 0 {
		num, typ, tagLen := protowire.ConsumeTag(rest)
		if tagLen < 0 {
			return b
		}
		valLen := protowire.ConsumeFieldValue(num, typ, rest[tagLen:])
		if valLen < 0 {
			return b
		}
		if num == publishMessagesField {
			if n++; n > keep && cut < 0 {
				cut = len(b) - len(rest)
			}
		}
		rest = rest[tagLen+valLen:]
	}
	if cut < 0 {
		return b
	}
	// Fields may come in any order: keep every other field after the cut.
	out := append(make([]byte, 0, cut+64), b[:cut]...)
	for rest = b[cut:]; len(rest) > 0; {
		num, typ, tagLen := protowire.ConsumeTag(rest)
		valLen := protowire.ConsumeFieldValue(num, typ, rest[tagLen:])
		if num != publishMessagesField {
			out = append(out, rest[:tagLen+valLen]...)
		}
		rest = rest[tagLen+valLen:]
	}
	return out
}
