// What the Dispatcher reports of its partitions and sessions, for
// Subscriber.Groups, the Admin API and the console.

package flowcontrol

import "slices"

// PartitionState is what Partitions reports of one partition.
type PartitionState struct {
	TopicPartition TopicPartition
	// Commit is the lowest offset not acked (-1 before the first record
	// when the start is not known); AckedAbove counts the acked offsets
	// above it that its commit's metadata carries.
	Commit     int64
	AckedAbove int64
	// Held counts the partition's records held, in every state.
	Held int
	// Session serves the partition under OrderPartition (0 for none).
	Session SessionID
	Refused bool
}

// Partitions reports every assigned partition, ordered.
func (d *Dispatcher) Partitions() []PartitionState {
	out := make([]PartitionState, 0, len(d.parts))
	for _, p := range d.parts {
		st := PartitionState{TopicPartition: p.tp, Commit: -1, Held: p.live, Refused: p.refused}
		if p.next >= 0 {
			commit, m := p.metadata("")
			st.Commit = commit
			for _, r := range m.Acked {
				st.AckedAbove += r.End - r.Start
			}
		}
		if p.owner != nil {
			st.Session = p.owner.id
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b PartitionState) int { return compareTP(a.TopicPartition, b.TopicPartition) })
	return out
}

// SessionState is what Sessions reports of one session.
type SessionState struct {
	ID SessionID
	// Records and Bytes are what it holds now: handed to it and not acked,
	// nacked or expired; MaxRecords and MaxBytes its window.
	Records, MaxRecords int
	Bytes, MaxBytes     int64
	Draining            bool
	// Partitions it serves under OrderPartition, ordered.
	Partitions []TopicPartition
}

// SessionStates reports every session, in joining order.
func (d *Dispatcher) SessionStates() []SessionState {
	out := make([]SessionState, 0, len(d.order))
	for _, s := range d.order {
		st := SessionState{ID: s.id, Records: s.msgs, MaxRecords: s.cfg.MaxMessages, Bytes: s.bytes, MaxBytes: s.cfg.MaxBytes, Draining: s.draining}
		for _, p := range s.parts {
			st.Partitions = append(st.Partitions, p.tp)
		}
		slices.SortFunc(st.Partitions, compareTP)
		out = append(out, st)
	}
	return out
}
