package server

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/kafkaio"
)

// AdminBackend inspects and repairs Kafka for the Admin service;
// *kafkaio.Admin implements it (see its methods for the errors). All
// methods must be safe for concurrent use.
type AdminBackend interface {
	Topics(ctx context.Context) ([]kafkaio.TopicSummary, error)
	Topic(ctx context.Context, topic string) ([]kafkaio.PartitionOffsets, error)
	Groups(ctx context.Context) ([]kafkaio.GroupSummary, error)
	Group(ctx context.Context, group string) (kafkaio.GroupDescription, error)
	ResetOffsets(ctx context.Context, group, topic string, partitions []int32, target kafkaio.ResetTarget, dryRun bool) ([]kafkaio.OffsetReset, error)
	PeekDeadLetters(ctx context.Context, topic string, partition *int32, offset *int64, limit int) ([]kafkaio.DeadLetter, bool, error)
	Redrive(ctx context.Context, topic string, f kafkaio.RedriveFilter, limit int, allow func(originTopic string) error, dryRun bool) (kafkaio.RedriveResult, error)
}

// AdminService implements kgate.v1.Admin.
type AdminService struct {
	kgatev1.UnimplementedAdminServer
	admin   AdminBackend
	auth    *Auth        // set by NewGRPCServer
	gateway *GatewayInfo // set by SetGateway
}

// NewAdminService returns the Admin service backed by admin.
func NewAdminService(admin AdminBackend) *AdminService { return &AdminService{admin: admin} }

// AdminServiceName is the Admin service's name, for health checks.
const AdminServiceName = "kgate.v1.Admin"

func invalidArg(format string, args ...any) error {
	return invalidf("INVALID_ARGUMENT", format, args...)
}

// ListTopics implements kgate.v1.Admin/ListTopics.
func (s *AdminService) ListTopics(ctx context.Context, _ *kgatev1.ListTopicsRequest) (*kgatev1.ListTopicsResponse, error) {
	ts, err := s.admin.Topics(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	allowed := s.auth.adminFilter(ctx)
	resp := &kgatev1.ListTopicsResponse{}
	for _, t := range ts {
		if allowed == nil || allowed(t.Topic, "") {
			resp.Topics = append(resp.Topics, &kgatev1.TopicSummary{Topic: t.Topic, Partitions: t.Partitions})
		}
	}
	return resp, nil
}

// DescribeTopic implements kgate.v1.Admin/DescribeTopic.
func (s *AdminService) DescribeTopic(ctx context.Context, req *kgatev1.DescribeTopicRequest) (*kgatev1.DescribeTopicResponse, error) {
	if err := kafkaio.ValidateTopic(req.GetTopic()); err != nil {
		return nil, toStatus(err)
	}
	if err := s.auth.authorizeAdmin(ctx, req.GetTopic(), "", false); err != nil {
		return nil, toStatus(err)
	}
	ps, err := s.admin.Topic(ctx, req.GetTopic())
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &kgatev1.DescribeTopicResponse{Topic: req.GetTopic()}
	for _, p := range ps {
		resp.Partitions = append(resp.Partitions, &kgatev1.PartitionOffsets{Partition: p.Partition, EarliestOffset: p.Earliest, LatestOffset: p.Latest})
	}
	return resp, nil
}

// ListGroups implements kgate.v1.Admin/ListGroups.
func (s *AdminService) ListGroups(ctx context.Context, _ *kgatev1.ListGroupsRequest) (*kgatev1.ListGroupsResponse, error) {
	gs, err := s.admin.Groups(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	allowed := s.auth.adminFilter(ctx)
	resp := &kgatev1.ListGroupsResponse{}
	for _, g := range gs {
		if allowed == nil || allowed("", g.Group) {
			resp.Groups = append(resp.Groups, &kgatev1.GroupSummary{Group: g.Group, State: g.State, OnThisGateway: g.OnThisGateway})
		}
	}
	return resp, nil
}

// DescribeGroup implements kgate.v1.Admin/DescribeGroup. With an ACL, the
// partitions of topics the caller may not administer are left out.
func (s *AdminService) DescribeGroup(ctx context.Context, req *kgatev1.DescribeGroupRequest) (*kgatev1.DescribeGroupResponse, error) {
	group := req.GetGroup()
	if err := kafkaio.ValidateGroup(group); err != nil {
		return nil, toStatus(asInvalidGroup(err))
	}
	if err := s.auth.authorizeAdmin(ctx, "", group, false); err != nil {
		return nil, toStatus(err)
	}
	d, err := s.admin.Group(ctx, group)
	if err != nil {
		return nil, toStatus(err)
	}
	allowed := s.auth.adminFilter(ctx)
	resp := &kgatev1.DescribeGroupResponse{Group: d.Group, State: d.State}
	for _, m := range d.Members {
		resp.Members = append(resp.Members, &kgatev1.GroupMember{MemberId: m.MemberID, ClientId: m.ClientID, Host: m.Host, Assigned: topicPartitions(m.Assigned)})
	}
	for _, st := range d.Sessions {
		resp.Streams = append(resp.Streams, &kgatev1.GatewayStream{Session: st.ID, Client: st.Client, Records: int64(st.Records), MaxRecords: int64(st.MaxRecords),
			Bytes: st.Bytes, MaxBytes: st.MaxBytes, Draining: st.Draining, Partitions: topicPartitions(st.Partitions)})
	}
	for _, p := range d.Partitions {
		if allowed != nil && !allowed(p.Topic, group) {
			continue
		}
		resp.Partitions = append(resp.Partitions, &kgatev1.GroupPartition{Topic: p.Topic, Partition: p.Partition, CommittedOffset: p.Committed,
			EndOffset: p.End, Lag: p.Lag, AckedAboveCommit: p.AckedAbove, OnThisGateway: p.OnThisGateway, HeldRecords: int64(p.Held),
			Paused: p.Paused, Stalled: p.Stalled})
	}
	if !d.ReportedAt.IsZero() {
		resp.GatewayReportTime = timestamppb.New(d.ReportedAt)
	}
	if s.gateway != nil {
		resp.Redeliveries, resp.DeadLetters = s.gateway.Metrics.groupCounts(group)
	}
	return resp, nil
}

func asInvalidGroup(err error) error {
	if ke, ok := err.(*kafkaio.Error); ok {
		c := *ke
		c.Reason = "INVALID_GROUP"
		return &c
	}
	return err
}

// ResetGroupOffsets implements kgate.v1.Admin/ResetGroupOffsets.
func (s *AdminService) ResetGroupOffsets(ctx context.Context, req *kgatev1.ResetGroupOffsetsRequest) (*kgatev1.ResetGroupOffsetsResponse, error) {
	if err := kafkaio.ValidateGroup(req.GetGroup()); err != nil {
		return nil, toStatus(asInvalidGroup(err))
	}
	if err := kafkaio.ValidateTopic(req.GetTopic()); err != nil {
		return nil, toStatus(err)
	}
	if err := s.auth.authorizeAdmin(ctx, req.GetTopic(), req.GetGroup(), true); err != nil {
		return nil, toStatus(err)
	}
	var target kafkaio.ResetTarget
	switch t := req.GetTarget().(type) {
	case *kgatev1.ResetGroupOffsetsRequest_Earliest:
		target.Earliest = t.Earliest
	case *kgatev1.ResetGroupOffsetsRequest_Latest:
		target.Latest = t.Latest
	case *kgatev1.ResetGroupOffsetsRequest_Timestamp:
		if err := t.Timestamp.CheckValid(); err != nil || t.Timestamp.AsTime().Before(time.Unix(0, 0)) {
			return nil, invalidArg("timestamp is not a valid time after 1970 (%v): give an RFC 3339 time such as 2026-11-30T09:00:00Z", err)
		}
		target.Timestamp = t.Timestamp.AsTime()
	case *kgatev1.ResetGroupOffsetsRequest_Offset:
		off := t.Offset
		target.Offset = &off
	}
	if !target.Earliest && !target.Latest && target.Timestamp.IsZero() && target.Offset == nil {
		return nil, invalidArg("say where to move the offsets: set one of earliest (true), latest (true), timestamp or offset")
	}
	for _, p := range req.GetPartitions() {
		if p < 0 {
			return nil, invalidArg("partition %d is negative: partitions are numbered from 0", p)
		}
	}
	rs, err := s.admin.ResetOffsets(ctx, req.GetGroup(), req.GetTopic(), req.GetPartitions(), target, req.GetDryRun())
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &kgatev1.ResetGroupOffsetsResponse{DryRun: req.GetDryRun()}
	for _, r := range rs {
		resp.Partitions = append(resp.Partitions, &kgatev1.OffsetReset{Topic: r.Topic, Partition: r.Partition, PreviousOffset: r.Previous, NewOffset: r.New})
	}
	return resp, nil
}

// PeekDeadLetters implements kgate.v1.Admin/PeekDeadLetters.
func (s *AdminService) PeekDeadLetters(ctx context.Context, req *kgatev1.PeekDeadLettersRequest) (*kgatev1.PeekDeadLettersResponse, error) {
	topic := req.GetTopic()
	if err := s.authorizeDeadLetters(ctx, topic, false); err != nil {
		return nil, err
	}
	limit := int(req.GetLimit())
	switch {
	case limit == 0:
		limit = 10
	case limit < 0 || limit > 100:
		return nil, invalidArg("limit %d is out of range: use 1 to 100, or 0 for 10", limit)
	}
	if req.Partition != nil && req.GetPartition() < 0 {
		return nil, invalidArg("partition %d is negative: partitions are numbered from 0", req.GetPartition())
	}
	if req.Offset != nil && req.GetOffset() < 0 {
		return nil, invalidArg("offset %d is negative: offsets start at 0", req.GetOffset())
	}
	dls, more, err := s.admin.PeekDeadLetters(ctx, topic, req.Partition, req.Offset, limit)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &kgatev1.PeekDeadLettersResponse{More: more}
	for i := range dls {
		dl := &dls[i]
		m := &kgatev1.ReceivedMessage{}
		fillReceived(m, &dl.Record)
		m.AckId = ""
		m.DeliveryAttempt = 0
		out := &kgatev1.DeadLetter{Record: m, Redriven: dl.Redriven}
		if dl.Origin != nil {
			out.Origin = deadLetterOrigin(*dl.Origin)
		}
		resp.DeadLetters = append(resp.DeadLetters, out)
	}
	return resp, nil
}

// authorizeDeadLetters checks a dead-letter topic's name and that the
// caller may administer it (change: to redrive) and read its records.
func (s *AdminService) authorizeDeadLetters(ctx context.Context, topic string, change bool) error {
	if err := kafkaio.ValidateTopic(topic); err != nil {
		return toStatus(err)
	}
	if err := s.auth.authorizeAdmin(ctx, topic, "", change); err != nil {
		return toStatus(err)
	}
	if err := s.auth.authorizeRead(ctx, topic); err != nil {
		return toStatus(err)
	}
	return nil
}

func deadLetterOrigin(o kafkaio.DeadLetterOrigin) *kgatev1.DeadLetterOrigin {
	return &kgatev1.DeadLetterOrigin{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset, Attempts: o.Attempts, Reason: o.Reason}
}

// RedriveDeadLetters implements kgate.v1.Admin/RedriveDeadLetters.
func (s *AdminService) RedriveDeadLetters(ctx context.Context, req *kgatev1.RedriveDeadLettersRequest) (*kgatev1.RedriveDeadLettersResponse, error) {
	topic := req.GetTopic()
	if err := s.authorizeDeadLetters(ctx, topic, !req.GetDryRun()); err != nil {
		return nil, err
	}
	limit := int(req.GetLimit())
	switch {
	case limit == 0:
		limit = 100
	case limit < 0 || limit > 10000:
		return nil, invalidArg("limit %d is out of range: use 1 to 10000, or 0 for 100", limit)
	}
	if o := req.GetOriginTopic(); o != "" {
		if err := kafkaio.ValidateTopic(o); err != nil {
			return nil, invalidArg("origin_topic: %v", err)
		}
	}
	if len(req.GetReasonContains()) > 1024 {
		return nil, invalidArg("reason_contains is %d bytes long: use at most 1024", len(req.GetReasonContains()))
	}
	if req.Partition != nil && req.GetPartition() < 0 {
		return nil, invalidArg("partition %d is negative: partitions are numbered from 0", req.GetPartition())
	}
	allow := func(origin string) error {
		if err := s.auth.authorize(ctx, ActionPublish, origin, ""); err != nil {
			c := *err
			c.Message += "; nothing was redriven"
			return &c
		}
		return nil
	}
	f := kafkaio.RedriveFilter{OriginTopic: req.GetOriginTopic(), ReasonContains: req.GetReasonContains(), Partition: req.Partition}
	res, err := s.admin.Redrive(kafkaio.WithBudgetOwner(ctx, Principal(ctx)), topic, f, limit, allow, req.GetDryRun())
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &kgatev1.RedriveDeadLettersResponse{Skipped: res.Skipped, More: res.More, DryRun: req.GetDryRun()}
	for _, r := range res.Redriven {
		out := &kgatev1.RedrivenDeadLetter{DeadLetterPartition: r.DeadLetter.Partition, DeadLetterOffset: r.Offset, Origin: deadLetterOrigin(r.Origin)}
		if !req.GetDryRun() {
			out.Result = publishResult(&r.Result)
		}
		resp.Redriven = append(resp.Redriven, out)
	}
	return resp, nil
}
