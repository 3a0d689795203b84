package server_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/kgate/kgate/server"
)

// TestCallLog checks the one line logged per finished call: failed calls
// at info with their code, message and request id; successful calls only
// at debug; never the payload.
func TestCallLog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	intercept := server.CallLogUnary(log)
	info := &grpc.UnaryServerInfo{FullMethod: "/kgate.v1.Publisher/Publish"}
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("x-request-id", "trace-42"))

	var seenID string
	_, err := intercept(ctx, "secret-payload", info, func(ctx context.Context, _ any) (any, error) {
		seenID = server.RequestID(ctx)
		return nil, status.Error(codes.InvalidArgument, "topic is empty: name the topic to use")
	})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("interceptor returned %v, want the handler's error", err)
	}
	if seenID != "trace-42" {
		t.Errorf("handler saw request id %q, want the client's trace-42", seenID)
	}
	line := buf.String()
	for _, want := range []string{"level=INFO", `msg="finished call"`, "grpc.service=kgate.v1.Publisher", "grpc.method=Publish",
		"grpc.code=InvalidArgument", "request_id=trace-42", `grpc.error="topic is empty: name the topic to use"`} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %q lacks %s", line, want)
		}
	}
	if strings.Contains(line, "secret-payload") {
		t.Errorf("log line %q has the request payload", line)
	}

	buf.Reset()
	if _, err := intercept(ctx, "x", info, func(context.Context, any) (any, error) { return "ok", nil }); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Errorf("a successful call logged %q at info level; want it at debug only", buf.String())
	}

	buf.Reset()
	_, _ = intercept(ctx, "x", info, func(context.Context, any) (any, error) {
		return nil, status.Error(codes.Internal, "boom")
	})
	if !strings.Contains(buf.String(), "level=ERROR") {
		t.Errorf("an INTERNAL call logged %q; want level ERROR", buf.String())
	}
}

// A panicking handler is answered with a generic INTERNAL, and its value
// and stack go to the log only.
func TestCallRecoversPanics(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	intercept := server.CallLogUnary(log)
	info := &grpc.UnaryServerInfo{FullMethod: "/kgate.v1.Publisher/Publish"}
	resp, err := intercept(context.Background(), "x", info, func(context.Context, any) (any, error) {
		panic("secret internal state")
	})
	if resp != nil || status.Code(err) != codes.Internal {
		t.Fatalf("interceptor returned %v, %v; want INTERNAL", resp, err)
	}
	if strings.Contains(status.Convert(err).Message(), "secret") {
		t.Errorf("the client's error %q shows the panic", err)
	}
	out := buf.String()
	for _, want := range []string{"panic in a gRPC handler", "secret internal state", "stack=", "grpc.code=Internal"} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %s", out, want)
		}
	}
}
