package kafkaio

import (
	"maps"
	"testing"

	"github.com/kgate/kgate/kafkaio/direct"
)

// The bench's direct consumer must fetch as the group consumers do, or the
// comparison flatters one of them.
func TestDirectConsumerFetchesAsGroupConsumers(t *testing.T) {
	if !maps.Equal(direct.FetchTuning, fetchTuning) {
		t.Errorf("direct.FetchTuning = %v, want kafkaio's fetchTuning %v", direct.FetchTuning, fetchTuning)
	}
}
