package server

import (
	"fmt"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// ReasonMalformedRequest is the ErrorInfo reason of a stream request that
// does not decode as the API's message, for example because a string field
// is not valid UTF-8.
const ReasonMalformedRequest = "MALFORMED_REQUEST"

// requestCodec is the gRPC server's codec: grpc-go's proto codec, except
// that receiving into a *lenient never fails. When a stream's RecvMsg fails
// to decode, grpc-go writes INTERNAL to the client at once, whatever the
// handler returns afterwards; a string field that is not valid UTF-8 (an
// ack id a client built from bytes, say) fails proto3 decoding. Receiving
// into a *lenient leaves the decoding error to the handler, which answers
// INVALID_ARGUMENT saying what was wrong.
type requestCodec struct{ encoding.CodecV2 }

// codecOption makes the server use requestCodec.
func codecOption() grpc.ServerOption {
	return grpc.ForceServerCodecV2(requestCodec{encoding.GetCodecV2(protoenc.Name)})
}

func (c requestCodec) Unmarshal(data mem.BufferSlice, v any) error {
	l, ok := v.(*lenient)
	if !ok {
		return c.CodecV2.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	if err := proto.Unmarshal(buf.ReadOnlyData(), l.Message); err != nil {
		l.err = err
		if f := badUTF8Field(buf.ReadOnlyData(), l.ProtoReflect().Descriptor()); f != "" {
			l.err = fmt.Errorf("%s is not valid UTF-8", f)
		}
	}
	return nil
}

// badUTF8Field returns the path of the first string field of b, the
// encoding of a message md, that is not valid UTF-8 (such as
// "ack.ack_ids"), or "" when there is none or b does not parse.
func badUTF8Field(b []byte, md protoreflect.MessageDescriptor) string {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		var v []byte
		if typ == protowire.BytesType {
			v, n = protowire.ConsumeBytes(b)
		} else {
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return ""
		}
		b = b[n:]
		f := md.Fields().ByNumber(num)
		if f == nil || typ != protowire.BytesType {
			continue
		}
		switch f.Kind() {
		case protoreflect.StringKind:
			if !utf8.Valid(v) {
				return string(f.Name())
			}
		case protoreflect.MessageKind:
			if p := badUTF8Field(v, f.Message()); p != "" {
				return string(f.Name()) + "." + p
			}
		}
	}
	return ""
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
