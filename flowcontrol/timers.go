package flowcontrol

import (
	"container/heap"
	"time"
)

// timers orders the entries that have something due at a time of their
// own: a redelivery (waiting) or an extended ack deadline. (Deadlines as
// sent are in each session's send-ordered queue, which needs no heap.)
// Setting a new time pushes a new timer and makes the entry's earlier one
// stale, by generation; stale timers are dropped when they reach the top,
// and all at once when they outnumber the live ones, so the heap stays
// proportional to the entries it times.
type timers struct {
	h    timerHeap
	live int
}

type timerHeap []timer

type timer struct {
	at  time.Time
	e   *Entry
	gen uint32
}

func (t timerHeap) Len() int           { return len(t) }
func (t timerHeap) Less(i, j int) bool { return t[i].at.Before(t[j].at) }
func (t timerHeap) Swap(i, j int)      { t[i], t[j] = t[j], t[i] }
func (t *timerHeap) Push(x any)        { *t = append(*t, x.(timer)) }
func (t *timerHeap) Pop() any {
	old := *t
	n := len(old) - 1
	x := old[n]
	old[n] = timer{}
	*t = old[:n]
	return x
}

// set gives e the time at, replacing any earlier timer of e.
func (t *timers) set(e *Entry, at time.Time) {
	t.cancel(e)
	e.at = at
	e.timed = true
	t.live++
	heap.Push(&t.h, timer{at: at, e: e, gen: e.timer})
}

// cancel drops e's timer, if any.
func (t *timers) cancel(e *Entry) {
	if !e.timed {
		return
	}
	e.timed = false
	e.timer++
	t.live--
	if len(t.h) > 2*t.live+64 {
		w := 0
		for _, x := range t.h {
			if x.gen == x.e.timer && x.e.timed {
				t.h[w] = x
				w++
			}
		}
		clear(t.h[w:])
		t.h = t.h[:w]
		heap.Init(&t.h)
	}
}

// pop removes and returns the next entry due at or before now.
func (t *timers) pop(now time.Time) (*Entry, bool) {
	for len(t.h) > 0 {
		top := t.h[0]
		if top.gen != top.e.timer || !top.e.timed {
			heap.Pop(&t.h) // stale
			continue
		}
		if top.at.After(now) {
			return nil, false
		}
		heap.Pop(&t.h)
		top.e.timed = false
		top.e.timer++
		t.live--
		return top.e, true
	}
	return nil, false
}

// next returns the time of the earliest live timer.
func (t *timers) next() (time.Time, bool) {
	for len(t.h) > 0 {
		top := t.h[0]
		if top.gen != top.e.timer || !top.e.timed {
			heap.Pop(&t.h)
			continue
		}
		return top.at, true
	}
	return time.Time{}, false
}
