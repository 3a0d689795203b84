package server

import (
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
)

// DefaultMaxPublishMessages is the default bound on the messages of one
// Publish request.
const DefaultMaxPublishMessages = 10_000

// requestCodec is the server's codec: gRPC's proto codec, except that a
// PublishRequest of more than maxMessages messages is decoded with only
// its first maxMessages+1 messages. Decoding is the one cost a call pays
// before its handler can refuse it, and an empty message takes 2 bytes on
// the wire but about 100 in memory: without this, one 4 MiB request of two
// million empty messages cost 150 MB to decode. The handler then refuses
// the request with INVALID_ARGUMENT (TOO_MANY_MESSAGES), so a request cut
// here is never published.
type requestCodec struct {
	maxMessages int
	proto       encoding.CodecV2
}

func newRequestCodec(maxMessages int) *requestCodec {
	return &requestCodec{maxMessages: maxMessages, proto: encoding.GetCodecV2(protocodec.Name)}
}

func (c *requestCodec) Name() string { return protocodec.Name }

func (c *requestCodec) Marshal(v any) (mem.BufferSlice, error) { return c.proto.Marshal(v) }

func (c *requestCodec) Unmarshal(data mem.BufferSlice, v any) error {
	req, ok := v.(*kgatev1.PublishRequest)
	if !ok {
		return c.proto.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return proto.Unmarshal(keepMessages(buf.ReadOnlyData(), c.maxMessages+1), req)
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
