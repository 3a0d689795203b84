package flowcontrol

import (
	"errors"
	"sync"
	"testing"
	"time"
)

func TestBudget(t *testing.T) {
	type step struct {
		owner            string
		at               time.Duration // since the start
		acquire, release int64
		check            bool // Check instead of Acquire
		wantErr          error
		wantUsed         int64
	}
	for i, tc := range []struct {
		cfg   BudgetConfig
		steps []step
	}{
		0: {cfg: BudgetConfig{Limit: 10}, steps: []step{{acquire: 4, wantUsed: 4}, {acquire: 6, wantUsed: 10}, {acquire: 1, wantErr: ErrBudgetExhausted, wantUsed: 10}}},
		1: {cfg: BudgetConfig{Limit: 10}, steps: []step{{acquire: 8, wantUsed: 8}, {acquire: 3, wantErr: ErrBudgetExhausted, wantUsed: 8}, {release: 8, wantUsed: 0}, {acquire: 3, wantUsed: 3}}},
		// Larger than the whole budget: admitted only when nothing is in flight.
		2: {cfg: BudgetConfig{Limit: 10}, steps: []step{{acquire: 1, wantUsed: 1}, {acquire: 20, wantErr: ErrBudgetExhausted, wantUsed: 1}, {release: 1}, {acquire: 20, wantUsed: 20}, {acquire: 1, wantErr: ErrBudgetExhausted, wantUsed: 20}}},
		// Without a share, owners are not told apart: alice takes everything.
		3: {cfg: BudgetConfig{Limit: 10}, steps: []step{{owner: "alice", acquire: 10, wantUsed: 10}, {owner: "bob", acquire: 1, wantErr: ErrBudgetExhausted, wantUsed: 10}}},
		// Alone, alice may take the whole budget, beyond her share.
		4: {cfg: BudgetConfig{Limit: 100, Share: 25}, steps: []step{
			{owner: "alice", acquire: 40, wantUsed: 40}, {owner: "alice", acquire: 60, wantUsed: 100},
			// bob is refused for want of room, and so becomes active ...
			{owner: "bob", acquire: 10, wantErr: ErrBudgetExhausted, wantUsed: 100},
			// ... so alice is held to her share while she is above it:
			{owner: "alice", release: 50, wantUsed: 50}, {owner: "alice", acquire: 10, wantErr: ErrShareExhausted, wantUsed: 50},
			// and the room stays for bob.
			{owner: "bob", acquire: 10, wantUsed: 60}, {owner: "alice", release: 40, wantUsed: 20},
			{owner: "alice", acquire: 15, wantUsed: 35}, {owner: "alice", acquire: 1, wantErr: ErrShareExhausted, wantUsed: 35},
		}},
		// Once bob holds nothing and his patience (1 s) passed, alice may
		// take everything again.
		5: {cfg: BudgetConfig{Limit: 100, Share: 25}, steps: []step{
			{owner: "alice", acquire: 20, wantUsed: 20}, {owner: "bob", acquire: 5, wantUsed: 25},
			{owner: "alice", acquire: 10, wantErr: ErrShareExhausted, wantUsed: 25},
			{owner: "bob", release: 5, wantUsed: 20},
			{owner: "alice", at: 500 * time.Millisecond, acquire: 10, wantErr: ErrShareExhausted, wantUsed: 20},
			{owner: "alice", at: 1100 * time.Millisecond, acquire: 80, wantUsed: 100},
		}},
		// An owner's first request is admitted beyond its share when there
		// is room: a large request is never refused for ever.
		6: {cfg: BudgetConfig{Limit: 100, Share: 25}, steps: []step{
			{owner: "bob", acquire: 1, wantUsed: 1}, {owner: "alice", acquire: 60, wantUsed: 61},
			{owner: "alice", acquire: 1, wantErr: ErrShareExhausted, wantUsed: 61},
		}},
		// A Check refused for want of room makes its owner active, as a
		// refused Acquire does, and reserves nothing.
		7: {cfg: BudgetConfig{Limit: 100, Share: 25}, steps: []step{
			{owner: "alice", acquire: 100, wantUsed: 100},
			{owner: "bob", check: true, acquire: 1, wantErr: ErrBudgetExhausted, wantUsed: 100},
			{owner: "alice", release: 90, wantUsed: 10},
			{owner: "alice", check: true, acquire: 20, wantErr: ErrShareExhausted, wantUsed: 10},
			{owner: "bob", check: true, acquire: 20, wantUsed: 10},
		}},
		// The gateway's own writes (owner "") are never held to a share.
		8: {cfg: BudgetConfig{Limit: 100, Share: 25}, steps: []step{
			{owner: "alice", acquire: 5, wantUsed: 5}, {acquire: 30, wantUsed: 35}, {acquire: 30, wantUsed: 65},
			{owner: "alice", acquire: 30, wantErr: ErrShareExhausted, wantUsed: 65},
		}},
	} {
		b := NewBudget(tc.cfg)
		start := time.Unix(1000, 0)
		for j, s := range tc.steps {
			now := start.Add(s.at)
			switch {
			case s.release > 0:
				b.Release(s.owner, s.release)
			case s.check:
				if err := b.Check(s.owner, s.acquire, now); !errors.Is(err, s.wantErr) {
					t.Fatalf("case %d step %d: Check(%q, %d) = %v, want %v", i, j, s.owner, s.acquire, err, s.wantErr)
				}
			default:
				if err := b.Acquire(s.owner, s.acquire, now); !errors.Is(err, s.wantErr) {
					t.Fatalf("case %d step %d: Acquire(%q, %d) = %v, want %v", i, j, s.owner, s.acquire, err, s.wantErr)
				}
			}
			if got := b.Used(); got != s.wantUsed {
				t.Fatalf("case %d step %d: Used() = %d, want %d", i, j, got, s.wantUsed)
			}
		}
	}
}

func TestBudgetConcurrentNeverExceedsLimit(t *testing.T) {
	for _, cfg := range []BudgetConfig{{Limit: 100}, {Limit: 100, Share: 30}} {
		b := NewBudget(cfg)
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			owner := string(rune('a' + g%3))
			go func() {
				defer wg.Done()
				for i := 0; i < 2000; i++ {
					if b.Acquire(owner, 7, time.Now()) == nil {
						if u := b.Used(); u > cfg.Limit {
							t.Errorf("used %d > limit %d", u, cfg.Limit)
						}
						b.Release(owner, 7)
					}
				}
			}()
		}
		wg.Wait()
		if b.Used() != 0 {
			t.Fatalf("%+v: Used() = %d after all releases, want 0", cfg, b.Used())
		}
	}
}

// FuzzBudget drives a shared Budget with arbitrary acquires and releases
// of four owners over time and checks its accounting: the total is the sum
// of the owners' parts and within the limit (but for a lone oversized
// request), and an owner already holding bytes passes its share only while
// no other owner is active.
func FuzzBudget(f *testing.F) {
	f.Add([]byte{0x10, 0x21, 0x32, 0x83, 0x90, 0x11})
	f.Add([]byte{0xff, 0x00, 0x7f, 0x80, 0x01, 0xfe})
	f.Fuzz(func(t *testing.T, ops []byte) {
		const limit, share = 64, 20
		b := NewBudget(BudgetConfig{Limit: limit, Share: share, Patience: 10})
		held := map[string][]int64{}
		last := map[string]int64{} // the time each owner last acquired or was refused for want of room
		now := int64(0)
		for _, op := range ops {
			owner := string(rune('a' + op&3))
			now += int64(op>>2) % 7
			if op&0x80 != 0 && len(held[owner]) > 0 { // release the oldest
				n := held[owner][0]
				held[owner] = held[owner][1:]
				b.Release(owner, n)
				continue
			}
			n := int64(op>>2) % 40
			mine, before := b.UsedBy(owner), b.Used()
			othersActive := false
			for o, at := range last {
				othersActive = othersActive || (o != owner && (b.UsedBy(o) > 0 || now < at+10))
			}
			err := b.Acquire(owner, n, time.Unix(0, now))
			switch {
			case err == nil:
				held[owner] = append(held[owner], n)
				last[owner] = now
				if mine > 0 && mine+n > share && othersActive {
					t.Fatalf("%s holding %d got %d more (share %d) while another owner is active", owner, mine, n, share)
				}
			case errors.Is(err, ErrBudgetExhausted):
				if before+n <= limit || before == 0 {
					t.Fatalf("%d refused with %d of %d in use", n, before, limit)
				}
				last[owner] = now
			case errors.Is(err, ErrShareExhausted):
				if mine == 0 || mine+n <= share || !othersActive {
					t.Fatalf("%s holding %d refused %d for its share (others active %v)", owner, mine, n, othersActive)
				}
			}
			var sum int64
			for o := range held {
				if got, want := b.UsedBy(o), total(held[o]); got != want {
					t.Fatalf("UsedBy(%s) = %d, want %d", o, got, want)
				}
				sum += total(held[o])
			}
			if b.Used() != sum || sum > limit {
				t.Fatalf("Used() = %d, parts sum to %d, limit %d", b.Used(), sum, limit)
			}
		}
	})
}

func total(ns []int64) (s int64) {
	for _, n := range ns {
		s += n
	}
	return s
}

func BenchmarkBudgetAcquireRelease(b *testing.B) {
	for _, cfg := range []BudgetConfig{{Limit: 1 << 30}, {Limit: 1 << 30, Share: 1 << 28}} {
		name := "one owner"
		if cfg.Share > 0 {
			name = "shared"
		}
		b.Run(name, func(b *testing.B) {
			bu := NewBudget(cfg)
			now := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if bu.Acquire("alice", 100, now) == nil {
						bu.Release("alice", 100)
					}
				}
			})
		})
	}
}
