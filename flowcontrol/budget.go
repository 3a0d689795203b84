package flowcontrol

import (
	"errors"
	"sync/atomic"
)

// ErrBudgetExhausted is returned by Budget.Acquire when the request does not
// fit in what is left of the budget.
var ErrBudgetExhausted = errors.New("in-flight byte budget exhausted")

// Budget bounds the bytes that are in flight at once: acquired when a
// request is admitted, released when its work is done. It never blocks: a
// request that does not fit is refused at once, so the caller can answer
// "retry later" instead of queueing without bound.
//
// Budget is safe for concurrent use. The zero value is not usable; call
// NewBudget.
type Budget struct {
	limit int64
	used  atomic.Int64
}

// NewBudget returns a Budget of limit bytes. limit must be positive.
func NewBudget(limit int64) *Budget {
	if limit <= 0 {
		panic("flowcontrol: budget limit must be positive")
	}
	return &Budget{limit: limit}
}

// Acquire reserves n bytes, all or nothing. It returns ErrBudgetExhausted,
// reserving nothing, when fewer than n bytes are free. A request larger than
// the whole budget is admitted when nothing else is in flight, so that one
// large request can never be refused for ever.
func (b *Budget) Acquire(n int64) error {
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

// Release returns n bytes reserved by an earlier Acquire.
func (b *Budget) Release(n int64) {
	if b.used.Add(-n) < 0 {
		panic("flowcontrol: budget released more than acquired")
	}
}

// Used reports the bytes currently reserved.
func (b *Budget) Used() int64 { return b.used.Load() }

// Limit reports the budget's size in bytes.
func (b *Budget) Limit() int64 { return b.limit }
