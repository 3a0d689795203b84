package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/gatewaytest"
	"github.com/kgate/kgate/internal/kafkatest"
	"github.com/kgate/kgate/server"
)

func newAuth(t testing.TB, cfg server.AuthConfig) *server.Auth {
	t.Helper()
	a, err := server.NewAuth(cfg)
	if err != nil {
		t.Fatalf("NewAuth: %v", err)
	}
	return a
}

func bearer(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

func codeOf(err error) codes.Code { return status.Code(err) }

func TestMTLSIdentifiesClientsAndACLsLimitThem(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	orders := kafkatest.CreateTopic(t, brokers, "orders", 1)
	secret := kafkatest.CreateTopic(t, brokers, "secret", 1)
	ca := gatewaytest.NewCA(t)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "gateway", true)}, ClientCAs: ca.Pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	alice := ca.Issue(t, "alice", false)
	rules := []server.Rule{
		{Principal: "alice", Action: server.ActionPublish, Topic: "orders-*"},
		{Principal: "alice", Action: server.ActionSubscribe, Topic: "orders-*", Group: "billing-*"},
	}
	gw := startGatewayWith(t, kafkaProducer(brokers), security{
		auth:       newAuth(t, server.AuthConfig{RequireIdentity: true, Rules: rules}),
		serverOpts: []grpc.ServerOption{grpc.Creds(credentials.NewTLS(serverTLS))},
		dialOpts: []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
			RootCAs: ca.Pool, Certificates: []tls.Certificate{alice}, MinVersion: tls.VersionTLS12}))},
	})
	ctx := testContext(t, 30*time.Second)
	msg := []*kgatev1.Message{{Value: []byte("x")}}

	if _, err := gw.pub.Publish(ctx, &kgatev1.PublishRequest{Topic: orders, Messages: msg}); err != nil {
		t.Fatalf("alice publishing to %s: %v", orders, err)
	}
	_, err := gw.pub.Publish(ctx, &kgatev1.PublishRequest{Topic: secret, Messages: msg})
	if st := status.Convert(err); st.Code() != codes.PermissionDenied || !strings.Contains(st.Message(), `principal "alice" may not publish topic`) {
		t.Fatalf("alice publishing to %s: %v %q, want PermissionDenied naming her", secret, st.Code(), st.Message())
	}
	if recs := kafkatest.ReadAll(t, brokers, secret); len(recs) != 0 {
		t.Fatalf("a refused publish reached Kafka: %s", kafkatest.Describe(recs[0]))
	}
	s := openStream(t, gw, earliest([]string{orders}, "audit"))
	if st := status.Convert(s.WaitEnd(30 * time.Second)); st.Code() != codes.PermissionDenied || !strings.Contains(st.Message(), `group "audit"`) {
		t.Fatalf("subscribe in a group alice may not use: %v %q", st.Code(), st.Message())
	}
	s = openStream(t, gw, earliest([]string{orders}, "billing-1"))
	if m := s.Next(30 * time.Second); string(m.Value) != "x" {
		t.Fatalf("alice's subscription got %q", m.Value)
	}

	// Without a client certificate the TLS handshake fails: nothing runs.
	noCert, err := grpc.NewClient(gw.addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12})))
	if err != nil {
		t.Fatal(err)
	}
	defer noCert.Close()
	if _, err := kgatev1.NewPublisherClient(noCert).Publish(ctx, &kgatev1.PublishRequest{Topic: orders, Messages: msg}); codeOf(err) != codes.Unavailable {
		t.Fatalf("without a client certificate: %v, want the connection refused (Unavailable)", err)
	}
}

func TestBearerTokensAuthenticateAndStreamsPerPrincipalAreBounded(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "tokens", 1)
	gw := startGatewayWith(t, kafkaProducer(brokers), security{
		auth:    newAuth(t, server.AuthConfig{Tokens: map[string]string{"s3cret": "svc-a"}}),
		streams: server.StreamLimits{SubscribePerPrincipal: 2},
	})
	ctx := testContext(t, 30*time.Second)
	req := &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: []byte("x")}}}

	for i, tc := range []struct {
		ctx  context.Context
		want codes.Code
		msg  string
	}{
		0: {ctx, codes.Unauthenticated, "no identity"},
		1: {bearer(ctx, "wrong"), codes.Unauthenticated, "not known"},
		2: {bearer(ctx, "s3cret"), codes.OK, ""},
	} {
		_, err := gw.pub.Publish(tc.ctx, req)
		if st := status.Convert(err); st.Code() != tc.want || !strings.Contains(st.Message(), tc.msg) {
			t.Errorf("case %d: %v %q, want %v %q", i, st.Code(), st.Message(), tc.want, tc.msg)
		}
	}
	if recs := kafkatest.ReadAll(t, brokers, topic); len(recs) != 1 {
		t.Fatalf("broker has %d records, want only the authenticated one", len(recs))
	}
	// Health needs no identity, so load balancers can probe.
	if _, err := healthpb.NewHealthClient(gw.conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health check without a token: %v", err)
	}

	// At most 2 streams for svc-a; the third is refused at once.
	for i := 0; i < 3; i++ {
		sctx, cancel := context.WithCancel(bearer(ctx, "s3cret"))
		t.Cleanup(cancel)
		st, err := gw.sub.Subscribe(sctx)
		if err != nil {
			t.Fatal(err)
		}
		// A refused stream may end before the open is sent: Send then says
		// io.EOF and Recv gives the status, as gRPC documents.
		if err := st.Send(openReq(earliest([]string{topic}, kafkatest.Name("g")))); err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		_, err = st.Recv() // the first assignment, or the refusal
		switch s := status.Convert(err); {
		case i < 2 && err != nil:
			t.Fatalf("stream %d of 2: %v", i+1, err)
		case i == 2 && (s.Code() != codes.ResourceExhausted || !strings.Contains(s.Message(), "2 Subscribe (Tail included) streams open")):
			t.Fatalf("third stream: %v %q, want ResourceExhausted", s.Code(), s.Message())
		}
	}
}

func TestParseTokensAndRules(t *testing.T) {
	tokens, err := server.ParseTokens(strings.NewReader("# principal token\nsvc-a  tok-a\n\nsvc-b tok-b\n"))
	if err != nil || len(tokens) != 2 || tokens["tok-a"] != "svc-a" || tokens["tok-b"] != "svc-b" {
		t.Fatalf("ParseTokens: %v %v", tokens, err)
	}
	for i, bad := range []string{"only-one-field", "a b c", "a t\nb t"} {
		if _, err := server.ParseTokens(strings.NewReader(bad)); err == nil {
			t.Errorf("case %d: ParseTokens(%q) accepted", i, bad)
		}
	}
	rules, err := server.ParseRules(strings.NewReader("alice publish orders.*\n* subscribe public.* billing-*\n"))
	if err != nil || len(rules) != 2 || rules[1] != (server.Rule{Principal: "*", Action: server.ActionSubscribe, Topic: "public.*", Group: "billing-*"}) {
		t.Fatalf("ParseRules: %v %v", rules, err)
	}
	for i, bad := range []string{"alice read orders", "alice publish", "alice publish t g", "alice subscribe [ g"} {
		if _, err := server.ParseRules(strings.NewReader(bad)); err == nil {
			t.Errorf("case %d: ParseRules(%q) accepted", i, bad)
		}
	}
}

func TestRequestIDIsEchoedOrMadeUp(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "reqid", 1)
	gw := startGateway(t, kafkaProducer(brokers))
	req := &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: []byte("x")}}}
	var hdr metadata.MD
	ctx := metadata.AppendToOutgoingContext(testContext(t, 30*time.Second), "x-request-id", "trace-42")
	if _, err := gw.pub.Publish(ctx, req, grpc.Header(&hdr)); err != nil {
		t.Fatal(err)
	}
	if got := hdr.Get("x-request-id"); len(got) != 1 || got[0] != "trace-42" {
		t.Fatalf("x-request-id %v, want the client's trace-42", got)
	}
	hdr = nil
	if _, err := gw.pub.Publish(testContext(t, 30*time.Second), req, grpc.Header(&hdr)); err != nil {
		t.Fatal(err)
	}
	if got := hdr.Get("x-request-id"); len(got) != 1 || len(got[0]) != 16 {
		t.Fatalf("x-request-id %v, want one made up by the gateway", got)
	}
}
