package server

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// series returns the value of each series of vec by its group label.
func series(vec *prometheus.CounterVec) map[string]float64 {
	ch := make(chan prometheus.Metric, 100)
	vec.Collect(ch)
	close(ch)
	out := map[string]float64{}
	for m := range ch {
		var pb dto.Metric
		_ = m.Write(&pb)
		out[pb.GetLabel()[0].GetValue()] = pb.GetCounter().GetValue()
	}
	return out
}

func TestGroupLabels(t *testing.T) {
	now := time.Unix(1000, 0)
	g := newGroupLabels(2, 10*time.Minute, func() time.Time { return now })
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c"}, []string{"group"})
	g.track(vec.MetricVec)
	count := func(group string) (label string, own bool) {
		g.observe(group, func(l string, o bool) { label, own = l, o; vec.WithLabelValues(l).Inc() })
		return label, own
	}
	type obs struct {
		group, label string
		own          bool
	}
	check := func(step int, want ...obs) {
		t.Helper()
		for _, w := range want {
			if l, o := count(w.group); l != w.label || o != w.own {
				t.Errorf("step %d: group %q counted as %q (own %v), want %q (own %v)", step, w.group, l, o, w.label, w.own)
			}
		}
	}
	check(0, obs{"a", "a", true}, obs{"b", "b", true}, obs{"c", OtherGroups, false}, obs{"d", OtherGroups, false})
	if s := series(vec); len(s) != 3 || s[OtherGroups] != 2 {
		t.Errorf("series %v, want a, b and %s counting c and d", s, OtherGroups)
	}
	endA := g.streamOpened("a")
	now = now.Add(11 * time.Minute) // b is idle past the linger; a has a stream
	g.sweep()
	if s := series(vec); len(s) != 2 || s["b"] != 0 {
		t.Errorf("after b's linger: series %v, want a and %s", s, OtherGroups)
	}
	check(1, obs{"c", "c", true}, obs{"b", OtherGroups, false}, obs{"a", "a", true})
	endA()
	endA() // a second call changes nothing
	now = now.Add(9 * time.Minute)
	g.sweep()
	check(2, obs{"d", OtherGroups, false}) // a's label lingers
	now = now.Add(2 * time.Minute)         // 11 min after a's stream ended; c was seen 11 min ago
	g.sweep()
	check(3, obs{"d", "d", true}, obs{"b", "b", true})
	if s := series(vec); s["a"] != 0 || s["c"] != 0 || s["b"] != 1 || s["d"] != 1 {
		t.Errorf("series %v: want a's and c's deleted, b and d counted anew", s)
	}
	// A stream of a group without a label does not give it one later.
	end := g.streamOpened("e")
	end()
}
