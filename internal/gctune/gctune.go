// Package gctune keeps a headroom of garbage between the Go garbage
// collector's cycles: see KeepHeadroom.
package gctune

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// headroomTuner lets the Go heap grow by at least headroom bytes of garbage
// between collections, instead of GOGC's default of as much as is live.
//
// The gateway's live heap is small (about 6 MB under load) while every
// call makes garbage, so with GOGC=100 it collected 35 times a second
// under unary load. A larger fixed GOGC
// (400 cut unary Publish's CPU per call by a fifth) costs memory in
// proportion to the live heap, which grows with the budgets' use; a
// headroom costs a known, fixed amount instead. After each collection,
// GOGC is set so that the next one starts when the heap reaches live +
// headroom (or twice live, whichever is more); the Go memory limit, set
// from the budgets, still bounds the total: near it the runtime collects
// sooner whatever GOGC says.
//
// It runs a function after every collection (runtime.AddCleanup on an
// object made for it), on the runtime's cleanup goroutine; no goroutine
// of its own.
type headroomTuner struct {
	headroom uint64
	sample   []metrics.Sample // read by the cleanup only

	mu      sync.Mutex // guards stopped and percent
	stopped bool
	percent int // the GOGC set last
	before  int // GOGC before start, restored by stop
}

// GatewayHeadroom is the gateway's headroom, out of the 128 MiB its Go
// memory limit allows besides its budgets (cmd/gateway). Measured at 512
// unary Publish calls in flight (see the README's Performance section):
// 48 MiB took the gateway's CPU per call from 30 to 22 µs, for 36 MB more
// RSS than GOGC=100; 32 MiB saved less.
const GatewayHeadroom = 48 << 20

// maxGCPercent bounds the GOGC headroomTuner sets: with a live heap of a few
// MB, a headroom of 64 MiB would otherwise mean GOGC in the thousands.
const maxGCPercent = 1000

// percentFor is the GOGC that starts the next collection once the heap
// holds live + headroom bytes: at least 100 (Go's default), at most
// maxGCPercent.
func percentFor(live, headroom uint64) int {
	if live == 0 {
		return maxGCPercent
	}
	p := headroom * 100 / live
	return int(min(max(p, 100), maxGCPercent))
}

// KeepHeadroom keeps a headroom of headroom bytes between collections
// until stop is called, which restores the GOGC found at start. Call it
// once per process; it is for the gateway's main function (and the bench's
// in-process gateway).
func KeepHeadroom(headroom int64) (stop func()) {
	g := &headroomTuner{headroom: uint64(headroom), sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	g.before = debug.SetGCPercent(100)
	g.percent = 100
	g.afterGC()
	return g.stop
}

// afterGC sets GOGC from the live heap the last collection found, and
// arms itself for the next collection.
func (g *headroomTuner) afterGC() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return
	}
	metrics.Read(g.sample)
	if g.sample[0].Value.Kind() == metrics.KindUint64 {
		p := percentFor(g.sample[0].Value.Uint64(), g.headroom)
		// Only a change of more than a tenth is worth a call.
		if d := p - g.percent; d*10 > g.percent || -d*10 > g.percent {
			debug.SetGCPercent(p)
			g.percent = p
		}
	}
	// An object of 32 bytes without pointers is never one of the tiny
	// allocator's blocks, whose cleanups may not run: it becomes garbage
	// now and is found by the next collection.
	runtime.AddCleanup(new([4]uintptr), func(g *headroomTuner) { g.afterGC() }, g)
}

func (g *headroomTuner) stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return
	}
	g.stopped = true
	debug.SetGCPercent(g.before)
}
