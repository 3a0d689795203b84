package server

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/kafkaio"
)

// Publisher writes messages to Kafka; *kafkaio.Producer implements it.
type Publisher interface {
	// Publish writes msgs to topic and blocks until each was acknowledged
	// or rejected by the broker, or ctx is done. It returns a nil slice and
	// an error when no message was handed to Kafka, else one result per
	// message in order and a nil error. Publish must be safe for concurrent
	// use. See kafkaio.Producer.Publish.
	Publish(ctx context.Context, topic string, msgs []kafkaio.Message) ([]kafkaio.Result, error)
}

// PublisherService implements kgate.v1.Publisher.
type PublisherService struct {
	kgatev1.UnimplementedPublisherServer
	pub Publisher
}

// NewPublisherService returns the Publisher service backed by pub.
func NewPublisherService(pub Publisher) *PublisherService {
	return &PublisherService{pub: pub}
}

// Publish implements kgate.v1.Publisher/Publish.
func (s *PublisherService) Publish(ctx context.Context, req *kgatev1.PublishRequest) (*kgatev1.PublishResponse, error) {
	msgs := make([]kafkaio.Message, len(req.GetMessages()))
	for i, m := range req.GetMessages() {
		km := &msgs[i]
		km.Key, km.Value, km.Partition = m.GetKey(), m.GetValue(), kafkaio.PartitionAny
		if m.Partition != nil {
			km.Partition = m.GetPartition()
			if km.Partition < 0 {
				return nil, invalidf(kafkaio.ReasonUnknownPartition, "messages[%d].partition is %d: partitions are numbered from 0; leave it unset to let the key choose", i, km.Partition)
			}
		}
		if ts := m.GetTimestamp(); ts != nil {
			if err := ts.CheckValid(); err != nil {
				return nil, invalidf("INVALID_TIMESTAMP", "messages[%d].timestamp is not a valid time (%v): leave it unset to use the time of the request", i, err)
			}
			km.Timestamp = ts.AsTime()
		}
		if hs := m.GetHeaders(); len(hs) > 0 {
			km.Headers = make([]kafkaio.Header, len(hs))
			for j, h := range hs {
				km.Headers[j] = kafkaio.Header{Key: h.GetKey(), Value: h.GetValue()}
			}
		}
	}
	results, err := s.pub.Publish(ctx, req.GetTopic(), msgs)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &kgatev1.PublishResponse{Results: make([]*kgatev1.PublishResult, len(results))}
	firstFailed := -1
	for i := range results {
		r := &results[i]
		if r.Err != nil {
			if firstFailed < 0 {
				firstFailed = i
			}
			continue
		}
		resp.Results[i] = publishResult(r)
	}
	if firstFailed < 0 {
		return resp, nil
	}
	failure := &kgatev1.PublishFailure{Outcomes: make([]*kgatev1.MessageOutcome, len(results))}
	failed := 0
	for i := range results {
		r := &results[i]
		if r.Err == nil {
			failure.Outcomes[i] = &kgatev1.MessageOutcome{Result: resp.Results[i]}
			continue
		}
		failed++
		o := &kgatev1.MessageOutcome{Code: int32(codeOf(r.Err)), Message: r.Err.Error()}
		if ke, ok := r.Err.(*kafkaio.Error); ok {
			o.Reason = ke.Reason
		}
		failure.Outcomes[i] = o
	}
	first := results[firstFailed].Err
	if ke, ok := first.(*kafkaio.Error); ok {
		c := *ke
		c.Message = fmt.Sprintf("%d of %d messages were not written (see kgate.v1.PublishFailure in the details; retry only those); message %d: %s",
			failed, len(results), firstFailed, ke.Message)
		first = &c
	}
	return nil, toStatus(first, failure)
}

func publishResult(r *kafkaio.Result) *kgatev1.PublishResult {
	return &kgatev1.PublishResult{Partition: r.Partition, Offset: r.Offset, Timestamp: timestamppb.New(r.Timestamp)}
}
