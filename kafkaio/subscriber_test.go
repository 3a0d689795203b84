package kafkaio

import (
	"context"
	"testing"
	"time"

	"github.com/kgate/kgate/internal/kafkatest"
)

// TestAConsumerWhoseStreamEndedBeforeAttachingLeaves opens streams whose
// context is already cancelled, each of its own group. The gateway starts
// each group's consumer and then finds the stream gone, before or while
// attaching it. Every such consumer must linger and leave like one whose
// streams ended: before the fix, a consumer that never had a session
// stayed in its group, holding its budget, for as long as the gateway ran
// (the command that would attach it was dropped with its context, or the
// consumer had never been idle, so its linger never began).
func TestAConsumerWhoseStreamEndedBeforeAttachingLeaves(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "gone", 1)
	sub, err := NewSubscriber(SubscriberConfig{Brokers: brokers, Linger: 200 * time.Millisecond, MemoryBudget: 1 << 30,
		CommitInterval: 200 * time.Millisecond, Kafka: map[string]string{"session.timeout.ms": "6000"}})
	if err != nil {
		t.Fatal(err)
	}
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancelClose()
	defer sub.Close(closeCtx)
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	const streams = 16
	for i := range streams {
		sess, err := sub.Subscribe(gone, SubscriptionConfig{Topics: []string{topic}, Group: kafkatest.Name("g"), StartEarliest: true})
		if err == nil {
			// The attach won the race with the cancelled context: the
			// caller closes what it got, as the Subscribe handler does.
			sess.Close()
		}
		t.Logf("stream %d: %v", i, err)
	}
	consumers := func() int {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		return len(sub.groups)
	}
	kafkatest.Eventually(t, 60*time.Second, "every consumer left after its linger and gave its memory back", func() bool {
		return consumers() == 0 && sub.MemoryUsed() == 0
	})
}
