package kafkaio

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/kgate/kgate/flowcontrol"
)

// AdminConfig configures NewAdmin. Zero values mean the documented
// defaults.
type AdminConfig struct {
	// Brokers is the bootstrap server list. Required.
	Brokers string
	// Kafka holds librdkafka property overrides (security, for example),
	// as for the consumers.
	Kafka map[string]string
	// Subscriber, when set, is this gateway's group consumers: DescribeGroup
	// adds what they hold, and ResetOffsets names their streams.
	Subscriber *Subscriber
	// Publisher writes redriven dead letters. Required for Redrive.
	Publisher DeadLetterPublisher
	// Instance names this gateway in the redrive progress's metadata.
	// Default: the host name.
	Instance string
	// CacheFor is how long answers of Topics, Topic, Groups and Group are
	// reused, so that consoles polling the gateway cost Kafka little.
	// Default 1 s; negative: no cache.
	CacheFor time.Duration
	// MaxReads bounds the peeks and redrives running at once (each reads
	// records with a Kafka consumer of its own). Default 4.
	MaxReads int
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// Admin inspects and repairs topics, consumer groups and dead letters with
// Kafka's admin API and short-lived consumers. It is safe for concurrent
// use. Its first call that needs Kafka starts its Kafka client (and the
// client's log forwarder); Close stops it.
type Admin struct {
	cfg  AdminConfig
	log  *slog.Logger
	logs sync.WaitGroup
	// The Kafka client, made by the first call that needs it (client), so
	// that a gateway whose Admin API is not used holds no connection or
	// thread for it.
	clientMu sync.Mutex
	c        *kafka.Consumer // never subscribes: metadata and the admin client's handle
	ac       *kafka.AdminClient
	closed   bool
	reads    chan struct{} // semaphore of MaxReads
	// redriving serializes redrives on this gateway (cap 1).
	redriving chan struct{}

	cacheMu sync.Mutex
	cache   map[string]cached
}

type cached struct {
	at  time.Time
	val any
}

// NewAdmin returns an Admin; it connects lazily.
func NewAdmin(cfg AdminConfig) (*Admin, error) {
	if cfg.CacheFor == 0 {
		cfg.CacheFor = time.Second
	}
	if cfg.MaxReads <= 0 {
		cfg.MaxReads = 4
	}
	if cfg.Instance == "" {
		cfg.Instance, _ = os.Hostname()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if _, err := kafkaConfig(cfg.Brokers, nil, withoutGuarded(cfg.Kafka), nil); err != nil {
		return nil, err // refused at start, not at the first call
	}
	return &Admin{cfg: cfg, log: cfg.Logger.With("component", "admin"), reads: make(chan struct{}, cfg.MaxReads),
		redriving: make(chan struct{}, 1), cache: map[string]cached{}}, nil
}

// client returns the Admin's Kafka admin client, starting it on first use.
func (a *Admin) client() (*kafka.AdminClient, error) {
	a.clientMu.Lock()
	defer a.clientMu.Unlock()
	if a.closed {
		return nil, errorf(KindUnavailable, ReasonClosed, "the gateway is shutting down: retry at another instance")
	}
	if a.ac != nil {
		return a.ac, nil
	}
	cm, err := kafkaConfig(a.cfg.Brokers, map[string]string{
		"client.id":              "kgate-admin",
		"group.id":               "kgate.admin",
		"enable.auto.commit":     "false",
		"enable.metrics.push":    "false",
		"go.logs.channel.enable": "true",
	}, withoutGuarded(a.cfg.Kafka), nil)
	if err != nil {
		return nil, err
	}
	c, err := kafka.NewConsumer(&cm)
	if err != nil {
		return nil, errorf(KindInternal, "INTERNAL", "creating the admin's Kafka client: %s", RedactSecrets(err.Error(), a.cfg.Kafka))
	}
	a.logs.Add(1)
	go func() { defer a.logs.Done(); forwardLogs(c.Logs(), a.log) }()
	ac, err := kafka.NewAdminClientFromConsumer(c)
	if err != nil {
		_ = c.Close()
		return nil, errorf(KindInternal, "INTERNAL", "creating the Kafka admin client: %v", err)
	}
	a.c, a.ac = c, ac
	return ac, nil
}

// withoutGuarded drops the properties the gateway sets itself for its
// consumers (group.id, ...), which Admin's own clients set otherwise.
func withoutGuarded(props map[string]string) map[string]string {
	out := maps.Clone(props)
	for _, g := range consumerGuards {
		delete(out, g.key)
	}
	return out
}

// Close stops the Admin's Kafka client. Calls still running fail.
func (a *Admin) Close() {
	a.clientMu.Lock()
	a.closed = true
	if a.ac != nil {
		a.ac.Close()
		_ = a.c.Close()
	}
	a.clientMu.Unlock()
	a.logs.Wait()
}

// remember returns the cached answer for key, or computes and caches it.
func remember[T any](a *Admin, key string, f func() (T, error)) (T, error) {
	now := time.Now()
	if a.cfg.CacheFor > 0 {
		a.cacheMu.Lock()
		e, ok := a.cache[key]
		a.cacheMu.Unlock()
		if ok && now.Sub(e.at) < a.cfg.CacheFor {
			return e.val.(T), nil
		}
	}
	v, err := f()
	if err != nil || a.cfg.CacheFor <= 0 {
		return v, err
	}
	a.cacheMu.Lock()
	defer a.cacheMu.Unlock()
	if len(a.cache) >= 1024 { // bounded: drop what expired, else everything
		for k, e := range a.cache {
			if now.Sub(e.at) >= a.cfg.CacheFor {
				delete(a.cache, k)
			}
		}
		if len(a.cache) >= 1024 {
			clear(a.cache)
		}
	}
	a.cache[key] = cached{at: now, val: v}
	return v, nil
}

func (a *Admin) forget(key string) {
	a.cacheMu.Lock()
	delete(a.cache, key)
	a.cacheMu.Unlock()
}

// TopicSummary is one topic of Topics.
type TopicSummary struct {
	Topic      string
	Partitions int32
}

// Topics lists the cluster's topics, without Kafka's internal ones (names
// starting with "__"), ordered by name.
func (a *Admin) Topics(ctx context.Context) ([]TopicSummary, error) {
	return remember(a, "topics", func() ([]TopicSummary, error) {
		ac, err := a.client()
		if err != nil {
			return nil, err
		}
		md, err := ac.GetMetadata(nil, true, timeoutMs(ctx, 10*time.Second))
		if err != nil {
			return nil, unavailable(fromKafka(err, "listing topics"))
		}
		out := make([]TopicSummary, 0, len(md.Topics))
		for name, t := range md.Topics {
			if strings.HasPrefix(name, "__") || t.Error.Code() != kafka.ErrNoError {
				continue
			}
			out = append(out, TopicSummary{Topic: name, Partitions: int32(len(t.Partitions))})
		}
		slices.SortFunc(out, func(x, y TopicSummary) int { return strings.Compare(x.Topic, y.Topic) })
		return out, nil
	})
}

// PartitionOffsets is the range of offsets a partition holds.
type PartitionOffsets struct {
	Partition        int32
	Earliest, Latest int64
}

// Topic returns topic's partitions with their earliest and latest offsets;
// KindNotFound when it does not exist.
func (a *Admin) Topic(ctx context.Context, topic string) ([]PartitionOffsets, error) {
	if err := ValidateTopic(topic); err != nil {
		return nil, err
	}
	return remember(a, "topic\x00"+topic, func() ([]PartitionOffsets, error) {
		parts, err := a.partitions(ctx, topic)
		if err != nil {
			return nil, err
		}
		tps := make([]TopicPartition, len(parts))
		for i, p := range parts {
			tps[i] = TopicPartition{Topic: topic, Partition: p}
		}
		marks, err := a.watermarks(ctx, tps)
		if err != nil {
			return nil, err
		}
		out := make([]PartitionOffsets, len(parts))
		for i, tp := range tps {
			out[i] = PartitionOffsets{Partition: tp.Partition, Earliest: marks[tp][0], Latest: marks[tp][1]}
		}
		return out, nil
	})
}

// partitions returns topic's partition numbers, ascending.
func (a *Admin) partitions(ctx context.Context, topic string) ([]int32, error) {
	ac, err := a.client()
	if err != nil {
		return nil, err
	}
	md, err := ac.GetMetadata(&topic, false, timeoutMs(ctx, 10*time.Second))
	if err != nil {
		return nil, unavailable(fromKafka(err, fmt.Sprintf("fetching metadata for topic %s", QuoteName(topic))))
	}
	t, ok := md.Topics[topic]
	if !ok || t.Error.Code() == kafka.ErrUnknownTopicOrPart || t.Error.Code() == kafka.ErrUnknownTopic || (t.Error.Code() == kafka.ErrNoError && len(t.Partitions) == 0) {
		return nil, errorf(KindNotFound, ReasonUnknownTopic, "topic %s does not exist: check its name (ListTopics lists the topics)", QuoteName(topic))
	}
	if t.Error.Code() != kafka.ErrNoError {
		return nil, fromKafka(t.Error, fmt.Sprintf("topic %s", QuoteName(topic)))
	}
	out := make([]int32, len(t.Partitions))
	for i, p := range t.Partitions {
		out[i] = p.ID
	}
	slices.Sort(out)
	return out, nil
}

// unavailable turns an error of a metadata or admin request into
// KindUnavailable unless it says more.
func unavailable(e *Error) *Error {
	if e.Kind == KindInternal || e.Kind == KindUnknownOutcome {
		e.Kind = KindUnavailable
	}
	return e
}

// watermarks returns each partition's earliest and latest offsets.
func (a *Admin) watermarks(ctx context.Context, tps []TopicPartition) (map[TopicPartition][2]int64, error) {
	out := make(map[TopicPartition][2]int64, len(tps))
	if len(tps) == 0 {
		return out, nil
	}
	for i, spec := range []kafka.OffsetSpec{kafka.EarliestOffsetSpec, kafka.LatestOffsetSpec} {
		res, err := a.listOffsets(ctx, tps, spec)
		if err != nil {
			return nil, err
		}
		for tp, off := range res {
			v := out[tp]
			v[i] = off
			out[tp] = v
		}
	}
	return out, nil
}

// listOffsets asks Kafka for the offset of spec in each partition.
func (a *Admin) listOffsets(ctx context.Context, tps []TopicPartition, spec kafka.OffsetSpec) (map[TopicPartition]int64, error) {
	req := make(map[kafka.TopicPartition]kafka.OffsetSpec, len(tps))
	for _, tp := range tps {
		req[kafkaTP(tp, 0)] = spec
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ac, err := a.client()
	if err != nil {
		return nil, err
	}
	res, err := ac.ListOffsets(ctx, req)
	if err != nil {
		return nil, unavailable(fromKafka(err, "listing offsets"))
	}
	out := make(map[TopicPartition]int64, len(res.ResultInfos))
	for ktp, info := range res.ResultInfos {
		tp := TopicPartition{Topic: *ktp.Topic, Partition: ktp.Partition}
		if info.Error.Code() != kafka.ErrNoError {
			return nil, unavailable(fromKafka(info.Error, fmt.Sprintf("listing offsets of %s/%d", QuoteName(tp.Topic), tp.Partition)))
		}
		out[tp] = int64(info.Offset)
	}
	return out, nil
}

// GroupSummary is one group of Groups.
type GroupSummary struct {
	Group         string
	State         string
	OnThisGateway bool
}

// Groups lists the consumer groups Kafka knows of and those this gateway
// consumes for, ordered by name.
func (a *Admin) Groups(ctx context.Context) ([]GroupSummary, error) {
	all, err := remember(a, "groups", func() ([]GroupSummary, error) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		ac, err := a.client()
		if err != nil {
			return nil, err
		}
		res, err := ac.ListConsumerGroups(ctx)
		if err != nil {
			return nil, unavailable(fromKafka(err, "listing consumer groups"))
		}
		out := make([]GroupSummary, 0, len(res.Valid))
		for _, g := range res.Valid {
			out = append(out, GroupSummary{Group: g.GroupID, State: g.State.String()})
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	by := make(map[string]GroupSummary, len(all))
	for _, g := range all {
		by[g.Group] = g
	}
	for _, info := range a.local() {
		g, ok := by[info.Group]
		if !ok {
			g = GroupSummary{Group: info.Group, State: "Unknown"}
		}
		g.OnThisGateway = true
		by[info.Group] = g
	}
	out := slices.Collect(maps.Values(by))
	slices.SortFunc(out, func(x, y GroupSummary) int { return strings.Compare(x.Group, y.Group) })
	return out, nil
}

// local returns what this gateway's group consumers report.
func (a *Admin) local() []GroupInfo {
	if a.cfg.Subscriber == nil {
		return nil
	}
	return a.cfg.Subscriber.Groups()
}

// GroupMember is one member of a group as Kafka reports it.
type GroupMember struct {
	MemberID, ClientID, Host string
	Assigned                 []TopicPartition
}

// GroupPartition is one partition of a group.
type GroupPartition struct {
	TopicPartition
	// Committed is the committed offset, -1 when none (from this gateway's
	// consumer where it holds the partition).
	Committed int64
	// End is the partition's latest offset; Lag the records from the
	// commit (or from the earliest offset without one) to End.
	End, Lag int64
	// AckedAbove counts the acked offsets above the commit.
	AckedAbove    int64
	OnThisGateway bool
	Held          int
	Paused        bool
	Stalled       bool
}

// GroupDescription is what DescribeGroup returns.
type GroupDescription struct {
	Group      string
	State      string
	Members    []GroupMember
	Sessions   []SessionInfo // this gateway's streams of the group
	Partitions []GroupPartition
	// ReportedAt is when this gateway's consumer reported (zero when it
	// does not consume for the group).
	ReportedAt time.Time
}

// kafkaGroup is what Kafka says of a group: its description and
// committed offsets with their metadata.
type kafkaGroup struct {
	state     string
	exists    bool
	members   []GroupMember
	committed map[TopicPartition]kafka.TopicPartition
}

// kafkaGroup asks Kafka about group.
func (a *Admin) kafkaGroup(ctx context.Context, group string) (kafkaGroup, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	kg := kafkaGroup{committed: map[TopicPartition]kafka.TopicPartition{}}
	ac, err := a.client()
	if err != nil {
		return kg, err
	}
	desc, err := ac.DescribeConsumerGroups(ctx, []string{group})
	if err != nil {
		return kg, unavailable(fromKafka(err, fmt.Sprintf("describing group %s", QuoteName(group))))
	}
	for _, d := range desc.ConsumerGroupDescriptions {
		switch d.Error.Code() {
		case kafka.ErrNoError:
		case kafka.ErrGroupIDNotFound:
			continue
		default:
			return kg, unavailable(fromKafka(d.Error, fmt.Sprintf("describing group %s", QuoteName(group))))
		}
		kg.state = d.State.String()
		kg.exists = d.State != kafka.ConsumerGroupStateDead
		for _, m := range d.Members {
			kg.members = append(kg.members, GroupMember{MemberID: m.ConsumerID, ClientID: m.ClientID, Host: m.Host, Assigned: topicPartitions(m.Assignment.TopicPartitions)})
		}
	}
	offs, err := ac.ListConsumerGroupOffsets(ctx, []kafka.ConsumerGroupTopicPartitions{{Group: group}})
	if ke, ok := err.(kafka.Error); ok && ke.Code() == kafka.ErrGroupIDNotFound {
		err = nil // no committed offsets
	}
	if err != nil {
		return kg, unavailable(fromKafka(err, fmt.Sprintf("listing the offsets of group %s", QuoteName(group))))
	}
	for _, g := range offs.ConsumerGroupsTopicPartitions {
		for _, p := range g.Partitions {
			if p.Error != nil || p.Offset < 0 {
				continue
			}
			kg.committed[TopicPartition{Topic: *p.Topic, Partition: p.Partition}] = p
		}
	}
	if len(kg.committed) > 0 {
		kg.exists = true
	}
	if kg.state == "" {
		kg.state = "Dead"
	}
	return kg, nil
}

// Group describes group: Kafka's view (members, committed offsets) and
// this gateway's (streams, held records, commit offsets), with each
// partition's end offset and lag. KindNotFound when neither knows it.
func (a *Admin) Group(ctx context.Context, group string) (GroupDescription, error) {
	if err := ValidateGroup(group); err != nil {
		return GroupDescription{}, invalidGroup(err)
	}
	return remember(a, "group\x00"+group, func() (GroupDescription, error) {
		kg, err := a.kafkaGroup(ctx, group)
		if err != nil {
			return GroupDescription{}, err
		}
		d := GroupDescription{Group: group, State: kg.state, Members: kg.members}
		parts := map[TopicPartition]*GroupPartition{}
		for tp, p := range kg.committed {
			gp := &GroupPartition{TopicPartition: tp, Committed: int64(p.Offset)}
			if p.Metadata != nil {
				gp.AckedAbove = ackedCount(int64(p.Offset), *p.Metadata)
			}
			parts[tp] = gp
		}
		localFound := false
		for _, info := range a.local() {
			if info.Group != group {
				continue
			}
			localFound = true
			d.Sessions = append(d.Sessions, info.Sessions...)
			if info.At.After(d.ReportedAt) {
				d.ReportedAt = info.At
			}
			for _, pi := range info.Partitions {
				gp := parts[pi.TopicPartition]
				if gp == nil {
					gp = &GroupPartition{TopicPartition: pi.TopicPartition, Committed: -1}
					parts[pi.TopicPartition] = gp
				}
				gp.OnThisGateway, gp.Held, gp.Paused, gp.Stalled = true, pi.Held, pi.Paused, pi.Stalled
				if pi.Commit >= 0 {
					gp.Committed, gp.AckedAbove = pi.Commit, pi.AckedAbove
				}
			}
		}
		if !kg.exists && !localFound && len(kg.members) == 0 {
			return d, errorf(KindNotFound, "UNKNOWN_GROUP", "group %s has no member and no committed offset, and this gateway does not consume for it: check its name (ListGroups lists the groups)", QuoteName(group))
		}
		tps := slices.Collect(maps.Keys(parts))
		marks, err := a.watermarks(ctx, tps)
		if err != nil {
			return d, err
		}
		for _, tp := range tps {
			gp := parts[tp]
			m := marks[tp]
			gp.End = m[1]
			from := gp.Committed
			if from < 0 {
				from = m[0]
			}
			gp.Lag = max(gp.End-from, 0)
			d.Partitions = append(d.Partitions, *gp)
		}
		sort.Slice(d.Partitions, func(i, j int) bool {
			x, y := d.Partitions[i], d.Partitions[j]
			if x.Topic != y.Topic {
				return x.Topic < y.Topic
			}
			return x.Partition < y.Partition
		})
		return d, nil
	})
}

func invalidGroup(err error) error {
	if e, ok := err.(*Error); ok {
		c := *e
		c.Reason = "INVALID_GROUP"
		return &c
	}
	return err
}

// ackedCount counts the acked offsets kgate's commit metadata carries above
// commit; 0 for metadata of other writers.
func ackedCount(commit int64, metadata string) int64 {
	m, err := flowcontrol.DecodeCommitMetadata(commit, metadata)
	if err != nil {
		return 0
	}
	var n int64
	for _, r := range m.Acked {
		n += r.End - r.Start
	}
	return n
}

// ResetTarget says where ResetOffsets moves a group's offsets: Earliest,
// Latest, the first record at or after Timestamp, or Offset.
type ResetTarget struct {
	Earliest, Latest bool
	Timestamp        time.Time
	Offset           *int64
}

// OffsetReset is one partition's move.
type OffsetReset struct {
	TopicPartition
	Previous, New int64
}

// Reasons of Admin's errors.
const (
	ReasonGroupHasMembers   = "GROUP_HAS_MEMBERS"
	ReasonOffsetOutOfRange  = "OFFSET_OUT_OF_RANGE"
	ReasonNotDeadLetter     = "NOT_A_DEAD_LETTER_TOPIC"
	ReasonRedriveRunning    = "REDRIVE_RUNNING"
	ReasonRedriveInterrupt  = "REDRIVE_INTERRUPTED"
	ReasonAdminBusy         = "ADMIN_BUSY"
	ReasonReadTimedOut      = "READ_TIMED_OUT"
	reasonInvalidAdminInput = "INVALID_ARGUMENT"
)

// ResetOffsets moves group's committed offsets of topic (partitions, or
// every partition when empty) to target, dropping the acks held above the
// old commits. It refuses with KindConflict (GROUP_HAS_MEMBERS), naming
// them, while the group has active members. With dryRun it only computes.
func (a *Admin) ResetOffsets(ctx context.Context, group, topic string, partitions []int32, target ResetTarget, dryRun bool) ([]OffsetReset, error) {
	if err := ValidateGroup(group); err != nil {
		return nil, invalidGroup(err)
	}
	if err := ValidateTopic(topic); err != nil {
		return nil, err
	}
	n := 0
	for _, set := range []bool{target.Earliest, target.Latest, !target.Timestamp.IsZero(), target.Offset != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, errorf(KindInvalid, reasonInvalidAdminInput, "say where to move the offsets: exactly one of earliest, latest, timestamp or offset")
	}
	if len(partitions) > 10000 {
		return nil, errorf(KindInvalid, reasonInvalidAdminInput, "%d partitions: name at most 10000, or none for every partition", len(partitions))
	}
	all, err := a.partitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	if len(partitions) == 0 {
		partitions = all
	}
	partitions = slices.Compact(slices.Sorted(slices.Values(partitions)))
	for _, p := range partitions {
		if _, ok := slices.BinarySearch(all, p); !ok {
			return nil, errorf(KindNotFound, ReasonUnknownPartition, "topic %s has partitions 0 to %d, not %d", QuoteName(topic), len(all)-1, p)
		}
	}
	kg, err := a.kafkaGroup(ctx, group)
	if err != nil {
		return nil, err
	}
	if err := a.refuseActive(group, kg); err != nil {
		return nil, err
	}
	tps := make([]TopicPartition, len(partitions))
	for i, p := range partitions {
		tps[i] = TopicPartition{Topic: topic, Partition: p}
	}
	marks, err := a.watermarks(ctx, tps)
	if err != nil {
		return nil, err
	}
	out := make([]OffsetReset, len(tps))
	var byTime map[TopicPartition]int64
	if !target.Timestamp.IsZero() {
		if byTime, err = a.listOffsets(ctx, tps, kafka.NewOffsetSpecForTimestamp(target.Timestamp.UnixMilli())); err != nil {
			return nil, err
		}
	}
	for i, tp := range tps {
		m := marks[tp]
		prev := int64(-1)
		if p, ok := kg.committed[tp]; ok {
			prev = int64(p.Offset)
		}
		var to int64
		switch {
		case target.Earliest:
			to = m[0]
		case target.Latest:
			to = m[1]
		case target.Offset != nil:
			to = *target.Offset
			if to < m[0] || to > m[1] {
				return nil, errorf(KindInvalid, ReasonOffsetOutOfRange, "offset %d is outside partition %d of topic %s, which holds offsets %d to %d (the latest is the end, where the next record goes): choose one in that range",
					to, tp.Partition, QuoteName(topic), m[0], m[1])
			}
		default:
			to = byTime[tp]
			if to < 0 { // no record at or after the time
				to = m[1]
			}
		}
		out[i] = OffsetReset{TopicPartition: tp, Previous: prev, New: to}
	}
	if dryRun {
		return out, nil
	}
	commit := kafka.ConsumerGroupTopicPartitions{Group: group}
	for _, r := range out {
		empty := ""
		ktp := kafkaTP(r.TopicPartition, r.New)
		ktp.Metadata = &empty // drops the acks held above the old commit
		commit.Partitions = append(commit.Partitions, ktp)
	}
	ac, err := a.client()
	if err != nil {
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := ac.AlterConsumerGroupOffsets(actx, []kafka.ConsumerGroupTopicPartitions{commit})
	a.forget("group\x00" + group)
	if err != nil {
		return nil, a.alterError(group, err)
	}
	for _, g := range res.ConsumerGroupsTopicPartitions {
		for _, p := range g.Partitions {
			if p.Error != nil {
				return nil, a.alterError(group, p.Error)
			}
		}
	}
	a.log.Info("consumer group offsets reset", "group", QuoteName(group), "topic", QuoteName(topic), "partitions", len(out))
	return out, nil
}

// alterError classifies a failed offset commit of ResetOffsets: Kafka
// refuses one for a group that has members.
func (a *Admin) alterError(group string, err error) error {
	if ke, ok := err.(kafka.Error); ok {
		switch ke.Code() {
		case kafka.ErrUnknownMemberID, kafka.ErrRebalanceInProgress, kafka.ErrIllegalGeneration, kafka.ErrNonEmptyGroup:
			return errorf(KindConflict, ReasonGroupHasMembers, "Kafka refused to move the offsets of group %s: it has active members now (%v); stop them and retry", QuoteName(group), ke)
		}
	}
	return unavailable(fromKafka(err, fmt.Sprintf("moving the offsets of group %s (the outcome is unknown: describe the group to see where it is)", QuoteName(group))))
}

// refuseActive fails with KindConflict naming the group's active members,
// Kafka's and this gateway's streams.
func (a *Admin) refuseActive(group string, kg kafkaGroup) error {
	var who []string
	for _, m := range kg.members {
		who = append(who, fmt.Sprintf("%s (client %s, host %s)", m.MemberID, QuoteName(m.ClientID), m.Host))
	}
	local := false
	for _, info := range a.local() {
		if info.Group != group {
			continue
		}
		local = true
		for _, s := range info.Sessions {
			who = append(who, "this gateway's stream of "+QuoteName(s.Client))
		}
	}
	if local && len(who) == len(kg.members) {
		who = append(who, "this gateway's consumer of the group, lingering after its last stream ended (--subscribe-linger)")
	}
	if len(who) == 0 {
		return nil
	}
	const most = 20
	list := strings.Join(who[:min(len(who), most)], ", ")
	if len(who) > most {
		list += fmt.Sprintf(" and %d more", len(who)-most)
	}
	return errorf(KindConflict, ReasonGroupHasMembers, "group %s has active members: %s. Nothing was changed: stop its consumers (and wait for the gateways' linger after their last stream), then reset again",
		QuoteName(group), list)
}

// acquireRead takes one of the MaxReads slots, or fails at once.
func (a *Admin) acquireRead() (release func(), err error) {
	select {
	case a.reads <- struct{}{}:
		return func() { <-a.reads }, nil
	default:
		return nil, &Error{Kind: KindExhausted, Reason: ReasonAdminBusy, RetryAfter: time.Second,
			Message: fmt.Sprintf("the gateway runs %d reads of records for Admin calls at once, the most it allows: retry after the delay", a.cfg.MaxReads)}
	}
}
