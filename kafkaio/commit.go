package kafkaio

import (
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/kgate/kgate/flowcontrol"
)

// kafkaCommit is what to commit for one partition: offset and metadata.
type kafkaCommit = flowcontrol.Commit

// committer commits offsets, with their metadata, in a goroutine of its
// own: a commit is a broker round trip (confluent-kafka-go's CommitOffsets
// blocks until the coordinator answers), which the owner never waits for,
// except for the commits of partitions being revoked (bounded).
//
// librdkafka's auto-commit cannot be used: it skips a partition whose
// offset did not move, even when its metadata (the acks above a gap) did.
//
// A failed commit is logged, counted, and tried again with the next round,
// unless a newer commit of the partition replaced it or the partition was
// revoked (a late commit would move the new owner's offset back).
type committer struct {
	c     *kafka.Consumer
	group string
	log   *slog.Logger
	obs   Observer
	retry time.Duration

	mu      sync.Mutex
	pending map[TopicPartition]kafkaCommit // newest wanted, not yet committed
	waiters []chan struct{}                // closed after the next round
	sig     chan struct{}                  // cap 1
	stop    chan struct{}
	done    chan struct{}
	lastErr time.Time
}

func newCommitter(c *kafka.Consumer, group string, log *slog.Logger, obs Observer, retry time.Duration) *committer {
	cm := &committer{c: c, group: group, log: log, obs: obs, retry: retry,
		pending: map[TopicPartition]kafkaCommit{}, sig: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go cm.run()
	return cm
}

// offer queues commits for the next round.
func (cm *committer) offer(cs []kafkaCommit) {
	if len(cs) == 0 {
		return
	}
	cm.mu.Lock()
	for _, c := range cs {
		cm.pending[c.TopicPartition] = c
	}
	cm.mu.Unlock()
	cm.poke()
}

func (cm *committer) poke() {
	select {
	case cm.sig <- struct{}{}:
	default:
	}
}

// offerWait is offer with a channel that is closed once the round that
// carries cs has finished (committed or failed).
func (cm *committer) offerWait(cs []kafkaCommit) <-chan struct{} {
	done := make(chan struct{})
	cm.mu.Lock()
	for _, c := range cs {
		cm.pending[c.TopicPartition] = c
	}
	cm.waiters = append(cm.waiters, done)
	cm.mu.Unlock()
	cm.poke()
	return done
}

// commitNow commits cs (and whatever is pending) and waits up to wait for
// the round to finish. It reports whether it finished.
func (cm *committer) commitNow(cs []kafkaCommit, wait time.Duration) bool {
	done := cm.offerWait(cs)
	t := time.NewTimer(max(wait, 0))
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	case <-cm.done:
		return false
	}
}

// forget drops the pending commits of revoked partitions.
func (cm *committer) forget(tps []TopicPartition) {
	cm.mu.Lock()
	for _, tp := range tps {
		delete(cm.pending, tp)
	}
	cm.mu.Unlock()
}

// pendingCount returns how many partitions have commits not yet done.
func (cm *committer) pendingCount() int {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	return len(cm.pending)
}

// close stops the committer after its current round; it waits at most
// until by.
func (cm *committer) close(by time.Time) bool {
	close(cm.stop)
	t := time.NewTimer(max(time.Until(by), 0))
	defer t.Stop()
	select {
	case <-cm.done:
		return true
	case <-t.C:
		return false
	}
}

func (cm *committer) run() {
	defer close(cm.done)
	var again <-chan time.Time
	for {
		select {
		case <-cm.sig:
		case <-again:
		case <-cm.stop:
			return
		}
		again = nil
		cm.mu.Lock()
		batch := make([]kafkaCommit, 0, len(cm.pending))
		for _, c := range cm.pending {
			batch = append(batch, c)
		}
		waiters := cm.waiters
		cm.waiters = nil
		cm.mu.Unlock()
		if len(batch) > 0 && !cm.commit(batch) {
			again = time.After(cm.retry)
		}
		for _, w := range waiters {
			close(w)
		}
	}
}

// commit commits batch and drops from pending what was committed (unless
// replaced meanwhile). It reports whether everything was.
func (cm *committer) commit(batch []kafkaCommit) bool {
	slices.SortFunc(batch, func(a, b kafkaCommit) int {
		if a.TopicPartition.Topic != b.TopicPartition.Topic {
			if a.TopicPartition.Topic < b.TopicPartition.Topic {
				return -1
			}
			return 1
		}
		return int(a.TopicPartition.Partition - b.TopicPartition.Partition)
	})
	tps := make([]kafka.TopicPartition, len(batch))
	for i, c := range batch {
		tps[i] = kafkaTP(c.TopicPartition, c.Offset)
		md := c.Metadata
		tps[i].Metadata = &md
	}
	res, err := cm.c.CommitOffsets(tps)
	failed := map[TopicPartition]error{}
	if err != nil {
		for _, c := range batch {
			failed[c.TopicPartition] = err
		}
	}
	for _, r := range res {
		if r.Error != nil {
			failed[TopicPartition{Topic: *r.Topic, Partition: r.Partition}] = r.Error
		}
	}
	cm.mu.Lock()
	for _, c := range batch {
		if _, bad := failed[c.TopicPartition]; bad {
			continue
		}
		if p, ok := cm.pending[c.TopicPartition]; ok && p == c {
			delete(cm.pending, c.TopicPartition)
		}
	}
	cm.mu.Unlock()
	cm.obs.Committed(cm.group, len(failed) == 0)
	if len(failed) > 0 {
		// One line per failure kind and round would flood the log while a
		// coordinator moves; once a second is enough.
		if time.Since(cm.lastErr) >= time.Second {
			cm.lastErr = time.Now()
			var first error
			for _, e := range failed {
				first = e
				break
			}
			cm.log.Warn("offset commit failed; it is retried", "partitions", len(failed), "err", first)
		}
		return false
	}
	return true
}
