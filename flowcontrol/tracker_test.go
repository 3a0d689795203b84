package flowcontrol

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// t0 is the synthetic start time of every test; times in scripts are
// durations after it.
var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

var testCfg = TrackerConfig{
	MaxMessages: 10,
	MaxBytes:    1000,
	AckDeadline: 30 * time.Second,
	MinBackoff:  time.Second,
	MaxBackoff:  8 * time.Second,
}

func tp(p int32) TopicPartition { return TopicPartition{Topic: "t", Partition: p} }

// TestTracker runs scripts against a Tracker. Each line is "op args -> want";
// partitions are those of topic "t", ids are written "assignment/offset/attempt"
// in decimal, durations are time.ParseDuration strings. Ops:
//
//	at D                    set now to t0+D
//	assign P | revoke P     revoke -> commit offset or "none"
//	offer P OFF [SIZE]      -> skip | refuse | deliver ID | deadletter ID (SIZE defaults to 1)
//	ack ID | dl ID | dlfail ID | nack ID D|backoff | extend ID D   -> true | false
//	tick | commits          -> "P@OFF ..." or "none"
//	held -> MSGS BYTES, outstanding -> N, room -> BOOL, assigned P -> BOOL, wake -> D | none
func TestTracker(t *testing.T) {
	for i, tc := range []struct {
		cfg    func(*TrackerConfig)
		script string
	}{
		// In-order delivery and commit.
		0: {script: `
			assign 0
			commits -> none
			offer 0 0 -> deliver 1/0/1
			offer 0 1 -> deliver 1/1/1
			offer 0 2 -> deliver 1/2/1
			outstanding -> 3
			commits -> 0@0
			ack 1/0/1 -> true
			ack 1/1/1 -> true
			commits -> 0@2
			commits -> none
			ack 1/2/1 -> true
			commits -> 0@3
			held -> 0 0
			outstanding -> 0`},
		// Out-of-order acks with offset gaps never commit past an unacked record.
		1: {script: `
			assign 0
			offer 0 5 -> deliver 1/5/1
			offer 0 7 -> deliver 1/7/1
			offer 0 9 -> deliver 1/9/1
			ack 1/9/1 -> true
			ack 1/7/1 -> true
			commits -> 0@5
			ack 1/6/1 -> false
			ack 1/5/2 -> false
			ack 1/5/1 -> true
			ack 1/5/1 -> false
			commits -> 0@10`},
		// Nack, then Tick seeks when due; the re-read skips acked and
		// outstanding records and redelivers the nacked one.
		2: {script: `
			assign 0
			offer 0 0 -> deliver 1/0/1
			offer 0 1 -> deliver 1/1/1
			offer 0 2 -> deliver 1/2/1
			offer 0 3 -> deliver 1/3/1
			nack 1/1/1 5s -> true
			nack 1/1/1 5s -> false
			ack 1/2/1 -> true
			outstanding -> 2
			held -> 3 3
			wake -> 5s
			at 4s
			tick -> none
			offer 0 1 -> skip
			at 5s
			tick -> 0@1
			tick -> none
			wake -> 30s
			offer 0 0 -> skip
			offer 0 1 -> deliver 1/1/2
			offer 0 2 -> skip
			offer 0 3 -> skip
			offer 0 4 -> deliver 1/4/1
			nack 1/1/1 0s -> false
			ack 1/1/1 -> true
			commits -> 0@0
			ack 1/0/1 -> true
			commits -> 0@3`},
		// Backoff doubles from MinBackoff and is capped at MaxBackoff.
		3: {cfg: func(c *TrackerConfig) { c.MaxBackoff = 4 * time.Second }, script: `
			assign 0
			offer 0 0 -> deliver 1/0/1
			nack 1/0/1 backoff -> true
			wake -> 1s
			at 1s
			tick -> 0@0
			offer 0 0 -> deliver 1/0/2
			nack 1/0/2 backoff -> true
			wake -> 3s
			at 3s
			tick -> 0@0
			offer 0 0 -> deliver 1/0/3
			nack 1/0/3 backoff -> true
			wake -> 7s
			at 7s
			tick -> 0@0
			offer 0 0 -> deliver 1/0/4
			nack 1/0/4 backoff -> true
			wake -> 11s`},
		// Ack deadline expiry (a nack with backoff) and Extend.
		4: {script: `
			assign 0
			offer 0 0 -> deliver 1/0/1
			offer 0 1 -> deliver 1/1/1
			at 10s
			extend 1/1/1 60s -> true
			extend 1/1/2 60s -> false
			wake -> 30s
			at 30s
			tick -> none
			outstanding -> 1
			extend 1/0/1 60s -> false
			wake -> 31s
			at 31s
			tick -> 0@0
			offer 0 0 -> deliver 1/0/2
			offer 0 1 -> skip
			ack 1/0/2 -> true
			wake -> 1m10s
			at 70s
			tick -> none
			outstanding -> 0
			wake -> 1m11s
			commits -> 0@1`},
		// Window by messages: refused records are not recorded; a waiting
		// record keeps its slot.
		5: {cfg: func(c *TrackerConfig) { c.MaxMessages = 2 }, script: `
			assign 0
			offer 0 0 -> deliver 1/0/1
			room -> true
			offer 0 1 -> deliver 1/1/1
			room -> false
			offer 0 2 -> refuse
			offer 0 2 -> refuse
			commits -> 0@0
			nack 1/0/1 0s -> true
			offer 0 2 -> refuse
			held -> 2 2
			ack 1/1/1 -> true
			room -> true
			offer 0 2 -> deliver 1/2/1
			tick -> 0@0
			offer 0 0 -> deliver 1/0/2
			offer 0 1 -> skip
			offer 0 2 -> skip
			offer 0 3 -> refuse`},
		// Window by bytes; one record larger than MaxBytes is admitted only
		// when nothing is held.
		6: {cfg: func(c *TrackerConfig) { c.MaxBytes = 100 }, script: `
			assign 0
			offer 0 0 60 -> deliver 1/0/1
			offer 0 1 50 -> refuse
			offer 0 1 40 -> deliver 1/1/1
			room -> false
			offer 0 2 1 -> refuse
			ack 1/0/1 -> true
			offer 0 2 500 -> refuse
			ack 1/1/1 -> true
			offer 0 2 500 -> deliver 1/2/1
			held -> 1 500
			room -> false
			offer 0 3 0 -> refuse
			ack 1/2/1 -> true
			held -> 0 0`},
		// Dead-letter after MaxAttempts; DeadLetterFailed retries after backoff.
		7: {cfg: func(c *TrackerConfig) { c.MaxAttempts = 2 }, script: `
			assign 0
			offer 0 0 -> deliver 1/0/1
			offer 0 1 -> deliver 1/1/1
			nack 1/0/1 0s -> true
			tick -> 0@0
			offer 0 0 -> deliver 1/0/2
			offer 0 1 -> skip
			nack 1/0/2 1h -> true
			outstanding -> 1
			tick -> 0@0
			offer 0 0 -> deadletter 1/0/2
			offer 0 0 -> skip
			ack 1/0/2 -> false
			nack 1/0/2 0s -> false
			dl 1/0/1 -> false
			held -> 2 2
			dlfail 1/0/2 -> true
			dlfail 1/0/2 -> false
			tick -> none
			wake -> 2s
			at 2s
			tick -> 0@0
			offer 0 0 -> deadletter 1/0/2
			dl 1/0/2 -> true
			dl 1/0/2 -> false
			held -> 1 1
			commits -> 0@1
			ack 1/1/1 -> true
			commits -> 0@2`},
		// An expired last attempt goes straight to dead-lettering; a waiting
		// dead-letter record can still be acked.
		8: {cfg: func(c *TrackerConfig) { c.MaxAttempts = 1 }, script: `
			assign 0
			offer 0 0 -> deliver 1/0/1
			offer 0 1 -> deliver 1/1/1
			offer 0 2 -> deliver 1/2/1
			at 30s
			tick -> 0@0
			outstanding -> 0
			ack 1/1/1 -> true
			offer 0 0 -> deadletter 1/0/1
			offer 0 1 -> skip
			offer 0 2 -> deadletter 1/2/1
			dl 1/0/1 -> true
			dl 1/2/1 -> true
			held -> 0 0
			wake -> none
			commits -> 0@3`},
		// Revoke releases slots and returns the commit; ids of an earlier
		// assignment are stale.
		9: {script: `
			assign 0
			assign 1
			assign 0
			assigned 0 -> true
			offer 0 0 -> deliver 1/0/1
			offer 0 1 -> deliver 1/1/1
			offer 1 0 -> deliver 2/0/1
			nack 1/1/1 5s -> true
			ack 1/0/1 -> true
			held -> 2 2
			revoke 0 -> 1
			assigned 0 -> false
			held -> 1 1
			outstanding -> 1
			ack 1/1/1 -> false
			offer 0 1 -> skip
			revoke 0 -> none
			tick -> none
			assign 0
			offer 0 1 -> deliver 3/1/1
			ack 1/1/1 -> false
			nack 1/1/1 0s -> false
			extend 1/1/1 1s -> false
			ack 3/1/1 -> true
			revoke 1 -> 0
			assign 1
			revoke 1 -> none
			commits -> 0@2
			at 10s
			tick -> none
			wake -> none`},
		// Records waiting between the seek offset and the first offset read
		// after the seek were compacted away: dropped as if acked.
		10: {script: `
			assign 0
			offer 0 0 -> deliver 1/0/1
			offer 0 1 -> deliver 1/1/1
			offer 0 2 -> deliver 1/2/1
			offer 0 3 -> deliver 1/3/1
			offer 0 4 -> deliver 1/4/1
			ack 1/0/1 -> true
			nack 1/1/1 0s -> true
			nack 1/3/1 10s -> true
			tick -> 0@1
			offer 0 4 -> skip
			held -> 2 2
			outstanding -> 2
			commits -> 0@2
			ack 1/1/1 -> false
			wake -> 30s`},
		// The seek goes to the lowest due record; an earlier record not yet
		// due causes its own seek later.
		11: {script: `
			assign 0
			offer 0 0 -> deliver 1/0/1
			offer 0 1 -> deliver 1/1/1
			offer 0 2 -> deliver 1/2/1
			nack 1/0/1 10s -> true
			nack 1/2/1 0s -> true
			tick -> 0@2
			offer 0 2 -> deliver 1/2/2
			wake -> 10s
			at 10s
			tick -> 0@0
			offer 0 0 -> deliver 1/0/2
			offer 0 1 -> skip
			offer 0 2 -> skip
			offer 0 3 -> deliver 1/3/1`},
		// Two partitions: seeks and commits are per partition, ordered.
		12: {script: `
			offer 0 0 -> skip
			assign 1
			assign 0
			offer 1 4 -> deliver 1/4/1
			offer 0 7 -> deliver 2/7/1
			commits -> 0@7 1@4
			nack 2/7/1 0s -> true
			nack 1/4/1 0s -> true
			tick -> 0@7 1@4
			ack 1/4/1 -> true
			commits -> 1@5
			offer 1 4 -> skip
			offer 0 8 -> deliver 2/8/1
			held -> 1 1`},
	} {
		cfg := testCfg
		if tc.cfg != nil {
			tc.cfg(&cfg)
		}
		tr := NewTracker(cfg)
		now := t0
		for n, line := range strings.Split(strings.TrimSpace(tc.script), "\n") {
			line = strings.TrimSpace(line)
			cmd, want, _ := strings.Cut(line, " -> ")
			got := runStep(t, tr, &now, strings.Fields(cmd))
			if got != want {
				t.Fatalf("case %d line %d %q: got %q", i, n+1, line, got)
			}
		}
	}
}

// runStep runs one script command and returns its result as a string.
func runStep(t *testing.T, tr *Tracker, now *time.Time, f []string) string {
	t.Helper()
	num := func(i int) int64 {
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			t.Fatalf("bad number in %q: %v", f, err)
		}
		return v
	}
	dur := func(i int) time.Duration {
		d, err := time.ParseDuration(f[i])
		if err != nil {
			t.Fatalf("bad duration in %q: %v", f, err)
		}
		return d
	}
	id := func() AckID {
		var a AckID
		if _, err := fmt.Sscanf(f[1], "%d/%d/%d", &a.Assignment, &a.Offset, &a.Attempt); err != nil {
			t.Fatalf("bad id in %q: %v", f, err)
		}
		return a
	}
	switch f[0] {
	case "at":
		*now = t0.Add(dur(1))
	case "assign":
		tr.Assign(tp(int32(num(1))))
	case "revoke":
		if c, ok := tr.Revoke(tp(int32(num(1)))); ok {
			return strconv.FormatInt(c, 10)
		}
		return "none"
	case "assigned":
		return strconv.FormatBool(tr.Assigned(tp(int32(num(1)))))
	case "offer":
		size := int64(1)
		if len(f) > 3 {
			size = num(3)
		}
		d, a := tr.Offer(tp(int32(num(1))), num(2), size, *now)
		switch d {
		case Deliver, DeadLetter:
			return fmt.Sprintf("%s %d/%d/%d", strings.ToLower(d.String()), a.Assignment, a.Offset, a.Attempt)
		}
		if a != (AckID{}) {
			t.Fatalf("%q: %v with id %v", f, d, a)
		}
		return strings.ToLower(d.String())
	case "ack":
		return strconv.FormatBool(tr.Ack(id()))
	case "dl":
		return strconv.FormatBool(tr.DeadLettered(id()))
	case "dlfail":
		return strconv.FormatBool(tr.DeadLetterFailed(id(), *now))
	case "nack":
		if f[2] == "backoff" {
			return strconv.FormatBool(tr.Nack(id(), time.Hour, true, *now))
		}
		return strconv.FormatBool(tr.Nack(id(), dur(2), false, *now))
	case "extend":
		return strconv.FormatBool(tr.Extend(id(), dur(2), *now))
	case "tick":
		var out []string
		for _, s := range tr.Tick(*now) {
			out = append(out, fmt.Sprintf("%d@%d", s.TopicPartition.Partition, s.Offset))
		}
		return listOrNone(out)
	case "commits":
		var out []string
		for _, c := range tr.Commits() {
			out = append(out, fmt.Sprintf("%d@%d", c.TopicPartition.Partition, c.Offset))
		}
		return listOrNone(out)
	case "held":
		m, b := tr.Held()
		return fmt.Sprintf("%d %d", m, b)
	case "outstanding":
		return strconv.Itoa(tr.Outstanding())
	case "room":
		return strconv.FormatBool(tr.HasRoom())
	case "wake":
		w := tr.NextWake()
		if w.IsZero() {
			return "none"
		}
		return w.Sub(t0).String()
	default:
		t.Fatalf("unknown op %q", f)
	}
	return ""
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, " ")
}

func TestTrackerBackoff(t *testing.T) {
	for i, tc := range []struct {
		min, max time.Duration
		attempt  int32
		want     time.Duration
	}{
		0: {min: time.Second, max: time.Minute, attempt: 1, want: time.Second},
		1: {min: time.Second, max: time.Minute, attempt: 2, want: 2 * time.Second},
		2: {min: time.Second, max: time.Minute, attempt: 6, want: 32 * time.Second},
		3: {min: time.Second, max: time.Minute, attempt: 7, want: time.Minute},
		4: {min: time.Second, max: time.Minute, attempt: math.MaxInt32, want: time.Minute},
		5: {min: 0, max: time.Minute, attempt: 10, want: 0},
		6: {min: time.Second, max: time.Second, attempt: 10, want: time.Second},
		// Doubling would overflow int64 before reaching the cap.
		7: {min: 3, max: math.MaxInt64, attempt: 100, want: math.MaxInt64},
		8: {min: 3, max: math.MaxInt64, attempt: 62, want: 3 << 61},
	} {
		cfg := testCfg
		cfg.MinBackoff, cfg.MaxBackoff = tc.min, tc.max
		if got := NewTracker(cfg).backoff(tc.attempt); got != tc.want {
			t.Errorf("case %d: backoff(%d) = %v, want %v", i, tc.attempt, got, tc.want)
		}
	}
}

func TestNewTrackerPanicsOnInvalidConfig(t *testing.T) {
	for i, mutate := range []func(*TrackerConfig){
		0: func(c *TrackerConfig) { c.MaxMessages = 0 },
		1: func(c *TrackerConfig) { c.MaxBytes = 0 },
		2: func(c *TrackerConfig) { c.AckDeadline = 0 },
		3: func(c *TrackerConfig) { c.MinBackoff = -1 },
		4: func(c *TrackerConfig) { c.MaxBackoff = c.MinBackoff - 1 },
		5: func(c *TrackerConfig) { c.MaxAttempts = -1 },
	} {
		cfg := testCfg
		mutate(&cfg)
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("case %d: NewTracker(%+v) did not panic", i, cfg)
				}
			}()
			NewTracker(cfg)
		}()
	}
}

func ExampleTracker() {
	tr := NewTracker(TrackerConfig{MaxMessages: 100, MaxBytes: 1 << 20, AckDeadline: time.Minute, MaxBackoff: time.Second})
	p0 := TopicPartition{Topic: "orders", Partition: 0}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tr.Assign(p0)
	_, first := tr.Offer(p0, 41, 10, now)
	_, second := tr.Offer(p0, 42, 10, now)
	tr.Ack(second)                          // out of order: offset 41 is still unacked
	tr.Nack(first, time.Second, false, now) // redeliver in a second
	fmt.Println(tr.Commits())
	fmt.Println(tr.Tick(now.Add(time.Second)))
	d, again := tr.Offer(p0, 41, 10, now.Add(time.Second)) // read again after the seek
	fmt.Println(d, again)
	tr.Ack(again)
	fmt.Println(tr.Commits())
	// Output:
	// [{{orders 0} 41}]
	// [{{orders 0} 41}]
	// Deliver 1.15.2
	// [{{orders 0} 43}]
}

func BenchmarkTrackerDeliverAck(b *testing.B) {
	const inFlight = 100
	tr := NewTracker(TrackerConfig{MaxMessages: 1000, MaxBytes: 1 << 30, AckDeadline: time.Minute})
	p := tp(0)
	tr.Assign(p)
	ids := make([]AckID, inFlight)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		j := i % inFlight
		if i >= inFlight && !tr.Ack(ids[j]) {
			b.Fatal("ack failed")
		}
		d, id := tr.Offer(p, int64(i), 100, t0)
		if d != Deliver {
			b.Fatalf("Offer = %v", d)
		}
		ids[j] = id
	}
}
