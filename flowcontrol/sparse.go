package flowcontrol

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
)

// OffsetRange is the offsets [Start, End) of one partition.
type OffsetRange struct {
	Start, End int64
}

// CommitMetadata is what the gateway keeps, in a committed offset's
// metadata, about the records at and above the committed offset: which of
// them were acked already (out of order, above a record not yet acked), and
// up to where records were delivered. A consumer that is later assigned the
// partition, on this gateway or another, skips the acked ones and knows that
// the others below DeliveredThrough are delivered again.
type CommitMetadata struct {
	// Writer names the gateway instance that committed (at most 255
	// bytes; longer names are cut).
	Writer string
	// DeliveredThrough is one past the highest offset delivered: every
	// record below it (and at or above the committed offset) that is not
	// acked was delivered at least once. At least the committed offset.
	DeliveredThrough int64
	// Acked are the acked offsets at or above the committed offset and
	// below DeliveredThrough: ascending, disjoint, not adjacent, each
	// non-empty. (The first range starts above the committed offset, the
	// lowest offset not acked, unless the committer had not read that far
	// and knew of the acks from an earlier owner's metadata.)
	Acked []OffsetRange
}

// MetadataMaxBytes is Kafka's default offset.metadata.max.bytes: a commit
// whose metadata is longer fails for that partition.
const MetadataMaxBytes = 4096

// metadataPrefix marks metadata written by kgate, version 1. Other writers'
// metadata (a Java consumer's, for example) is not decoded.
const metadataPrefix = "kgate1:"

var metadataEncoding = base64.RawURLEncoding

// ErrForeignMetadata is returned by DecodeCommitMetadata for metadata that
// kgate did not write (an empty string included).
var ErrForeignMetadata = errors.New("commit metadata not written by kgate")

// EncodeCommitMetadata encodes m for a commit at offset commit, in at most
// maxLen bytes (MetadataMaxBytes when maxLen is 0). When the acked ranges do
// not all fit, it keeps the lowest ranges that do: the records of the ranges
// left out are then delivered again by the next owner, which at-least-once
// delivery allows. It panics if m breaks CommitMetadata's rules or maxLen
// cannot hold even an empty encoding.
//
// The wire form is the prefix "kgate1:" and, in unpadded base64url, the
// writer's length and bytes, DeliveredThrough-commit, then per range its
// start minus the previous range's end (the commit offset for the first)
// and its length, all as unsigned varints.
func EncodeCommitMetadata(commit int64, m CommitMetadata, maxLen int) string {
	if maxLen == 0 {
		maxLen = MetadataMaxBytes
	}
	if m.DeliveredThrough < commit {
		panic("flowcontrol: DeliveredThrough below the commit offset")
	}
	writer := m.Writer
	if len(writer) > 255 {
		writer = writer[:255]
	}
	rawMax := metadataEncoding.DecodedLen(maxLen - len(metadataPrefix))
	raw := make([]byte, 0, 64)
	raw = binary.AppendUvarint(raw, uint64(len(writer)))
	raw = append(raw, writer...)
	raw = binary.AppendUvarint(raw, uint64(m.DeliveredThrough-commit))
	if len(raw) > rawMax {
		panic("flowcontrol: commit metadata limit too small")
	}
	prev := commit
	var pair [2 * binary.MaxVarintLen64]byte
	for i, r := range m.Acked {
		gap := r.Start - prev
		if r.End <= r.Start || gap < 0 || (i > 0 && gap < 1) || r.End > m.DeliveredThrough {
			panic(fmt.Sprintf("flowcontrol: acked ranges not ascending, disjoint and non-adjacent at %v", r))
		}
		n := binary.PutUvarint(pair[:], uint64(gap))
		n += binary.PutUvarint(pair[n:], uint64(r.End-r.Start))
		if len(raw)+n > rawMax {
			break // keep the lowest ranges that fit
		}
		raw = append(raw, pair[:n]...)
		prev = r.End
	}
	return metadataPrefix + metadataEncoding.EncodeToString(raw)
}

// DecodeCommitMetadata decodes metadata committed at offset commit. It
// returns ErrForeignMetadata for metadata kgate did not write, and an error
// saying what is wrong for metadata that claims to be kgate's but is
// malformed; callers then treat every record from the commit offset on as
// not acked. It never panics, whatever the input.
func DecodeCommitMetadata(commit int64, s string) (CommitMetadata, error) {
	var m CommitMetadata
	body, ok := strings.CutPrefix(s, metadataPrefix)
	if !ok {
		return m, ErrForeignMetadata
	}
	if commit < 0 {
		return m, fmt.Errorf("commit offset %d is negative", commit)
	}
	raw, err := metadataEncoding.DecodeString(body)
	if err != nil {
		return m, fmt.Errorf("commit metadata is not base64url: %w", err)
	}
	next := func(what string) (uint64, error) {
		v, n := binary.Uvarint(raw)
		if n <= 0 {
			return 0, fmt.Errorf("commit metadata: %s is truncated or overflows", what)
		}
		raw = raw[n:]
		return v, nil
	}
	add := func(base int64, delta uint64, what string) (int64, error) {
		if delta > uint64(math.MaxInt64-base) {
			return 0, fmt.Errorf("commit metadata: %s overflows an offset", what)
		}
		return base + int64(delta), nil
	}
	wlen, err := next("writer length")
	if err != nil {
		return m, err
	}
	if wlen > 255 || wlen > uint64(len(raw)) {
		return m, fmt.Errorf("commit metadata: writer length %d is out of range", wlen)
	}
	m.Writer, raw = string(raw[:wlen]), raw[wlen:]
	d, err := next("delivered-through")
	if err != nil {
		return m, err
	}
	if m.DeliveredThrough, err = add(commit, d, "delivered-through"); err != nil {
		return m, err
	}
	prev := commit
	for len(raw) > 0 {
		gap, err := next("range start")
		if err != nil {
			return m, err
		}
		n, err := next("range length")
		if err != nil {
			return m, err
		}
		if n == 0 || (len(m.Acked) > 0 && gap == 0) {
			return m, fmt.Errorf("commit metadata: range %d is empty or adjacent to the previous one", len(m.Acked))
		}
		start, err := add(prev, gap, "range start")
		if err != nil {
			return m, err
		}
		end, err := add(start, n, "range end")
		if err != nil {
			return m, err
		}
		if end > m.DeliveredThrough {
			return m, fmt.Errorf("commit metadata: range %d ends at %d, past delivered-through %d", len(m.Acked), end, m.DeliveredThrough)
		}
		m.Acked = append(m.Acked, OffsetRange{Start: start, End: end})
		prev = end
	}
	return m, nil
}
