package flowcontrol

import (
	"errors"
	"sync"
	"testing"
)

func TestBudget(t *testing.T) {
	type step struct {
		acquire, release int64
		wantErr          error
		wantUsed         int64
	}
	for i, tc := range []struct {
		limit int64
		steps []step
	}{
		0: {limit: 10, steps: []step{{acquire: 4, wantUsed: 4}, {acquire: 6, wantUsed: 10}, {acquire: 1, wantErr: ErrBudgetExhausted, wantUsed: 10}}},
		1: {limit: 10, steps: []step{{acquire: 8, wantUsed: 8}, {acquire: 3, wantErr: ErrBudgetExhausted, wantUsed: 8}, {release: 8, wantUsed: 0}, {acquire: 3, wantUsed: 3}}},
		// Larger than the whole budget: admitted only when nothing is in flight.
		2: {limit: 10, steps: []step{{acquire: 1, wantUsed: 1}, {acquire: 20, wantErr: ErrBudgetExhausted, wantUsed: 1}, {release: 1}, {acquire: 20, wantUsed: 20}, {acquire: 1, wantErr: ErrBudgetExhausted, wantUsed: 20}}},
	} {
		b := NewBudget(tc.limit)
		for j, s := range tc.steps {
			if s.release > 0 {
				b.Release(s.release)
			} else if err := b.Acquire(s.acquire); !errors.Is(err, s.wantErr) {
				t.Fatalf("case %d step %d: Acquire(%d) = %v, want %v", i, j, s.acquire, err, s.wantErr)
			}
			if got := b.Used(); got != s.wantUsed {
				t.Fatalf("case %d step %d: Used() = %d, want %d", i, j, got, s.wantUsed)
			}
		}
	}
}

func TestBudgetConcurrentNeverExceedsLimit(t *testing.T) {
	const limit = 100
	b := NewBudget(limit)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				if b.Acquire(7) == nil {
					if u := b.Used(); u > limit {
						t.Errorf("used %d > limit %d", u, limit)
					}
					b.Release(7)
				}
			}
		}()
	}
	wg.Wait()
	if b.Used() != 0 {
		t.Fatalf("Used() = %d after all releases, want 0", b.Used())
	}
}

func BenchmarkBudgetAcquireRelease(b *testing.B) {
	bu := NewBudget(1 << 30)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if bu.Acquire(100) == nil {
				bu.Release(100)
			}
		}
	})
}
