package kafkaio

// Observer receives a subscription's events for metrics. Its methods are
// called from subscription goroutines and must be safe for concurrent use
// and must not block. NopObserver ignores everything.
type Observer interface {
	// Redelivered counts a record delivered again (attempt > 1).
	Redelivered(group string)
	// DeadLettered counts a record written to the dead-letter topic.
	DeadLettered(group string)
	// IgnoredAck counts an ack, nack or extend that named no current
	// delivery (malformed, unknown, stale or of a revoked partition).
	IgnoredAck(group string)
	// Committed counts an offset commit by its outcome.
	Committed(group string, ok bool)
	// Paused adds delta to the group's partitions paused for flow control
	// (no room in the window for their next record).
	Paused(group string, delta int)
	// Outstanding adds delta to the records held by subscriptions.
	Outstanding(delta int)
	// Lag reports, for one partition, the records between the group's
	// commit offset and the partition's end; deleted when the partition is
	// revoked (lag < 0).
	Lag(group string, tp TopicPartition, lag int64)
}

// NopObserver is an Observer that ignores everything.
type NopObserver struct{}

func (NopObserver) Redelivered(string)                {}
func (NopObserver) DeadLettered(string)               {}
func (NopObserver) IgnoredAck(string)                 {}
func (NopObserver) Committed(string, bool)            {}
func (NopObserver) Outstanding(int)                   {}
func (NopObserver) Paused(string, int)                {}
func (NopObserver) Lag(string, TopicPartition, int64) {}
