package flowcontrol

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// t0 is the synthetic start time of every test; times in scripts are
// durations after it.
var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func tp(p int32) TopicPartition { return TopicPartition{Topic: "t", Partition: p} }

// harness runs a Dispatcher the way kafkaio's group consumer does: it keeps
// each session's queue of deliveries not yet sent, takes pull-backs out of
// it, and sends on command.
type harness struct {
	t      *testing.T
	d      *Dispatcher
	now    time.Time
	queues map[SessionID][]*Entry
	byName map[string]*Entry // "P@OFF" of every entry offered
}

func newHarness(t *testing.T, mode Ordering) *harness {
	return &harness{t: t, d: NewDispatcher(mode, "me"), now: t0, queues: map[SessionID][]*Entry{}, byName: map[string]*Entry{}}
}

func name(e *Entry) string { return fmt.Sprintf("%d@%d", e.TopicPartition().Partition, e.Offset()) }

// deliveries queues ds and describes them as "S:P@OFF#ATTEMPT[(reason)]".
func (h *harness) deliveries(ds ...Delivery) []string {
	var out []string
	for _, del := range ds {
		h.queues[del.Session] = append(h.queues[del.Session], del.Entry)
		s := fmt.Sprintf("%d:%s#%d", del.Session, name(del.Entry), del.Entry.Attempt())
		if del.Redelivery {
			s += "(" + del.Reason.String() + ")"
		}
		out = append(out, s)
	}
	return out
}

// pullBacks applies the dispatcher's pull-backs to the queues.
func (h *harness) pullBacks() []string {
	var out []string
	for _, pb := range h.d.TakePullBacks() {
		q := h.queues[pb.Session]
		var back []*Entry
		q = slices.DeleteFunc(q, func(e *Entry) bool {
			if pb.All || e.TopicPartition() == pb.TP {
				back = append(back, e)
				return true
			}
			return false
		})
		h.queues[pb.Session] = q
		for _, e := range back {
			out = append(out, fmt.Sprintf("%d:%s", pb.Session, name(e)))
		}
		h.d.Unqueue(back)
	}
	return out
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, " ")
}

// TestDispatcher runs scripts against a Dispatcher. Each line is
// "op args -> want". Partitions are those of topic "t"; an id is written
// P@OFF#ATTEMPT (in the partition's current assignment) or A/OFF/ATTEMPT;
// durations are time.ParseDuration strings. Ops:
//
//	at D                                  now = t0+D
//	session S [msgs=N] [bytes=N] [deadline=D] [attempts=N] [backoff=D]
//	drain S | remove S
//	assign P START [acked=A-B,C-D through=N writer=W]
//	revoke P                              -> OFF or none
//	offer P OFF [size=N] [key=K]          -> skip | refuse | accept | S:P@OFF#ATT...
//	dispatch                              -> deliveries or none
//	send S [N]                            send N (all) of S's queued entries
//	pullbacks                             -> S:P@OFF ... (applied)
//	ack ID | nack ID D|backoff | extend ID D   -> true | false
//	tick                                  -> expired count
//	deadletters                           -> P@OFF ... (now in flight)
//	dl P@OFF | dlfail P@OFF
//	commits                               -> P@OFF[+START-END...] ...
//	resumable                             -> P ... | none
//	notices                               -> S+P or S-P ... | none
//	held -> N BYTES | window S -> N BYTES | queued S -> P@OFF ...
func TestDispatcher(t *testing.T) {
	for i, tc := range []struct {
		mode   Ordering
		script string
	}{
		// 0. In-order delivery and commit, one session.
		0: {script: `
			session 1
			assign 0 0
			notices -> 1+0
			commits -> none
			offer 0 0 -> 1:0@0#1
			offer 0 1 -> 1:0@1#1
			send 1
			ack 0@0#1 -> true
			ack 0@0#1 -> false
			commits -> 0@1
			ack 0@1#1 -> true
			commits -> 0@2
			commits -> none
			held -> 0 0`},
		// 1. Acks above a gap are carried in the commit's metadata.
		1: {script: `
			session 1
			assign 0 1
			offer 0 1 -> 1:0@1#1
			offer 0 2 -> 1:0@2#1
			offer 0 3 -> 1:0@3#1
			offer 0 5 -> 1:0@5#1
			offer 0 6 -> 1:0@6#1
			send 1
			ack 0@3#1 -> true
			ack 0@2#1 -> true
			ack 0@6#1 -> true
			commits -> 0@1+2-5,6-7`},
		// 2. A record queued but not sent cannot be acked, does not expire,
		// and its deadline starts when it is sent.
		2: {script: `
			session 1 deadline=10s
			assign 0 0
			offer 0 0 -> 1:0@0#1
			ack 0@0#1 -> false
			at 20s
			tick -> 0
			send 1
			at 29s
			tick -> 0
			at 30s
			tick -> 1
			window 1 -> 0 0
			held -> 1 1
			at 30999ms
			tick -> 0
			dispatch -> none
			at 31s
			tick -> 0
			dispatch -> 1:0@0#2(deadline)
			send 1
			ack 0@0#1 -> true
			held -> 0 0`},
		// 3. Nack redelivers from memory after the delay, or the backoff,
		// which doubles and is capped; extend postpones the deadline.
		3: {script: `
			session 1 backoff=1s deadline=30s
			assign 0 0
			offer 0 0 -> 1:0@0#1
			offer 0 1 -> 1:0@1#1
			send 1
			nack 0@0#1 5s -> true
			nack 0@0#1 5s -> false
			at 4s
			tick -> 0
			dispatch -> none
			at 5s
			tick -> 0
			dispatch -> 1:0@0#2(nack)
			send 1
			nack 0@0#2 backoff -> true
			at 6999ms
			tick -> 0
			dispatch -> none
			at 7s
			tick -> 0
			dispatch -> 1:0@0#3(nack)
			extend 0@1#1 2m -> true
			extend 0@0#1 2m -> false
			at 60s
			tick -> 0
			at 126s
			tick -> 0
			at 127s
			tick -> 1
			commits -> 0@0`},
		// 4. After MaxAttempts deliveries a record is dead-lettered; a failed
		// write is tried again after the backoff; then it counts as acked.
		4: {script: `
			session 1 attempts=2 backoff=1s
			assign 0 0
			offer 0 0 -> 1:0@0#1
			send 1
			nack 0@0#1 0s -> true
			dispatch -> 1:0@0#2(nack)
			send 1
			nack 0@0#2 0s -> true
			dispatch -> none
			deadletters -> 0@0
			ack 0@0#1 -> false
			dlfail 0@0
			at 1s
			tick -> 0
			deadletters -> none
			at 4s
			tick -> 0
			deadletters -> 0@0
			dl 0@0
			held -> 0 0
			commits -> 0@1`},
		// 5. The window bounds records with the session; beyond it Offer
		// refuses, and the partition resumes when there is room.
		5: {script: `
			session 1 msgs=2
			assign 0 0
			offer 0 0 -> 1:0@0#1
			offer 0 1 -> 1:0@1#1
			offer 0 2 -> refuse
			offer 0 2 -> skip
			resumable -> none
			send 1
			ack 0@0#1 -> true
			resumable -> 0
			offer 0 2 -> 1:0@2#1`},
		// 6. Fair share: while a partition is refused, each partition of the
		// pool may hold at most its share; the one that filled the window
		// resumes last.
		6: {script: `
			session 1 msgs=6
			assign 0 0
			assign 1 0
			assign 2 0
			offer 0 0 -> 1:0@0#1
			offer 0 1 -> 1:0@1#1
			offer 0 2 -> 1:0@2#1
			offer 0 3 -> 1:0@3#1
			offer 0 4 -> 1:0@4#1
			offer 0 5 -> 1:0@5#1
			offer 0 6 -> refuse
			offer 1 0 -> refuse
			offer 2 0 -> refuse
			send 1
			ack 0@0#1 -> true
			resumable -> 1 2
			offer 1 0 -> 1:1@0#1
			offer 2 0 -> refuse
			ack 0@1#1 -> true
			ack 0@2#1 -> true
			resumable -> 2
			offer 2 0 -> 1:2@0#1
			offer 1 1 -> 1:1@1#1
			offer 1 2 -> refuse
			ack 0@3#1 -> true
			ack 0@4#1 -> true
			resumable -> 0
			send 1
			ack 1@0#1 -> true
			resumable -> 1`},
		// 7. Without a session there is no room; a session joining makes
		// the partition resumable.
		7: {script: `
			assign 0 0
			offer 0 0 -> refuse
			session 1
			notices -> 1+0
			resumable -> 0
			offer 0 0 -> 1:0@0#1`},
		// 8. Metadata of an earlier owner: its acked offsets are skipped,
		// the others it delivered come as redeliveries (rebalance, or
		// restart when this instance wrote it).
		8: {script: `
			session 1
			assign 0 1 acked=2-4 through=6 writer=other
			assign 1 1 acked=2-3 through=3 writer=me
			offer 0 1 -> 1:0@1#2(rebalance)
			offer 0 2 -> skip
			offer 0 3 -> skip
			offer 0 4 -> 1:0@4#2(rebalance)
			offer 0 6 -> 1:0@6#1
			offer 1 1 -> 1:1@1#2(restart)
			commits -> 0@1+2-4,5-6`},
		// 9. Not yet read past acked offsets of the earlier owner: the
		// commit still carries them.
		9: {script: `
			session 1
			assign 0 1 acked=3-5 through=6 writer=other
			offer 0 1 -> 1:0@1#2(rebalance)
			send 1
			ack 0@1#2 -> true
			commits -> 0@2+3-5`},
		// 10. A stream that ends: its queued records go to another session
		// as they were, its unacked ones as redeliveries (revoked).
		10: {mode: OrderNone, script: `
			session 1
			session 2
			assign 0 0
			notices -> 1+0 2+0
			offer 0 0 -> 1:0@0#1
			offer 0 1 -> 2:0@1#1
			offer 0 2 -> 1:0@2#1
			send 1 1
			queued 1 -> 0@2
			remove 1
			dispatch -> 2:0@0#2(revoked) 2:0@2#1
			window 2 -> 3 3`},
		// 11. Drain: queued records are pulled back and go elsewhere; what
		// the client has can still be acked.
		11: {mode: OrderNone, script: `
			session 1
			session 2 msgs=1
			assign 0 0
			offer 0 0 -> 1:0@0#1
			offer 0 1 -> 2:0@1#1
			offer 0 2 -> 1:0@2#1
			send 1 1
			send 2
			drain 1
			pullbacks -> 1:0@2
			dispatch -> none
			ack 0@0#1 -> true
			ack 0@1#1 -> true
			dispatch -> 2:0@2#1
			window 1 -> 0 0`},
		// 12. Key ordering: a key's next record waits for the previous to be
		// acked, across a nack; other keys and unkeyed records go on.
		12: {mode: OrderKey, script: `
			session 1
			session 2
			assign 0 0
			offer 0 0 key=a -> 1:0@0#1
			offer 0 1 key=a -> accept
			offer 0 2 key=b -> 2:0@2#1
			offer 0 3 -> 1:0@3#1
			offer 0 4 key=a -> accept
			send 1
			send 2
			nack 0@0#1 0s -> true
			dispatch -> 2:0@0#2(nack)
			send 2
			ack 0@0#2 -> true
			dispatch -> 1:0@1#1
			send 1
			ack 0@1#1 -> true
			dispatch -> 2:0@4#1
			send 2
			ack 0@3#1 -> true
			commits -> 0@2+3-4`},
		// 13. Partition ordering spreads partitions; a session joining takes
		// its share, each partition moving once its session holds none of
		// its records (queued ones are pulled back).
		13: {script: `
			session 1
			assign 0 0
			assign 1 0
			assign 2 0
			assign 3 0
			notices -> 1+0 1+1 1+2 1+3
			offer 1 0 -> 1:1@0#1
			send 1
			offer 0 0 -> 1:0@0#1
			session 2
			notices -> 1-2 2+2 1-3 2+3
			pullbacks -> none
			offer 2 0 -> 2:2@0#1
			dispatch -> none
			session 3
			notices -> none
			pullbacks -> 1:0@0
			notices -> 1-0 3+0
			dispatch -> 3:0@0#1
			offer 1 1 -> 1:1@1#1
			remove 2
			notices -> 1+2 3+3
			dispatch -> 1:2@0#1
			notices -> none`},
		// 14. Partition ordering: the partitions of a removed session go to
		// the others at once, its unacked records with them.
		14: {script: `
			session 1
			session 2
			assign 0 0
			assign 1 0
			notices -> 1+0 2+1
			offer 0 0 -> 1:0@0#1
			send 1
			remove 1
			notices -> 2+0
			dispatch -> 2:0@0#2(revoked)`},
		// 15. Revoke forgets a partition's records, returns its commit and
		// pulls back what was queued; later acks are stale.
		15: {script: `
			session 1
			assign 0 0
			offer 0 0 -> 1:0@0#1
			offer 0 1 -> 1:0@1#1
			offer 0 2 -> 1:0@2#1
			send 1 2
			ack 0@1#1 -> true
			revoke 0 -> 0@0+1-2
			pullbacks -> 1:0@2
			ack 1/0/1 -> false
			window 1 -> 0 0
			held -> 0 0
			assign 0 0
			offer 0 0 -> 1:0@0#1`},
		// 16. Bytes bound the window too; one record larger than the window
		// goes alone.
		16: {mode: OrderNone, script: `
			session 1 bytes=10
			assign 0 0
			offer 0 0 size=6 -> 1:0@0#1
			offer 0 1 size=6 -> refuse
			send 1
			ack 0@0#1 -> true
			resumable -> 0
			offer 0 1 size=50 -> 1:0@1#1
			offer 0 2 size=1 -> refuse`},
		// 18. A start not known: the first record read sets it; nothing is
		// committed before.
		18: {script: `
			session 1
			assign 0 -1
			commits -> none
			revoke 0 -> none
			assign 0 -1
			offer 0 7 -> 1:0@7#1
			commits -> 0@7
			send 1
			ack 0@7#1 -> true
			commits -> 0@8`},
		// 17. A redelivery after a nack goes to any session under OrderNone,
		// and acks of an earlier delivery are accepted.
		17: {mode: OrderNone, script: `
			session 1 msgs=1
			session 2 msgs=1
			assign 0 0
			offer 0 0 -> 1:0@0#1
			send 1
			nack 0@0#1 0s -> true
			dispatch -> 2:0@0#2(nack)
			send 2
			ack 0@0#1 -> true
			ack 0@0#2 -> false
			window 2 -> 0 0`},
	} {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			h := newHarness(t, tc.mode)
			for n, line := range strings.Split(strings.TrimSpace(tc.script), "\n") {
				line = strings.TrimSpace(line)
				cmd, want, hasWant := strings.Cut(line, " -> ")
				got := h.step(strings.Fields(cmd))
				if hasWant && got != want {
					t.Fatalf("line %d %q: got %q, want %q", n+1, cmd, got, want)
				}
				h.check()
			}
		})
	}
}

func (h *harness) step(f []string) string {
	t := h.t
	t.Helper()
	num := func(s string) int64 {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("bad number in %q: %v", f, err)
		}
		return v
	}
	dur := func(s string) time.Duration {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("bad duration in %q: %v", f, err)
		}
		return d
	}
	opts := map[string]string{}
	for _, a := range f[1:] {
		if k, v, ok := strings.Cut(a, "="); ok {
			opts[k] = v
		}
	}
	id := func(s string) AckID {
		var a AckID
		if p, rest, ok := strings.Cut(s, "@"); ok {
			off, att, _ := strings.Cut(rest, "#")
			part := h.d.parts[tp(int32(num(p)))]
			if part == nil {
				t.Fatalf("%q: partition not assigned", f)
			}
			return AckID{Assignment: part.assignment, Offset: num(off), Attempt: int32(num(att))}
		}
		if _, err := fmt.Sscanf(s, "%d/%d/%d", &a.Assignment, &a.Offset, &a.Attempt); err != nil {
			t.Fatalf("bad id in %q: %v", f, err)
		}
		return a
	}
	entry := func(s string) *Entry {
		e := h.byName[s]
		if e == nil {
			t.Fatalf("%q: no entry %s", f, s)
		}
		return e
	}
	switch f[0] {
	case "at":
		h.now = t0.Add(dur(f[1]))
	case "session":
		cfg := SessionConfig{MaxMessages: 10, MaxBytes: 1000, AckDeadline: 30 * time.Second, MinBackoff: time.Second, MaxBackoff: 8 * time.Second}
		if v, ok := opts["msgs"]; ok {
			cfg.MaxMessages = int(num(v))
		}
		if v, ok := opts["bytes"]; ok {
			cfg.MaxBytes = num(v)
		}
		if v, ok := opts["deadline"]; ok {
			cfg.AckDeadline = dur(v)
		}
		if v, ok := opts["backoff"]; ok {
			cfg.MinBackoff = dur(v)
		}
		if v, ok := opts["attempts"]; ok {
			cfg.MaxAttempts, cfg.DeadLetterTopic = int32(num(v)), "dlq"
		}
		h.d.AddSession(SessionID(num(f[1])), cfg)
	case "drain":
		h.d.Drain(SessionID(num(f[1])))
	case "remove":
		id := SessionID(num(f[1]))
		h.d.RemoveSession(id, h.now)
		delete(h.queues, id)
	case "assign":
		md := ""
		if v, ok := opts["through"]; ok {
			m := CommitMetadata{Writer: opts["writer"], DeliveredThrough: num(v)}
			for _, r := range strings.Split(opts["acked"], ",") {
				a, b, _ := strings.Cut(r, "-")
				m.Acked = append(m.Acked, OffsetRange{num(a), num(b)})
			}
			md = EncodeCommitMetadata(num(f[2]), m, 0)
		}
		h.d.Assign(tp(int32(num(f[1]))), num(f[2]), md)
	case "revoke":
		c, ok := h.d.Revoke(tp(int32(num(f[1]))))
		if !ok {
			return "none"
		}
		return h.describeCommit(c)
	case "offer":
		var key []byte
		if v, ok := opts["key"]; ok {
			key = []byte(v)
		}
		size := int64(1)
		if v, ok := opts["size"]; ok {
			size = num(v)
		}
		p, off := tp(int32(num(f[1]))), num(f[2])
		d, del, ok := h.d.Offer(p, off, size, key, "payload", h.now)
		if d == Accept {
			if e := h.d.parts[p].lookup(off); e != nil {
				h.byName[name(e)] = e
			}
		}
		if ok {
			return listOrNone(h.deliveries(del))
		}
		return strings.ToLower(d.String())
	case "dispatch":
		return listOrNone(h.deliveries(h.d.Dispatch(h.now)...))
	case "send":
		id := SessionID(num(f[1]))
		q := h.queues[id]
		n := len(q)
		if len(f) > 2 {
			n = int(num(f[2]))
		}
		h.d.Sent(id, q[:n], h.now)
		h.queues[id] = q[n:]
	case "queued":
		var out []string
		for _, e := range h.queues[SessionID(num(f[1]))] {
			out = append(out, name(e))
		}
		return listOrNone(out)
	case "pullbacks":
		return listOrNone(h.pullBacks())
	case "ack":
		return strconv.FormatBool(h.d.Ack(id(f[1])))
	case "nack":
		if f[2] == "backoff" {
			return strconv.FormatBool(h.d.Nack(id(f[1]), time.Hour, true, h.now))
		}
		return strconv.FormatBool(h.d.Nack(id(f[1]), dur(f[2]), false, h.now))
	case "extend":
		return strconv.FormatBool(h.d.Extend(id(f[1]), dur(f[2]), h.now))
	case "tick":
		return strconv.Itoa(h.d.Tick(h.now))
	case "deadletters":
		var out []string
		for _, e := range h.d.TakeDeadLetters() {
			out = append(out, name(e))
		}
		return listOrNone(out)
	case "dl":
		h.d.DeadLettered(entry(f[1]))
	case "dlfail":
		h.d.DeadLetterFailed(entry(f[1]), h.now)
	case "commits":
		var out []string
		for _, c := range h.d.Commits() {
			out = append(out, h.describeCommit(c))
		}
		return listOrNone(out)
	case "resumable":
		var out []string
		for _, p := range h.d.Resumable() {
			out = append(out, strconv.Itoa(int(p.Partition)))
		}
		return listOrNone(out)
	case "notices":
		var out []string
		for _, n := range h.d.TakeNotices() {
			for _, p := range n.Assigned {
				out = append(out, fmt.Sprintf("%d+%d", n.Session, p.Partition))
			}
			for _, p := range n.Revoked {
				out = append(out, fmt.Sprintf("%d-%d", n.Session, p.Partition))
			}
		}
		return listOrNone(out)
	case "held":
		n, b := h.d.Held()
		return fmt.Sprintf("%d %d", n, b)
	case "window":
		n, b := h.d.Window(SessionID(num(f[1])))
		return fmt.Sprintf("%d %d", n, b)
	default:
		t.Fatalf("unknown op %q", f)
	}
	return ""
}

func (h *harness) describeCommit(c Commit) string {
	m, err := DecodeCommitMetadata(c.Offset, c.Metadata)
	if err != nil {
		h.t.Fatalf("commit %v: metadata %q: %v", c, c.Metadata, err)
	}
	s := fmt.Sprintf("%d@%d", c.TopicPartition.Partition, c.Offset)
	var rs []string
	for _, r := range m.Acked {
		rs = append(rs, fmt.Sprintf("%d-%d", r.Start, r.End))
	}
	if len(rs) > 0 {
		s += "+" + strings.Join(rs, ",")
	}
	return s
}

// check verifies the dispatcher's invariants.
func (h *harness) check() {
	h.t.Helper()
	checkDispatcher(h.t, h.d)
}

// checkDispatcher verifies that the counts agree with the entries, that no
// window is over its limits, that every entry is in one consistent place,
// and that under OrderKey at most one record of a key is with a session.
func checkDispatcher(t testing.TB, d *Dispatcher) {
	t.Helper()
	held, bytes := 0, int64(0)
	win := map[*session][2]int64{}
	for _, p := range d.parts {
		live, pbytes, active := 0, int64(0), 0
		keysOut := map[string]int{}
		for i, e := range p.entries {
			if i > 0 && p.entries[i-1].offset >= e.offset {
				t.Fatalf("entries of %v out of order", p.tp)
			}
			if e.offset >= p.next {
				t.Fatalf("entry %d at or past next %d", e.offset, p.next)
			}
			if e.state == stateDone {
				continue
			}
			live++
			pbytes += e.size
			if e.withSession() {
				w := win[e.sess]
				win[e.sess] = [2]int64{w[0] + 1, w[1] + e.size}
				active++
				if _, ok := d.sessions[e.sess.id]; !ok {
					t.Fatalf("entry %d with a removed session", e.offset)
				}
				if d.mode == OrderKey && e.hasKey {
					keysOut[e.key]++
				}
			}
			if e.state == stateReady && !slices.Contains(p.ready, e) {
				t.Fatalf("ready entry %d not in the ready list", e.offset)
			}
		}
		for k, n := range keysOut {
			if n > 1 {
				t.Fatalf("%d records of key %q with sessions at once", n, k)
			}
		}
		if d.mode == OrderKey {
			for k, q := range p.keys {
				for i, e := range q {
					if e.state == stateDone || (i > 0 && q[i-1].offset >= e.offset) {
						t.Fatalf("key queue %q broken", k)
					}
					if i > 0 && e.withSession() {
						t.Fatalf("record %d of key %q with a session behind an earlier one", e.offset, k)
					}
				}
			}
		}
		if live != p.live || pbytes != p.bytes {
			t.Fatalf("%v counts %d/%d, entries say %d/%d", p.tp, p.live, p.bytes, live, pbytes)
		}
		if d.mode == OrderPartition && active != p.active {
			t.Fatalf("%v active %d, entries say %d", p.tp, p.active, active)
		}
		for _, e := range p.ready {
			if e.state != stateReady {
				t.Fatalf("non-ready entry %d in the ready list", e.offset)
			}
		}
		held += live
		bytes += pbytes
	}
	if held != d.held || bytes != d.bytes {
		t.Fatalf("held %d/%d, entries say %d/%d", d.held, d.bytes, held, bytes)
	}
	for _, s := range d.sessions {
		w := win[s]
		if int64(s.msgs) != w[0] || s.bytes != w[1] {
			t.Fatalf("session %d window %d/%d, entries say %d/%d", s.id, s.msgs, s.bytes, w[0], w[1])
		}
		if s.msgs > s.cfg.MaxMessages || (s.msgs > 1 && s.bytes > s.cfg.MaxBytes) {
			t.Fatalf("session %d over its window: %d/%d", s.id, s.msgs, s.bytes)
		}
	}
}
