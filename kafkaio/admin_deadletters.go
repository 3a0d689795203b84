package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// reader is a short-lived consumer of an Admin call, with its log
// forwarder; close stops both.
type reader struct {
	c    *kafka.Consumer
	logs sync.WaitGroup
}

func (a *Admin) newReader(group string, extra map[string]string) (*reader, error) {
	defaults := map[string]string{
		"client.id":                  "kgate-admin",
		"group.id":                   group,
		"enable.auto.commit":         "false",
		"enable.auto.offset.store":   "false",
		"auto.offset.reset":          "earliest",
		"enable.partition.eof":       "true",
		"fetch.wait.max.ms":          "20",
		"fetch.max.bytes":            "1048576",
		"queued.max.messages.kbytes": "4096",
		"enable.metrics.push":        "false",
		"go.logs.channel.enable":     "true",
	}
	for k, v := range extra {
		defaults[k] = v
	}
	cm, err := kafkaConfig(a.cfg.Brokers, defaults, withoutGuarded(a.cfg.Kafka), nil)
	if err != nil {
		return nil, err
	}
	for k, v := range extra { // the reader's own settings win
		cm[k] = goTyped(k, v)
	}
	c, err := kafka.NewConsumer(&cm)
	if err != nil {
		return nil, fmt.Errorf("creating a Kafka consumer: %s", RedactSecrets(err.Error(), a.cfg.Kafka))
	}
	r := &reader{c: c}
	r.logs.Add(1)
	go func() { defer r.logs.Done(); forwardLogs(c.Logs(), a.log) }()
	return r, nil
}

func (r *reader) close() {
	_ = r.c.Close()
	r.logs.Wait()
}

// DeadLetter is one record of a dead-letter topic.
type DeadLetter struct {
	Record Record
	// Origin is set when the record carries the gateway's dead-letter
	// headers.
	Origin   *DeadLetterOrigin
	Redriven bool
}

// maxPeekBytes bounds the keys, values and headers one peek returns (at
// least one record), so that its answer fits a client's default 4 MiB.
const maxPeekBytes = 2 << 20

// PeekDeadLetters reads up to limit records of a dead-letter topic, from
// offset (clamped up to the earliest; nil: the first not yet redriven),
// partition by partition (only partition, when not nil), without a group.
// more says records are left after those returned. It fails with
// KindConflict (NOT_A_DEAD_LETTER_TOPIC) when records were read and none
// carries the gateway's dead-letter headers.
func (a *Admin) PeekDeadLetters(ctx context.Context, topic string, partition *int32, offset *int64, limit int) (dls []DeadLetter, more bool, err error) {
	if err := ValidateTopic(topic); err != nil {
		return nil, false, err
	}
	release, err := a.acquireRead()
	if err != nil {
		return nil, false, err
	}
	defer release()
	parts, err := a.partitions(ctx, topic)
	if err != nil {
		return nil, false, err
	}
	if partition != nil {
		if _, ok := slices.BinarySearch(parts, *partition); !ok {
			return nil, false, errorf(KindNotFound, ReasonUnknownPartition, "topic %s has partitions 0 to %d, not %d", QuoteName(topic), len(parts)-1, *partition)
		}
		parts = []int32{*partition}
	}
	tps := make([]TopicPartition, len(parts))
	for i, p := range parts {
		tps[i] = TopicPartition{Topic: topic, Partition: p}
	}
	marks, err := a.watermarks(ctx, tps)
	if err != nil {
		return nil, false, err
	}
	progress, err := a.redriveProgress(ctx, topic, marks)
	if err != nil {
		return nil, false, err
	}
	r, err := a.newReader("kgate.peek", nil)
	if err != nil {
		return nil, false, err
	}
	defer r.close()
	bytes := 0
	for _, tp := range tps {
		m := marks[tp]
		pr := progress[tp]
		start := pr.commit
		if offset != nil {
			start = max(*offset, m[0])
		}
		if start >= m[1] {
			continue
		}
		if len(dls) >= limit || bytes >= maxPeekBytes {
			more = true
			break
		}
		recs, rest, err := a.readPartition(ctx, r.c, tp, start, m[1], limit-len(dls), maxPeekBytes-bytes)
		if err != nil {
			return nil, false, err
		}
		more = more || rest
		for i := range recs {
			dl := DeadLetter{Record: recs[i], Redriven: pr.has(recs[i].Offset)}
			if o, err := parseDeadLetter(recs[i].Headers); err == nil {
				dl.Origin = &o
			}
			bytes += recordBytes(&recs[i])
			dls = append(dls, dl)
		}
	}
	if len(dls) > 0 && !slices.ContainsFunc(dls, func(d DeadLetter) bool { return d.Origin != nil }) {
		return nil, false, notDeadLetterTopic(topic)
	}
	return dls, more, nil
}

func notDeadLetterTopic(topic string) error {
	return errorf(KindConflict, ReasonNotDeadLetter, "topic %s is not a dead-letter topic: its records carry none of the headers the gateway writes on dead letters (kgate.dlq.topic, ...). Check the name: it is the dead_letter_topic a Subscribe stream opened with",
		QuoteName(topic))
}

func recordBytes(r *Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// readPartition reads tp from start up to end (exclusive), at most limit
// records and maxBytes (at least one record). rest says records below end
// were left.
func (a *Admin) readPartition(ctx context.Context, c *kafka.Consumer, tp TopicPartition, start, end int64, limit, maxBytes int) (recs []Record, rest bool, err error) {
	if err := c.Assign([]kafka.TopicPartition{kafkaTP(tp, start)}); err != nil {
		return nil, false, unavailable(fromKafka(err, "assigning a partition"))
	}
	defer func() { _ = c.Unassign() }()
	bytes := 0
	deadline := time.Now().Add(10 * time.Second)
	for {
		if len(recs) >= limit || (len(recs) > 0 && bytes >= maxBytes) {
			last := recs[len(recs)-1].Offset
			return recs, last+1 < end, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			if len(recs) > 0 {
				return recs, true, nil
			}
			return nil, false, errorf(KindUnavailable, ReasonReadTimedOut, "reading partition %d of topic %s did not finish in time; retry", tp.Partition, QuoteName(tp.Topic))
		}
		switch ev := c.Poll(50).(type) {
		case *kafka.Message:
			if ev.TopicPartition.Error != nil {
				continue
			}
			off := int64(ev.TopicPartition.Offset)
			if off >= end {
				return recs, false, nil
			}
			r := *recordOf(ev)
			recs = append(recs, r)
			bytes += recordBytes(&r)
			if off+1 >= end {
				return recs, false, nil
			}
		case kafka.PartitionEOF:
			return recs, false, nil
		case kafka.Error:
			if ev.IsFatal() || ev.Code() == kafka.ErrUnknownTopicOrPart || ev.Code() == kafka.ErrTopicAuthorizationFailed {
				return nil, false, fromKafka(ev, "reading topic "+QuoteName(tp.Topic))
			}
		}
	}
}

// redriveProgress returns each partition's redrive progress (the redrive
// group's commits), starting at the earliest offset where none.
func (a *Admin) redriveProgress(ctx context.Context, topic string, marks map[TopicPartition][2]int64) (map[TopicPartition]redriveProgress, error) {
	kg, err := a.kafkaGroup(ctx, RedriveGroup(topic))
	if err != nil {
		return nil, err
	}
	out := make(map[TopicPartition]redriveProgress, len(marks))
	for tp, m := range marks {
		commit, md := int64(-1), ""
		if p, ok := kg.committed[tp]; ok {
			commit = int64(p.Offset)
			if p.Metadata != nil {
				md = *p.Metadata
			}
		}
		out[tp] = progressFrom(commit, md, m[0])
	}
	return out, nil
}

// RedriveFilter selects the dead letters to redrive; zero fields match
// everything.
type RedriveFilter struct {
	OriginTopic    string
	ReasonContains string
	Partition      *int32 // of the dead-letter topic
}

func (f RedriveFilter) match(o DeadLetterOrigin) bool {
	return (f.OriginTopic == "" || o.Topic == f.OriginTopic) && (f.ReasonContains == "" || strings.Contains(o.Reason, f.ReasonContains))
}

// Redriven is one dead letter redriven.
type Redriven struct {
	DeadLetter TopicPartition
	Offset     int64
	Origin     DeadLetterOrigin
	// Result is where the copy landed (zero with dry run).
	Result Result
}

// RedriveResult is what Redrive did.
type RedriveResult struct {
	Redriven []Redriven
	Skipped  int64
	More     bool
}

// Redrive republishes up to limit dead letters of topic matching f to
// their origin topics, as redrivenCopy makes them, and commits the
// progress in topic's redrive group (RedriveGroup), so that none is
// written twice. allow is called with each origin topic before anything is
// written; its error is returned as is, and nothing is written. With
// dryRun nothing is written or committed.
//
// The redrive joins the redrive group (its only member, so that redrives
// of one topic on different gateways never overlap): KindConflict
// REDRIVE_RUNNING when the group has a member already, KindConflict
// REDRIVE_INTERRUPTED when another one joined while this one read.
func (a *Admin) Redrive(ctx context.Context, topic string, f RedriveFilter, limit int, allow func(originTopic string) error, dryRun bool) (RedriveResult, error) {
	var res RedriveResult
	if err := ValidateTopic(topic); err != nil {
		return res, err
	}
	if a.cfg.Publisher == nil {
		return res, errorf(KindInternal, "NO_PUBLISHER", "redrive is not configured on this gateway")
	}
	release, err := a.acquireRead()
	if err != nil {
		return res, err
	}
	defer release()
	select { // one redrive at a time on this gateway
	case a.redriving <- struct{}{}:
		defer func() { <-a.redriving }()
	case <-ctx.Done():
		return res, errorf(KindUnavailable, "UNAVAILABLE", "waiting for another redrive on this gateway: %v", ctx.Err())
	}
	parts, err := a.partitions(ctx, topic)
	if err != nil {
		return res, err
	}
	if f.Partition != nil {
		if _, ok := slices.BinarySearch(parts, *f.Partition); !ok {
			return res, errorf(KindNotFound, ReasonUnknownPartition, "topic %s has partitions 0 to %d, not %d", QuoteName(topic), len(parts)-1, *f.Partition)
		}
	}
	group := RedriveGroup(topic)
	// A redrive that just ended may still be leaving the group: give it a
	// moment before calling the group busy.
	var kg kafkaGroup
	for wait := time.Now().Add(2 * time.Second); ; {
		if kg, err = a.kafkaGroup(ctx, group); err != nil {
			return res, err
		}
		if len(kg.members) == 0 || time.Now().After(wait) || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(kg.members) > 0 {
		m := kg.members[0]
		return res, errorf(KindConflict, ReasonRedriveRunning, "another redrive of topic %s is running (member %s on host %s of group %s): retry once it ended", QuoteName(topic), m.MemberID, m.Host, QuoteName(group))
	}

	rd, err := a.joinRedrive(ctx, topic, group)
	if err != nil {
		return res, err
	}
	defer rd.leave()
	// Only the partitions Kafka assigned to this member: two redrives that
	// joined at once split them, and neither touches the other's.
	mine := rd.assignedSet()
	tps := make([]TopicPartition, 0, len(parts))
	for _, p := range parts {
		if f.Partition == nil || *f.Partition == p {
			tp := TopicPartition{Topic: topic, Partition: p}
			if !mine[tp] {
				res.More = true // another redrive holds it
				continue
			}
			tps = append(tps, tp)
		}
	}
	marks, err := a.watermarks(ctx, tps)
	if err != nil {
		return res, err
	}
	progress, err := rd.progress(ctx, tps, marks)
	if err != nil {
		return res, err
	}

	// Read what to redrive.
	type pending struct {
		rec    Record
		origin DeadLetterOrigin
	}
	var batch []pending
	dead := false // saw a dead letter at all
	read := 0     // records read
	planned := make(map[TopicPartition]redriveProgress, len(tps))
	for _, tp := range tps {
		pr := progress[tp]
		planned[tp] = pr.clone()
	}
	for _, tp := range tps {
		pr := planned[tp]
		start, end := pr.commit, marks[tp][1]
		for start < end && len(batch) < limit {
			recs, _, err := a.readPartition(ctx, rd.c, tp, start, end, 500, 4<<20)
			if err != nil {
				return res, err
			}
			if rd.revoked() {
				return res, errorf(KindAborted, ReasonRedriveInterrupt, "another redrive of topic %s started while this one read; nothing was written: retry", QuoteName(topic))
			}
			if len(recs) == 0 {
				break
			}
			full := false
			for i := range recs {
				r := &recs[i]
				start = r.Offset + 1
				read++
				if pr.has(r.Offset) {
					continue
				}
				o, err := parseDeadLetter(r.Headers)
				if err == nil {
					dead = true
				}
				if err != nil || !f.match(o) {
					res.Skipped++
					continue
				}
				if len(batch) >= limit {
					res.More = true
					full = true
					break
				}
				next := pr.clone()
				next.add(r.Offset)
				if _, ok := next.metadata(a.cfg.Instance); !ok {
					res.More = true // the gaps would not fit in the commit's metadata
					full = true
					break
				}
				pr = next
				batch = append(batch, pending{rec: *r, origin: o})
			}
			if full {
				break
			}
		}
		if start < end && len(batch) >= limit {
			res.More = true
		}
		planned[tp] = pr
	}
	if read > 0 && !dead {
		return res, notDeadLetterTopic(topic)
	}
	if rd.revoked() {
		return RedriveResult{}, errorf(KindAborted, ReasonRedriveInterrupt, "another redrive of topic %s started while this one read; nothing was written: retry", QuoteName(topic))
	}
	// Permissions for every origin topic, before anything is written.
	checked := map[string]bool{}
	for _, p := range batch {
		if checked[p.origin.Topic] {
			continue
		}
		checked[p.origin.Topic] = true
		if err := allow(p.origin.Topic); err != nil {
			return RedriveResult{}, err
		}
	}
	if dryRun {
		for _, p := range batch {
			res.Redriven = append(res.Redriven, Redriven{DeadLetter: TopicPartition{Topic: p.rec.Topic, Partition: p.rec.Partition}, Offset: p.rec.Offset, Origin: p.origin})
		}
		return res, nil
	}

	// Write, origin topic by origin topic in chunks, keeping read order
	// within each; stop at the first failure.
	written := map[TopicPartition]redriveProgress{}
	for _, tp := range tps {
		written[tp] = progress[tp].clone()
	}
	var writeErr error
	byTopic := map[string][]int{}
	var order []string
	for i, p := range batch {
		if _, ok := byTopic[p.origin.Topic]; !ok {
			order = append(order, p.origin.Topic)
		}
		byTopic[p.origin.Topic] = append(byTopic[p.origin.Topic], i)
	}
	results := make([]*Result, len(batch))
write:
	for _, origin := range order {
		idx := byTopic[origin]
		for len(idx) > 0 {
			chunk := idx[:min(len(idx), 500)]
			idx = idx[len(chunk):]
			msgs := make([]Message, len(chunk))
			for j, i := range chunk {
				msgs[j] = redrivenCopy(&batch[i].rec)
			}
			rs, err := a.cfg.Publisher.Publish(ctx, origin, msgs)
			if err != nil {
				writeErr = err
				break write
			}
			for j, i := range chunk {
				if rs[j].Err != nil {
					if writeErr == nil {
						writeErr = rs[j].Err
					}
					continue
				}
				r := rs[j]
				results[i] = &r
				tp := TopicPartition{Topic: batch[i].rec.Topic, Partition: batch[i].rec.Partition}
				w := written[tp]
				w.add(batch[i].rec.Offset)
				written[tp] = w
			}
			if writeErr != nil {
				break write
			}
		}
	}
	for i, p := range batch {
		if results[i] != nil {
			res.Redriven = append(res.Redriven, Redriven{DeadLetter: TopicPartition{Topic: p.rec.Topic, Partition: p.rec.Partition}, Offset: p.rec.Offset, Origin: p.origin, Result: *results[i]})
		}
	}
	// Commit the progress of what was written.
	var commits []kafka.TopicPartition
	for _, tp := range tps {
		w := written[tp]
		md, _ := w.metadata(a.cfg.Instance)
		ktp := kafkaTP(tp, w.commit)
		ktp.Metadata = &md
		commits = append(commits, ktp)
	}
	commitErr := rd.commit(commits)
	a.forget("group\x00" + group)
	n := len(res.Redriven)
	switch {
	case commitErr != nil && n > 0:
		a.log.Error("dead letters were redriven but their progress was not committed: a later redrive writes them again", "topic", QuoteName(topic), "written", n, "err", commitErr)
		return RedriveResult{}, errorf(KindUnavailable, "REDRIVE_NOT_COMMITTED", "%d dead letters were written to their origin topics, but Kafka did not take the progress (%v): a later redrive writes them again (their copies carry header %s)", n, commitErr, redrivenHeader)
	case writeErr != nil && n == 0:
		var ke *Error
		if errors.As(writeErr, &ke) {
			c := *ke
			c.Message = "nothing was redriven: " + ke.Message
			return RedriveResult{}, &c
		}
		return RedriveResult{}, errorf(KindUnavailable, "REDRIVE_FAILED", "nothing was redriven: %v", writeErr)
	case writeErr != nil:
		var ke *Error
		e := &Error{Kind: KindUnavailable, Reason: "REDRIVE_FAILED"}
		if errors.As(writeErr, &ke) {
			e.Kind, e.Reason, e.RetryAfter = ke.Kind, ke.Reason, ke.RetryAfter
		}
		e.Message = fmt.Sprintf("%d dead letters were redriven and their progress committed, then writing failed: %v; redrive again for the rest", n, writeErr)
		return RedriveResult{}, e
	}
	if n > 0 {
		a.log.Info("dead letters redriven", "topic", QuoteName(topic), "redriven", n, "skipped", res.Skipped, "more", res.More)
	}
	return res, nil
}

// redriver is a Redrive's member of the redrive group.
type redriver struct {
	*reader
	a        *Admin
	mu       sync.Mutex
	assigned []kafka.TopicPartition
	got      bool // an assignment arrived (maybe empty)
	lost     bool
}

// joinRedrive joins group, subscribing to topic, and waits for the
// assignment (every partition when it is the only member; a share of
// them, maybe none, when another redrive joined at the same time).
func (a *Admin) joinRedrive(ctx context.Context, topic, group string) (*redriver, error) {
	r, err := a.newReader(group, map[string]string{
		"partition.assignment.strategy":   "range",
		"session.timeout.ms":              "10000",
		"heartbeat.interval.ms":           "1000",
		"enable.partition.eof":            "true",
		"go.application.rebalance.enable": "true",
	})
	if err != nil {
		return nil, err
	}
	rd := &redriver{reader: r, a: a}
	if err := r.c.SubscribeTopics([]string{topic}, rd.rebalance); err != nil {
		r.close()
		return nil, unavailable(fromKafka(err, "joining the redrive group"))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		rd.mu.Lock()
		got := rd.got
		rd.mu.Unlock()
		if got {
			return rd, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			rd.leave()
			return nil, errorf(KindUnavailable, "UNAVAILABLE", "joining the redrive group %s did not finish in time; retry", QuoteName(group))
		}
		if ev, ok := r.c.Poll(50).(kafka.Error); ok && (ev.IsFatal() || ev.Code() == kafka.ErrGroupAuthorizationFailed || ev.Code() == kafka.ErrTopicAuthorizationFailed) {
			rd.leave()
			return nil, fromKafka(ev, "joining the redrive group")
		}
	}
}

// rebalance is the redrive consumer's rebalance callback (called in Poll).
func (rd *redriver) rebalance(c *kafka.Consumer, ev kafka.Event) error {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	switch e := ev.(type) {
	case kafka.AssignedPartitions:
		if rd.got {
			rd.lost = true // assigned again: another member came
		}
		rd.got, rd.assigned = true, e.Partitions
		// Reads assign partitions themselves (readPartition); nothing is
		// fetched until then.
		return c.Assign(nil)
	case kafka.RevokedPartitions:
		if rd.got {
			rd.lost = true
		}
		return c.Unassign()
	}
	return nil
}

// assignedSet is the partitions Kafka assigned to this member.
func (rd *redriver) assignedSet() map[TopicPartition]bool {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	out := make(map[TopicPartition]bool, len(rd.assigned))
	for _, p := range rd.assigned {
		out[TopicPartition{Topic: *p.Topic, Partition: p.Partition}] = true
	}
	return out
}

func (rd *redriver) revoked() bool {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	return rd.lost
}

// progress reads the committed offsets of tps (with their metadata).
func (rd *redriver) progress(ctx context.Context, tps []TopicPartition, marks map[TopicPartition][2]int64) (map[TopicPartition]redriveProgress, error) {
	ktps := make([]kafka.TopicPartition, len(tps))
	for i, tp := range tps {
		ktps[i] = kafkaTP(tp, 0)
	}
	got, err := rd.c.Committed(ktps, timeoutMs(ctx, 10*time.Second))
	if err != nil {
		return nil, unavailable(fromKafka(err, "reading the redrive progress"))
	}
	out := make(map[TopicPartition]redriveProgress, len(tps))
	for _, p := range got {
		tp := TopicPartition{Topic: *p.Topic, Partition: p.Partition}
		md := ""
		if p.Metadata != nil {
			md = *p.Metadata
		}
		commit := int64(p.Offset)
		if p.Offset < 0 {
			commit = -1
		}
		out[tp] = progressFrom(commit, md, marks[tp][0])
	}
	for _, tp := range tps {
		if _, ok := out[tp]; !ok {
			out[tp] = progressFrom(-1, "", marks[tp][0])
		}
	}
	return out, nil
}

// commit commits the progress synchronously.
func (rd *redriver) commit(tps []kafka.TopicPartition) error {
	if len(tps) == 0 {
		return nil
	}
	res, err := rd.c.CommitOffsets(tps)
	if err != nil {
		return err
	}
	for _, p := range res {
		if p.Error != nil {
			return p.Error
		}
	}
	return nil
}

// leave leaves the group (serving the revocation) and closes the consumer.
func (rd *redriver) leave() {
	_ = rd.c.Unsubscribe()
	rd.close()
}
