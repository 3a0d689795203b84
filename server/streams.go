package server

import (
	"fmt"
	"strings"
	"sync"
	"time"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/kafkaio"
)

// StreamLimits bound the streams the gateway holds open. A zero field sets
// no bound. Beyond a bound a new stream is refused at once, before its
// first message is read, with RESOURCE_EXHAUSTED, ErrorInfo reason
// TOO_MANY_STREAMS and RetryInfo.
type StreamLimits struct {
	// SubscribePerPrincipal bounds each principal's open Subscribe streams.
	SubscribePerPrincipal int
	// PublishStreamPerPrincipal bounds each principal's open PublishStream
	// streams, counted apart from Subscribe.
	PublishStreamPerPrincipal int
	// HealthWatches bounds the open grpc.health.v1.Health/Watch streams of
	// the whole gateway: they need no identity, so no principal bound
	// applies to them.
	HealthWatches int
	// ReflectionStreams bounds the open server reflection streams of the
	// whole gateway, for the same reason.
	ReflectionStreams int
}

// ReasonTooManyStreams is the ErrorInfo reason of a stream refused by
// StreamLimits.
const ReasonTooManyStreams = "TOO_MANY_STREAMS"

// streamKind is what a StreamLimits bound counts.
type streamKind int

const (
	kindOther streamKind = iota // not bounded
	kindSubscribe
	kindPublishStream
	kindHealthWatch
	kindReflection
)

func kindOf(fullMethod string) streamKind {
	switch {
	case fullMethod == kgatev1.Subscriber_Subscribe_FullMethodName, fullMethod == kgatev1.Subscriber_Tail_FullMethodName:
		return kindSubscribe
	case fullMethod == kgatev1.Publisher_PublishStream_FullMethodName:
		return kindPublishStream
	case fullMethod == "/grpc.health.v1.Health/Watch":
		return kindHealthWatch
	case strings.HasPrefix(fullMethod, "/grpc.reflection."):
		return kindReflection
	}
	return kindOther
}

// streamKey is one count: per principal for kgate's streams, "" for the
// gateway-wide ones.
type streamKey struct {
	kind      streamKind
	principal string
}

// streamCounter enforces StreamLimits, for the call interceptor after
// authentication. It is safe for concurrent use.
type streamCounter struct {
	limits StreamLimits
	mu     sync.Mutex
	open   map[streamKey]int
}

func newStreamCounter(l StreamLimits) *streamCounter {
	return &streamCounter{limits: l, open: map[streamKey]int{}}
}

func (c *streamCounter) limit(k streamKind) int {
	switch k {
	case kindSubscribe:
		return c.limits.SubscribePerPrincipal
	case kindPublishStream:
		return c.limits.PublishStreamPerPrincipal
	case kindHealthWatch:
		return c.limits.HealthWatches
	case kindReflection:
		return c.limits.ReflectionStreams
	}
	return 0
}

// acquireFor counts a new stream of fullMethod for principal. Beyond its
// bound it returns the RESOURCE_EXHAUSTED status to refuse the stream
// with; else release ends the count, once the stream ended.
func (c *streamCounter) acquireFor(fullMethod, principal string) (release func(), err error) {
	kind := kindOf(fullMethod)
	max := c.limit(kind)
	if max <= 0 {
		return func() {}, nil
	}
	key := streamKey{kind: kind}
	if kind == kindSubscribe || kind == kindPublishStream {
		key.principal = principal
	}
	if err := c.acquire(key, max); err != nil {
		return nil, err
	}
	return func() { c.release(key) }, nil
}

func (c *streamCounter) acquire(key streamKey, max int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[key] >= max {
		return toStatus(tooManyStreams(key, max))
	}
	c.open[key]++
	return nil
}

func (c *streamCounter) release(key streamKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[key]--; c.open[key] <= 0 {
		delete(c.open, key)
	}
}

// tooManyStreams says which bound a refused stream met.
func tooManyStreams(key streamKey, max int) *kafkaio.Error {
	var msg string
	switch key.kind {
	case kindSubscribe, kindPublishStream:
		rpc := "Subscribe (Tail included)"
		if key.kind == kindPublishStream {
			rpc = "PublishStream"
		}
		msg = fmt.Sprintf("principal %s has %d %s streams open, the most this gateway allows one principal: close one first, or ask the gateway's operator for a higher bound",
			kafkaio.QuoteName(key.principal), max, rpc)
	case kindHealthWatch:
		msg = fmt.Sprintf("the gateway has %d health Watch streams open, the most it allows: use Check, or retry later", max)
	default:
		msg = fmt.Sprintf("the gateway has %d server reflection streams open, the most it allows: retry later", max)
	}
	return &kafkaio.Error{Kind: kafkaio.KindExhausted, Reason: ReasonTooManyStreams, RetryAfter: time.Second, Message: msg}
}
