package kafkaio

// Observer receives the group consumers' events for metrics. Its methods
// are called from the consumers' goroutines and must be safe for
// concurrent use and must not block. NopObserver ignores everything.
type Observer interface {
	// Redelivered counts a record delivered again, by reason: nack,
	// deadline, revoked (its stream ended or drained before acking it),
	// rebalance (Kafka moved its partition here from another member that
	// had delivered it) or restart (an earlier consumer of this gateway had
	// delivered it).
	Redelivered(group, reason string)
	// DeadLettered counts a record written to the dead-letter topic.
	DeadLettered(group string)
	// IgnoredAck counts an ack, nack or extend that named no current
	// delivery (malformed, unknown, stale or of a revoked partition).
	IgnoredAck(group string)
	// Committed counts an offset commit round by its outcome.
	Committed(group string, ok bool)
	// Rebalanced counts partitions assigned to a group's consumer by Kafka.
	Rebalanced(group string)
	// Outstanding adds delta to the records held by group consumers.
	Outstanding(delta int)
	// Paused adds delta to the group's partitions paused for room (in its
	// streams' windows or the subscription budget).
	Paused(group string, delta int)
	// Stalled adds delta to the group's partitions that are stalled:
	// assigned, not paused, with records waiting and none fetched lately.
	Stalled(group string, delta int)
	// StallRecovered counts a stalled partition sought again.
	StallRecovered(group string)
	// Lag reports, for one partition, the records between the group's
	// commit offset and the partition's end; deleted when the partition is
	// revoked (lag < 0).
	Lag(group string, tp TopicPartition, lag int64)
}

// NopObserver is an Observer that ignores everything.
type NopObserver struct{}

func (NopObserver) Redelivered(string, string)        {}
func (NopObserver) DeadLettered(string)               {}
func (NopObserver) IgnoredAck(string)                 {}
func (NopObserver) Committed(string, bool)            {}
func (NopObserver) Rebalanced(string)                 {}
func (NopObserver) Outstanding(int)                   {}
func (NopObserver) Paused(string, int)                {}
func (NopObserver) Stalled(string, int)               {}
func (NopObserver) StallRecovered(string)             {}
func (NopObserver) Lag(string, TopicPartition, int64) {}
