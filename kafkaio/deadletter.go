package kafkaio

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kgate/kgate/flowcontrol"
)

// DeadLetterPublisher writes dead letters; *Producer implements it.
type DeadLetterPublisher interface {
	Publish(ctx context.Context, topic string, msgs []Message) ([]Result, error)
}

// GatewayHeaderPrefix starts the keys of the headers only the gateway
// writes (kgate.dlq.topic, ...), in any case: clients may not publish
// them, and the dead-letter writer drops a record's own before it adds the
// gateway's.
const GatewayHeaderPrefix = "kgate."

// IsGatewayHeader reports whether key starts with GatewayHeaderPrefix, in
// any case, so that no consumer matching keys without regard to case takes
// a client's header for the gateway's.
func IsGatewayHeader(key string) bool {
	return len(key) >= len(GatewayHeaderPrefix) && strings.EqualFold(key[:len(GatewayHeaderPrefix)], GatewayHeaderPrefix)
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
	// The record's own headers, but none of kgate's: a record written by a
	// direct Kafka client may carry forged kgate.dlq.* ones, and only the
	// gateway's, appended here, may be trusted by a redrive.
	hs := make([]Header, 0, len(origin.Headers)+5)
	for _, h := range origin.Headers {
		if !IsGatewayHeader(h.Key) {
			hs = append(hs, h)
		}
	}
	hs = append(hs,
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
