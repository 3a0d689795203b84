package gatewaytest

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// RawCodec sends and receives messages as the bytes they are on the wire,
// so that a test can send a request it encoded itself (with
// grpc.ForceCodecV2(gatewaytest.RawCodec{})): a []byte goes out as it is,
// and a response is read into a *[]byte.
type RawCodec struct{}

var _ encoding.CodecV2 = RawCodec{}

func (RawCodec) Name() string { return "proto" }

func (RawCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, ok := v.([]byte)
	if !ok {
		return nil, errors.New("gatewaytest.RawCodec sends []byte only")
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (RawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return errors.New("gatewaytest.RawCodec receives into *[]byte only")
	}
	*p = data.Materialize()
	return nil
}

// EmptyMessages is the wire form of a kgate.v1.PublishRequest to topic with
// n empty messages: 2 bytes each on the wire, and a hundred or so each once
// decoded.
func EmptyMessages(topic string, n int) []byte {
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendString(b, topic)
	b = append(b, bytes.Repeat([]byte{2<<3 | byte(protowire.BytesType), 0}, n)...)
	return b
}

// H2Conn is a raw HTTP/2 client connection, for requests no gRPC client
// would send.
type H2Conn struct {
	Conn   net.Conn
	Framer *http2.Framer
	nextID uint32
}

// DialH2 opens a raw HTTP/2 connection to addr (plaintext); it is closed
// when the test ends.
func DialH2(t testing.TB, addr string) *H2Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return &H2Conn{Conn: c, Framer: fr, nextID: 1}
}

// WriteCall opens a gRPC call of method (a full method name) with extra
// headers, in a HEADERS frame and as many CONTINUATION frames of at most
// 16 KiB as its header block needs. It returns the stream id, or an error
// when the server closed the connection meanwhile.
func (h *H2Conn) WriteCall(authority, method string, extra ...hpack.HeaderField) (uint32, error) {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range append([]hpack.HeaderField{{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"},
		{Name: ":path", Value: method}, {Name: ":authority", Value: authority}, {Name: "content-type", Value: "application/grpc"},
		{Name: "te", Value: "trailers"}}, extra...) {
		_ = enc.WriteField(f)
	}
	id := h.nextID
	h.nextID += 2
	block := hb.Bytes()
	const frag = 16 << 10
	first := block[:min(frag, len(block))]
	if err := h.Framer.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndHeaders: len(block) <= frag}); err != nil {
		return id, err
	}
	for rest := block[len(first):]; len(rest) > 0; {
		n := min(frag, len(rest))
		if err := h.Framer.WriteContinuation(id, n == len(rest), rest[:n]); err != nil {
			return id, err
		}
		rest = rest[n:]
	}
	return id, nil
}

// Outcome is how the server answered a raw connection's calls.
type Outcome struct {
	// Resets maps stream ids to the RST_STREAM codes the server sent.
	Resets map[uint32]http2.ErrCode
	// GoAway is the server's GOAWAY frame, if any.
	GoAway *http2.GoAwayFrame
	// Closed says whether the server closed the connection.
	Closed bool
	// Answered counts the streams the server sent headers for.
	Answered int
}

// ReadUntilClosed reads frames until the server closes the connection or
// timeout passes.
func (h *H2Conn) ReadUntilClosed(timeout time.Duration) Outcome {
	o := Outcome{Resets: map[uint32]http2.ErrCode{}}
	_ = h.Conn.SetReadDeadline(time.Now().Add(timeout))
	for {
		f, err := h.Framer.ReadFrame()
		if err != nil {
			var ne net.Error
			o.Closed = !(errors.As(err, &ne) && ne.Timeout())
			return o
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = h.Framer.WriteSettingsAck()
			}
		case *http2.GoAwayFrame:
			o.GoAway = f
		case *http2.RSTStreamFrame:
			o.Resets[f.StreamID] = f.ErrCode
		case *http2.HeadersFrame:
			o.Answered++
		}
	}
}
