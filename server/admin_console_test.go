package server_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/gatewaytest"
	"github.com/kgate/kgate/internal/kafkatest"
	"github.com/kgate/kgate/server"
)

// TestDescribeGatewayCaller: DescribeGateway says who the caller is and
// whether it may ask for changes, as the console shows it.
func TestDescribeGatewayCaller(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	rules := []server.Rule{{Principal: "ops", Action: server.ActionAdmin, Topic: "*", Group: "*"}, {Principal: "bob", Action: server.ActionSubscribe, Topic: "*"}}
	for _, tc := range []struct {
		name   string
		auth   server.AuthConfig
		token  string
		caller *kgatev1.Caller
	}{
		{"anonymous", server.AuthConfig{}, "", &kgatev1.Caller{Principal: server.Anonymous}},
		{"anonymous admin allowed", server.AuthConfig{AllowAnonymousAdmin: true}, "", &kgatev1.Caller{Principal: server.Anonymous, MayChange: true}},
		{"token without ACL", server.AuthConfig{Tokens: map[string]string{"t-ops": "ops"}}, "t-ops", &kgatev1.Caller{Principal: "ops", Identified: true, MayChange: true}},
		{"ACL with an admin rule", server.AuthConfig{Tokens: map[string]string{"t-ops": "ops"}, Rules: rules}, "t-ops", &kgatev1.Caller{Principal: "ops", Identified: true, Acl: true, MayChange: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw := adminGatewayOn(t, brokers, mustAuth(t, tc.auth))
			ctx := testContext(t, 20*time.Second)
			if tc.token != "" {
				ctx = (&tokenCtx{t: t, tok: tc.token}).ctx(20 * time.Second)
			}
			resp, err := gw.Admin.DescribeGateway(ctx, &kgatev1.DescribeGatewayRequest{})
			if err != nil {
				t.Fatal(err)
			}
			c := resp.GetCaller()
			if c.GetPrincipal() != tc.caller.Principal || c.GetIdentified() != tc.caller.Identified || c.GetAcl() != tc.caller.Acl || c.GetMayChange() != tc.caller.MayChange {
				t.Errorf("caller %v, want %v", c, tc.caller)
			}
		})
	}
}

// TestDescribeGroupRedeliveries: DescribeGroup counts the group's
// redeliveries by reason and its dead letters on this gateway.
func TestDescribeGroupRedeliveries(t *testing.T) {
	t.Parallel()
	gw, brokers := adminGateway(t, nil)
	topic := kafkatest.CreateTopic(t, brokers, "admin-redeliver", 1)
	dlq := kafkatest.CreateTopic(t, brokers, "admin-redeliver-dlq", 1)
	group := kafkatest.Name("admin-redeliver-g")
	ctx := testContext(t, 60*time.Second)
	if _, err := gw.Pub.Publish(ctx, &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: []byte("a")}, {Value: []byte("b")}}}); err != nil {
		t.Fatal(err)
	}
	s := gatewaytest.OpenStream(t, gw.Sub, &kgatev1.SubscribeOpen{Topics: []string{topic}, Group: group, StartPosition: kgatev1.StartPosition_START_POSITION_EARLIEST,
		MaxDeliveryAttempts: 2, DeadLetterTopic: dlq})
	first := s.NextN(2, 20*time.Second*timeoutScale)
	s.Nack(durationpb.New(0), first[0].AckId, first[1].AckId) // both again, attempt 2
	again := s.NextN(2, 20*time.Second*timeoutScale)
	s.Ack(again[0].AckId)
	s.Nack(durationpb.New(0), again[1].AckId) // its last attempt: a dead letter
	kafkatest.Eventually(t, 20*time.Second*timeoutScale, "2 nack redeliveries and 1 dead letter", func() bool {
		d, err := gw.Admin.DescribeGroup(ctx, &kgatev1.DescribeGroupRequest{Group: group})
		if err != nil {
			t.Fatal(err)
		}
		return len(d.Redeliveries) == 1 && d.Redeliveries[0].Reason == "nack" && d.Redeliveries[0].Count == 2 && d.DeadLetters == 1
	})
}
