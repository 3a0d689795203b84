package flowcontrol

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalidAckID is wrapped by every error ParseAckID returns.
var ErrInvalidAckID = errors.New("invalid ack id")

// maxAckIDLen is the length of the longest valid wire form: the largest
// uint32, int64 and int32 in base 36 take 7, 13 and 6 digits, plus two dots.
const maxAckIDLen = 7 + 13 + 6 + 2

// AckID identifies one delivery of one record. Tracker.Offer returns it;
// the client hands it back to ack, nack or extend that delivery.
type AckID struct {
	// Assignment is the number Tracker.Assign gave the record's partition,
	// so an ack for an earlier assignment of the same partition is stale.
	Assignment uint32
	// Offset is the record's offset in its partition.
	Offset int64
	// Attempt is the delivery attempt, 1 for the first delivery.
	Attempt int32
}

// String returns the opaque wire form of id: its three fields in base 36,
// joined by '.', e.g. "3.1z4.1". ParseAckID parses it back.
func (id AckID) String() string {
	b := make([]byte, 0, maxAckIDLen)
	b = strconv.AppendUint(b, uint64(id.Assignment), 36)
	b = append(b, '.')
	b = strconv.AppendInt(b, id.Offset, 36)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(id.Attempt), 36)
	return string(b)
}

// ParseAckID parses the wire form made by AckID.String. It is strict: each
// valid AckID has exactly one wire form, so the input must be three
// non-empty fields of lowercase base-36 digits without signs or leading
// zeros, in range, with Attempt at least 1. Errors wrap ErrInvalidAckID
// and say what is wrong; they quote the input only when it is short.
func ParseAckID(s string) (AckID, error) {
	if s == "" {
		return AckID{}, fmt.Errorf("%w: empty", ErrInvalidAckID)
	}
	if len(s) > maxAckIDLen {
		return AckID{}, fmt.Errorf("%w: %d bytes long, at most %d allowed", ErrInvalidAckID, len(s), maxAckIDLen)
	}
	fail := func(format string, args ...any) (AckID, error) {
		return AckID{}, fmt.Errorf("%w %q: %s", ErrInvalidAckID, s, fmt.Sprintf(format, args...))
	}
	if n := strings.Count(s, ".") + 1; n != 3 {
		return fail("%d fields, want 3 separated by '.'", n)
	}
	a, rest, _ := strings.Cut(s, ".")
	o, n, _ := strings.Cut(rest, ".")
	assignment, bad := parseAckIDField(a, 32)
	if bad != "" {
		return fail("assignment %s", bad)
	}
	offset, bad := parseAckIDField(o, 63)
	if bad != "" {
		return fail("offset %s", bad)
	}
	attempt, bad := parseAckIDField(n, 31)
	if bad != "" {
		return fail("attempt %s", bad)
	}
	if attempt < 1 {
		return fail("attempt is 0, must be at least 1")
	}
	return AckID{Assignment: uint32(assignment), Offset: int64(offset), Attempt: int32(attempt)}, nil
}

// parseAckIDField parses one canonical base-36 field of at most bits bits.
// It returns what is wrong, or "".
func parseAckIDField(f string, bits int) (uint64, string) {
	if f == "" {
		return 0, "is empty"
	}
	if len(f) > 1 && f[0] == '0' {
		return 0, "has a leading zero"
	}
	for i, c := range f {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z') {
			return 0, fmt.Sprintf("has %q at byte %d, want 0-9 or a-z", c, i)
		}
	}
	v, err := strconv.ParseUint(f, 36, bits)
	if err != nil {
		return 0, fmt.Sprintf("overflows %d bits", bits)
	}
	return v, ""
}
