package flowcontrol

import (
	"testing"
	"time"
)

// fuzzPart is the fuzz driver's view of one partition: a consumer reading an
// endless log with gaps, and what the client saw in the current assignment.
type fuzzPart struct {
	assigned   bool
	paused     bool
	pos        int64 // next offset the consumer reads
	committed  int64 // offset last returned by Commits or Revoke
	deleted    map[int64]bool
	acked      map[int64]bool  // acked or dead-lettered in this assignment
	lastTry    map[int64]int32 // highest attempt delivered in this assignment
	assignment uint32
}

// exists reports whether the log of partition p has a record at off.
func (fp *fuzzPart) exists(p int, off int64) bool {
	return (off*7+int64(p))%5 != 0 && !fp.deleted[off]
}

func fuzzSize(p int, off int64) int64 { return (off*31 + int64(p)*17) % 40 }

// FuzzTracker drives a Tracker with random polls, acks, nacks, extensions,
// dead-letter results, ticks, rebalances and compactions on two partitions,
// and checks its invariants after every step; it then acks everything and
// checks that the Tracker drains.
func FuzzTracker(f *testing.F) {
	f.Add([]byte{3, 20, 1, 2, 0, 0, 0, 0, 2, 0, 3, 1, 5, 9, 6, 0, 0, 2, 1})
	f.Add([]byte{1, 255, 0, 1, 0, 1, 0, 0, 1, 0, 4, 2, 4, 5, 15, 6, 0, 0, 7, 1, 0, 8, 0, 8, 0, 9, 0})
	f.Add([]byte{7, 60, 3, 3, 0, 0, 1, 1, 0, 0, 3, 0, 0, 1, 5, 12, 6, 9, 1, 3, 1, 0, 0, 6, 0, 1, 7, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := fuzzInput(data)
		cfg := TrackerConfig{
			MaxMessages: 1 + int(in.next()%8),
			MaxBytes:    1 + int64(in.next()),
			AckDeadline: 10 * time.Second,
			MinBackoff:  time.Duration(in.next()%3) * time.Second,
			MaxBackoff:  4 * time.Second,
			MaxAttempts: int32(in.next() % 4),
		}
		tr := NewTracker(cfg)
		now := t0
		var parts [2]fuzzPart
		var ids, dlIDs []AckID
		remember := func(list *[]AckID, id AckID) {
			if len(*list) < 32 {
				*list = append(*list, id)
			} else {
				(*list)[int(id.Offset)%32] = id
			}
		}
		pick := func(list []AckID) (AckID, bool) {
			if len(list) == 0 {
				return AckID{}, false
			}
			return list[int(in.next())%len(list)], true
		}
		partOf := func(id AckID) *fuzzPart {
			for i := range parts {
				if parts[i].assigned && parts[i].assignment == id.Assignment {
					return &parts[i]
				}
			}
			return nil
		}
		poll := func(p int) (Decision, AckID) {
			fp := &parts[p]
			if !fp.assigned || fp.paused {
				return Skip, AckID{}
			}
			off := fp.pos
			for !fp.exists(p, off) {
				off++
			}
			d, id := tr.Offer(tp(int32(p)), off, fuzzSize(p, off), now)
			switch d {
			case Refuse:
				fp.pos, fp.paused = off, true
				return d, id
			case Deliver:
				if fp.acked[off] {
					t.Fatalf("delivered %v, acked in this assignment", id)
				}
				if id.Assignment != fp.assignment || id.Offset != off || id.Attempt <= fp.lastTry[off] {
					t.Fatalf("delivered %v at offset %d; assignment %d, last attempt %d", id, off, fp.assignment, fp.lastTry[off])
				}
				fp.lastTry[off] = id.Attempt
				remember(&ids, id)
			case DeadLetter:
				if fp.acked[off] || id.Offset != off {
					t.Fatalf("dead-letter %v at offset %d, acked %v", id, off, fp.acked[off])
				}
				dlIDs = append(dlIDs, id)
			}
			fp.pos = off + 1
			return d, id
		}
		tick := func() {
			for _, s := range tr.Tick(now) {
				fp := &parts[s.TopicPartition.Partition]
				if !fp.assigned || s.Offset < fp.committed {
					t.Fatalf("seek %v: assigned %v, committed %d", s, fp.assigned, fp.committed)
				}
				fp.pos, fp.paused = s.Offset, false
			}
			if w := tr.NextWake(); !w.IsZero() && !w.After(now) {
				t.Fatalf("NextWake %v not after Tick at %v", w, now)
			}
		}
		commits := func() {
			for _, c := range tr.Commits() {
				fp := &parts[c.TopicPartition.Partition]
				if !fp.assigned || c.Offset < fp.committed {
					t.Fatalf("commit %v: assigned %v, committed before %d", c, fp.assigned, fp.committed)
				}
				fp.committed = c.Offset
			}
		}
		for i := range parts {
			parts[i].deleted = map[int64]bool{}
		}

		for in.more() {
			p := int(in.next() % 2)
			fp := &parts[p]
			switch in.next() % 10 {
			case 0, 1:
				poll(p)
			case 2:
				if id, ok := pick(ids); ok && tr.Ack(id) {
					owner := partOf(id)
					if owner == nil {
						t.Fatalf("stale %v acked", id)
					}
					owner.acked[id.Offset] = true
				}
			case 3:
				if id, ok := pick(ids); ok {
					tr.Nack(id, time.Duration(in.next()%4)*time.Second, in.next()%2 == 0, now)
				}
			case 4:
				if id, ok := pick(ids); ok {
					tr.Extend(id, time.Duration(in.next()%20)*time.Second, now)
				}
			case 5:
				now = now.Add(time.Duration(in.next()%16) * time.Second / 2)
			case 6:
				tick()
			case 7:
				if id, ok := pick(dlIDs); ok {
					if in.next()%2 == 0 {
						if tr.DeadLettered(id) {
							partOf(id).acked[id.Offset] = true
						}
					} else {
						tr.DeadLetterFailed(id, now)
					}
				}
			case 8:
				if fp.assigned {
					if c, ok := tr.Revoke(tp(int32(p))); ok {
						if c < fp.committed {
							t.Fatalf("Revoke(%d) = %d, below commit %d", p, c, fp.committed)
						}
						fp.committed = c
					}
					fp.assigned = false
				} else {
					tr.Assign(tp(int32(p)))
					fp.assigned, fp.paused, fp.pos = true, false, max(fp.committed, 0)
					fp.acked, fp.lastTry = map[int64]bool{}, map[int64]int32{}
					fp.assignment = tr.parts[tp(int32(p))].assignment
				}
				if tr.Assigned(tp(int32(p))) != fp.assigned {
					t.Fatalf("Assigned(%d) = %v", p, !fp.assigned)
				}
			case 9:
				switch in.next() % 3 {
				case 0:
					commits()
				case 1: // compaction deletes a record near the read position
					fp.deleted[max(fp.pos-3, 0)+int64(in.next()%6)] = true
				case 2: // the caller resumes paused partitions when there is room
					if tr.HasRoom() {
						fp.paused = false
					}
				}
			}
			checkTracker(t, tr)
		}

		// A well-behaved caller now finishes its dead-letter produces and
		// acks whatever it gets: every held record must drain within a few
		// deadlines and backoffs.
		for _, id := range dlIDs {
			if tr.DeadLettered(id) {
				partOf(id).acked[id.Offset] = true
			}
		}
		for round := 0; ; round++ {
			if m, _ := tr.Held(); m == 0 {
				break
			}
			if round == 10 {
				m, b := tr.Held()
				t.Fatalf("Tracker did not drain: held %d records, %d bytes", m, b)
			}
			now = now.Add(cfg.AckDeadline + cfg.MaxBackoff)
			tick()
			for p := range parts {
				// Read until the consumer has passed every tracked record.
				for parts[p].assigned && !parts[p].paused && parts[p].pos < tr.parts[tp(int32(p))].next {
					switch d, id := poll(p); d {
					case Deliver:
						tr.Ack(id)
						parts[p].acked[id.Offset] = true
					case DeadLetter:
						tr.DeadLettered(id)
						parts[p].acked[id.Offset] = true
					}
				}
				if tr.HasRoom() {
					parts[p].paused = false
				}
			}
			checkTracker(t, tr)
		}
		commits()
	})
}

// checkTracker checks a Tracker's invariants against its internal state.
func checkTracker(t *testing.T, tr *Tracker) {
	t.Helper()
	msgs, bytes, outstandingCount := 0, int64(0), 0
	for tp, p := range tr.parts {
		if p.tp != tp || tr.byID[p.assignment] != p {
			t.Fatalf("partition %v indexed wrongly", tp)
		}
		for i, r := range p.recs {
			if i > 0 && r.offset <= p.recs[i-1].offset || r.offset >= p.next || r.attempt < 1 {
				t.Fatalf("%v: record %d %+v out of order or range (next %d)", tp, i, r, p.next)
			}
			msgs++
			bytes += r.size
			if r.state == outstanding {
				outstandingCount++
			}
		}
		if len(p.recs) > 0 && p.committed > p.recs[0].offset {
			t.Fatalf("%v: committed %d past tracked offset %d", tp, p.committed, p.recs[0].offset)
		}
		if c, ok := p.commitOffset(); ok && c < p.committed {
			t.Fatalf("%v: commit offset %d below committed %d", tp, c, p.committed)
		}
	}
	if len(tr.byID) != len(tr.parts) {
		t.Fatalf("%d assignments for %d partitions", len(tr.byID), len(tr.parts))
	}
	m, b := tr.Held()
	if m != msgs || b != bytes || tr.Outstanding() != outstandingCount {
		t.Fatalf("Held() = %d, %d and Outstanding() = %d; tracked %d, %d, %d", m, b, tr.Outstanding(), msgs, bytes, outstandingCount)
	}
	if m > tr.cfg.MaxMessages || (b > tr.cfg.MaxBytes && m != 1) || tr.Outstanding() > m {
		t.Fatalf("Held() = %d, %d with Outstanding() = %d over limits %+v", m, b, tr.Outstanding(), tr.cfg)
	}
}

// fuzzInput hands out fuzz bytes one at a time, then zeros.
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
