package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/gatewaytest"
	"github.com/kgate/kgate/internal/kafkatest"
	"github.com/kgate/kgate/kafkaio"
	"github.com/kgate/kgate/server"
)

// adminGateway is a test gateway with the Admin service and the HTTP
// listener, a short linger and a fast commit interval.
func adminGateway(t testing.TB, auth *server.Auth) (*gatewaytest.Gateway, string) {
	t.Helper()
	brokers := kafkatest.Brokers(t)
	return adminGatewayOn(t, brokers, auth), brokers
}

// adminGatewayOn is adminGateway in front of brokers.
func adminGatewayOn(t testing.TB, brokers string, auth *server.Auth) *gatewaytest.Gateway {
	t.Helper()
	gw := gatewaytest.Start(t, gatewaytest.Options{Producer: kafkaio.ProducerConfig{Brokers: brokers, Logger: testLogger(t)}, Auth: auth, Admin: true, HTTP: true,
		Subscriber: []func(*kafkaio.SubscriberConfig){func(c *kafkaio.SubscriberConfig) {
			c.Linger = 100 * time.Millisecond
			c.Kafka = map[string]string{"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}
		}}})
	return gw
}

func wantCode(t testing.TB, err error, code codes.Code, reason, inMessage string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != code || (reason != "" && reasonOf(err) != reason) || !strings.Contains(st.Message(), inMessage) {
		t.Fatalf("got %v %s %q, want %v %s with %q in the message", st.Code(), reasonOf(err), st.Message(), code, reason, inMessage)
	}
}

// TestAdminDescribesTopicsAndGroupLag: a topic's offsets, and a group's
// lag, its commit and this gateway's stream of it, as Admin reports them.
func TestAdminDescribesTopicsAndGroupLag(t *testing.T) {
	t.Parallel()
	gw, brokers := adminGateway(t, nil)
	topic := kafkatest.CreateTopic(t, brokers, "admin-lag", 1)
	group := kafkatest.Name("admin-lag-g")
	ctx := testContext(t, 60*time.Second)
	p0 := int32(0)
	req := &kgatev1.PublishRequest{Topic: topic}
	for i := 0; i < 10; i++ {
		req.Messages = append(req.Messages, &kgatev1.Message{Value: []byte("v"), Partition: &p0})
	}
	if _, err := gw.Pub.Publish(ctx, req); err != nil {
		t.Fatal(err)
	}
	dt, err := gw.Admin.DescribeTopic(ctx, &kgatev1.DescribeTopicRequest{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	if len(dt.Partitions) != 1 || dt.Partitions[0].EarliestOffset != 0 || dt.Partitions[0].LatestOffset != 10 {
		t.Fatalf("DescribeTopic = %v, want one partition with offsets 0 to 10", dt)
	}
	lt, err := gw.Admin.ListTopics(ctx, &kgatev1.ListTopicsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ts := range lt.Topics {
		found = found || (ts.Topic == topic && ts.Partitions == 1)
	}
	if !found {
		t.Fatalf("ListTopics does not list %s: %v", topic, lt)
	}

	s := gatewaytest.OpenStream(t, gw.Sub, &kgatev1.SubscribeOpen{Topics: []string{topic}, Group: group, StartPosition: kgatev1.StartPosition_START_POSITION_EARLIEST})
	ms := s.NextN(10, 20*time.Second*timeoutScale)
	// Ack 0-3 and 6: commit 4, one ack held above it.
	s.Ack(ms[0].AckId, ms[1].AckId, ms[2].AckId, ms[3].AckId, ms[6].AckId)
	var d *kgatev1.DescribeGroupResponse
	// Kafka's commit can be newer than the consumer's own report (at most
	// a second old): wait for both.
	kafkatest.Eventually(t, 20*time.Second*timeoutScale, "the group's commit 4 with one ack above it, and 5 held on this gateway", func() bool {
		d, err = gw.Admin.DescribeGroup(ctx, &kgatev1.DescribeGroupRequest{Group: group})
		return err == nil && len(d.Partitions) == 1 && d.Partitions[0].CommittedOffset == 4 && d.Partitions[0].AckedAboveCommit == 1 &&
			d.Partitions[0].HeldRecords == 5 && len(d.Streams) == 1 && d.Streams[0].Records == 5
	})
	p := d.Partitions[0]
	if p.EndOffset != 10 || p.Lag != 6 || !p.OnThisGateway || p.HeldRecords != 5 {
		t.Errorf("partition %v: want end 10, lag 6, on this gateway, 5 held", p)
	}
	if len(d.Streams) != 1 || !strings.HasPrefix(d.Streams[0].Client, "anonymous@127.0.0.1:") || d.Streams[0].Records != 5 {
		t.Errorf("streams %v: want one of anonymous@127.0.0.1:..., holding 5", d.Streams)
	}
	if len(d.Members) != 1 || d.Members[0].ClientId != "kgate" {
		t.Errorf("members %v: want the gateway's consumer", d.Members)
	}
	// The gateway's own view: one Subscribe stream, 11 messages written.
	gwi, err := gw.Admin.DescribeGateway(ctx, &kgatev1.DescribeGatewayRequest{})
	if err != nil {
		t.Fatal(err)
	}
	streams := map[string]int64{}
	for _, sc := range gwi.Streams {
		streams[sc.Rpc] = sc.Open
	}
	if streams["Subscribe"] != 1 || gwi.PublishedMessages != 10 || gwi.InflightLimitBytes != 64<<20 || gwi.SubscribeMemoryLimitBytes <= 0 ||
		gwi.Brokers != brokers || len(gwi.Health) != 4 || gwi.StartTime == nil || gwi.Time == nil {
		t.Errorf("DescribeGateway = %v: want 1 Subscribe stream, 10 published, the 64 MiB budget, the brokers, 4 health entries", gwi)
	}
	lg, err := gw.Admin.ListGroups(ctx, &kgatev1.ListGroupsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	found = false
	for _, g := range lg.Groups {
		found = found || (g.Group == group && g.OnThisGateway)
	}
	if !found {
		t.Errorf("ListGroups does not list %s on this gateway: %v", group, lg)
	}
	_, err = gw.Admin.DescribeGroup(ctx, &kgatev1.DescribeGroupRequest{Group: kafkatest.Name("nobody")})
	wantCode(t, err, codes.NotFound, "UNKNOWN_GROUP", "no member and no committed offset")
	_, err = gw.Admin.DescribeTopic(ctx, &kgatev1.DescribeTopicRequest{Topic: kafkatest.Name("absent")})
	wantCode(t, err, codes.NotFound, "UNKNOWN_TOPIC", "does not exist")
	_, err = gw.Admin.DescribeTopic(ctx, &kgatev1.DescribeTopicRequest{Topic: "bad topic"})
	wantCode(t, err, codes.InvalidArgument, "INVALID_TOPIC", "characters Kafka does not allow")
}

// TestAdminResetGroupOffsets: refused, naming the members, while the group
// has a stream; then moved to earliest, latest, a time and an exact
// offset, and the group reads from there.
func TestAdminResetGroupOffsets(t *testing.T) {
	t.Parallel()
	gw, brokers := adminGateway(t, nil)
	topic := kafkatest.CreateTopic(t, brokers, "admin-reset", 2)
	group := kafkatest.Name("admin-reset-g")
	ctx := testContext(t, 90*time.Second)
	p0 := int32(0)
	req := &kgatev1.PublishRequest{Topic: topic}
	for i := 0; i < 6; i++ {
		req.Messages = append(req.Messages, &kgatev1.Message{Value: []byte{byte('a' + i)}, Partition: &p0})
	}
	res, err := gw.Pub.Publish(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	s := gatewaytest.OpenStream(t, gw.Sub, &kgatev1.SubscribeOpen{Topics: []string{topic}, Group: group, StartPosition: kgatev1.StartPosition_START_POSITION_EARLIEST})
	for _, m := range s.NextN(6, 20*time.Second*timeoutScale) {
		s.Ack(m.AckId)
	}
	kafkatest.Eventually(t, 20*time.Second*timeoutScale, "commit 6", func() bool { return committed(t, brokers, group, topic)[0] == 6 })

	_, err = gw.Admin.ResetGroupOffsets(ctx, &kgatev1.ResetGroupOffsetsRequest{Group: group, Topic: topic, Target: &kgatev1.ResetGroupOffsetsRequest_Earliest{Earliest: true}})
	wantCode(t, err, codes.FailedPrecondition, kafkaio.ReasonGroupHasMembers, "this gateway's stream of \"anonymous@127.0.0.1:")
	if got := committed(t, brokers, group, topic)[0]; got != 6 {
		t.Fatalf("a refused reset moved the commit to %d", got)
	}
	if err := s.End(10 * time.Second * timeoutScale); err != nil {
		t.Fatal(err)
	}
	reset := func(r *kgatev1.ResetGroupOffsetsRequest) (*kgatev1.ResetGroupOffsetsResponse, error) {
		var resp *kgatev1.ResetGroupOffsetsResponse
		kafkatest.Eventually(t, 20*time.Second*timeoutScale, "the group without members after the linger", func() bool {
			resp, err = gw.Admin.ResetGroupOffsets(ctx, r)
			return reasonOf(err) != kafkaio.ReasonGroupHasMembers
		})
		return resp, err
	}
	// Bad targets, refused whatever the members.
	_, err = gw.Admin.ResetGroupOffsets(ctx, &kgatev1.ResetGroupOffsetsRequest{Group: group, Topic: topic})
	wantCode(t, err, codes.InvalidArgument, "INVALID_ARGUMENT", "set one of earliest")
	_, err = reset(&kgatev1.ResetGroupOffsetsRequest{Group: group, Topic: topic, Partitions: []int32{0}, Target: &kgatev1.ResetGroupOffsetsRequest_Offset{Offset: 7}})
	wantCode(t, err, codes.InvalidArgument, kafkaio.ReasonOffsetOutOfRange, "holds offsets 0 to 6")
	_, err = reset(&kgatev1.ResetGroupOffsetsRequest{Group: group, Topic: topic, Partitions: []int32{5}, Target: &kgatev1.ResetGroupOffsetsRequest_Latest{Latest: true}})
	wantCode(t, err, codes.NotFound, kafkaio.ReasonUnknownPartition, "not 5")

	dry, err := reset(&kgatev1.ResetGroupOffsetsRequest{Group: group, Topic: topic, Partitions: []int32{0}, Target: &kgatev1.ResetGroupOffsetsRequest_Offset{Offset: 2}, DryRun: true})
	if err != nil || !dry.DryRun || len(dry.Partitions) != 1 || dry.Partitions[0].PreviousOffset != 6 || dry.Partitions[0].NewOffset != 2 {
		t.Fatalf("dry run = %v, %v", dry, err)
	}
	if got := committed(t, brokers, group, topic)[0]; got != 6 {
		t.Fatalf("a dry run moved the commit to %d", got)
	}
	// To the time of the fourth record: the group reads d, e, f again.
	resp, err := reset(&kgatev1.ResetGroupOffsetsRequest{Group: group, Topic: topic, Partitions: []int32{0}, Target: &kgatev1.ResetGroupOffsetsRequest_Timestamp{Timestamp: res.Results[3].Timestamp}})
	if err != nil || len(resp.Partitions) != 1 || resp.Partitions[0].NewOffset > 3 {
		t.Fatalf("reset to a time = %v, %v; want partition 0 at 3 or before", resp, err)
	}
	resp, err = reset(&kgatev1.ResetGroupOffsetsRequest{Group: group, Topic: topic, Partitions: []int32{0}, Target: &kgatev1.ResetGroupOffsetsRequest_Offset{Offset: 3}})
	if err != nil || resp.Partitions[0].NewOffset != 3 {
		t.Fatalf("reset to offset 3 = %v, %v", resp, err)
	}
	if got := committed(t, brokers, group, topic)[0]; got != 3 {
		t.Fatalf("commit after the reset %d, want 3", got)
	}
	s2 := gatewaytest.OpenStream(t, gw.Sub, &kgatev1.SubscribeOpen{Topics: []string{topic}, Group: group})
	if m := s2.Next(20 * time.Second * timeoutScale); m.Offset != 3 || string(m.Value) != "d" {
		t.Fatalf("after the reset the group read offset %d (%q), want 3 (d)", m.Offset, m.Value)
	}
}

// TestAdminDeadLetters: records dead-lettered by a stream are peeked with
// their origin, redriven to the origin topic with a header naming where
// they were, and a second redrive writes nothing; a filtered redrive
// leaves the others for later; a topic of plain records is no dead-letter
// topic.
func TestAdminDeadLetters(t *testing.T) {
	t.Parallel()
	gw, brokers := adminGateway(t, nil)
	orders := kafkatest.CreateTopic(t, brokers, "admin-dl-orders", 1)
	other := kafkatest.CreateTopic(t, brokers, "admin-dl-other", 1)
	dlq := kafkatest.CreateTopic(t, brokers, "admin-dl-dlq", 1)
	ctx := testContext(t, 120*time.Second)
	deadLetter := func(topic string, values ...string) {
		t.Helper()
		req := &kgatev1.PublishRequest{Topic: topic}
		for _, v := range values {
			req.Messages = append(req.Messages, &kgatev1.Message{Value: []byte(v), Headers: []*kgatev1.Header{{Key: "trace", Value: []byte(v)}}})
		}
		if _, err := gw.Pub.Publish(ctx, req); err != nil {
			t.Fatal(err)
		}
		s := gatewaytest.OpenStream(t, gw.Sub, &kgatev1.SubscribeOpen{Topics: []string{topic}, Group: kafkatest.Name("dl"), StartPosition: kgatev1.StartPosition_START_POSITION_EARLIEST,
			MaxDeliveryAttempts: 1, DeadLetterTopic: dlq})
		for _, m := range s.NextN(len(values), 20*time.Second*timeoutScale) {
			s.Nack(durationpb.New(0), m.AckId)
		}
	}
	deadLetter(orders, "o1", "o2", "o3")
	var peek *kgatev1.PeekDeadLettersResponse
	var err error
	kafkatest.Eventually(t, 20*time.Second*timeoutScale, "3 dead letters", func() bool {
		peek, err = gw.Admin.PeekDeadLetters(ctx, &kgatev1.PeekDeadLettersRequest{Topic: dlq})
		if err != nil || len(peek.DeadLetters) != 3 {
			t.Logf("peek: %v, %v", peek, err)
		}
		return err == nil && len(peek.DeadLetters) == 3
	})
	for _, dl := range peek.DeadLetters {
		o := dl.Origin
		if o == nil || o.Topic != orders || o.Attempts != 1 || !strings.Contains(o.Reason, "not acked after 1 delivery attempts") || dl.Redriven {
			t.Fatalf("dead letter %v: want origin %s after 1 attempt, not redriven", dl, orders)
		}
	}
	deadLetter(other, "x1")
	kafkatest.Eventually(t, 20*time.Second*timeoutScale, "4 dead letters", func() bool {
		peek, err = gw.Admin.PeekDeadLetters(ctx, &kgatev1.PeekDeadLettersRequest{Topic: dlq})
		return err == nil && len(peek.DeadLetters) == 4
	})
	peek, err = gw.Admin.PeekDeadLetters(ctx, &kgatev1.PeekDeadLettersRequest{Topic: dlq, Limit: 2})
	if err != nil || len(peek.DeadLetters) != 2 || !peek.More {
		t.Fatalf("peek of 2 = %v, %v; want 2 and more", peek, err)
	}

	// Only other's: the three of orders are skipped, and stay.
	r, err := gw.Admin.RedriveDeadLetters(ctx, &kgatev1.RedriveDeadLettersRequest{Topic: dlq, OriginTopic: other})
	if err != nil || len(r.Redriven) != 1 || r.Skipped != 3 || r.Redriven[0].Origin.Topic != other || r.Redriven[0].Result == nil {
		t.Fatalf("filtered redrive = %v, %v; want x1 redriven, 3 skipped", r, err)
	}
	// A dry run of the rest writes nothing.
	r, err = gw.Admin.RedriveDeadLetters(ctx, &kgatev1.RedriveDeadLettersRequest{Topic: dlq, DryRun: true})
	if err != nil || len(r.Redriven) != 3 || !r.DryRun {
		t.Fatalf("dry run = %v, %v; want the three of orders", r, err)
	}
	r, err = gw.Admin.RedriveDeadLetters(ctx, &kgatev1.RedriveDeadLettersRequest{Topic: dlq, Limit: 2})
	if err != nil || len(r.Redriven) != 2 || !r.More {
		t.Fatalf("redrive of 2 = %v, %v; want 2 and more", r, err)
	}
	r, err = gw.Admin.RedriveDeadLetters(ctx, &kgatev1.RedriveDeadLettersRequest{Topic: dlq})
	if err != nil || len(r.Redriven) != 1 || r.More {
		t.Fatalf("redrive of the rest = %v, %v; want 1", r, err)
	}
	// Again, by accident: nothing is written twice.
	r, err = gw.Admin.RedriveDeadLetters(ctx, &kgatev1.RedriveDeadLettersRequest{Topic: dlq})
	if err != nil || len(r.Redriven) != 0 {
		t.Fatalf("second redrive = %v, %v; want nothing redriven", r, err)
	}
	peek, err = gw.Admin.PeekDeadLetters(ctx, &kgatev1.PeekDeadLettersRequest{Topic: dlq, Offset: new(int64)})
	if err != nil || len(peek.DeadLetters) != 4 {
		t.Fatalf("peek from 0 = %v, %v", peek, err)
	}
	for _, dl := range peek.DeadLetters {
		if !dl.Redriven {
			t.Errorf("dead letter at %d not marked redriven", dl.Record.Offset)
		}
	}
	// The origin topics hold each record twice: the original and one copy,
	// which names its dead letter and has no kgate.dlq headers.
	copies := map[string]int{}
	for _, rec := range append(kafkatest.ReadAll(t, brokers, orders), kafkatest.ReadAll(t, brokers, other)...) {
		var from string
		for _, h := range rec.Headers {
			if strings.HasPrefix(h.Key, "kgate.dlq.") {
				t.Errorf("copy %s carries %s", rec.Value, h.Key)
			}
			if h.Key == kafkaio.HeaderRedrivenFrom {
				from = string(h.Value)
			}
		}
		if from != "" {
			if !strings.HasPrefix(from, dlq+"/0@") {
				t.Errorf("copy %s names %q, want %s/0@offset", rec.Value, from, dlq)
			}
			copies[string(rec.Value)]++
		}
	}
	for _, v := range []string{"o1", "o2", "o3", "x1"} {
		if copies[v] != 1 {
			t.Errorf("%s was redriven %d times, want once", v, copies[v])
		}
	}
	// Not a dead-letter topic: refused, nothing written.
	_, err = gw.Admin.PeekDeadLetters(ctx, &kgatev1.PeekDeadLettersRequest{Topic: orders})
	wantCode(t, err, codes.FailedPrecondition, kafkaio.ReasonNotDeadLetter, "not a dead-letter topic")
	_, err = gw.Admin.RedriveDeadLetters(ctx, &kgatev1.RedriveDeadLettersRequest{Topic: other})
	wantCode(t, err, codes.FailedPrecondition, kafkaio.ReasonNotDeadLetter, "not a dead-letter topic")
	_, err = gw.Admin.PeekDeadLetters(ctx, &kgatev1.PeekDeadLettersRequest{Topic: dlq, Limit: 101})
	wantCode(t, err, codes.InvalidArgument, "INVALID_ARGUMENT", "use 1 to 100")
}

// TestAdminPermissions: admin follows the ACL's admin rules; redrive also
// needs subscribe on the dead-letter topic and publish on the origin, and
// writes nothing without them; without an ACL, anonymous callers may read
// but not change, unless anonymous admin is allowed.
func TestAdminPermissions(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	orders := kafkatest.CreateTopic(t, brokers, "perm-orders", 1)
	dlq := kafkatest.CreateTopic(t, brokers, "perm-dlq", 1)
	rules := []server.Rule{
		{Principal: "ops", Action: server.ActionAdmin, Topic: "perm-*", Group: "*"},
		{Principal: "ops", Action: server.ActionSubscribe, Topic: dlq, Group: "*"},
		{Principal: "ops", Action: server.ActionSubscribe, Topic: orders, Group: "*"},
		{Principal: "ops", Action: server.ActionPublish, Topic: "*"},
		{Principal: "half", Action: server.ActionAdmin, Topic: "perm-*", Group: "*"},
		{Principal: "half", Action: server.ActionSubscribe, Topic: dlq, Group: "*"},
	}
	auth, err := server.NewAuth(server.AuthConfig{Tokens: map[string]string{"t-ops": "ops", "t-half": "half", "t-bob": "bob"}, Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	gw := adminGatewayOn(t, brokers, auth)
	as := func(tok string) *tokenCtx { return &tokenCtx{t: t, tok: tok} }
	ctx := as("t-ops").ctx(60 * time.Second)
	if _, err := gw.Pub.Publish(ctx, &kgatev1.PublishRequest{Topic: orders, Messages: []*kgatev1.Message{{Value: []byte("o")}}}); err != nil {
		t.Fatal(err)
	}
	dlStream, err := gw.Sub.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := dlStream.Send(&kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Open{Open: &kgatev1.SubscribeOpen{Topics: []string{orders}, Group: "ops.dl",
		StartPosition: kgatev1.StartPosition_START_POSITION_EARLIEST, MaxDeliveryAttempts: 1, DeadLetterTopic: dlq}}}); err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := dlStream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if m := resp.GetMessage(); m != nil {
			_ = dlStream.Send(&kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Nack{Nack: &kgatev1.SubscribeNack{AckIds: []string{m.AckId}, Delay: durationpb.New(0)}}})
			break
		}
	}
	kafkatest.Eventually(t, 20*time.Second*timeoutScale, "the dead letter", func() bool {
		p, err := gw.Admin.PeekDeadLetters(ctx, &kgatev1.PeekDeadLettersRequest{Topic: dlq})
		return err == nil && len(p.DeadLetters) == 1
	})
	// bob: no admin rule.
	_, err = gw.Admin.DescribeTopic(as("t-bob").ctx(10*time.Second), &kgatev1.DescribeTopicRequest{Topic: orders})
	wantCode(t, err, codes.PermissionDenied, server.ReasonNotAllowed, `principal "bob" may not make Admin calls on topic`)
	_, err = gw.Admin.DescribeGateway(as("t-bob").ctx(10*time.Second), &kgatev1.DescribeGatewayRequest{})
	wantCode(t, err, codes.PermissionDenied, server.ReasonNotAllowed, "may not make Admin calls")
	if _, err := gw.Admin.DescribeGateway(ctx, &kgatev1.DescribeGatewayRequest{}); err != nil {
		t.Errorf("ops's DescribeGateway: %v", err)
	}
	lt, err := gw.Admin.ListTopics(as("t-bob").ctx(10*time.Second), &kgatev1.ListTopicsRequest{})
	if err != nil || len(lt.Topics) != 0 {
		t.Errorf("bob lists %v, %v; want no topic", lt, err)
	}
	_, err = gw.Admin.PeekDeadLetters(as("t-bob").ctx(10*time.Second), &kgatev1.PeekDeadLettersRequest{Topic: dlq})
	wantCode(t, err, codes.PermissionDenied, server.ReasonNotAllowed, "may not make Admin calls")
	// half: admin and subscribe on the dead letters, but no publish to the
	// origin: refused, and nothing written.
	_, err = gw.Admin.RedriveDeadLetters(as("t-half").ctx(30*time.Second), &kgatev1.RedriveDeadLettersRequest{Topic: dlq})
	wantCode(t, err, codes.PermissionDenied, server.ReasonNotAllowed, "may not publish topic \""+orders+"\"")
	if n := len(kafkatest.ReadAll(t, brokers, orders)); n != 1 {
		t.Fatalf("a refused redrive wrote: %s holds %d records, want 1", orders, n)
	}
	r, err := gw.Admin.RedriveDeadLetters(ctx, &kgatev1.RedriveDeadLettersRequest{Topic: dlq})
	if err != nil || len(r.Redriven) != 1 {
		t.Fatalf("ops's redrive = %v, %v", r, err)
	}

	// Without an ACL, anonymous: reads yes, changes no.
	open := adminGatewayOn(t, brokers, mustAuth(t, server.AuthConfig{}))
	actx := testContext(t, 30*time.Second)
	if _, err := open.Admin.DescribeTopic(actx, &kgatev1.DescribeTopicRequest{Topic: orders}); err != nil {
		t.Errorf("anonymous DescribeTopic without an ACL: %v", err)
	}
	_, err = open.Admin.ResetGroupOffsets(actx, &kgatev1.ResetGroupOffsetsRequest{Group: "g", Topic: orders, Target: &kgatev1.ResetGroupOffsetsRequest_Latest{Latest: true}})
	wantCode(t, err, codes.PermissionDenied, server.ReasonNotAllowed, "--allow-anonymous-admin")
	_, err = open.Admin.RedriveDeadLetters(actx, &kgatev1.RedriveDeadLettersRequest{Topic: dlq})
	wantCode(t, err, codes.PermissionDenied, server.ReasonNotAllowed, "--allow-anonymous-admin")
	if r, err := open.Admin.RedriveDeadLetters(actx, &kgatev1.RedriveDeadLettersRequest{Topic: dlq, DryRun: true}); err != nil || len(r.Redriven) != 0 {
		t.Errorf("anonymous dry run = %v, %v; want allowed, nothing left to redrive", r, err)
	}
	allowed := adminGatewayOn(t, brokers, mustAuth(t, server.AuthConfig{AllowAnonymousAdmin: true}))
	if _, err := allowed.Admin.ResetGroupOffsets(actx, &kgatev1.ResetGroupOffsetsRequest{Group: kafkatest.Name("anon"), Topic: orders, Target: &kgatev1.ResetGroupOffsetsRequest_Latest{Latest: true}}); err != nil {
		t.Errorf("anonymous reset with --allow-anonymous-admin: %v", err)
	}
}

func mustAuth(t testing.TB, cfg server.AuthConfig) *server.Auth {
	t.Helper()
	a, err := server.NewAuth(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// tokenCtx makes contexts that carry a bearer token.
type tokenCtx struct {
	t   testing.TB
	tok string
}

func (c *tokenCtx) ctx(d time.Duration) context.Context {
	return metadata.AppendToOutgoingContext(testContext(c.t, d), "authorization", "Bearer "+c.tok)
}

// TestConcurrentRedrivesWriteEachDeadLetterOnce: two gateways redrive the
// same dead-letter topic at the same time, again and again: each dead
// letter is copied exactly once; a redrive that meets the other is refused
// (REDRIVE_RUNNING) or abandoned before writing (REDRIVE_INTERRUPTED).
func TestConcurrentRedrivesWriteEachDeadLetterOnce(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	orders := kafkatest.CreateTopic(t, brokers, "conc-orders", 2)
	dlq := kafkatest.CreateTopic(t, brokers, "conc-dlq", 2)
	a, b := adminGatewayOn(t, brokers, nil), adminGatewayOn(t, brokers, nil)
	ctx := testContext(t, 120*time.Second)
	const n = 30
	req := &kgatev1.PublishRequest{Topic: orders}
	for i := 0; i < n; i++ {
		req.Messages = append(req.Messages, &kgatev1.Message{Key: []byte{byte(i)}, Value: []byte{'v', byte('A' + i)}})
	}
	if _, err := a.Pub.Publish(ctx, req); err != nil {
		t.Fatal(err)
	}
	s := gatewaytest.OpenStream(t, a.Sub, &kgatev1.SubscribeOpen{Topics: []string{orders}, Group: kafkatest.Name("conc"), StartPosition: kgatev1.StartPosition_START_POSITION_EARLIEST,
		MaxDeliveryAttempts: 1, DeadLetterTopic: dlq})
	for _, m := range s.NextN(n, 20*time.Second*timeoutScale) {
		s.Nack(durationpb.New(0), m.AckId)
	}
	kafkatest.Eventually(t, 20*time.Second*timeoutScale, "all dead-lettered", func() bool { return len(kafkatest.ReadAll(t, brokers, dlq)) == n })

	results := make(chan error, 64)
	redrive := func(gw *gatewaytest.Gateway) {
		for i := 0; i < 8; i++ {
			_, err := gw.Admin.RedriveDeadLetters(ctx, &kgatev1.RedriveDeadLettersRequest{Topic: dlq, Limit: 7})
			results <- err
		}
	}
	done := make(chan struct{})
	go func() { defer close(done); redrive(b) }()
	redrive(a)
	<-done
	close(results)
	outcomes := map[string]int{}
	for err := range results {
		r := reasonOf(err)
		outcomes[r]++
		// Each answer is OK or a documented retry: another redrive runs or
		// started, or (on a loaded machine) a partition's read timed out.
		if err != nil && r != kafkaio.ReasonRedriveRunning && r != kafkaio.ReasonRedriveInterrupt && r != kafkaio.ReasonReadTimedOut {
			t.Errorf("a concurrent redrive failed otherwise: %v", err)
		}
	}
	t.Logf("16 concurrent redrives: %v (\"\": OK)", outcomes)
	// Whatever is left, redriven now (once the other gateway's last member
	// has left the redrive group).
	kafkatest.Eventually(t, 30*time.Second*timeoutScale, "nothing left to redrive", func() bool {
		r, err := a.Admin.RedriveDeadLetters(ctx, &kgatev1.RedriveDeadLettersRequest{Topic: dlq})
		if r := reasonOf(err); err != nil && r != kafkaio.ReasonRedriveRunning && r != kafkaio.ReasonRedriveInterrupt && r != kafkaio.ReasonReadTimedOut {
			t.Fatal(err)
		}
		return err == nil && len(r.Redriven) == 0 && !r.More
	})
	copies := map[string]int{}
	for _, rec := range kafkatest.ReadAll(t, brokers, orders) {
		for _, h := range rec.Headers {
			if h.Key == kafkaio.HeaderRedrivenFrom {
				copies[string(rec.Value)]++
			}
		}
	}
	if len(copies) != n {
		t.Errorf("%d distinct dead letters redriven, want %d", len(copies), n)
	}
	for v, c := range copies {
		if c != 1 {
			t.Errorf("%q was copied %d times, want once", v, c)
		}
	}
}
