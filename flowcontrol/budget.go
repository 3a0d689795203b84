package flowcontrol

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// ErrBudgetExhausted is returned by Budget.Acquire when the request does not
// fit in what is left of the budget.
var ErrBudgetExhausted = errors.New("in-flight byte budget exhausted")

// ErrShareExhausted is returned by Budget.Acquire when the request would
// take its owner beyond its share of the budget while another owner is
// active.
var ErrShareExhausted = errors.New("the owner's share of the in-flight byte budget is exhausted while others are active")

// BudgetConfig configures a Budget.
type BudgetConfig struct {
	// Limit is the budget in bytes. It must be positive.
	Limit int64
	// Share is the most bytes one owner may hold while another owner is
	// active: holds bytes, or acquired or was refused some within
	// Patience. An owner alone may take the whole budget. 0, or Limit or
	// more: owners are not told apart.
	Share int64
	// Patience is how long an owner counts as active after it last
	// acquired or was refused bytes: longer than the delay its callers
	// wait before they retry. Default 1 s.
	Patience time.Duration
}

// Budget bounds the bytes that are in flight at once: acquired when a
// request is admitted, released when its work is done. It never blocks: a
// request that does not fit is refused at once, so the caller can answer
// "retry later" instead of queueing without bound.
//
// With a Share, each owner (a principal) may hold at most that much while
// others are active, so one owner flooding the budget cannot keep the
// others out: the first refusal of another owner makes it active, and
// from then the flood is held to its share, so the room it leaves when
// its bytes are released stays for the others. An owner's first request
// is admitted whatever its size when the budget has room, so that one
// large request is never refused for ever. The owner "" (the gateway's own
// writes) counts in the budget but is never held to a share.
//
// Budget is safe for concurrent use. It reads no clock: callers pass the
// time. The zero value is not usable; call NewBudget.
type Budget struct {
	limit, share int64
	patience     int64 // nanoseconds

	used atomic.Int64 // total reserved; written under mu when sharing

	mu      sync.Mutex
	owners  map[string]*ownerUse // owners holding bytes or active within patience
	pruneAt int                  // len(owners) at which Acquire forgets the inactive ones
}

// ownerUse is one owner's part of a Budget.
type ownerUse struct {
	used        int64
	activeUntil int64 // unix nanoseconds
}

// NewBudget returns a Budget for cfg. cfg.Limit must be positive.
func NewBudget(cfg BudgetConfig) *Budget {
	if cfg.Limit <= 0 {
		panic("flowcontrol: budget limit must be positive")
	}
	if cfg.Patience <= 0 {
		cfg.Patience = time.Second
	}
	b := &Budget{limit: cfg.Limit, share: cfg.Share, patience: int64(cfg.Patience)}
	if b.sharing() {
		b.owners, b.pruneAt = map[string]*ownerUse{}, 64
	}
	return b
}

func (b *Budget) sharing() bool { return b.share > 0 && b.share < b.limit }

// Acquire reserves n bytes for owner, all or nothing, at time now. It
// returns ErrBudgetExhausted, reserving nothing, when fewer than n bytes
// are free, and ErrShareExhausted when owner already holds bytes and n more
// would take it beyond its share while another owner is active. A request
// larger than the whole budget is admitted when nothing else is in
// flight.
func (b *Budget) Acquire(owner string, n int64, now time.Time) error {
	if !b.sharing() {
		return b.acquireTotal(n)
	}
	t := now.UnixNano()
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.check(owner, n, t); err != nil {
		return err
	}
	b.use(owner, t).used += n
	b.used.Add(n)
	return nil
}

// use returns owner's entry, made active until t + patience. b.mu is held.
func (b *Budget) use(owner string, t int64) *ownerUse {
	o := b.owners[owner]
	if o == nil {
		if len(b.owners) >= b.pruneAt {
			b.othersActive("", t) // forgets the owners no longer active
			b.pruneAt = max(64, 2*len(b.owners))
		}
		o = &ownerUse{}
		b.owners[owner] = o
	}
	o.activeUntil = t + b.patience
	return o
}

// acquireTotal is Acquire when owners are not told apart: lock-free.
func (b *Budget) acquireTotal(n int64) error {
	for {
		used := b.used.Load()
		if used+n > b.limit && used > 0 {
			return ErrBudgetExhausted
		}
		if b.used.CompareAndSwap(used, used+n) {
			return nil
		}
	}
}

// Check returns the error Acquire(owner, n, now) would return, reserving
// nothing. A refusal for want of room makes owner active, as Acquire's
// does, so that a server can refuse calls before it reads them and still
// hold the others to their share.
func (b *Budget) Check(owner string, n int64, now time.Time) error {
	if !b.sharing() {
		if used := b.used.Load(); used+n > b.limit && used > 0 {
			return ErrBudgetExhausted
		}
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.check(owner, n, now.UnixNano())
}

// check is Acquire's decision; b.mu is held.
func (b *Budget) check(owner string, n, t int64) error {
	if used := b.used.Load(); used+n > b.limit && used > 0 {
		b.use(owner, t)
		return ErrBudgetExhausted
	}
	if o := b.owners[owner]; owner != "" && o != nil && o.used > 0 && o.used+n > b.share && b.othersActive(owner, t) {
		return ErrShareExhausted
	}
	return nil
}

// othersActive reports whether an owner other than owner is active at t,
// forgetting the owners that no longer are (all of them but owner: it
// looks at every one when none is active). b.mu is held.
func (b *Budget) othersActive(owner string, t int64) bool {
	active := false
	for k, o := range b.owners {
		switch {
		case k == owner:
		case o.used > 0 || o.activeUntil > t:
			active = true
		default:
			delete(b.owners, k)
		}
	}
	return active
}

// Release returns n bytes that owner reserved by an earlier Acquire.
func (b *Budget) Release(owner string, n int64) {
	if n == 0 {
		return
	}
	if !b.sharing() {
		if b.used.Add(-n) < 0 {
			panic("flowcontrol: budget released more than acquired")
		}
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	o := b.owners[owner]
	if o == nil || o.used < n {
		panic("flowcontrol: budget released more than its owner acquired")
	}
	o.used -= n
	b.used.Add(-n)
}

// Used reports the bytes currently reserved.
func (b *Budget) Used() int64 { return b.used.Load() }

// Limit reports the budget's size in bytes.
func (b *Budget) Limit() int64 { return b.limit }

// Share reports the most bytes one owner may hold while others are active,
// or Limit when owners are not told apart.
func (b *Budget) Share() int64 {
	if !b.sharing() {
		return b.limit
	}
	return b.share
}

// UsedBy reports the bytes owner holds (0 when owners are not told apart).
func (b *Budget) UsedBy(owner string) int64 {
	if !b.sharing() {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if o := b.owners[owner]; o != nil {
		return o.used
	}
	return 0
}
