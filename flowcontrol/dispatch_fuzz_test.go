package flowcontrol

import (
	"testing"
	"time"
)

// fuzzInput hands out the fuzzer's bytes one at a time, then zeros.
type fuzzInput []byte

func (in *fuzzInput) more() bool { return len(*in) > 0 }

func (in *fuzzInput) next() byte {
	if len(*in) == 0 {
		return 0
	}
	b := (*in)[0]
	*in = (*in)[1:]
	return b
}

// fuzzPart is the fuzz driver's consumer of one partition: a log with
// gaps, read from pos, paused while refused.
type fuzzPart struct {
	assigned bool
	paused   bool
	pos      int64
	acked    map[int64]bool // acked or dead-lettered, in this assignment
}

func fuzzExists(p int, off int64) bool { return (off*7+int64(p))%5 != 0 }

// FuzzDispatcher drives a Dispatcher in each ordering with random sessions
// joining, draining and leaving, polls, sends, acks, nacks, extensions,
// ticks, dead-letter outcomes, pull-backs and rebalances on three
// partitions. After every step the Dispatcher's invariants hold; a record
// once acked is never handed out again in its assignment; a commit never
// passes a record not acked, and its metadata names only acked offsets as
// acked. At the end everything is acked and the Dispatcher drains.
func FuzzDispatcher(f *testing.F) {
	f.Add([]byte{0, 0, 3, 0, 3, 1, 5, 0, 6, 0, 11, 3, 2, 12, 9, 7, 6, 1})
	f.Add([]byte{1, 0, 0, 3, 0, 3, 0, 3, 1, 4, 5, 1, 7, 0, 9, 20, 4, 5, 6, 10, 1, 2, 0, 12, 3, 0})
	f.Add([]byte{2, 0, 1, 0, 2, 3, 0, 3, 0, 3, 2, 5, 0, 5, 1, 14, 1, 13, 3, 1, 6, 0, 11, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := fuzzInput(data)
		mode := Ordering(in.next() % 3)
		h := newHarness(nil, mode)
		now := t0
		var parts [3]fuzzPart
		var ids []AckID
		var nextSession SessionID
		sessions := map[SessionID]bool{}
		var inFlight []*Entry
		// assign assigns p from its commit: the next owner reads from the
		// committed offset, with the committed metadata.
		assign := func(p int, metadata string) {
			fp := &parts[p]
			fp.assigned, fp.paused = true, false
			if fp.acked == nil {
				fp.acked = map[int64]bool{}
			}
			h.d.Assign(tp(int32(p)), fp.pos, metadata)
		}
		for p := range parts {
			assign(p, "")
		}
		record := func(del Delivery) {
			e := del.Entry
			p := int(e.TopicPartition().Partition)
			if parts[p].acked[e.Offset()] {
				t.Fatalf("acked record %s handed out again", name(e))
			}
			h.queues[del.Session] = append(h.queues[del.Session], e)
			if len(ids) < 64 {
				ids = append(ids, e.ID())
			} else {
				ids[int(e.Offset())%64] = e.ID()
			}
		}
		pickID := func() (AckID, bool) {
			if len(ids) == 0 {
				return AckID{}, false
			}
			return ids[int(in.next())%len(ids)], true
		}
		pickSession := func() (SessionID, bool) {
			for id := range sessions {
				if in.next()%2 == 0 {
					return id, true
				}
			}
			return 0, false
		}
		markAcked := func(id AckID) {
			for p := range parts {
				if pp := h.d.parts[tp(int32(p))]; pp != nil && pp.assignment == id.Assignment {
					parts[p].acked[id.Offset] = true
				}
			}
		}
		heldOffsets := func(p TopicPartition) map[int64]bool {
			out := map[int64]bool{}
			for _, e := range h.d.parts[p].entries {
				if e.state != stateDone {
					out[e.offset] = true
				}
			}
			return out
		}
		// checkCommit checks a commit against the records held when it was
		// computed.
		checkCommit := func(c Commit, held map[int64]bool) {
			for o := range held {
				if o < c.Offset {
					t.Fatalf("commit %d of %v passes held record %d", c.Offset, c.TopicPartition, o)
				}
			}
			m, err := DecodeCommitMetadata(c.Offset, c.Metadata)
			if err != nil {
				t.Fatalf("commit metadata %q: %v", c.Metadata, err)
			}
			for _, r := range m.Acked {
				for o := r.Start; o < r.End; o++ {
					if held[o] {
						t.Fatalf("metadata names held record %v@%d acked (%v)", c.TopicPartition, o, m.Acked)
					}
				}
			}
		}
		checkCommits := func(cs []Commit) {
			for _, c := range cs {
				checkCommit(c, heldOffsets(c.TopicPartition))
			}
		}
		for in.more() {
			switch in.next() % 15 {
			case 0: // a session joins
				if len(sessions) < 4 {
					nextSession++
					cfg := SessionConfig{MaxMessages: 1 + int(in.next()%6), MaxBytes: 1 + int64(in.next()%80), AckDeadline: 10 * time.Second,
						MinBackoff: time.Duration(in.next()%3) * time.Second, MaxBackoff: 4 * time.Second}
					if n := in.next() % 4; n > 0 {
						cfg.MaxAttempts, cfg.DeadLetterTopic = int32(n), "dlq"
					}
					h.d.AddSession(nextSession, cfg)
					sessions[nextSession] = true
				}
			case 1: // one leaves
				if id, ok := pickSession(); ok {
					h.d.RemoveSession(id, now)
					delete(h.queues, id)
					delete(sessions, id)
				}
			case 2: // one drains
				if id, ok := pickSession(); ok {
					h.d.Drain(id)
				}
			case 3, 4: // the consumer polls a record
				p := int(in.next() % 3)
				fp := &parts[p]
				if !fp.assigned || fp.paused {
					continue
				}
				for !fuzzExists(p, fp.pos) {
					fp.pos++
				}
				var key []byte
				if k := in.next() % 4; k > 0 {
					key = []byte{'k', k}
				}
				size := int64(in.next() % 30)
				d, del, ok := h.d.Offer(tp(int32(p)), fp.pos, size, key, nil, now)
				switch d {
				case Refuse:
					fp.paused = true // sought back to pos
				case Accept:
					fp.pos++
					if ok {
						record(del)
					}
				case Skip:
					if !fp.acked[fp.pos] {
						t.Fatalf("record %d@%d skipped, not acked", p, fp.pos)
					}
					fp.pos++
				}
			case 5:
				for _, del := range h.d.Dispatch(now) {
					record(del)
				}
			case 6: // a session's client is sent some of its queue
				if id, ok := pickSession(); ok {
					q := h.queues[id]
					n := int(in.next()) % (len(q) + 1)
					h.d.Sent(id, q[:n], now)
					h.queues[id] = q[n:]
				}
			case 7:
				if id, ok := pickID(); ok && h.d.Ack(id) {
					markAcked(id)
				}
			case 8:
				if id, ok := pickID(); ok {
					h.d.Nack(id, time.Duration(in.next()%3)*time.Second, in.next()%2 == 0, now)
				}
			case 9:
				if id, ok := pickID(); ok {
					h.d.Extend(id, time.Duration(in.next()%20)*time.Second, now)
				}
			case 10:
				now = now.Add(time.Duration(in.next()) * 100 * time.Millisecond)
				h.d.Tick(now)
			case 11: // dead letters written, or not
				inFlight = append(inFlight, h.d.TakeDeadLetters()...)
				for len(inFlight) > 0 && in.next()%2 == 0 {
					e := inFlight[0]
					inFlight = inFlight[1:]
					if in.next()%3 == 0 {
						h.d.DeadLetterFailed(e, now)
						continue
					}
					if e.state == stateDeadLetterInFlight {
						parts[e.TopicPartition().Partition].acked[e.Offset()] = true
					}
					h.d.DeadLettered(e)
				}
			case 12:
				checkCommits(h.d.Commits())
				h.pullBacks()
				h.d.TakeNotices()
			case 13:
				for _, x := range h.d.Resumable() {
					parts[x.Partition].paused = false
				}
			case 14: // a Kafka rebalance moves a partition away and back
				p := int(in.next() % 3)
				held := heldOffsets(tp(int32(p)))
				c, ok := h.d.Revoke(tp(int32(p)))
				h.pullBacks()
				if !ok {
					continue
				}
				checkCommit(c, held)
				parts[p].pos = c.Offset
				assign(p, c.Metadata)
			}
			checkDispatcher(t, h.d)
		}
		// Drain: one session with room, everything sent and acked, dead
		// letters written; then nothing is held and each commit is at the
		// read position.
		nextSession++
		h.d.AddSession(nextSession, SessionConfig{MaxMessages: 1 << 20, MaxBytes: 1 << 40, AckDeadline: time.Hour, MaxBackoff: time.Second})
		for id := range sessions {
			h.d.RemoveSession(id, now)
			delete(h.queues, id)
			checkDispatcher(t, h.d)
		}
		for round := 0; round < 100 && func() bool { n, _ := h.d.Held(); return n > 0 }(); round++ {
			h.pullBacks()
			h.d.Resumable()
			now = now.Add(10 * time.Second)
			h.d.Tick(now)
			for _, del := range h.d.Dispatch(now) {
				h.queues[del.Session] = append(h.queues[del.Session], del.Entry)
			}
			q := h.queues[nextSession]
			h.d.Sent(nextSession, q, now)
			h.queues[nextSession] = nil
			for _, e := range q {
				h.d.Ack(e.ID())
			}
			checkDispatcher(t, h.d)
			for _, e := range append(inFlight, h.d.TakeDeadLetters()...) {
				h.d.DeadLettered(e)
			}
			inFlight = nil
			checkDispatcher(t, h.d)
		}
		if n, b := h.d.Held(); n != 0 || b != 0 {
			t.Fatalf("after acking everything %d records (%d bytes) are held", n, b)
		}
		for p := range parts {
			pp := h.d.parts[tp(int32(p))]
			if got := pp.commitOffset(); got != pp.next || got > parts[p].pos {
				t.Fatalf("partition %d commits %d with nothing held, read up to %d (next %d)", p, got, parts[p].pos, pp.next)
			}
		}
	})
}
