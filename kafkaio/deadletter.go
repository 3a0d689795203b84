package kafkaio

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/kgate/kgate/flowcontrol"
)

// DeadLetterPublisher writes dead letters; *Producer implements it.
type DeadLetterPublisher interface {
	Publish(ctx context.Context, topic string, msgs []Message) ([]Result, error)
}

// Headers the gateway writes on a dead letter, after the record's own.
const (
	HeaderDeadLetterTopic     = "kgate.dlq.topic"
	HeaderDeadLetterPartition = "kgate.dlq.partition"
	HeaderDeadLetterOffset    = "kgate.dlq.offset"
	HeaderDeadLetterAttempts  = "kgate.dlq.attempts"
	HeaderDeadLetterReason    = "kgate.dlq.reason"
)

// deadLetter writes e to its dead-letter topic in a goroutine of its own
// (at most one per record held, so bounded by the windows) and reports the
// outcome to the owner. Owner goroutine.
func (g *groupConsumer) deadLetter(e *flowcontrol.Entry) {
	origin := e.Payload().(*Record)
	topic, attempts := e.DeadLetterTopic(), e.Attempt()
	hs := append(append([]Header(nil), origin.Headers...),
		Header{Key: HeaderDeadLetterTopic, Value: []byte(origin.Topic)},
		Header{Key: HeaderDeadLetterPartition, Value: []byte(strconv.Itoa(int(origin.Partition)))},
		Header{Key: HeaderDeadLetterOffset, Value: []byte(strconv.FormatInt(origin.Offset, 10))},
		Header{Key: HeaderDeadLetterAttempts, Value: []byte(strconv.Itoa(int(attempts)))},
		Header{Key: HeaderDeadLetterReason, Value: []byte(fmt.Sprintf("not acked after %d delivery attempts (nacked, ack deadline expired, or its stream ended)", attempts))},
	)
	msg := Message{Key: origin.Key, Value: origin.Value, Headers: hs, Partition: PartitionAny}
	where := fmt.Sprintf("%s/%d@%d", origin.Topic, origin.Partition, origin.Offset)
	g.dlqWG.Add(1)
	go func() {
		defer g.dlqWG.Done()
		ctx, cancel := context.WithTimeout(g.dlqCtx, 60*time.Second)
		defer cancel()
		res, err := g.sub.cfg.DeadLetter.Publish(ctx, topic, []Message{msg})
		if err == nil {
			err = res[0].Err
		}
		kind := cmdDeadLettered
		if err != nil {
			kind = cmdDeadLetterFailed
			g.log.Warn("writing a dead letter failed; it is retried after the backoff", "topic", topic, "origin", where, "err", err)
		} else {
			g.log.Info("record dead-lettered", "topic", topic, "origin", where, "attempts", attempts)
		}
		select {
		case g.cmds <- command{kind: kind, entry: e}:
		case <-g.dlqCtx.Done(): // the consumer is shutting down
		}
	}()
}
