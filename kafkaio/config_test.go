package kafkaio

import (
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// confluent-kafka-go's own properties must reach it typed: bools, and ints
// for the *.size ones, where 0 and 1 are sizes.
func TestGoTyped(t *testing.T) {
	for i, tc := range []struct {
		key, value string
		want       kafka.ConfigValue
	}{
		0: {"go.delivery.reports", "true", true},
		1: {"go.delivery.reports", "1", true},
		2: {"go.events.channel.size", "0", 0},
		3: {"go.events.channel.size", "1", 1},
		4: {"go.produce.channel.size", "4096", 4096},
		5: {"go.delivery.report.fields", "none", "none"},
		6: {"linger.ms", "1", "1"}, // librdkafka's own: a string
		7: {"go.events.channel.size", "many", "many"},
	} {
		if got := goTyped(tc.key, tc.value); got != tc.want {
			t.Errorf("case %d: goTyped(%s, %s) = %#v, want %#v", i, tc.key, tc.value, got, tc.want)
		}
	}
}
