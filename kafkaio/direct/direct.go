// Package direct holds plain confluent-kafka-go clients: the baselines
// cmd/bench measures the gateway against, and the producer that fills its
// topics. It is no part of the gateway, which never imports it; it lives
// under kafkaio because only kafkaio's tree imports confluent-kafka-go.
//
// (It cannot be kafkaio/internal/direct: Go lets only packages under
// kafkaio import that, and cmd/bench is not one.)
package direct

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// producerProps are the direct producer's settings: the gateway's
// guarantees (acks=all, idempotence, murmur2_random, no delivery report
// fields) with linger.ms=0, so that a produce-and-wait caller is not capped
// by the linger delay.
var producerProps = kafka.ConfigMap{
	"client.id":                 "kgate-bench",
	"acks":                      "all",
	"enable.idempotence":        "true",
	"partitioner":               "murmur2_random",
	"linger.ms":                 "0",
	"go.delivery.report.fields": "none",
	"enable.metrics.push":       "false",
}

// FetchTuning is how the gateway's group consumers fetch (kafkaio's
// fetchTuning; a kafkaio test keeps the two equal): Consume fetches the
// same way, so that the two are compared with the same fetching.
var FetchTuning = map[string]string{
	"fetch.wait.max.ms":          "50",
	"queued.min.messages":        "1000",
	"fetch.queue.backoff.ms":     "10",
	"fetch.max.bytes":            "1048576",
	"queued.max.messages.kbytes": "2048",
}

func config(brokers string, props kafka.ConfigMap) *kafka.ConfigMap {
	cm := kafka.ConfigMap{"bootstrap.servers": brokers}
	for k, v := range props {
		cm[k] = v
	}
	return &cm
}

// Producer is a plain confluent-kafka-go producer for produce-and-wait
// baselines: each ProduceWait hands one message to librdkafka and waits for
// its delivery report on a channel of its own, as an application embedding
// librdkafka would. Safe for concurrent use.
type Producer struct {
	kp    *kafka.Producer
	chans sync.Pool // chan kafka.Event, capacity 1
	wg    sync.WaitGroup
}

// NewProducer creates a producer for brokers. Close stops it.
func NewProducer(brokers string) (*Producer, error) {
	kp, err := kafka.NewProducer(config(brokers, producerProps))
	if err != nil {
		return nil, fmt.Errorf("creating Kafka producer: %w", err)
	}
	p := &Producer{kp: kp}
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

// ProduceWait writes one record and blocks until the broker acknowledged
// it, or ctx is done.
func (p *Producer) ProduceWait(ctx context.Context, topic string, key, value []byte) error {
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

// Close flushes (up to 10 s) and closes the producer, and waits for its
// goroutine.
func (p *Producer) Close() {
	p.kp.Flush(10_000)
	p.kp.Close()
	p.wg.Wait()
}

// Fill writes n records of msgSize bytes to topic as fast as librdkafka
// batches them (asynchronously, linger.ms=5) and blocks until every one is
// acknowledged.
func Fill(ctx context.Context, brokers, topic string, msgSize, n int) error {
	kp, err := kafka.NewProducer(config(brokers, kafka.ConfigMap{
		"client.id":                 "kgate-bench-fill",
		"acks":                      "all",
		"enable.idempotence":        "true",
		"linger.ms":                 "5",
		"go.delivery.report.fields": "none",
		"enable.metrics.push":       "false",
	}))
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

// ConsumeResult is what Consume measured.
type ConsumeResult struct {
	// Records read.
	Records int64
	// Elapsed is the time from the first record to the last.
	Elapsed time.Duration
	// FirstRecord is the time from creating the consumer to its first
	// record (group join, fetch).
	FirstRecord time.Duration
}

// Consume reads n records of topic from the start with a plain consumer in
// a new group, fetching as the gateway's consumers do (FetchTuning:
// librdkafka's default fetch.queue.backoff.ms of 1 s would hold it to a
// third of its rate past 100k records), and reports the rate between the
// first record and the n-th. It blocks until then, or until ctx is done.
func Consume(ctx context.Context, brokers, topic string, n int) (ConsumeResult, error) {
	props := kafka.ConfigMap{
		"client.id":           "kgate-bench-consumer",
		"group.id":            fmt.Sprintf("kgate-bench-direct-%d", time.Now().UnixNano()),
		"auto.offset.reset":   "earliest",
		"session.timeout.ms":  "10000",
		"enable.metrics.push": "false",
	}
	for k, v := range FetchTuning {
		props[k] = v
	}
	start := time.Now()
	c, err := kafka.NewConsumer(config(brokers, props))
	if err != nil {
		return ConsumeResult{}, fmt.Errorf("creating Kafka consumer: %w", err)
	}
	defer c.Close()
	if err := c.SubscribeTopics([]string{topic}, nil); err != nil {
		return ConsumeResult{}, err
	}
	var r ConsumeResult
	var first time.Time
	for r.Records < int64(n) {
		if ctx.Err() != nil {
			return r, ctx.Err()
		}
		switch e := c.Poll(100).(type) {
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				continue
			}
			if r.Records == 0 {
				first = time.Now()
				r.FirstRecord = first.Sub(start)
			}
			r.Records++
		case kafka.Error:
			if e.IsFatal() {
				return r, e
			}
		}
	}
	r.Elapsed = time.Since(first)
	return r, nil
}
