// OrderPartition only: which session serves which partition, and moving
// partitions between sessions (with pull-backs) as sessions come and go.

package flowcontrol

import (
	"slices"
)

// TakePullBacks returns the pull-backs asked for since the last call.
func (d *Dispatcher) TakePullBacks() []PullBack {
	out := d.pullBacks
	d.pullBacks = nil
	return out
}

// load is the number of partitions s will serve once moves complete.
func (s *session) load() int { return len(s.parts) - s.movingAway + s.moveTarget }

// leastLoaded returns the active session with the fewest partitions, the
// earliest joined on a tie.
func (d *Dispatcher) leastLoaded() *session {
	var best *session
	for _, s := range d.order {
		if !s.draining && (best == nil || s.load() < best.load()) {
			best = s
		}
	}
	return best
}

// setOwner makes s serve p (nil: no session), moving p's pool counts, with
// notices to both sessions when notify is set.
func (d *Dispatcher) setOwner(p *partition, s *session, notify bool) {
	old := p.owner
	if old == s {
		return
	}
	from := d.poolOf(p)
	mine := pool{msgs: p.live, bytes: p.bytes}
	from.msgs -= mine.msgs
	from.bytes -= mine.bytes
	if p.refused {
		from.refused--
	}
	if p.contending {
		from.contenders--
	}
	if old != nil {
		old.parts = slices.DeleteFunc(old.parts, func(x *partition) bool { return x == p })
		if notify {
			d.notices = append(d.notices, Notice{Session: old.id, Revoked: []TopicPartition{p.tp}})
		}
	}
	p.owner = s
	to := d.poolOf(p)
	to.msgs += mine.msgs
	to.bytes += mine.bytes
	if p.refused {
		to.refused++
	}
	if p.contending {
		to.contenders++
	}
	if s != nil {
		s.parts = append(s.parts, p)
		if notify {
			d.notices = append(d.notices, Notice{Session: s.id, Assigned: []TopicPartition{p.tp}})
		}
		if len(p.ready) > 0 {
			d.markReady(p)
		}
	}
}

// completeMove hands p to the session it was moving to, now that its owner
// holds none of its records.
func (d *Dispatcher) completeMove(p *partition) {
	to := p.moveTo
	p.moveTo = nil
	to.moveTarget--
	p.owner.movingAway--
	d.setOwner(p, to, true)
}

// spread gives partitions without an active session to the least loaded
// sessions, then evens the sessions' loads out to within one partition. A
// partition whose session holds none of its records moves at once; others
// move once their records are acked, nacked or expired (their queued
// records are pulled back).
func (d *Dispatcher) spread() {
	if d.mode != OrderPartition {
		return
	}
	for _, tp := range d.partitionList() {
		p := d.parts[tp]
		if (p.owner == nil || p.owner.draining) && p.moveTo == nil {
			if s := d.leastLoaded(); s != nil && s != p.owner {
				d.move(p, s)
			}
		}
	}
	for {
		var most, least *session
		for _, s := range d.order {
			if s.draining {
				continue
			}
			if most == nil || s.load() > most.load() {
				most = s
			}
			if least == nil || s.load() < least.load() {
				least = s
			}
		}
		if most == nil || most.load()-least.load() <= 1 {
			return
		}
		// Move the partition of most's with the fewest records with it.
		var pick *partition
		for _, p := range most.parts {
			if p.moveTo == nil && (pick == nil || p.active < pick.active) {
				pick = p
			}
		}
		if pick == nil {
			return
		}
		d.move(pick, least)
	}
}

// move moves p to s: at once when p's session holds none of its records,
// else once it does not (its queued records are pulled back meanwhile).
func (d *Dispatcher) move(p *partition, s *session) {
	if p.owner == nil || p.active == 0 {
		d.setOwner(p, s, true)
		return
	}
	p.moveTo = s
	s.moveTarget++
	p.owner.movingAway++
	d.pullBacks = append(d.pullBacks, PullBack{Session: p.owner.id, TP: p.tp})
}
