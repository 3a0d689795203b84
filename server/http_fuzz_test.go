package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/health"
	"google.golang.org/protobuf/encoding/protojson"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/kafkaio"
)

// recordingPublisher accepts every message and counts the calls.
type recordingPublisher struct {
	mu    sync.Mutex
	calls int
}

func (p *recordingPublisher) Publish(_ context.Context, _ string, msgs []kafkaio.Message) ([]kafkaio.Result, error) {
	if len(msgs) == 0 { // as kafkaio.Producer answers
		return nil, &kafkaio.Error{Kind: kafkaio.KindInvalid, Reason: kafkaio.ReasonNoMessages, Message: "no messages"}
	}
	p.mu.Lock()
	p.calls++
	p.mu.Unlock()
	return make([]kafkaio.Result, len(msgs)), nil
}

func (p *recordingPublisher) PublishAsync(context.Context, string, kafkaio.Message, func(kafkaio.Result)) error {
	return nil
}

func (p *recordingPublisher) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// FuzzHTTPPublishBody sends arbitrary bodies to POST
// /v1/topics/t/messages on the HTTP listener's handler: it never answers
// 5xx, and a body reaches Publish only when it decodes as a
// PublishRequest with at least one message. Run longer with `make fuzz`.
func FuzzHTTPPublishBody(f *testing.F) {
	pub := &recordingPublisher{}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	gs := NewGRPCServer(Config{Publisher: NewPublisherService(pub, nil), Health: health.NewServer(), Logger: quiet})
	f.Cleanup(gs.Stop)
	h, err := NewHTTPHandler(HTTPConfig{GRPC: gs, MaxRequestBytes: 64 << 10, Logger: quiet})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{`{"messages":[{"value":"eA=="}]}`, `{"messages":[{"value":`, `{"mesages":[]}`, `{"messages":[{"value":"%%%"}]}`,
		`{"messages":[{"key":"a2V5","value":"dg==","headers":[{"key":"h","value":""}],"partition":-1}]}`, `[]`, `null`, ``, `{"messages":[{"timestamp":"x"}]}`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		before := pub.count()
		req := httptest.NewRequest("POST", "/v1/topics/t/messages", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("body %q: %d %s", body, rec.Code, rec.Body)
		}
		if pub.count() == before {
			return
		}
		var pr kgatev1.PublishRequest
		if err := protojson.Unmarshal([]byte(body), &pr); err != nil || len(pr.Messages) == 0 {
			t.Fatalf("body %q reached Publish, but does not decode as a PublishRequest with messages (%v)", body, err)
		}
		if rec.Code != http.StatusOK {
			t.Fatalf("body %q was published, but answered %d %s", body, rec.Code, rec.Body)
		}
	})
}
