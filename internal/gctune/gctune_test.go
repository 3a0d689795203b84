package gctune

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/kgate/kgate/internal/kafkatest"
)

func TestPercentFor(t *testing.T) {
	const mib = 1 << 20
	for i, tc := range []struct {
		live, headroom uint64
		want           int
	}{
		0: {live: 16 * mib, headroom: 64 * mib, want: 400},
		1: {live: 64 * mib, headroom: 64 * mib, want: 100},
		2: {live: 256 * mib, headroom: 64 * mib, want: 100}, // never below Go's default
		3: {live: 1 * mib, headroom: 64 * mib, want: maxGCPercent},
		4: {live: 0, headroom: 64 * mib, want: maxGCPercent},
		5: {live: 40 * mib, headroom: 64 * mib, want: 160},
	} {
		if got := percentFor(tc.live, tc.headroom); got != tc.want {
			t.Errorf("case %d: percentFor(%d MiB live, %d MiB headroom) = %d, want %d", i, tc.live/mib, tc.headroom/mib, got, tc.want)
		}
	}
}

func TestMain(m *testing.M) { kafkatest.Main(m) }

func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// After each collection the headroom sets GOGC from the live heap; stop
// gives back the GOGC it found.
func TestHeadroomFollowsTheLiveHeap(t *testing.T) {
	before := gogc()
	stop := KeepHeadroom(64 << 20)
	defer stop()
	// The test binary's live heap is a few MB: far less than the headroom.
	kafkatest.Eventually(t, 10*time.Second, "GOGC set from the live heap", func() bool {
		runtime.GC()
		return gogc() > 100
	})
	stop()
	if got := gogc(); got != before {
		t.Errorf("GOGC after stop = %d, want %d as before", got, before)
	}
	// Stopped, it sets nothing more.
	runtime.GC()
	runtime.GC()
	if got := gogc(); got != before {
		t.Errorf("GOGC after stop and two collections = %d, want %d", got, before)
	}
}
