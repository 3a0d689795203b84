package kafkaio

import (
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// rebalance is called by Poll on the owner goroutine when Kafka changes
// this member's partitions. Under the cooperative protocol the lists are
// changes only; under the eager one every revocation is of everything.
func (g *groupConsumer) rebalance(c *kafka.Consumer, ev kafka.Event) error {
	// Not c.GetRebalanceProtocol(): it waits on librdkafka's group thread,
	// which can deadlock inside this callback while the consumer closes.
	switch e := ev.(type) {
	case kafka.AssignedPartitions:
		g.assigned(e.Partitions)
	case kafka.RevokedPartitions:
		g.revoked(e.Partitions)
	}
	return nil
}

// assigned starts consuming partitions from their committed offsets, with
// what the commits' metadata says of the acks above them.
func (g *groupConsumer) assigned(ps []kafka.TopicPartition) {
	g.reportSoon()
	if len(ps) == 0 {
		if !g.coop {
			if err := g.c.Assign(ps); err != nil {
				g.log.Error("assigning no partitions", "err", err)
			}
		}
		return
	}
	now := time.Now()
	g.obs.Rebalanced(g.group)
	starts, metadata := g.startOffsets(ps)
	for i := range ps {
		ps[i].Offset = kafka.OffsetStored // librdkafka's own lookup, when ours failed
		if starts[i] >= 0 {
			ps[i].Offset = kafka.Offset(starts[i])
		}
		ps[i].Metadata = nil
	}
	var err error
	if g.coop {
		err = g.c.IncrementalAssign(ps)
	} else {
		err = g.c.Assign(ps)
	}
	if err != nil {
		g.log.Error("assigning partitions", "partitions", ps, "err", err)
	}
	// librdkafka keeps a partition's pause across its revocation and a new
	// assignment (confluent-kafka-go#193); the partition starts unpaused
	// here.
	if err := g.c.Resume(ps); err != nil {
		g.log.Warn("resuming newly assigned partitions", "partitions", ps, "err", err)
	}
	tps := topicPartitions(ps)
	for i, tp := range tps {
		g.d.Assign(tp, starts[i], metadata[i])
		g.parts[tp] = &fetchState{seekTo: -1, lastRecord: now}
	}
	g.log.Info("partitions assigned", "partitions", tps)
	g.flush(now)
}

// startOffsets returns where each partition starts: its committed offset,
// with the commit's metadata, or (with none committed) the earliest or
// latest offset as the group starts. A start it cannot learn is -1;
// librdkafka then finds it, and the first record read sets it.
func (g *groupConsumer) startOffsets(ps []kafka.TopicPartition) ([]int64, []string) {
	starts := make([]int64, len(ps))
	metadata := make([]string, len(ps))
	for i := range starts {
		starts[i] = -1
	}
	query := make([]kafka.TopicPartition, len(ps))
	for i, p := range ps {
		query[i] = kafka.TopicPartition{Topic: p.Topic, Partition: p.Partition}
	}
	committed, err := g.c.Committed(query, int(brokerWait/time.Millisecond))
	if err != nil || len(committed) != len(ps) {
		g.log.Warn("fetching committed offsets failed: consuming from librdkafka's own lookup, without the acks kept in the commits' metadata (records acked above a gap are delivered again)", "err", err)
		return starts, metadata
	}
	var reset []kafka.TopicPartition
	var resetAt []int
	for i, c := range committed {
		if c.Error == nil && c.Offset >= 0 {
			starts[i] = int64(c.Offset)
			if c.Metadata != nil {
				metadata[i] = *c.Metadata
			}
			continue
		}
		at := kafka.OffsetEnd
		if g.startEarliest {
			at = kafka.OffsetBeginning
		}
		// OffsetsForTimes takes Kafka's special timestamps: -2 earliest, -1
		// latest.
		reset = append(reset, kafka.TopicPartition{Topic: c.Topic, Partition: c.Partition, Offset: at})
		resetAt = append(resetAt, i)
	}
	if len(reset) == 0 {
		return starts, metadata
	}
	offs, err := g.c.OffsetsForTimes(reset, int(brokerWait/time.Millisecond))
	if err != nil || len(offs) != len(reset) {
		g.log.Warn("looking up where partitions without a committed offset start failed; librdkafka looks it up", "err", err)
		return starts, metadata
	}
	for j, o := range offs {
		if o.Error == nil && o.Offset >= 0 {
			starts[resetAt[j]] = int64(o.Offset)
		}
	}
	return starts, metadata
}

// brokerWait bounds the broker requests made while assigning partitions.
const brokerWait = 10 * time.Second

// revoked commits what is acked of partitions taken from this member and
// forgets their records: their unacked records are delivered by the new
// owner, which skips those acked above the commit.
func (g *groupConsumer) revoked(ps []kafka.TopicPartition) {
	g.reportSoon()
	now := time.Now()
	lost := g.c.AssignmentLost()
	tps := topicPartitions(ps)
	var final []kafkaCommit
	for _, tp := range tps {
		if c, ok := g.d.Revoke(tp); ok && !lost {
			final = append(final, c)
		}
		if fs := g.parts[tp]; fs != nil {
			if fs.paused {
				g.obs.Paused(g.group, -1)
			}
			if fs.stalled {
				g.obs.Stalled(g.group, -1)
			}
		}
		delete(g.parts, tp)
		g.obs.Lag(g.group, tp, -1)
	}
	g.flush(now)
	if len(final) > 0 {
		// Before the partitions move: the new owner reads these commits.
		g.committer.commitNow(final, min(revokeCommitWait, time.Until(g.deadline())))
	}
	g.committer.forget(tps)
	var err error
	if g.coop {
		err = g.c.IncrementalUnassign(ps)
	} else {
		err = g.c.Unassign()
	}
	if err != nil {
		g.log.Error("unassigning partitions", "partitions", tps, "err", err)
	}
	g.log.Info("partitions revoked", "partitions", tps, "lost", lost)
}

// revokeCommitWait bounds the wait for the commits of revoked partitions;
// after it the rebalance goes on, and the new owner delivers again what the
// commit would have skipped.
const revokeCommitWait = 5 * time.Second

// deadline is when the owner must be done: the shutdown's deadline once
// one is set, else far away.
func (g *groupConsumer) deadline() time.Time {
	select {
	case <-g.stop:
		return g.stopBy
	default:
		return time.Now().Add(time.Hour)
	}
}
