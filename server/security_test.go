package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/gatewaytest"
	"github.com/kgate/kgate/internal/kafkatest"
	"github.com/kgate/kgate/kafkaio"
	"github.com/kgate/kgate/server"
)

// tokenCreds sends a bearer token with every call of a connection.
type tokenCreds string

func (c tokenCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(c)}, nil
}
func (tokenCreds) RequireTransportSecurity() bool { return false }

// client is one caller's connection to a test gateway.
type client struct {
	conn *grpc.ClientConn
	pub  kgatev1.PublisherClient
	sub  kgatev1.SubscriberClient
}

// dialAs connects to gw sending token with every call ("" sends none).
func dialAs(t testing.TB, gw *gateway, token string) *client {
	t.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(tokenCreds(token)))
	}
	conn, err := grpc.NewClient(gw.addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &client{conn: conn, pub: kgatev1.NewPublisherClient(conn), sub: kgatev1.NewSubscriberClient(conn)}
}

// logTo returns a producer configuration whose gateway logs, at debug
// level, into buf as well as to the test's log.
func logTo(brokers string, buf *kafkatest.SyncBuffer) kafkaio.ProducerConfig {
	return kafkaio.ProducerConfig{Brokers: brokers, Logger: slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
}

// opened waits until a Subscribe stream got its first assignment (nil) or
// ended (its status).
func opened(t *testing.T, s *stream) error {
	t.Helper()
	select {
	case <-s.Assigns:
		return nil
	case <-s.Done:
		if s.EndErr == nil {
			return errors.New("ended OK before any assignment")
		}
		return s.EndErr
	case <-time.After(60 * time.Second * timeoutScale):
		t.Fatal("the stream neither got an assignment nor ended within 60s")
	}
	return nil
}

// TestGroupsBelongToTheirPrincipals: a subscribe rule without a group
// pattern lets each principal use its own groups only (its name, or its
// name and '.'), the longer known name winning; bob is refused alice's
// group until a rule grants it to him.
func TestGroupsBelongToTheirPrincipals(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "grp", 1)
	rules, err := server.ParseRules(strings.NewReader("* subscribe grp-*\nbob subscribe grp-* alice.shared\n"))
	if err != nil {
		t.Fatal(err)
	}
	gw := startGatewayWith(t, kafkaProducer(brokers), security{auth: newAuth(t, server.AuthConfig{
		Tokens: map[string]string{"t-alice": "alice", "t-bob": "bob", "t-ops": "alice.ops"}, Rules: rules})})
	as := map[string]*client{"alice": dialAs(t, gw, "t-alice"), "bob": dialAs(t, gw, "t-bob"), "alice.ops": dialAs(t, gw, "t-ops")}

	for i, tc := range []struct {
		who, group string
		allowed    bool
	}{
		0: {"alice", "alice", true},
		1: {"alice", "alice.billing", true},
		2: {"bob", "alice.billing", false}, // the issue's attack
		3: {"bob", "alice.shared", true},   // granted by a rule
		4: {"alice", "alice.ops.audit", false},
		5: {"alice.ops", "alice.ops.audit", true},
		6: {"bob", "billing-1", false},
		7: {"alice", "alicebob", false},
		8: {"bob", "bob", true},
	} {
		s := gatewaytest.OpenStream(t, as[tc.who].sub, earliest([]string{topic}, tc.group))
		err := opened(t, s)
		st, d := detailsOf(t, err)
		switch {
		case tc.allowed && err != nil:
			t.Errorf("case %d: %s in group %q: %v, want the stream open", i, tc.who, tc.group, err)
		case !tc.allowed && (st.Code() != codes.PermissionDenied || d.info == nil || d.info.Reason != "NOT_ALLOWED"):
			t.Errorf("case %d: %s in group %q: %v %q, want PERMISSION_DENIED NOT_ALLOWED", i, tc.who, tc.group, st.Code(), st.Message())
		case !tc.allowed && !strings.Contains(st.Message(), `its own groups are "`+tc.who+`"`):
			t.Errorf("case %d: the refusal %q does not tell %s which groups are its own", i, st.Message(), tc.who)
		}
		s.Cancel()
	}
}

// TestNamesAreCheckedBeforeTheRulesAndNeverEchoedInFull: a 3 MB topic or
// group name is INVALID_ARGUMENT with a short message, and no log line
// grows with it.
func TestNamesAreCheckedBeforeTheRulesAndNeverEchoedInFull(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "names", 1)
	var logs kafkatest.SyncBuffer
	gw := startGatewayWith(t, logTo(brokers, &logs), security{auth: newAuth(t, server.AuthConfig{
		Tokens: map[string]string{"t-alice": "alice"},
		Rules:  []server.Rule{{Principal: "alice", Action: server.ActionPublish, Topic: "names-*"}, {Principal: "alice", Action: server.ActionSubscribe, Topic: "names-*"}}})})
	alice := dialAs(t, gw, "t-alice")
	ctx := testContext(t, 60*time.Second)
	huge := strings.Repeat("n", 3<<20)

	_, err := alice.pub.Publish(ctx, &kgatev1.PublishRequest{Topic: huge, Messages: []*kgatev1.Message{{Value: []byte("x")}}})
	if st, d := detailsOf(t, err); st.Code() != codes.InvalidArgument || d.info.GetReason() != "INVALID_TOPIC" || len(st.Message()) > 512 {
		t.Errorf("Publish to a 3 MB topic: %v %s (%d bytes of message), want a short INVALID_ARGUMENT INVALID_TOPIC", st.Code(), d.info.GetReason(), len(st.Message()))
	}
	_, err = alice.pub.Publish(ctx, &kgatev1.PublishRequest{Topic: "a b\x00\n" + strings.Repeat("\u2028", 80), Messages: []*kgatev1.Message{{Value: []byte("x")}}})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || len(st.Message()) > 1500 {
		t.Errorf("Publish to an illegal topic: %v (%d bytes of message)", st.Code(), len(st.Message()))
	}
	s := gatewaytest.OpenStream(t, alice.sub, earliest([]string{topic}, huge))
	if st, d := detailsOf(t, s.WaitEnd(60*time.Second)); st.Code() != codes.InvalidArgument || d.info.GetReason() != "INVALID_SUBSCRIPTION" || len(st.Message()) > 512 {
		t.Errorf("Subscribe in a 3 MB group: %v %s (%d bytes of message), want a short INVALID_ARGUMENT", st.Code(), d.info.GetReason(), len(st.Message()))
	}
	// Refused for permission, the message names alice and the topic.
	_, err = alice.pub.Publish(ctx, &kgatev1.PublishRequest{Topic: "secret", Messages: []*kgatev1.Message{{Value: []byte("x")}}})
	if st := status.Convert(err); st.Code() != codes.PermissionDenied || !strings.Contains(st.Message(), `principal "alice" may not publish topic "secret"`) {
		t.Errorf("Publish to a topic no rule allows: %v %q", st.Code(), st.Message())
	}
	kafkatest.Eventually(t, 10*time.Second*timeoutScale, "the calls are logged", func() bool {
		return strings.Count(logs.String(), `msg="finished call"`) >= 4
	})
	for _, line := range strings.Split(logs.String(), "\n") {
		if len(line) > 4096 {
			t.Errorf("a log line of %d bytes: %.300s…", len(line), line)
		}
	}
}

// TestCallLogNamesThePrincipalAndSumsUpUnauthenticatedCalls: each call's
// log line names its principal; calls without identity are refused before
// their request is read, counted, and summed up in one warning rather
// than one line each.
func TestCallLogNamesThePrincipalAndSumsUpUnauthenticatedCalls(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "who", 1)
	var logs kafkatest.SyncBuffer
	gw := startGatewayWith(t, logTo(brokers, &logs), security{auth: newAuth(t, server.AuthConfig{Tokens: map[string]string{"t-alice": "alice"}})})
	ctx := testContext(t, 30*time.Second)
	req := &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: []byte("x")}}}
	if _, err := dialAs(t, gw, "t-alice").pub.Publish(ctx, req); err != nil {
		t.Fatal(err)
	}
	for i, tok := range []string{"", "wrong", "", "wrong"} {
		_, err := dialAs(t, gw, tok).pub.Publish(ctx, req)
		want := map[string]string{"": "NO_IDENTITY", "wrong": "UNKNOWN_TOKEN"}[tok]
		if st, d := detailsOf(t, err); st.Code() != codes.Unauthenticated || d.info.GetReason() != want {
			t.Errorf("call %d: %v %s, want UNAUTHENTICATED %s", i, st.Code(), d.info.GetReason(), want)
		}
	}
	kafkatest.Eventually(t, 10*time.Second*timeoutScale, "alice's call is logged with her name", func() bool {
		return strings.Contains(logs.String(), "grpc.method=Publish grpc.code=OK") && strings.Contains(logs.String(), "principal=alice")
	})
	if n := strings.Count(logs.String(), "grpc.code=Unauthenticated"); n != 0 {
		t.Errorf("%d call log lines for refused unauthenticated calls, want none (they are summed up)", n)
	}
	if n := strings.Count(logs.String(), "refused calls without a valid identity"); n != 1 {
		t.Errorf("%d summary warnings of unauthenticated calls, want 1 (at most one a minute):\n%s", n, logs.String())
	}
	samples := gatherSamples(t, gw)
	for reason, want := range map[string]float64{"NO_IDENTITY": 2, "UNKNOWN_TOKEN": 2} {
		if n, _ := sum(samples, "kgate_unauthenticated_calls_total", `reason="`+reason+`"`); n != want {
			t.Errorf("kgate_unauthenticated_calls_total{reason=%s} = %v, want %v", reason, n, want)
		}
	}
	if recs := kafkatest.ReadAll(t, brokers, topic); len(recs) != 1 {
		t.Errorf("the topic holds %d records, want alice's only", len(recs))
	}
}

// TestReservedAndWildcardPrincipals: "anonymous" and "*" cannot be
// configured or certified; "*" never matches an anonymous caller, so an
// ACL without authentication must name anonymous, and does.
func TestReservedAndWildcardPrincipals(t *testing.T) {
	t.Parallel()
	for i, tc := range []struct {
		cfg  server.AuthConfig
		want string
	}{
		0: {server.AuthConfig{Tokens: map[string]string{"tok": "anonymous"}}, `"anonymous" is reserved`},
		1: {server.AuthConfig{Tokens: map[string]string{"tok": "*"}}, `"*" is reserved`},
		2: {server.AuthConfig{Rules: []server.Rule{{Principal: "*", Action: server.ActionPublish, Topic: "*"}}}, "identifies nobody"},
		3: {server.AuthConfig{Tokens: map[string]string{"tok": "a"}, Rules: []server.Rule{{Principal: "anonymous", Action: server.ActionPublish, Topic: "*"}}}, "no call is anonymous"},
	} {
		if _, err := server.NewAuth(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("case %d: NewAuth(%+v) = %v, want an error saying %q", i, tc.cfg, err, tc.want)
		}
	}
	if _, err := server.ParseTokens(strings.NewReader("anonymous tok\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("ParseTokens accepted a token for anonymous: %v", err)
	}

	// Without authentication every caller is anonymous, and only rules
	// naming anonymous apply.
	brokers := kafkatest.Brokers(t)
	open := kafkatest.CreateTopic(t, brokers, "open", 1)
	closed := kafkatest.CreateTopic(t, brokers, "closed", 1)
	gw := startGatewayWith(t, kafkaProducer(brokers), security{auth: newAuth(t, server.AuthConfig{
		Rules: []server.Rule{{Principal: "anonymous", Action: server.ActionPublish, Topic: open}}})})
	ctx := testContext(t, 30*time.Second)
	msg := []*kgatev1.Message{{Value: []byte("x")}}
	if _, err := gw.pub.Publish(ctx, &kgatev1.PublishRequest{Topic: open, Messages: msg}); err != nil {
		t.Errorf("anonymous publishing where a rule names anonymous: %v", err)
	}
	if _, err := gw.pub.Publish(ctx, &kgatev1.PublishRequest{Topic: closed, Messages: msg}); codeOf(err) != codes.PermissionDenied {
		t.Errorf("anonymous publishing where no rule allows it: %v, want PERMISSION_DENIED", err)
	}

	// A certificate for CN "anonymous" does not pass for an anonymous caller.
	ca := gatewaytest.NewCA(t)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "gateway", true)}, ClientCAs: ca.Pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	mtls := startGatewayWith(t, kafkaProducer(brokers), security{
		auth:       newAuth(t, server.AuthConfig{RequireIdentity: true}),
		serverOpts: []grpc.ServerOption{grpc.Creds(credentials.NewTLS(serverTLS))},
		dialOpts: []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
			RootCAs: ca.Pool, Certificates: []tls.Certificate{ca.Issue(t, "anonymous", false)}, MinVersion: tls.VersionTLS12}))},
	})
	_, err := mtls.pub.Publish(ctx, &kgatev1.PublishRequest{Topic: open, Messages: msg})
	if st, d := detailsOf(t, err); st.Code() != codes.Unauthenticated || d.info.GetReason() != "RESERVED_PRINCIPAL" {
		t.Errorf("a certificate for CN anonymous: %v %s, want UNAUTHENTICATED RESERVED_PRINCIPAL", st.Code(), d.info.GetReason())
	}
}

// TestStreamBoundsCountEachKindApart: Subscribe and PublishStream are
// bounded per principal, each on its own; health Watch and reflection
// streams, which need no identity, gateway-wide. A refusal is
// RESOURCE_EXHAUSTED TOO_MANY_STREAMS with RetryInfo, and a closed stream
// makes room again.
func TestStreamBoundsCountEachKindApart(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "bounds", 1)
	gw := startGatewayWith(t, kafkaProducer(brokers), security{
		auth:    newAuth(t, server.AuthConfig{Tokens: map[string]string{"t-alice": "alice", "t-bob": "bob"}}),
		streams: server.StreamLimits{SubscribePerPrincipal: 1, PublishStreamPerPrincipal: 1, HealthWatches: 1, ReflectionStreams: 1},
	})
	alice, bob, nobody := dialAs(t, gw, "t-alice"), dialAs(t, gw, "t-bob"), dialAs(t, gw, "")
	tooMany := func(what string, err error) {
		t.Helper()
		if st, d := detailsOf(t, err); st.Code() != codes.ResourceExhausted || d.info.GetReason() != "TOO_MANY_STREAMS" || d.retry == nil {
			t.Errorf("%s: %v %q, want RESOURCE_EXHAUSTED TOO_MANY_STREAMS with RetryInfo", what, st.Code(), st.Message())
		}
	}

	first := gatewaytest.OpenStream(t, alice.sub, earliest([]string{topic}, "alice"))
	if err := opened(t, first); err != nil {
		t.Fatalf("alice's first Subscribe: %v", err)
	}
	tooMany("alice's second Subscribe", opened(t, gatewaytest.OpenStream(t, alice.sub, earliest([]string{topic}, "alice"))))
	if err := opened(t, gatewaytest.OpenStream(t, bob.sub, earliest([]string{topic}, "bob"))); err != nil {
		t.Errorf("bob's Subscribe while alice is at her bound: %v", err)
	}
	ps := openPublishStream(t, alice)
	if _, err := ps.Recv(); err != nil {
		t.Errorf("alice's PublishStream while she is at her Subscribe bound: %v, want it answered", err)
	}
	second := openPublishStream(t, alice)
	_, err := second.Recv()
	tooMany("alice's second PublishStream", err)

	watch := func() (healthpb.Health_WatchClient, error) {
		w, err := healthpb.NewHealthClient(nobody.conn).Watch(testContext(t, 60*time.Second), &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = w.Recv()
		return w, err
	}
	if _, err := watch(); err != nil {
		t.Errorf("a health Watch without identity: %v", err)
	}
	_, err = watch()
	tooMany("a second health Watch", err)
	refl := func() error {
		r, err := reflectionpb.NewServerReflectionClient(nobody.conn).ServerReflectionInfo(testContext(t, 60*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		_, err = r.Recv()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	held, err := reflectionpb.NewServerReflectionClient(nobody.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = held.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
	if _, err := held.Recv(); err != nil {
		t.Fatalf("a reflection stream: %v", err)
	}
	tooMany("a second reflection stream", refl())
	cancel()
	kafkatest.Eventually(t, 10*time.Second*timeoutScale, "a reflection stream is accepted again once the first ended", func() bool { return refl() == nil })

	first.Cancel()
	kafkatest.Eventually(t, 30*time.Second*timeoutScale, "alice may subscribe again once her stream ended", func() bool {
		s := gatewaytest.OpenStream(t, alice.sub, earliest([]string{topic}, "alice"))
		defer s.Cancel()
		return opened(t, s) == nil
	})
}

// openPublishStream opens a PublishStream for c and sends one message to a
// throwaway topic, so that an accepted stream answers.
func openPublishStream(t *testing.T, c *client) kgatev1.Publisher_PublishStreamClient {
	t.Helper()
	ps, err := c.pub.PublishStream(testContext(t, 60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	err = ps.Send(&kgatev1.PublishStreamRequest{CorrelationId: "1", Topic: kafkatest.Name("ps"), Message: &kgatev1.Message{Value: []byte("x")}})
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return ps
}

// TestClientsCannotForgeGatewayHeaders: a message with a header key
// starting with "kgate." (any case) is INVALID_ARGUMENT RESERVED_HEADER,
// from Publish and from PublishStream, and nothing is written; other keys
// pass. (The gateway's own dead-letter headers are still written:
// TestSubscribeDeadLettersAfterMaxAttempts.)
func TestClientsCannotForgeGatewayHeaders(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "forge", 1)
	gw := startGateway(t, kafkaProducer(brokers))
	ctx := testContext(t, 30*time.Second)
	with := func(key string) *kgatev1.Message {
		return &kgatev1.Message{Value: []byte(key), Headers: []*kgatev1.Header{{Key: "trace", Value: []byte("1")}, {Key: key, Value: []byte("forged")}}}
	}
	for i, key := range []string{"kgate.dlq.topic", "kgate.dlq.reason", "KGATE.DLQ.OFFSET", "Kgate.anything"} {
		_, err := gw.pub.Publish(ctx, &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{with(key)}})
		if st, d := detailsOf(t, err); st.Code() != codes.InvalidArgument || d.info.GetReason() != "RESERVED_HEADER" || !strings.Contains(st.Message(), "messages[0].headers[1]") {
			t.Errorf("case %d: Publish with header %q: %v %s %q, want INVALID_ARGUMENT RESERVED_HEADER naming the header", i, key, st.Code(), d.info.GetReason(), st.Message())
		}
	}
	outcomes, err := publishStream(t, gw, []*kgatev1.PublishStreamRequest{
		{CorrelationId: "forged", Topic: topic, Message: with("kgate.dlq.attempts")},
		{CorrelationId: "fine", Topic: topic, Message: with("x-kgate.dlq.topic")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if o := outcomes["forged"]; codes.Code(o.GetCode()) != codes.InvalidArgument || o.GetReason() != "RESERVED_HEADER" {
		t.Errorf("PublishStream with a kgate. header: %v, want INVALID_ARGUMENT RESERVED_HEADER", o)
	}
	if o := outcomes["fine"]; o.GetCode() != 0 {
		t.Errorf("PublishStream with header x-kgate.dlq.topic: %v, want OK", o)
	}
	if _, err := gw.pub.Publish(ctx, &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{with("kgatex")}}); err != nil {
		t.Errorf("Publish with header kgatex: %v, want OK", err)
	}
	var got []string
	for _, r := range kafkatest.ReadAll(t, brokers, topic) {
		got = append(got, string(r.Value))
	}
	if strings.Join(got, ",") != "x-kgate.dlq.topic,kgatex" {
		t.Errorf("the topic holds %v, want only the two messages without a reserved header", got)
	}
}

// TestOnePrincipalCannotTakeTheWholePublishBudget: alice floods a 1 MiB
// in-flight budget with 64 KiB messages from 32 callers that retry at once
// whatever they are told, against a broker that takes 20 ms per produce
// request. Bob, publishing small messages one at a time and waiting the
// RetryInfo delay when refused, still gets every message written, each
// within 3 retries; alice is held to her share (INFLIGHT_SHARE_EXHAUSTED)
// yet keeps publishing.
func TestOnePrincipalCannotTakeTheWholePublishBudget(t *testing.T) {
	t.Parallel()
	c := kafkatest.Cluster(t, kfake.AllowAutoTopicCreation())
	brokers := c.ListenAddrs()[0]
	topic := kafkatest.CreateTopic(t, brokers, "share", 3)
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		time.Sleep(20 * time.Millisecond) // a slow broker: alice's bytes stay in flight
		return nil, nil, false
	})
	gw := startGatewayWith(t, kafkaio.ProducerConfig{Brokers: brokers, MaxInflightBytes: 1 << 20, MaxInflightShare: 256 << 10},
		security{auth: newAuth(t, server.AuthConfig{Tokens: map[string]string{"t-alice": "alice", "t-bob": "bob"}})})
	alice, bob := dialAs(t, gw, "t-alice"), dialAs(t, gw, "t-bob")

	ctx, stopFlood := context.WithCancel(testContext(t, 120*time.Second))
	defer stopFlood()
	var flood sync.WaitGroup
	var aliceOK, aliceShare, aliceFull atomic.Int64
	big := bytes.Repeat([]byte("a"), 64<<10-128) // with the 128 B the budget counts per message, 16 fill it exactly
	for range 32 {
		flood.Add(1)
		go func() {
			defer flood.Done()
			for ctx.Err() == nil {
				_, err := alice.pub.Publish(ctx, &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: big}}})
				switch reasonOf(err) {
				case "":
					if err == nil {
						aliceOK.Add(1)
					}
				case "INFLIGHT_SHARE_EXHAUSTED":
					aliceShare.Add(1)
				case "INFLIGHT_BUDGET_EXHAUSTED":
					aliceFull.Add(1)
				}
				time.Sleep(time.Millisecond) // retry at once, whatever RetryInfo says
			}
		}()
	}
	kafkatest.Eventually(t, 30*time.Second*timeoutScale, "alice's flood fills the budget", func() bool {
		return gw.prod.InflightBytes() > 900<<10 || aliceFull.Load() > 0
	})

	const want = 20
	worst := 0
	for i := range want {
		refusals := 0
		for {
			_, err := bob.pub.Publish(testContext(t, 30*time.Second), &kgatev1.PublishRequest{Topic: topic,
				Messages: []*kgatev1.Message{{Value: []byte(fmt.Sprintf("bob-%d", i))}}})
			if err == nil {
				break
			}
			st, d := detailsOf(t, err)
			if st.Code() != codes.ResourceExhausted || d.retry == nil {
				t.Fatalf("bob's message %d: %v %q, want OK or RESOURCE_EXHAUSTED with RetryInfo", i, st.Code(), st.Message())
			}
			// Once refused, bob is active and alice is held to her share,
			// so he gets in at his next try; 3 leaves room for a loaded
			// machine (without shares he was refused up to 7 times in a row).
			if refusals++; refusals > 3 {
				t.Fatalf("bob's message %d was refused %d times while alice floods (alice: %d OK, %d refused for her share): the flood keeps him out",
					i, refusals, aliceOK.Load(), aliceShare.Load())
			}
			time.Sleep(d.retry.RetryDelay.AsDuration())
		}
		worst = max(worst, refusals)
	}
	okBefore := aliceOK.Load()
	kafkatest.Eventually(t, 30*time.Second*timeoutScale, "alice still publishes", func() bool { return aliceOK.Load() > okBefore })
	stopFlood()
	flood.Wait()
	t.Logf("bob: %d messages, at most %d refusals for one; alice: %d OK, %d refused for her share, %d for a full budget",
		want, worst, aliceOK.Load(), aliceShare.Load(), aliceFull.Load())
	if aliceShare.Load() == 0 {
		t.Errorf("alice was never refused for her share (INFLIGHT_SHARE_EXHAUSTED)")
	}
	got := 0
	for _, r := range kafkatest.ReadAll(t, brokers, topic) {
		if strings.HasPrefix(string(r.Value), "bob-") {
			got++
		}
	}
	if got != want {
		t.Errorf("the topic holds %d of bob's messages, want %d", got, want)
	}
}

// reasonOf is the ErrorInfo reason of a status error, or "".
func reasonOf(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.Reason
		}
	}
	return ""
}
