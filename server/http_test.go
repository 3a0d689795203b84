package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/gatewaytest"
	"github.com/kgate/kgate/internal/kafkatest"
	"github.com/kgate/kgate/kafkaio"
	"github.com/kgate/kgate/server"
)

// httpCall makes an HTTP request to the test gateway's HTTP listener and
// returns the status, the body and the headers.
func httpCall(t testing.TB, gw *gatewaytest.Gateway, method, path, body string, header map[string]string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t, 30*time.Second), method, gw.HTTPURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestHTTPPublishAndBadInput: curl's view of the HTTP listener. Publish is
// POST /v1/topics/{topic}/messages with JSON; a malformed body, an unknown
// field, a body over the size bound and an unknown route each get a clear
// HTTP status with a JSON message, and none writes anything.
func TestHTTPPublishAndBadInput(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	gw := gatewaytest.Start(t, gatewaytest.Options{Producer: kafkaio.ProducerConfig{Brokers: brokers, Logger: testLogger(t)}, Admin: true, HTTP: true, MaxRequestBytes: 64 << 10})
	topic := kafkatest.CreateTopic(t, brokers, "http-pub", 1)

	code, body, hdr := httpCall(t, gw, "POST", "/v1/topics/"+topic+"/messages", `{"messages":[{"key":"`+b64("k")+`","value":"`+b64(`{"total":42}`)+`"}]}`,
		map[string]string{"X-Request-Id": "curl-1"})
	if code != http.StatusOK {
		t.Fatalf("publish: %d %s", code, body)
	}
	var pr struct {
		Results []struct {
			Partition int32  `json:"partition"`
			Offset    string `json:"offset"`
			Timestamp string `json:"timestamp"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(body), &pr); err != nil || len(pr.Results) != 1 || pr.Results[0].Offset != "0" || pr.Results[0].Timestamp == "" {
		t.Fatalf("publish answered %s (%v); want one result at offset 0 with a timestamp", body, err)
	}
	if got := hdr.Get("X-Request-Id"); got != "curl-1" {
		t.Errorf("x-request-id %q, want the client's curl-1", got)
	}
	recs := kafkatest.ReadAll(t, brokers, topic)
	if len(recs) != 1 || string(recs[0].Value) != `{"total":42}` || string(recs[0].Key) != "k" {
		t.Fatalf("topic holds %v", recs)
	}
	// Connect unary, same call.
	code, body, _ = httpCall(t, gw, "POST", "/kgate.v1.Publisher/Publish", `{"topic":"`+topic+`","messages":[{"value":"`+b64("c")+`"}]}`, map[string]string{"Connect-Protocol-Version": "1"})
	if code != http.StatusOK || !strings.Contains(body, `"offset":"1"`) {
		t.Fatalf("Connect publish: %d %s", code, body)
	}

	for _, tc := range []struct {
		name, path, body string
		chunked          bool
		code             int
		want             string
	}{
		{"malformed JSON", "/v1/topics/" + topic + "/messages", `{"messages":[{"value":`, false, http.StatusBadRequest, "does not decode"},
		{"unknown field", "/v1/topics/" + topic + "/messages", `{"mesages":[]}`, false, http.StatusBadRequest, "mesages"},
		{"not base64", "/v1/topics/" + topic + "/messages", `{"messages":[{"value":"%%%"}]}`, false, http.StatusBadRequest, "bytes as base64"},
		{"no messages", "/v1/topics/" + topic + "/messages", `{"messages":[]}`, false, http.StatusBadRequest, "no messages"},
		{"reserved header", "/v1/topics/" + topic + "/messages", `{"messages":[{"value":"eA==","headers":[{"key":"kgate.dlq.topic","value":"eA=="}]}]}`, false, http.StatusBadRequest, "reserves"},
		{"too large", "/v1/topics/" + topic + "/messages", `{"messages":[{"value":"` + strings.Repeat("A", 200<<10) + `"}]}`, false, http.StatusRequestEntityTooLarge, "larger than the gateway takes"},
		{"too large, chunked", "/v1/topics/" + topic + "/messages", `{"messages":[{"value":"` + strings.Repeat("A", 200<<10) + `"}]}`, true, http.StatusRequestEntityTooLarge, "split the batch"},
		{"unknown route", "/v1/nothing", `{}`, false, http.StatusNotFound, "REST routes are the google.api.http options"},
		{"bad topic", "/v1/topics/bad%20topic/messages", `{"messages":[{"value":"eA=="}]}`, false, http.StatusBadRequest, "characters Kafka does not allow"},
	} {
		req, _ := http.NewRequestWithContext(testContext(t, 30*time.Second), "POST", gw.HTTPURL+tc.path, strings.NewReader(tc.body))
		if tc.chunked {
			req, _ = http.NewRequestWithContext(testContext(t, 30*time.Second), "POST", gw.HTTPURL+tc.path, io.MultiReader(strings.NewReader(tc.body)))
			req.ContentLength = -1
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.want) || !strings.Contains(string(b), `"message"`) {
			t.Errorf("%s: %d %s; want %d with a JSON message containing %q", tc.name, resp.StatusCode, b, tc.code, tc.want)
		}
	}
	if n := len(kafkatest.ReadAll(t, brokers, topic)); n != 2 {
		t.Errorf("the topic holds %d records after the refused requests, want the 2 published", n)
	}
	// A group's lag, as curl reads it.
	s := gatewaytest.OpenStream(t, gw.Sub, &kgatev1.SubscribeOpen{Topics: []string{topic}, Group: "http-lag", StartPosition: kgatev1.StartPosition_START_POSITION_EARLIEST})
	m := s.Next(20 * time.Second * timeoutScale)
	s.Ack(m.AckId)
	kafkatest.Eventually(t, 20*time.Second*timeoutScale, "lag 1 over HTTP", func() bool {
		code, body, _ = httpCall(t, gw, "GET", "/v1/groups/http-lag", "", nil)
		return code == http.StatusOK && strings.Contains(body, `"lag":"1"`) && strings.Contains(body, `"committedOffset":"1"`)
	})
	code, body, _ = httpCall(t, gw, "GET", "/v1/groups/no-such-group-"+kafkatest.Name("x"), "", nil)
	if code != http.StatusNotFound || !strings.Contains(body, `"code":5`) || !strings.Contains(body, "UNKNOWN_GROUP") {
		t.Errorf("unknown group: %d %s", code, body)
	}
}

// TestHTTPAndGRPCApplyTheSameSecurity: tokens, ACL, request ids, the call
// log and the gRPC metrics are the same on the gRPC port and the HTTP
// listener (REST and Connect).
func TestHTTPAndGRPCApplyTheSameSecurity(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "http-sec", 1)
	auth := mustAuth(t, server.AuthConfig{Tokens: map[string]string{"t-alice": "alice", "t-bob": "bob"},
		Rules: []server.Rule{{Principal: "alice", Action: server.ActionPublish, Topic: "http-sec-*"}}})
	var logs kafkatest.SyncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	gw := gatewaytest.Start(t, gatewaytest.Options{Producer: kafkaio.ProducerConfig{Brokers: brokers, Logger: log}, Auth: auth, HTTP: true})

	type outcome struct {
		code      codes.Code
		requestID string
	}
	body := `{"topic":"` + topic + `","messages":[{"value":"eA=="}]}`
	grpcCall := func(tok, rid string) outcome {
		ctx := testContext(t, 20*time.Second)
		if tok != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
		}
		ctx = metadata.AppendToOutgoingContext(ctx, "x-request-id", rid)
		var hdr metadata.MD
		_, err := gw.Pub.Publish(ctx, &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: []byte("x")}}}, grpc.Header(&hdr))
		id := ""
		if v := hdr.Get("x-request-id"); len(v) > 0 {
			id = v[0]
		}
		return outcome{status.Code(err), id}
	}
	httpVia := func(path, reqBody string, extra map[string]string) func(tok, rid string) outcome {
		return func(tok, rid string) outcome {
			h := map[string]string{"X-Request-Id": rid}
			for k, v := range extra {
				h[k] = v
			}
			if tok != "" {
				h["Authorization"] = "Bearer " + tok
			}
			code, b, hdr := httpCall(t, gw, "POST", path, reqBody, h)
			c := codes.OK
			if code != http.StatusOK {
				var e struct{ Code any }
				_ = json.Unmarshal([]byte(b), &e)
				switch v := e.Code.(type) {
				case float64: // REST: a google.rpc.Status
					c = codes.Code(v)
				case string: // Connect
					c = connectCode(v)
				}
			}
			return outcome{c, hdr.Get("X-Request-Id")}
		}
	}
	listeners := map[string]func(tok, rid string) outcome{
		"grpc":    grpcCall,
		"rest":    httpVia("/v1/topics/"+topic+"/messages", `{"messages":[{"value":"eA=="}]}`, nil),
		"connect": httpVia("/kgate.v1.Publisher/Publish", body, map[string]string{"Connect-Protocol-Version": "1"}),
	}
	for name, call := range listeners {
		for _, tc := range []struct {
			tok  string
			want codes.Code
		}{{"", codes.Unauthenticated}, {"t-unknown", codes.Unauthenticated}, {"t-bob", codes.PermissionDenied}, {"t-alice", codes.OK}} {
			rid := fmt.Sprintf("%s-%s", name, tc.tok)
			got := call(tc.tok, rid)
			if got.code != tc.want {
				t.Errorf("%s with token %q: %v, want %v", name, tc.tok, got.code, tc.want)
			}
			if tc.want != codes.Unauthenticated && got.requestID != rid {
				t.Errorf("%s with token %q: request id %q, want %q", name, tc.tok, got.requestID, rid)
			}
		}
	}
	// One call log line per call with its principal and request id, on
	// both listeners.
	for _, rid := range []string{"grpc-t-bob", "rest-t-bob", "connect-t-bob", "rest-t-alice", "connect-t-alice"} {
		want := map[string]string{"request_id": rid, "grpc.method": "Publish"}
		if strings.HasSuffix(rid, "bob") {
			want["principal"], want["grpc.code"] = "bob", "PermissionDenied"
		} else {
			want["principal"], want["grpc.code"] = "alice", "OK"
		}
		if !logLine(logs.String(), "finished call", want) {
			t.Errorf("no call log line with %v", want)
		}
	}
	// gRPC metrics count the HTTP calls too: three PermissionDenied, by
	// gRPC, REST and Connect.
	if n := handled(t, gw.Metrics, "Publish", "PermissionDenied"); n != 3 {
		t.Errorf("grpc_server_handled_total{Publish,PermissionDenied} = %v, want 3 (one per listener and protocol)", n)
	}
}

// connectCode maps a Connect error code name to the gRPC code.
func connectCode(name string) codes.Code {
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		if strings.EqualFold(strings.ReplaceAll(c.String(), "_", ""), strings.ReplaceAll(name, "_", "")) {
			return c
		}
	}
	if name == "canceled" {
		return codes.Canceled
	}
	return codes.Unknown
}

// logLine reports whether a JSON log line with msg has every attribute of
// want.
func logLine(logs, msg string, want map[string]string) bool {
	for _, line := range strings.Split(logs, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil || m["msg"] != msg {
			continue
		}
		ok := true
		for k, v := range want {
			ok = ok && fmt.Sprint(m[k]) == v
		}
		if ok {
			return true
		}
	}
	return false
}

// handled is grpc_server_handled_total for method and code.
func handled(t testing.TB, m *server.Metrics, method, code string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "grpc_server_handled_total" {
			continue
		}
		for _, mm := range mf.GetMetric() {
			if label(mm, "grpc_method") == method && label(mm, "grpc_code") == code {
				n += mm.GetCounter().GetValue()
			}
		}
	}
	return n
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// TestTailAndAckOverHTTP1: a Connect client over HTTP/1.1 tails a topic
// (server streaming) and acks through the unary Ack's REST route; the
// group's commit follows. Ack for an unknown tail or another principal's
// is refused.
func TestTailAndAckOverHTTP1(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "http-tail", 1)
	auth := mustAuth(t, server.AuthConfig{Tokens: map[string]string{"t-alice": "alice", "t-bob": "bob"}})
	gw := gatewaytest.Start(t, gatewaytest.Options{Producer: kafkaio.ProducerConfig{Brokers: brokers, Logger: testLogger(t)}, Auth: auth, HTTP: true})
	ctx := metadata.AppendToOutgoingContext(testContext(t, 60*time.Second), "authorization", "Bearer t-alice")
	if _, err := gw.Pub.Publish(ctx, &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: []byte("a")}, {Value: []byte("b")}}}); err != nil {
		t.Fatal(err)
	}
	h1 := &http.Client{Transport: &http.Transport{}} // HTTP/1.1 only: no TLS, no h2c
	t.Cleanup(h1.CloseIdleConnections)
	tail := connect.NewClient[kgatev1.TailRequest, kgatev1.TailResponse](h1, gw.HTTPURL+"/kgate.v1.Subscriber/Tail", connect.WithProtoJSON())
	req := connect.NewRequest(&kgatev1.TailRequest{Open: &kgatev1.SubscribeOpen{Topics: []string{topic}, Group: "alice.tail", StartPosition: kgatev1.StartPosition_START_POSITION_EARLIEST}})
	req.Header().Set("Authorization", "Bearer t-alice")
	tctx, cancel := context.WithCancel(testContext(t, 60*time.Second))
	defer cancel()
	st, err := tail.CallServerStream(tctx, req)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var id string
	var got []*kgatev1.ReceivedMessage
	for len(got) < 2 && st.Receive() {
		switch r := st.Msg().GetResponse().(type) {
		case *kgatev1.TailResponse_Opened:
			id = r.Opened.GetTail()
		case *kgatev1.TailResponse_Message:
			got = append(got, r.Message)
		}
	}
	if err := st.Err(); err != nil || id == "" || len(got) != 2 {
		t.Fatalf("tail: id %q, %d records, err %v", id, len(got), err)
	}
	ack := func(tok, tail string, ids ...string) (int, string) {
		b, _ := json.Marshal(map[string]any{"ackIds": ids})
		code, body, _ := httpCall(t, gw, "POST", "/v1/tails/"+tail+":ack", string(b), map[string]string{"Authorization": "Bearer " + tok})
		return code, body
	}
	if code, body := ack("t-bob", id, got[0].AckId); code != http.StatusForbidden || !strings.Contains(body, "another principal") {
		t.Errorf("bob acking alice's tail: %d %s", code, body)
	}
	if code, body := ack("t-alice", "0000-nothing", got[0].AckId); code != http.StatusNotFound || !strings.Contains(body, "another instance") {
		t.Errorf("ack of an unknown tail: %d %s", code, body)
	}
	if code, body := ack("t-alice", id, got[0].AckId, got[1].AckId); code != http.StatusOK {
		t.Fatalf("ack: %d %s", code, body)
	}
	kafkatest.Eventually(t, 20*time.Second*timeoutScale, "commit 2 after the acks", func() bool { return committed(t, brokers, "alice.tail", topic)[0] == 2 })
	cancel()
	st.Close()
	kafkatest.Eventually(t, 10*time.Second*timeoutScale, "the tail forgotten once it ended", func() bool {
		code, _ := ack("t-alice", id, got[0].AckId)
		return code == http.StatusNotFound
	})
}

// TestTailOverGRPC: Tail and Ack on the gRPC port, with auto_ack as the
// at-most-once variant (no Ack needed).
func TestTailOverGRPC(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "grpc-tail", 1)
	gw := gatewaytest.Start(t, gatewaytest.Options{Producer: kafkaio.ProducerConfig{Brokers: brokers, Logger: testLogger(t)}})
	ctx := testContext(t, 60*time.Second)
	if _, err := gw.Pub.Publish(ctx, &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: []byte("a")}}}); err != nil {
		t.Fatal(err)
	}
	for _, autoAck := range []bool{false, true} {
		group := kafkatest.Name("tail")
		tctx, cancel := context.WithCancel(ctx)
		st, err := gw.Sub.Tail(tctx, &kgatev1.TailRequest{Open: &kgatev1.SubscribeOpen{Topics: []string{topic}, Group: group, StartPosition: kgatev1.StartPosition_START_POSITION_EARLIEST, AutoAck: autoAck}})
		if err != nil {
			t.Fatal(err)
		}
		first, err := st.Recv()
		if err != nil || first.GetOpened().GetTail() == "" || first.GetOpened().GetAckDeadline().AsDuration() != 30*time.Second {
			t.Fatalf("first response %v, %v; want opened with an id and the 30 s deadline", first, err)
		}
		var m *kgatev1.ReceivedMessage
		for m == nil {
			r, err := st.Recv()
			if err != nil {
				t.Fatal(err)
			}
			m = r.GetMessage()
		}
		if !autoAck {
			if _, err := gw.Sub.Ack(ctx, &kgatev1.AckRequest{Tail: first.GetOpened().GetTail(), AckIds: []string{m.AckId}}); err != nil {
				t.Fatal(err)
			}
		}
		kafkatest.Eventually(t, 20*time.Second*timeoutScale, "commit 1", func() bool { return committed(t, brokers, group, topic)[0] == 1 })
		cancel()
	}
	_, err := gw.Sub.Tail(ctx, &kgatev1.TailRequest{})
	if err == nil {
		st, _ := gw.Sub.Tail(ctx, &kgatev1.TailRequest{})
		_, err = st.Recv()
	}
	wantCode(t, err, codes.InvalidArgument, "INVALID_SUBSCRIPTION", "needs `open`")
	_, err = gw.Sub.Ack(ctx, &kgatev1.AckRequest{})
	wantCode(t, err, codes.InvalidArgument, "", "tail is empty")
	_, err = gw.Sub.Ack(ctx, &kgatev1.AckRequest{Tail: "x", AckIds: make([]string, 10001)})
	wantCode(t, err, codes.InvalidArgument, server.ReasonTooManyAckIDs, "at most 10000")
}

// TestGRPCWebAndGRPCOnTheHTTPListener: a gRPC-Web client (the framing a
// browser's grpc-web library sends) and a grpc-go client over h2c reach
// the same Publish on the HTTP listener, with the same authentication.
func TestGRPCWebAndGRPCOnTheHTTPListener(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "grpcweb", 1)
	auth := mustAuth(t, server.AuthConfig{Tokens: map[string]string{"t-alice": "alice"}})
	gw := gatewaytest.Start(t, gatewaytest.Options{Producer: kafkaio.ProducerConfig{Brokers: brokers, Logger: testLogger(t)}, Auth: auth, HTTP: true})
	msg, err := proto.Marshal(&kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: []byte("web")}}})
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(frame[1:], uint32(len(msg)))
	frame = append(frame, msg...)
	grpcWeb := func(tok string) (data []byte, trailer string) {
		req, _ := http.NewRequestWithContext(testContext(t, 30*time.Second), "POST", gw.HTTPURL+"/kgate.v1.Publisher/Publish", bytes.NewReader(frame))
		req.Header.Set("Content-Type", "application/grpc-web+proto")
		req.Header.Set("X-Grpc-Web", "1")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		trailer = resp.Header.Get("Grpc-Status") // a trailers-only answer
		for len(body) >= 5 {
			n := binary.BigEndian.Uint32(body[1:5])
			if int(n) > len(body)-5 {
				t.Fatalf("truncated gRPC-Web frame: %q", body)
			}
			if body[0]&0x80 != 0 {
				trailer += string(body[5 : 5+n])
			} else {
				data = body[5 : 5+n]
			}
			body = body[5+n:]
		}
		return data, trailer
	}
	data, trailer := grpcWeb("t-alice")
	var pr kgatev1.PublishResponse
	if err := proto.Unmarshal(data, &pr); err != nil || len(pr.Results) != 1 || !strings.Contains(strings.ToLower(trailer), "grpc-status: 0") {
		t.Fatalf("gRPC-Web publish: %v (%v), trailer %q", &pr, err, trailer)
	}
	if _, trailer := grpcWeb(""); !strings.Contains(trailer, "16") {
		t.Errorf("gRPC-Web without a token: trailer %q, want grpc-status 16 (UNAUTHENTICATED)", trailer)
	}
	// grpc-go over h2c, to the HTTP listener.
	conn, err := grpc.NewClient(gw.HTTPAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(testContext(t, 30*time.Second), "authorization", "Bearer t-alice")
	if _, err := kgatev1.NewPublisherClient(conn).Publish(ctx, &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: []byte("h2c")}}}); err != nil {
		t.Fatalf("gRPC over h2c to the HTTP listener: %v", err)
	}
	_, err = kgatev1.NewPublisherClient(conn).Publish(testContext(t, 30*time.Second), &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: []byte("x")}}})
	wantCode(t, err, codes.Unauthenticated, server.ReasonNoIdentity, "no identity")
	if n := len(kafkatest.ReadAll(t, brokers, topic)); n != 2 {
		t.Errorf("the topic holds %d records, want the 2 allowed", n)
	}
}
