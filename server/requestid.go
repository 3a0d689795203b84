package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// RequestIDHeader carries a call's request id: taken from the request when
// the client sends one, else made up; returned in the response header
// either way, and logged with the call.
const RequestIDHeader = "x-request-id"

type requestIDKey struct{}

// RequestID returns the call's request id, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

func withRequestID(ctx context.Context) context.Context {
	var id string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(RequestIDHeader); len(v) > 0 && len(v[0]) > 0 && len(v[0]) <= 128 {
			id = v[0]
		}
	}
	if id == "" {
		id = newRequestID()
	}
	_ = grpc.SetHeader(ctx, metadata.MD{RequestIDHeader: {id}})
	return context.WithValue(ctx, requestIDKey{}, id)
}

// Made-up request ids are a random per-process prefix and a counter: unique
// across instances without the cost of crypto/rand on every call.
var (
	requestIDPrefix = func() string {
		var b [4]byte
		_, _ = rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}()
	requestIDSeq atomic.Uint64
)

func newRequestID() string {
	var b [16]byte
	copy(b[:8], requestIDPrefix)
	n := requestIDSeq.Add(1)
	const digits = "0123456789abcdef"
	for i := 15; i >= 8; i-- {
		b[i] = digits[n&0xf]
		n >>= 4
	}
	return string(b[:])
}
