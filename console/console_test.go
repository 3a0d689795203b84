package console_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/kgate/kgate/console"
	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/gatewaytest"
	"github.com/kgate/kgate/internal/kafkatest"
	"github.com/kgate/kgate/kafkaio"
	"github.com/kgate/kgate/server"
)

// apiRecorder stands for the API handler: it answers 299 and remembers the
// paths it saw, so a test can tell what the console passed on.
type apiRecorder struct{ paths []string }

func (a *apiRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.paths = append(a.paths, r.Method+" "+r.URL.Path)
	w.WriteHeader(299)
}

func serve(h http.Handler, method, target string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// webFiles lists the console's files as the repository holds them.
func webFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	err := fs.WalkDir(os.DirFS("web"), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return err
	})
	if err != nil || len(out) < 5 {
		t.Fatalf("console files: %v, %v", out, err)
	}
	return out
}

// TestFilesAndHeaders: "/" and every file under /console/ with its content
// type, the security headers (a CSP that forbids inline script and
// framing), revalidation by ETag; HEAD; other methods refused.
func TestFilesAndHeaders(t *testing.T) {
	api := &apiRecorder{}
	h := console.Handler(api)
	want := map[string]string{".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
		".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
	targets := []string{"/"}
	for _, f := range webFiles(t) {
		targets = append(targets, console.Prefix+f)
	}
	for _, target := range targets {
		w := serve(h, "GET", target)
		ext := path.Ext(target)
		if target == "/" {
			ext = ".html"
		}
		hd := w.Header()
		if w.Code != http.StatusOK || hd.Get("Content-Type") != want[ext] || w.Body.Len() == 0 {
			t.Errorf("GET %s: %d %q, %d bytes; want 200 %q", target, w.Code, hd.Get("Content-Type"), w.Body.Len(), want[ext])
		}
		csp := hd.Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'"} {
			if !strings.Contains(csp, d) {
				t.Errorf("GET %s: CSP %q lacks %q", target, csp, d)
			}
		}
		if strings.Contains(csp, "unsafe-") {
			t.Errorf("GET %s: CSP %q allows unsafe sources", target, csp)
		}
		for k, v := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache", "Referrer-Policy": "no-referrer"} {
			if hd.Get(k) != v {
				t.Errorf("GET %s: %s %q, want %q", target, k, hd.Get(k), v)
			}
		}
		etag := hd.Get("ETag")
		if len(etag) < 10 {
			t.Fatalf("GET %s: ETag %q", target, etag)
		}
		if w := serve(h, "GET", target, "If-None-Match", etag); w.Code != http.StatusNotModified || w.Body.Len() != 0 {
			t.Errorf("GET %s If-None-Match its ETag: %d with %d bytes, want 304 and none", target, w.Code, w.Body.Len())
		}
		if w := serve(h, "GET", target, "If-None-Match", `"other"`); w.Code != http.StatusOK {
			t.Errorf("GET %s If-None-Match another ETag: %d, want 200", target, w.Code)
		}
		if w := serve(h, "HEAD", target); w.Code != http.StatusOK || w.Body.Len() != 0 || w.Header().Get("Content-Length") == "" {
			t.Errorf("HEAD %s: %d, %d bytes, Content-Length %q", target, w.Code, w.Body.Len(), w.Header().Get("Content-Length"))
		}
	}
	if w := serve(h, "POST", console.Prefix+"app.js"); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST a console file: %d Allow %q, want 405 GET, HEAD", w.Code, w.Header().Get("Allow"))
	}
	if len(api.paths) != 0 {
		t.Errorf("the console passed its own paths to the API: %v", api.paths)
	}
}

// TestUnknownPathsAndAPIRoutes: unknown console files are 404 (not the
// index, not the API), and everything else reaches the API untouched, so
// no API route is shadowed.
func TestUnknownPathsAndAPIRoutes(t *testing.T) {
	api := &apiRecorder{}
	h := console.Handler(api)
	for _, target := range []string{console.Prefix, console.Prefix + "nope.js", console.Prefix + "../go.mod", console.Prefix + "pages/", "/console/web/app.js"} {
		if w := serve(h, "GET", target); w.Code != http.StatusNotFound || strings.Contains(w.Body.String(), "<html") {
			t.Errorf("GET %s: %d %q, want 404 without the page", target, w.Code, w.Body.String())
		}
	}
	if len(api.paths) != 0 {
		t.Errorf("unknown console files went to the API: %v", api.paths)
	}
	for _, c := range []struct{ method, target string }{
		{"GET", "/v1/gateway"}, {"GET", "/v1/groups/console"}, {"POST", "/v1/topics/console/messages"},
		{"POST", "/kgate.v1.Admin/ListGroups"}, {"POST", "/kgate.v1.Subscriber/Tail"}, {"GET", "/favicon.ico"},
		{"GET", "/index.html"}, {"GET", "/consoles"}, {"POST", "/"}, {"DELETE", "/"},
	} {
		api.paths = nil
		if w := serve(h, c.method, c.target); w.Code != 299 || len(api.paths) != 1 || api.paths[0] != c.method+" "+c.target {
			t.Errorf("%s %s: %d, API saw %v; want it passed to the API", c.method, c.target, w.Code, api.paths)
		}
	}
}

// TestPagesKeepToTheCSP: the HTML has no inline script, style or event
// handler (the CSP would block them in a browser), the scripts build no
// code from strings, and every module import resolves to a served file.
func TestPagesKeepToTheCSP(t *testing.T) {
	h := console.Handler(&apiRecorder{})
	index := serve(h, "GET", "/").Body.String()
	for _, re := range []string{`<script(?:\s[^>]*)?>[^<]+</script>`, `(?i)\son[a-z]+\s*=`, `(?i)\sstyle\s*=`, `<style`} {
		if m := regexp.MustCompile(re).FindString(index); m != "" {
			t.Errorf("index.html has %q, which the CSP forbids", m)
		}
	}
	imports := regexp.MustCompile(`(?m)^\s*import\s[^"]*"(\.[^"]+)"|from\s+"(\.[^"]+)"`)
	for _, f := range webFiles(t) {
		if path.Ext(f) != ".js" {
			continue
		}
		src := serve(h, "GET", console.Prefix+f).Body.String()
		for _, bad := range []string{"eval(", "new Function", "innerHTML", `setAttribute("style"`, "localStorage"} {
			if strings.Contains(src, bad) {
				t.Errorf("%s uses %s", f, bad)
			}
		}
		for _, m := range imports.FindAllStringSubmatch(src, -1) {
			rel := m[1] + m[2]
			target := console.Prefix + path.Join(path.Dir(f), rel)
			if w := serve(h, "GET", target); w.Code != http.StatusOK {
				t.Errorf("%s imports %s: %s is %d", f, rel, target, w.Code)
			}
		}
	}
}

// TestConsoleOnTheHTTPListener: the console is served on the gateway's
// HTTP listener, plaintext (HTTP/1.1) and with TLS (HTTP/1.1 and HTTP/2),
// without a token although every API call needs one; API routes still
// answer as the API does, and a path of neither is the API's 404.
func TestConsoleOnTheHTTPListener(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	auth, err := server.NewAuth(server.AuthConfig{Tokens: map[string]string{"t-ops": "ops"}})
	if err != nil {
		t.Fatal(err)
	}
	ca := gatewaytest.NewCA(t)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "gateway", true)}, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12}
	for _, tc := range []struct {
		name string
		tls  *tls.Config
		h2   bool
	}{{"plaintext", nil, false}, {"TLS HTTP/1.1", serverTLS, false}, {"TLS HTTP/2", serverTLS, true}} {
		t.Run(tc.name, func(t *testing.T) {
			gw := gatewaytest.Start(t, gatewaytest.Options{Producer: kafkaio.ProducerConfig{Brokers: brokers, Logger: quiet()}, Auth: auth, Admin: true, HTTP: true, HTTPTLS: tc.tls})
			tr := &http.Transport{ForceAttemptHTTP2: tc.h2, TLSClientConfig: &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}}
			if !tc.h2 {
				tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
			}
			t.Cleanup(tr.CloseIdleConnections)
			client := &http.Client{Transport: tr, Timeout: 20 * time.Second * gatewaytest.TimeoutScale}
			get := func(p, token string) (*http.Response, string) {
				t.Helper()
				req, _ := http.NewRequest("GET", gw.HTTPURL+p, nil)
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("GET %s: %v", p, err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp, string(b)
			}
			wantProto := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[tc.h2]
			resp, body := get("/", "")
			if resp.StatusCode != 200 || resp.Proto != wantProto || !strings.Contains(body, `src="/console/app.js"`) || resp.Header.Get("Content-Security-Policy") == "" {
				t.Fatalf("GET / over %s: %d %s %q", resp.Proto, resp.StatusCode, resp.Header.Get("Content-Security-Policy"), body)
			}
			if resp, _ := get("/console/app.js", ""); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
				t.Errorf("GET /console/app.js: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if resp, body := get("/v1/gateway", ""); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "NO_IDENTITY") {
				t.Errorf("GET /v1/gateway without a token: %d %s, want 401 NO_IDENTITY", resp.StatusCode, body)
			}
			resp, body = get("/v1/gateway", "t-ops")
			var g struct {
				Caller struct {
					Principal  string
					Identified bool
					MayChange  bool
				}
			}
			if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &g) != nil || g.Caller.Principal != "ops" || !g.Caller.Identified || !g.Caller.MayChange {
				t.Errorf("GET /v1/gateway as ops: %d %s, want the caller ops, identified, may change", resp.StatusCode, body)
			}
			if resp, body := get("/v1/nope", "t-ops"); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "no route") {
				t.Errorf("GET /v1/nope: %d %s, want the API's 404", resp.StatusCode, body)
			}
		})
	}
}

// TestNoPayloadWithoutSubscribe: over the HTTP listener, as the console
// calls it, a principal that may administer but not subscribe sees a
// dead-letter topic's existence but none of its records (peek), and cannot
// tail a topic; one with subscribe can.
func TestNoPayloadWithoutSubscribe(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "console-perm", 1)
	dlq := kafkatest.CreateTopic(t, brokers, "console-perm-dlq", 1)
	rules, err := server.ParseRules(strings.NewReader("ops admin * *\nops subscribe * *\nops publish *\nviewer admin * *\n"))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := server.NewAuth(server.AuthConfig{Tokens: map[string]string{"t-ops": "ops", "t-viewer": "viewer"}, Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	gw := gatewaytest.Start(t, gatewaytest.Options{Producer: kafkaio.ProducerConfig{Brokers: brokers, Logger: quiet()}, Auth: auth, Admin: true, HTTP: true})
	client := &http.Client{Timeout: 30 * time.Second * gatewaytest.TimeoutScale}
	t.Cleanup(client.CloseIdleConnections)
	rest := func(method, p, token, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, gw.HTTPURL+p, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := rest("POST", "/v1/topics/"+topic+"/messages", "t-ops", `{"messages":[{"value":"c2VjcmV0"}]}`); code != 200 {
		t.Fatalf("publish: %d %s", code, body)
	}
	// A dead letter: ops's stream nacks the record at its last attempt.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second*gatewaytest.TimeoutScale)
	defer cancel()
	stream, err := gw.Sub.Subscribe(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer t-ops"))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Open{Open: &kgatev1.SubscribeOpen{Topics: []string{topic}, Group: "ops.dl",
		StartPosition: kgatev1.StartPosition_START_POSITION_EARLIEST, MaxDeliveryAttempts: 1, DeadLetterTopic: dlq}}}); err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if m := resp.GetMessage(); m != nil {
			if err := stream.Send(&kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Nack{Nack: &kgatev1.SubscribeNack{AckIds: []string{m.AckId}, Delay: durationpb.New(0)}}}); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	peek := "/v1/topics/" + dlq + "/deadLetters"
	kafkatest.Eventually(t, 20*time.Second*gatewaytest.TimeoutScale, "ops peeks at the dead letter", func() bool {
		code, body := rest("GET", peek, "t-ops", "")
		return code == 200 && strings.Contains(body, `"value":"c2VjcmV0"`)
	})
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if code, body := rest("GET", peek, "t-viewer", ""); code != http.StatusForbidden || !strings.Contains(body, "may not read the records") || strings.Contains(body, "c2VjcmV0") {
		t.Errorf("viewer's peek: %d %s, want 403 and no record", code, body)
	}
	if code, body := rest("POST", peek+":redrive", "t-viewer", `{"dryRun":true}`); code != http.StatusForbidden || strings.Contains(body, "c2VjcmV0") {
		t.Errorf("viewer's dry-run redrive: %d %s, want 403", code, body)
	}
	open := func(who string) map[string]any {
		return map[string]any{"topics": []string{topic}, "group": who + ".console.t1", "startPosition": "START_POSITION_EARLIEST", "autoAck": true}
	}
	if n, code, msg := tail(t, client, gw.HTTPURL, "t-viewer", open("viewer")); n != 0 || code != "permission_denied" || !strings.Contains(msg, "may not subscribe") {
		t.Errorf("viewer's Tail: %d records, %s %q; want none, permission_denied", n, code, msg)
	}
	if n, code, msg := tail(t, client, gw.HTTPURL, "t-ops", open("ops")); n != 1 {
		t.Errorf("ops's Tail: %d records, %s %q; want the record", n, code, msg)
	}
	code, body := rest("GET", "/v1/gateway", "t-viewer", "")
	var g struct{ Caller map[string]any }
	if code != 200 || json.Unmarshal([]byte(body), &g) != nil ||
		g.Caller["principal"] != "viewer" || g.Caller["identified"] != true || g.Caller["acl"] != true || g.Caller["mayChange"] != true {
		t.Errorf("viewer's DescribeGateway: %d %s; want the caller viewer, identified, with an ACL that names it", code, body)
	}
}

// tail opens kgate.v1.Subscriber/Tail over the Connect protocol, as the
// console's connect.js does, and reads it until its first record (records
// 1) or its end-stream message (records 0, with its error's Connect code
// and message, "" for none).
func tail(t *testing.T, client *http.Client, url, token string, open map[string]any) (records int, errCode, errMsg string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"open": open})
	var env bytes.Buffer
	env.WriteByte(0)
	_ = binary.Write(&env, binary.BigEndian, uint32(len(body)))
	env.Write(body)
	req, _ := http.NewRequest("POST", url+"/kgate.v1.Subscriber/Tail", &env)
	req.Header.Set("Content-Type", "application/connect+json")
	req.Header.Set("Connect-Protocol-Version", "1")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("Tail: HTTP %d %s", resp.StatusCode, b)
	}
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(resp.Body, hdr[:]); err != nil {
			t.Fatalf("Tail: reading an envelope: %v", err)
		}
		msg := make([]byte, binary.BigEndian.Uint32(hdr[1:]))
		if _, err := io.ReadFull(resp.Body, msg); err != nil {
			t.Fatalf("Tail: reading a message: %v", err)
		}
		var m struct {
			Message *struct{ Value string }
			Error   *struct{ Code, Message string }
		}
		if err := json.Unmarshal(msg, &m); err != nil {
			t.Fatalf("Tail: %s: %v", msg, err)
		}
		if hdr[0]&2 != 0 {
			if m.Error != nil {
				return records, m.Error.Code, m.Error.Message
			}
			return records, "", ""
		}
		if m.Message != nil {
			return 1, "", ""
		}
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
