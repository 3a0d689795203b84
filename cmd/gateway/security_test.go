package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/gatewaytest"
	"github.com/kgate/kgate/internal/kafkatest"
)

// TestGatewaySecurity runs the gateway binary as an operator secures it:
// an unauthenticated flood, SIGHUP reloads, and the warning about tokens
// over plaintext.
func TestGatewaySecurity(t *testing.T) {
	gateway := goBuild(t, t.TempDir(), "gateway", "github.com/kgate/kgate/cmd/gateway")
	t.Run("unauthenticated flood", func(t *testing.T) { testUnauthenticatedFlood(t, gateway) })
	t.Run("SIGHUP reload", func(t *testing.T) {
		t.Parallel()
		testReload(t, gateway)
	})
	t.Run("mTLS health probe", func(t *testing.T) {
		t.Parallel()
		testMTLSProbe(t, gateway)
	})
	t.Run("HTTP listener with TLS, tokens and ACL", func(t *testing.T) {
		t.Parallel()
		testHTTPListenerSecurity(t, gateway)
	})
	t.Run("tokens over plaintext", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		tokens := filepath.Join(dir, "tokens")
		gatewaytest.WriteFile(t, tokens, "alice t-alice\n")
		gw := startProc(t, "gateway", gateway, childEnv(), "--listen", "127.0.0.1:0", "--embedded-kafka", "127.0.0.1:0", "--auth-tokens", tokens)
		gw.waitFor(t, listeningRE, startTimeout, "the gateway logs that it is listening")
		if !regexp.MustCompile(`level=WARN msg="bearer tokens are accepted over plaintext gRPC`).MatchString(gw.stderr.String()) {
			t.Errorf("no warning that bearer tokens travel in plaintext")
		}
		gw.terminate(t)
	})
}

// vmRSS is the resident memory of process pid, from /proc.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	n, err := readRSS(pid)
	if err != nil {
		t.Fatalf("reading the gateway's memory: %v", err)
	}
	return n
}

var vmRSSLine = regexp.MustCompile(`(?m)^VmRSS:\s+(\d+) kB`)

// readRSS reads process pid's VmRSS from /proc/PID/status.
func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	m := vmRSSLine.FindSubmatch(b)
	if m == nil {
		return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10, nil
}

// rssPeak samples a process's RSS every 10 ms until stop is closed, and
// then returns the highest sample.
func rssPeak(pid int, stop <-chan struct{}) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		peak := int64(0)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if n, err := readRSS(pid); err == nil {
				peak = max(peak, n)
			}
			select {
			case <-stop:
				out <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// testUnauthenticatedFlood: against a gateway that requires tokens, twelve
// callers at once send Publish requests of 4 MB holding two million empty
// messages each (135–175 MB apiece to decode), and eight send a bearer
// token of 8 MB. Every call is refused (UNAUTHENTICATED, or the oversized
// headers reset unread) and the gateway's RSS, a process of its own,
// stays within 64 MB of its idle RSS.
func testUnauthenticatedFlood(t *testing.T, gateway string) {
	brokers := kafkatest.BrokerProcess(t)
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	gatewaytest.WriteFile(t, tokens, "alice t-alice\n")
	gw := startProc(t, "gateway", gateway, childEnv(), "--listen", "127.0.0.1:0", "--brokers", brokers, "--auth-tokens", tokens)
	addr := gw.waitFor(t, listeningRE, startTimeout, "the gateway logs that it is listening")[1]
	pid := gw.cmd.Process.Pid
	alice := dialToken(t, addr, nil, "t-alice")
	waitServing(t, alice, "", "kgate.v1.Publisher")
	topic := kafkatest.Name("flood")
	publish := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
		defer cancel()
		_, err := kgatev1.NewPublisherClient(alice).Publish(ctx, &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: []byte("x")}}})
		return err
	}
	if err := publish(); err != nil {
		t.Fatalf("alice's publish before the flood: %v", err)
	}
	// Idle: the highest of a few samples, so that one low reading does
	// not make the bound tighter than meant.
	idle := int64(0)
	for range 5 {
		idle = max(idle, vmRSS(t, pid))
		time.Sleep(100 * time.Millisecond)
	}

	stop := make(chan struct{})
	peak := rssPeak(pid, stop)
	req := gatewaytest.EmptyMessages(topic, 2_000_000)
	var calls, refused atomic.Int64
	var other sync.Map // unexpected answers, by text
	var wg sync.WaitGroup
	for range 12 {
		conn := dialToken(t, addr, nil, "")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
				var resp []byte
				err := conn.Invoke(ctx, kgatev1.Publisher_Publish_FullMethodName, req, &resp, grpc.ForceCodecV2(gatewaytest.RawCodec{}))
				cancel()
				calls.Add(1)
				if status.Code(err) == codes.Unauthenticated {
					refused.Add(1)
				} else {
					other.Store(fmt.Sprint(err), true)
				}
			}
		}()
	}
	wg.Wait()
	huge := "Bearer " + strings.Repeat("t", 8<<20)
	for range 8 {
		h := gatewaytest.DialH2(t, addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = h.WriteCall(addr, kgatev1.Publisher_Publish_FullMethodName, hpack.HeaderField{Name: "authorization", Value: huge})
			if o := h.ReadUntilClosed(30 * time.Second); o.Answered > 0 || (len(o.Resets) == 0 && !o.Closed) {
				other.Store(fmt.Sprintf("an 8 MB token: %d answers, resets %v, closed %v", o.Answered, o.Resets, o.Closed), true)
			}
		}()
	}
	wg.Wait()
	close(stop)
	top := <-peak

	t.Logf("gateway RSS: idle %d MB, peak %d MB during %d unauthenticated 4 MB calls and 8 tokens of 8 MB", idle>>20, top>>20, calls.Load())
	if refused.Load() != calls.Load() {
		t.Errorf("%d of %d flood calls answered UNAUTHENTICATED", refused.Load(), calls.Load())
	}
	other.Range(func(k, _ any) bool { t.Errorf("unexpected answer: %s", k); return true })
	if top > idle+64<<20 {
		t.Errorf("the gateway's RSS rose from %d MB to %d MB under the unauthenticated flood, want at most 64 MB more", idle>>20, top>>20)
	}
	if err := publish(); err != nil {
		t.Errorf("alice's publish after the flood: %v", err)
	}
	gw.terminate(t)
}

// dialToken connects to addr, over TLS when pool is set, sending token
// with every call ("" sends none).
func dialToken(t *testing.T, addr string, pool *x509.CertPool, token string) *grpc.ClientConn {
	t.Helper()
	creds := insecure.NewCredentials()
	if pool != nil {
		creds = credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearerToken{token, pool != nil}))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

type bearerToken struct {
	token string
	tls   bool
}

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}
func (b bearerToken) RequireTransportSecurity() bool { return b.tls }

// servedCN is the common name of the certificate the gateway at addr
// serves to a new connection.
func servedCN(t *testing.T, addr string, pool *x509.CertPool) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS to the gateway: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// testReload: on SIGHUP the gateway reads its tokens, ACL and TLS
// certificate again and says so. New calls see the new tokens and rules
// and new connections the new certificate, while a stream opened before
// goes on; a file that does not parse leaves the previous configuration
// in force, and the log says that too.
func testReload(t *testing.T, gateway string) {
	dir := t.TempDir()
	ca := gatewaytest.NewCA(t)
	certFile, keyFile := gatewaytest.WritePEM(t, dir, "server", ca.Issue(t, "gateway-1", true))
	tokens, acl := filepath.Join(dir, "tokens"), filepath.Join(dir, "acl")
	gatewaytest.WriteFile(t, tokens, "alice t-alice\n")
	gatewaytest.WriteFile(t, acl, "* publish reload-*\n")
	gw := startProc(t, "gateway", gateway, childEnv(), "--listen", "127.0.0.1:0", "--embedded-kafka", "127.0.0.1:0",
		"--auth-tokens", tokens, "--acl", acl, "--tls-cert", certFile, "--tls-key", keyFile)
	addr := gw.waitFor(t, listeningRE, startTimeout, "the gateway logs that it is listening")[1]
	if strings.Contains(gw.stderr.String(), "over plaintext") {
		t.Errorf("the gateway serving TLS warns about plaintext tokens")
	}
	alice := dialToken(t, addr, ca.Pool, "t-alice")
	waitServing(t, alice, "", "kgate.v1.Publisher")
	topic := kafkatest.Name("reload")
	publishAs := func(conn *grpc.ClientConn) error {
		ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
		defer cancel()
		_, err := kgatev1.NewPublisherClient(conn).Publish(ctx, &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: []byte("x")}}})
		return err
	}
	if err := publishAs(alice); err != nil {
		t.Fatalf("alice before the reload: %v", err)
	}
	if cn := servedCN(t, addr, ca.Pool); cn != "gateway-1" {
		t.Fatalf("the gateway serves %q, want gateway-1", cn)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*rpcTimeout)
	defer cancel()
	stream, err := kgatev1.NewPublisherClient(alice).PublishStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	streamPublish := func(id string) error {
		if err := stream.Send(&kgatev1.PublishStreamRequest{CorrelationId: id, Topic: topic, Message: &kgatev1.Message{Value: []byte(id)}}); err != nil {
			return err
		}
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		if c := codes.Code(resp.GetOutcome().GetCode()); c != codes.OK {
			return fmt.Errorf("%s: %v %s", id, c, resp.GetOutcome().GetMessage())
		}
		return nil
	}
	if err := streamPublish("before"); err != nil {
		t.Fatalf("alice's stream before the reload: %v", err)
	}

	// Alice's token goes, bob's comes, the certificate is renewed.
	gatewaytest.WriteFile(t, tokens, "bob t-bob\n")
	gatewaytest.WritePEM(t, dir, "server", ca.Issue(t, "gateway-2", true))
	hup := func(want *regexp.Regexp, what string) {
		t.Helper()
		seen := len(want.FindAllString(gw.stderr.String(), -1))
		if err := gw.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		kafkatest.Eventually(t, 30*time.Second, what, func() bool { return len(want.FindAllString(gw.stderr.String(), -1)) > seen })
	}
	hup(regexp.MustCompile(`msg="reloaded on SIGHUP without dropping connections or streams"`), "the gateway logs the reload")
	if cn := servedCN(t, addr, ca.Pool); cn != "gateway-2" {
		t.Errorf("after the reload a new connection is served %q, want gateway-2", cn)
	}
	if err := streamPublish("after"); err != nil {
		t.Errorf("alice's stream, opened before the reload: %v, want it to go on", err)
	}
	if err := publishAs(dialToken(t, addr, ca.Pool, "t-alice")); status.Code(err) != codes.Unauthenticated {
		t.Errorf("alice's removed token after the reload: %v, want UNAUTHENTICATED", err)
	}
	bob := dialToken(t, addr, ca.Pool, "t-bob")
	if err := publishAs(bob); err != nil {
		t.Errorf("bob's new token after the reload: %v", err)
	}

	// A broken ACL is refused; the previous rules stay.
	gatewaytest.WriteFile(t, acl, "bob publish\n")
	hup(regexp.MustCompile(`level=ERROR msg="SIGHUP: reloading --auth-tokens and --acl failed; the previous tokens and rules stay in force"[^\n]*line 1`),
		"the gateway logs that the broken ACL was refused")
	if err := publishAs(bob); err != nil {
		t.Errorf("bob after a refused reload: %v, want the previous rules in force", err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("alice's stream after half-close: %v, want its end", err)
	}
	gw.terminate(t)
}

// testMTLSProbe: under mTLS a gRPC health check needs a client certificate
// like any other call, while /healthz on the metrics port answers a probe
// that has none: 200 SERVING once Kafka answers, 503 for a service the
// gateway does not know.
func testMTLSProbe(t *testing.T, gateway string) {
	dir := t.TempDir()
	ca := gatewaytest.NewCA(t)
	certFile, keyFile := gatewaytest.WritePEM(t, dir, "server", ca.Issue(t, "gateway", true))
	gw := startProc(t, "gateway", gateway, childEnv(), "--listen", "127.0.0.1:0", "--embedded-kafka", "127.0.0.1:0",
		"--tls-cert", certFile, "--tls-key", keyFile, "--tls-client-ca", ca.WriteCAPEM(t, dir))
	m := gw.waitFor(t, regexp.MustCompile(`msg="kgate listening" grpc=(\S+) brokers=\S+ metrics=(\S+)`), startTimeout, "the gateway logs that it is listening")
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	if _, err := healthpb.NewHealthClient(dialToken(t, m[1], ca.Pool, "")).Check(ctx, &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("a gRPC health check without a client certificate: %v, want the TLS handshake refused (UNAVAILABLE)", err)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + m[2] + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	// The gateway sets its services' health one after the other: wait for
	// both the server's and the Publisher's.
	kafkatest.Eventually(t, servingTimeout, "/healthz and /healthz?service=kgate.v1.Publisher answer 200 SERVING", func() bool {
		code, body := get("/healthz")
		pcode, pbody := get("/healthz?service=kgate.v1.Publisher")
		return code == http.StatusOK && body == "SERVING" && pcode == http.StatusOK && pbody == "SERVING"
	})
	if code, body := get("/healthz?service=no.such.Service"); code != http.StatusServiceUnavailable || body != "SERVICE_UNKNOWN" {
		t.Errorf("/healthz of an unknown service: %d %s, want 503 SERVICE_UNKNOWN", code, body)
	}
	gw.terminate(t)
}

var httpListeningRE = regexp.MustCompile(`msg="kgate listening" grpc=\S+ brokers=\S+ metrics=\S+ http=(\S+)`)

// testHTTPListenerSecurity: the HTTP listener serves the gRPC port's
// certificate, over HTTP/1.1 and HTTP/2, and applies its tokens and ACL:
// no token 401, a token the ACL does not allow 403, an allowed one 200;
// the Admin call needs an admin rule.
func testHTTPListenerSecurity(t *testing.T, gateway string) {
	dir := t.TempDir()
	ca := gatewaytest.NewCA(t)
	certFile, keyFile := gatewaytest.WritePEM(t, dir, "server", ca.Issue(t, "gateway-http", true))
	tokens, acl := filepath.Join(dir, "tokens"), filepath.Join(dir, "acl")
	gatewaytest.WriteFile(t, tokens, "alice t-alice\nbob t-bob\n")
	gatewaytest.WriteFile(t, acl, "alice publish http-*\nalice admin http-*\nbob subscribe http-* bob\n")
	gw := startProc(t, "gateway", gateway, childEnv(), "--listen", "127.0.0.1:0", "--embedded-kafka", "127.0.0.1:0",
		"--auth-tokens", tokens, "--acl", acl, "--tls-cert", certFile, "--tls-key", keyFile)
	brokers := gw.waitFor(t, listeningRE, startTimeout, "the gateway logs that it is listening")[2]
	addr := gw.waitFor(t, httpListeningRE, startTimeout, "the gateway logs its HTTP listener")[1]
	checkBoundAddr(t, "HTTP", addr)
	topic := kafkatest.Name("http-tls")
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}, ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{} // HTTP/1.1 only
		}
		client := &http.Client{Transport: tr, Timeout: rpcTimeout}
		call := func(method, path, token, body string) (int, string, string) {
			req, err := http.NewRequest(method, "https://"+addr+path, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b), resp.Proto
		}
		publish := "/v1/topics/" + topic + "/messages"
		msg := `{"messages":[{"value":"eA=="}]}`
		for _, tc := range []struct {
			method, path, token string
			want                int
		}{
			{"POST", publish, "", http.StatusUnauthorized},
			{"POST", publish, "t-nobody", http.StatusUnauthorized},
			{"POST", publish, "t-bob", http.StatusForbidden},
			{"POST", publish, "t-alice", http.StatusOK},
			{"GET", "/v1/topics/" + topic, "t-bob", http.StatusForbidden},
			{"GET", "/v1/topics/" + topic, "t-alice", http.StatusOK},
			// The console's files need no token (its sign-in page); its calls do.
			{"GET", "/", "", http.StatusOK},
			{"GET", "/console/app.js", "", http.StatusOK},
			{"GET", "/v1/gateway", "", http.StatusUnauthorized},
		} {
			body := ""
			if tc.method == "POST" {
				body = msg
			}
			code, b, proto := call(tc.method, tc.path, tc.token, body)
			if code != tc.want {
				t.Errorf("%s %s %s with token %q: %d %s, want %d", proto, tc.method, tc.path, tc.token, code, b, tc.want)
			}
			if wantProto := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[h2]; proto != wantProto {
				t.Errorf("%s %s: served over %s, want %s", tc.method, tc.path, proto, wantProto)
			}
		}
		client.CloseIdleConnections()
	}
	if n := len(kafkatest.ReadAll(t, brokers, topic)); n != 2 {
		t.Errorf("%s holds %d records, want alice's 2 (one per HTTP version)", topic, n)
	}
	gw.terminate(t)
}
