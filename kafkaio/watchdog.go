package kafkaio

import (
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// watchEvery is how often the owner looks for stalled partitions.
const watchEvery = time.Second

// watch looks for stalled partitions: assigned, not paused by the gateway,
// with records waiting (the high watermark librdkafka last saw is past the
// next offset the group consumer expects) and none read for StallAfter.
// Such a partition is counted and logged at warn, and recovered by seeking
// it to its next expected offset (and resuming it, in case librdkafka kept
// a pause the gateway no longer knows of). Each recovery is counted.
func (g *groupConsumer) watch(now time.Time) {
	after := g.sub.cfg.StallAfter
	for tp, fs := range g.parts {
		if fs.paused || now.Sub(fs.lastRecord) < after {
			continue
		}
		next, ok := g.d.Next(tp)
		if !ok {
			continue
		}
		// Cached from fetch responses: no broker round trip.
		_, high, err := g.c.GetWatermarkOffsets(tp.Topic, tp.Partition)
		if err != nil || high <= next {
			continue
		}
		if !fs.stalled {
			fs.stalled = true
			g.obs.Stalled(g.group, 1)
		}
		if now.Sub(fs.lastWarn) >= 30*time.Second {
			fs.lastWarn = now
			g.log.Warn("partition stalled: records wait but none were fetched; seeking it to its next offset",
				"partition", tp, "next_offset", next, "high_watermark", high, "idle", now.Sub(fs.lastRecord).Round(time.Millisecond))
		}
		kt := kafkaTP(tp, next)
		if err := g.c.Seek(kt, 0); err != nil {
			g.log.Warn("seeking a stalled partition failed; retried at the next check", "partition", tp, "err", err)
			continue
		}
		if err := g.c.Resume([]kafka.TopicPartition{kafkaTP(tp, 0)}); err != nil {
			g.log.Warn("resuming a stalled partition failed", "partition", tp, "err", err)
		}
		fs.lastRecord = now // give the seek time to fetch
		g.obs.StallRecovered(g.group)
	}
}
