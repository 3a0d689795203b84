package server

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// OtherGroups is the group label value under which counters of groups that
// hold no label of their own are added up.
const OtherGroups = "_other"

// Defaults of the group label table.
const (
	DefaultMetricsMaxGroups   = 100
	DefaultMetricsGroupLinger = 5 * time.Minute
)

// groupLabels bounds the group label values of the metrics, which clients
// choose (any group name opens a stream): every group-labelled series goes
// through it (Metrics.forGroup). At most max groups hold a label of their
// own at once; a group claims one when it is first seen and there is
// room, and gives it back linger after its last Subscribe stream ended (or
// after it was last seen, when it never had a stream): its series are then
// deleted. Counters of a group without a label are added up under
// OtherGroups, and its gauges are not reported (a gauge of many groups
// means nothing). So throwaway groups leave nothing behind for long, and
// no number of groups grows the series beyond max groups' worth.
//
// It has no goroutine: the table is swept when it is used and when the
// metrics are scraped. It is safe for concurrent use.
type groupLabels struct {
	max    int
	linger time.Duration
	now    func() time.Time

	mu        sync.Mutex
	groups    map[string]*groupLabel
	vecs      []*prometheus.MetricVec // every group-labelled series, to delete a group's
	nextSweep time.Time
}

// groupLabel is a group holding a label of its own.
type groupLabel struct {
	streams  int       // open Subscribe streams of the group
	lastSeen time.Time // when streams last fell to 0, or the group was last seen
}

func newGroupLabels(max int, linger time.Duration, now func() time.Time) *groupLabels {
	return &groupLabels{max: max, linger: linger, now: now, groups: map[string]*groupLabel{}}
}

// track adds the series of vec (labelled "group") to those deleted when a
// group gives its label back.
func (g *groupLabels) track(vecs ...*prometheus.MetricVec) { g.vecs = append(g.vecs, vecs...) }

// observe calls record with group's label value: the group itself, own
// true, while it holds a label; else OtherGroups, own false. record runs
// under the table's lock, so that a group's series are never recreated
// after they were deleted: it must only record, quickly.
func (g *groupLabels) observe(group string, record func(label string, own bool)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	g.sweepLocked(now)
	if l := g.claimLocked(group, now); l != nil {
		if l.streams == 0 {
			l.lastSeen = now
		}
		record(group, true)
		return
	}
	record(OtherGroups, false)
}

// streamOpened counts a Subscribe stream of group until the returned func
// is called: a group with a stream keeps its label.
func (g *groupLabels) streamOpened(group string) (ended func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	g.sweepLocked(now)
	l := g.claimLocked(group, now)
	if l == nil {
		return func() {}
	}
	l.streams++
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			if l.streams--; l.streams == 0 {
				l.lastSeen = g.now()
			}
		})
	}
}

// claimLocked returns group's label, claiming one if there is room, or nil.
func (g *groupLabels) claimLocked(group string, now time.Time) *groupLabel {
	if l, ok := g.groups[group]; ok {
		return l
	}
	if len(g.groups) >= g.max {
		return nil
	}
	l := &groupLabel{lastSeen: now}
	g.groups[group] = l
	return l
}

// sweep gives back the labels of the groups idle for linger.
func (g *groupLabels) sweep() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sweepLocked(g.now())
}

func (g *groupLabels) sweepLocked(now time.Time) {
	if now.Before(g.nextSweep) {
		return
	}
	g.nextSweep = now.Add(min(g.linger/10, time.Second))
	for name, l := range g.groups {
		if l.streams == 0 && now.Sub(l.lastSeen) >= g.linger {
			delete(g.groups, name)
			for _, v := range g.vecs {
				v.DeletePartialMatch(prometheus.Labels{"group": name})
			}
		}
	}
}

// sweeper sweeps the table when the metrics are scraped, and collects
// nothing itself (an unchecked collector).
type sweeper struct{ g *groupLabels }

func (sweeper) Describe(chan<- *prometheus.Desc)   {}
func (s sweeper) Collect(chan<- prometheus.Metric) { s.g.sweep() }
