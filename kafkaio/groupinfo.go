package kafkaio

import (
	"slices"
	"strings"
	"time"
)

// GroupInfo is what one group consumer of this gateway last reported of
// itself (at most a second old): for inspection (the Admin API, the
// console), never for decisions.
type GroupInfo struct {
	Group    string
	Topics   []string
	Ordering string // partition, key or none
	// HeldRecords and HeldBytes are the records it holds, from poll to ack.
	HeldRecords int
	HeldBytes   int64
	Sessions    []SessionInfo
	Partitions  []PartitionInfo
	// At is when the consumer reported this.
	At time.Time
}

// SessionInfo is one stream of a group on this gateway.
type SessionInfo struct {
	ID uint64
	// Client is what the stream's server said of its client (its peer and
	// principal), for people to read.
	Client string
	// Records and Bytes are what the stream holds now (handed to it and
	// not acked, nacked or expired); MaxRecords and MaxBytes its window.
	Records, MaxRecords int
	Bytes, MaxBytes     int64
	Draining            bool
	// Partitions it serves under partition ordering.
	Partitions []TopicPartition
}

// PartitionInfo is one partition the group consumer holds.
type PartitionInfo struct {
	TopicPartition
	// Commit is the offset to commit: the lowest not acked (-1 before the
	// first record when the start was not known). AckedAbove counts the
	// acked offsets above it that the commit's metadata carries.
	Commit     int64
	AckedAbove int64
	// Held counts its records held; Session serves it under partition
	// ordering (0 for none).
	Held    int
	Session uint64
	// Paused: fetching is paused for room (in the streams' windows or the
	// subscription budget); Stalled: see the watchdog.
	Paused, Stalled bool
}

// Groups returns what every group consumer of this gateway last reported,
// ordered by group.
func (s *Subscriber) Groups() []GroupInfo {
	s.mu.Lock()
	gs := make([]*groupConsumer, 0, len(s.groups))
	for _, g := range s.groups {
		gs = append(gs, g)
	}
	s.mu.Unlock()
	out := make([]GroupInfo, 0, len(gs))
	for _, g := range gs {
		if info := g.info.Load(); info != nil {
			out = append(out, *info)
		}
	}
	slices.SortFunc(out, func(a, b GroupInfo) int {
		if c := strings.Compare(a.Group, b.Group); c != 0 {
			return c
		}
		return slices.Compare(a.Topics, b.Topics)
	})
	return out
}

// infoEvery is how often a group consumer reports its GroupInfo, and
// reportSoon makes it report at its next chores as well: after a stream
// attached or detached and after an assignment changed, so that an answer
// naming the group's streams (a refused offset reset, DescribeGroup) does
// not say what was true before them.
const infoEvery = time.Second

func (g *groupConsumer) reportSoon() { g.lastInfo = time.Time{} }

// publishInfo makes the consumer's GroupInfo (owner goroutine).
func (g *groupConsumer) publishInfo(now time.Time) {
	held, bytes := g.d.Held()
	info := &GroupInfo{Group: g.group, Topics: slices.Clone(g.topics), Ordering: g.d.Ordering().String(),
		HeldRecords: held, HeldBytes: bytes, At: now}
	for _, st := range g.d.SessionStates() {
		si := SessionInfo{ID: uint64(st.ID), Records: st.Records, MaxRecords: st.MaxRecords, Bytes: st.Bytes, MaxBytes: st.MaxBytes,
			Draining: st.Draining, Partitions: st.Partitions}
		if s := g.sessions[st.ID]; s != nil {
			si.Client = s.client
		}
		info.Sessions = append(info.Sessions, si)
	}
	for _, st := range g.d.Partitions() {
		pi := PartitionInfo{TopicPartition: st.TopicPartition, Commit: st.Commit, AckedAbove: st.AckedAbove, Held: st.Held, Session: uint64(st.Session)}
		if fs := g.parts[st.TopicPartition]; fs != nil {
			pi.Paused, pi.Stalled = fs.paused, fs.stalled
		}
		info.Partitions = append(info.Partitions, pi)
	}
	g.info.Store(info)
}
