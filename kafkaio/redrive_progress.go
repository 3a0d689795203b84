package kafkaio

import (
	"errors"
	"strconv"
	"strings"

	"github.com/kgate/kgate/flowcontrol"
)

// redriveProgress is what a dead-letter partition's redrive group keeps:
// the committed offset (every dead letter below it was redriven, or was
// no dead letter) and the offsets redriven above it, in kgate's commit
// metadata (flowcontrol.CommitMetadata, as Subscribe keeps acks), so that
// a filtered redrive can leave dead letters in place and none is written
// twice. Plain data, no I/O.
type redriveProgress struct {
	commit int64
	done   []flowcontrol.OffsetRange // ascending, disjoint, not adjacent, above commit
}

// progressFrom decodes a committed offset and its metadata; foreign or
// malformed metadata keeps only the offset. commit < 0 (nothing committed)
// starts at earliest.
func progressFrom(commit int64, metadata string, earliest int64) redriveProgress {
	if commit < 0 {
		return redriveProgress{commit: earliest}
	}
	p := redriveProgress{commit: commit}
	if m, err := flowcontrol.DecodeCommitMetadata(commit, metadata); err == nil {
		for _, r := range m.Acked {
			if r.End > commit {
				p.done = append(p.done, flowcontrol.OffsetRange{Start: max(r.Start, commit), End: r.End})
			}
		}
	}
	if p.commit < earliest { // older records are gone
		p.advanceTo(earliest)
	}
	return p
}

// has reports whether off was redriven (or lies below the commit).
func (p *redriveProgress) has(off int64) bool {
	if off < p.commit {
		return true
	}
	for _, r := range p.done {
		if off < r.Start {
			return false
		}
		if off < r.End {
			return true
		}
	}
	return false
}

// advanceTo moves the commit up to off, dropping what lies below.
func (p *redriveProgress) advanceTo(off int64) {
	if off <= p.commit {
		return
	}
	p.commit = off
	w := 0
	for _, r := range p.done {
		if r.End <= off {
			continue
		}
		r.Start = max(r.Start, off)
		p.done[w] = r
		w++
	}
	p.done = p.done[:w]
	p.settle()
}

// settle moves the commit over a range that starts at it.
func (p *redriveProgress) settle() {
	for len(p.done) > 0 && p.done[0].Start <= p.commit {
		p.commit = max(p.commit, p.done[0].End)
		p.done = p.done[1:]
	}
}

// add marks off redriven.
func (p *redriveProgress) add(off int64) {
	if p.has(off) {
		return
	}
	i := 0
	for i < len(p.done) && p.done[i].End < off {
		i++
	}
	switch {
	case i < len(p.done) && p.done[i].End == off:
		p.done[i].End++
		if i+1 < len(p.done) && p.done[i+1].Start == p.done[i].End {
			p.done[i].End = p.done[i+1].End
			p.done = append(p.done[:i+1], p.done[i+2:]...)
		}
	case i < len(p.done) && p.done[i].Start == off+1:
		p.done[i].Start = off
	default:
		p.done = append(p.done, flowcontrol.OffsetRange{})
		copy(p.done[i+1:], p.done[i:])
		p.done[i] = flowcontrol.OffsetRange{Start: off, End: off + 1}
	}
	p.settle()
}

// metadata encodes the progress for a commit at p.commit. ok is false when
// the redriven offsets above the commit do not all fit in Kafka's offset
// metadata (the encoding would drop some, and they would be written again).
func (p *redriveProgress) metadata(writer string) (md string, ok bool) {
	through := p.commit
	if n := len(p.done); n > 0 {
		through = p.done[n-1].End
	}
	md = flowcontrol.EncodeCommitMetadata(p.commit, flowcontrol.CommitMetadata{Writer: writer, DeliveredThrough: through, Acked: p.done}, 0)
	back, err := flowcontrol.DecodeCommitMetadata(p.commit, md)
	return md, err == nil && len(back.Acked) == len(p.done)
}

// clone copies p.
func (p redriveProgress) clone() redriveProgress {
	p.done = append([]flowcontrol.OffsetRange(nil), p.done...)
	return p
}

// redrivenHeader names a redriven copy's dead-letter origin,
// "topic/partition@offset".
const redrivenHeader = "kgate.redriven.from"

// HeaderRedrivenFrom is the header a redriven copy carries:
// "dead-letter-topic/partition@offset".
const HeaderRedrivenFrom = redrivenHeader

// DeadLetterOrigin is where a dead letter came from, as the gateway's
// headers say.
type DeadLetterOrigin struct {
	Topic     string
	Partition int32
	Offset    int64
	Attempts  int32
	Reason    string
}

// errNotDeadLetter: the record carries none of the gateway's dead-letter
// headers, or they do not parse.
var errNotDeadLetter = errors.New("no kgate.dlq headers")

// parseDeadLetter reads the gateway's kgate.dlq.* headers of a record.
// Where a key occurs more than once (the origin record had one, written to
// Kafka directly), the last one counts: the dead-letter writer appends its
// headers after the origin record's.
func parseDeadLetter(hs []Header) (DeadLetterOrigin, error) {
	var o DeadLetterOrigin
	var topic, part, off []byte
	var seen bool
	for _, h := range hs {
		switch h.Key {
		case HeaderDeadLetterTopic:
			topic, seen = h.Value, true
		case HeaderDeadLetterPartition:
			part = h.Value
		case HeaderDeadLetterOffset:
			off = h.Value
		case HeaderDeadLetterAttempts:
			if n, err := strconv.ParseInt(string(h.Value), 10, 32); err == nil {
				o.Attempts = int32(n)
			}
		case HeaderDeadLetterReason:
			o.Reason = string(h.Value)
		}
	}
	if !seen || ValidateTopic(string(topic)) != nil {
		return o, errNotDeadLetter
	}
	o.Topic = string(topic)
	p, err := strconv.ParseInt(string(part), 10, 32)
	if err != nil || p < 0 {
		return o, errNotDeadLetter
	}
	n, err := strconv.ParseInt(string(off), 10, 64)
	if err != nil || n < 0 {
		return o, errNotDeadLetter
	}
	o.Partition, o.Offset = int32(p), n
	return o, nil
}

// redrivenCopy is the message a dead letter is republished as: its key,
// value and headers without the gateway's dead-letter headers (and without
// an earlier redrive's mark), plus kgate.redriven.from naming where it
// was.
func redrivenCopy(r *Record) Message {
	hs := make([]Header, 0, len(r.Headers)+1)
	for _, h := range r.Headers {
		if hasPrefixFold(h.Key, "kgate.dlq.") || strings.EqualFold(h.Key, redrivenHeader) {
			continue
		}
		hs = append(hs, h)
	}
	hs = append(hs, Header{Key: redrivenHeader, Value: []byte(r.Topic + "/" + strconv.Itoa(int(r.Partition)) + "@" + strconv.FormatInt(r.Offset, 10))})
	return Message{Key: r.Key, Value: r.Value, Headers: hs, Partition: PartitionAny}
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// RedriveGroup is the consumer group whose committed offsets keep the
// redrive progress of a dead-letter topic.
func RedriveGroup(topic string) string { return "kgate.redrive." + topic }
