// Fair shares: how the partitions of one pool (a session's window under
// OrderPartition, every window otherwise) divide its room while some of
// them are refused.

package flowcontrol

// pool is the room that a set of partitions shares: the window of the
// session serving them (OrderPartition) or the windows of every session.
type pool struct {
	msgs       int
	bytes      int64
	refused    int
	contenders int
}

// poolOf returns the pool p's records count against.
func (d *Dispatcher) poolOf(p *partition) *pool {
	if d.mode == OrderPartition {
		if p.owner == nil {
			return &d.orphans
		}
		return &p.owner.pool
	}
	return &d.shared
}

func (d *Dispatcher) capacity(p *partition) (msgs int, bytes int64) {
	if d.mode != OrderPartition {
		return d.capMsgs, d.capBytes
	}
	if s := p.owner; s != nil && !s.draining {
		return s.cfg.MaxMessages, s.cfg.MaxBytes
	}
	return 0, 0
}

// admits reports whether p's pool has room for a record of size. While no
// partition of the pool is refused, the pool takes records up to its
// capacity. Once one is, the pool is contended: each partition may then
// hold at most its share of the capacity (a partition under its share is
// admitted even while the pool is over capacity because another partition
// holds more than its share), so that every partition with records gets
// its turn instead of the one read first. Held records stay within twice
// the capacity; the sessions' windows bound what is handed out.
func (d *Dispatcher) admits(p *partition, size int64) bool {
	pl := d.poolOf(p)
	capMsgs, capBytes := d.capacity(p)
	if capMsgs == 0 {
		return false
	}
	if pl.refused == 0 {
		return pl.msgs < capMsgs && (pl.msgs == 0 || pl.bytes+size <= capBytes)
	}
	n := pl.contenders
	if !p.contending {
		n++
	}
	return p.live < share(capMsgs, n) && (p.live == 0 || p.bytes+size <= capBytes/int64(n))
}

// roomFor reports whether a refused partition may resume: it is under its
// share of the contended pool.
func (d *Dispatcher) roomFor(p *partition, size int64) bool {
	capMsgs, capBytes := d.capacity(p)
	if capMsgs == 0 {
		return false
	}
	n := max(d.poolOf(p).contenders, 1)
	return p.live < share(capMsgs, n) && (p.live == 0 || p.bytes+size < capBytes/int64(n))
}

func share(capacity, contenders int) int {
	if contenders <= 1 {
		return capacity
	}
	return (capacity + contenders - 1) / contenders
}

// setContending counts p in its pool's contenders while it holds records
// or is refused.
func (d *Dispatcher) setContending(p *partition) {
	c := p.live > 0 || p.refused
	if c != p.contending {
		p.contending = c
		if c {
			d.poolOf(p).contenders++
		} else {
			d.poolOf(p).contenders--
		}
	}
}
