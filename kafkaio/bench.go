package kafkaio

// Direct confluent-kafka-go clients for cmd/bench, which measures the
// gateway against a plain librdkafka producer and consumer. Only this
// package imports confluent-kafka-go, so the baseline lives here. Nothing in
// the gateway uses these.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// BenchResult is what a direct benchmark run measured.
type BenchResult struct {
	// Messages completed: produced and acknowledged, or consumed.
	Messages int64
	// Errors counts failed produce calls (delivery errors included).
	Errors int64
	// Bytes of values (and keys) completed.
	Bytes int64
	// Elapsed is the measured time: for BenchDirectProduce the whole run,
	// for BenchDirectConsume from the first record to the last.
	Elapsed time.Duration
	// FirstRecord is, for BenchDirectConsume, the time from creating the
	// consumer to its first record (group join, fetch); zero otherwise.
	FirstRecord time.Duration
}

// BenchProducerProps are the producer settings of the direct baseline: the
// gateway's own guarantees (acks=all, idempotence, murmur2_random, no
// delivery report fields) with linger.ms=0, so a produce-and-wait caller is
// not capped by the linger delay. kafkaProps passed to NewBenchProducer
// override them.
var BenchProducerProps = map[string]string{
	"client.id":                 "kgate-bench",
	"acks":                      "all",
	"enable.idempotence":        "true",
	"partitioner":               "murmur2_random",
	"linger.ms":                 "0",
	"go.delivery.report.fields": "none",
	"enable.metrics.push":       "false",
}

// BenchProducer is a plain confluent-kafka-go producer for produce-and-wait
// baselines: each ProduceWait hands one message to librdkafka and waits for
// its delivery report on a channel of its own, as an application embedding
// librdkafka would.
type BenchProducer struct {
	kp    *kafka.Producer
	chans sync.Pool // chan kafka.Event, capacity 1
	wg    sync.WaitGroup
}

// NewBenchProducer creates a producer for brokers with BenchProducerProps
// overridden by kafkaProps.
func NewBenchProducer(brokers string, kafkaProps map[string]string) (*BenchProducer, error) {
	props := make(map[string]string, len(BenchProducerProps)+len(kafkaProps))
	for k, v := range BenchProducerProps {
		props[k] = v
	}
	for k, v := range kafkaProps {
		props[k] = v
	}
	cm, err := kafkaConfig(brokers, props, nil, nil)
	if err != nil {
		return nil, err
	}
	kp, err := kafka.NewProducer(&cm)
	if err != nil {
		return nil, fmt.Errorf("creating Kafka producer: %w", err)
	}
	p := &BenchProducer{kp: kp}
	p.chans.New = func() any { return make(chan kafka.Event, 1) }
	// Errors that are not delivery reports (connection state) would fill
	// the events channel; drain it.
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for range kp.Events() {
		}
	}()
	return p, nil
}

// ProduceWait writes one record and waits for the broker's acknowledgement.
func (p *BenchProducer) ProduceWait(ctx context.Context, topic string, key, value []byte) error {
	ch := p.chans.Get().(chan kafka.Event)
	err := p.kp.Produce(&kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Key:            key,
		Value:          value,
	}, ch)
	if err != nil {
		p.chans.Put(ch)
		return err
	}
	select {
	case ev := <-ch:
		p.chans.Put(ch)
		if m, ok := ev.(*kafka.Message); ok && m.TopicPartition.Error != nil {
			return m.TopicPartition.Error
		}
		return nil
	case <-ctx.Done():
		return ctx.Err() // ch is dropped: its report may still arrive
	}
}

// Close flushes (up to 10 s) and closes the producer.
func (p *BenchProducer) Close() {
	p.kp.Flush(10_000)
	p.kp.Close()
	p.wg.Wait()
}

// BenchDirectProduce writes n records of msgSize bytes to topic from
// inflight goroutines, each producing one record and waiting for its
// delivery report before the next (produce-and-wait), and reports the rate.
func BenchDirectProduce(ctx context.Context, brokers, topic string, msgSize, inflight, n int, kafkaProps map[string]string) (BenchResult, error) {
	if inflight < 1 || n < 1 {
		return BenchResult{}, errors.New("inflight and n must be positive")
	}
	p, err := NewBenchProducer(brokers, kafkaProps)
	if err != nil {
		return BenchResult{}, err
	}
	defer p.Close()
	value := make([]byte, msgSize)
	var next, done, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				if err := p.ProduceWait(ctx, topic, nil, value); err != nil {
					failed.Add(1)
					continue
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	r := BenchResult{Messages: done.Load(), Errors: failed.Load(), Bytes: done.Load() * int64(msgSize), Elapsed: time.Since(start)}
	return r, ctx.Err()
}

// BenchFill writes n records of msgSize bytes to topic as fast as
// librdkafka batches them (asynchronously, default linger) and waits until
// every one is acknowledged.
func BenchFill(ctx context.Context, brokers, topic string, msgSize, n int) error {
	cm, err := kafkaConfig(brokers, map[string]string{
		"client.id":                 "kgate-bench-fill",
		"acks":                      "all",
		"enable.idempotence":        "true",
		"linger.ms":                 "5",
		"go.delivery.report.fields": "none",
		"enable.metrics.push":       "false",
	}, nil, nil)
	if err != nil {
		return err
	}
	kp, err := kafka.NewProducer(&cm)
	if err != nil {
		return fmt.Errorf("creating Kafka producer: %w", err)
	}
	defer kp.Close()
	var acked, failed atomic.Int64
	var firstErr atomic.Value
	reports := make(chan struct{})
	go func() {
		defer close(reports)
		for ev := range kp.Events() {
			if m, ok := ev.(*kafka.Message); ok {
				if m.TopicPartition.Error != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, m.TopicPartition.Error)
				}
				if acked.Add(1) == int64(n) {
					return
				}
			}
		}
	}()
	value := make([]byte, msgSize)
	for i := 0; i < n; {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		err := kp.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny}, Value: value}, nil)
		var ke kafka.Error
		if errors.As(err, &ke) && ke.Code() == kafka.ErrQueueFull {
			kp.Flush(10)
			continue
		}
		if err != nil {
			return err
		}
		i++
	}
	select {
	case <-reports:
	case <-ctx.Done():
		return ctx.Err()
	}
	if failed.Load() > 0 {
		return fmt.Errorf("%d of %d records failed, first: %v", failed.Load(), n, firstErr.Load())
	}
	return nil
}

// BenchDirectConsume reads n records of topic from the start with a plain
// consumer in a new group, fetching as a subscription's consumer does
// (librdkafka's default fetch.queue.backoff.ms of 1 s would hold it to a
// third of its rate past 100k records), and reports the rate between the
// first record and the n-th.
func BenchDirectConsume(ctx context.Context, brokers, topic string, n int) (BenchResult, error) {
	defaults := map[string]string{
		"client.id":           "kgate-bench-consumer",
		"group.id":            fmt.Sprintf("kgate-bench-direct-%d", time.Now().UnixNano()),
		"auto.offset.reset":   "earliest",
		"session.timeout.ms":  "10000",
		"enable.metrics.push": "false",
	}
	maps.Copy(defaults, fetchTuning)
	cm, err := kafkaConfig(brokers, defaults, nil, nil)
	if err != nil {
		return BenchResult{}, err
	}
	start := time.Now()
	c, err := kafka.NewConsumer(&cm)
	if err != nil {
		return BenchResult{}, fmt.Errorf("creating Kafka consumer: %w", err)
	}
	defer c.Close()
	if err := c.SubscribeTopics([]string{topic}, nil); err != nil {
		return BenchResult{}, err
	}
	var r BenchResult
	var first time.Time
	for r.Messages < int64(n) {
		if ctx.Err() != nil {
			return r, ctx.Err()
		}
		switch e := c.Poll(100).(type) {
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				r.Errors++
				continue
			}
			if r.Messages == 0 {
				first = time.Now()
				r.FirstRecord = first.Sub(start)
			}
			r.Messages++
			r.Bytes += int64(len(e.Key) + len(e.Value))
		case kafka.Error:
			if e.IsFatal() {
				return r, e
			}
		}
	}
	r.Elapsed = time.Since(first)
	return r, nil
}
