package flowcontrol

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestCommitMetadataRoundTrip(t *testing.T) {
	for i, tc := range []struct {
		commit int64
		m      CommitMetadata
	}{
		0: {0, CommitMetadata{DeliveredThrough: 0}},
		1: {1, CommitMetadata{Writer: "gw-a", DeliveredThrough: 1001, Acked: []OffsetRange{{2, 1001}}}},
		2: {5, CommitMetadata{Writer: "x", DeliveredThrough: 9, Acked: []OffsetRange{{5, 6}, {7, 9}}}},
		3: {1 << 40, CommitMetadata{DeliveredThrough: 1<<40 + 10, Acked: []OffsetRange{{1<<40 + 1, 1<<40 + 2}, {1<<40 + 4, 1<<40 + 10}}}},
	} {
		s := EncodeCommitMetadata(tc.commit, tc.m, 0)
		if !strings.HasPrefix(s, "kgate1:") || len(s) > MetadataMaxBytes {
			t.Errorf("%d: encoded %q", i, s)
		}
		got, err := DecodeCommitMetadata(tc.commit, s)
		if err != nil {
			t.Fatalf("%d: decode %q: %v", i, s, err)
		}
		if !reflect.DeepEqual(got, tc.m) && !(len(got.Acked) == 0 && len(tc.m.Acked) == 0 && got.Writer == tc.m.Writer && got.DeliveredThrough == tc.m.DeliveredThrough) {
			t.Errorf("%d: round trip gave %+v, want %+v", i, got, tc.m)
		}
	}
}

// The case: offsets 2-1000 acked, 1 not. Its metadata is a few
// bytes.
func TestCommitMetadataOfOneGapIsSmall(t *testing.T) {
	s := EncodeCommitMetadata(1, CommitMetadata{Writer: "host:8080", DeliveredThrough: 1001, Acked: []OffsetRange{{2, 1001}}}, 0)
	if len(s) > 40 {
		t.Errorf("metadata %q is %d bytes", s, len(s))
	}
}

// When every other offset is acked, the ranges do not all fit in Kafka's
// 4096 bytes: the lowest ones are kept, and the encoding stays within the
// limit.
func TestCommitMetadataKeepsTheLowestRangesThatFit(t *testing.T) {
	var acked []OffsetRange
	for o := int64(1); o < 20001; o += 2 {
		acked = append(acked, OffsetRange{o, o + 1})
	}
	m := CommitMetadata{Writer: "gw", DeliveredThrough: 20001, Acked: acked}
	for _, limit := range []int{0, 100, 1000} {
		s := EncodeCommitMetadata(0, m, limit)
		want := limit
		if want == 0 {
			want = MetadataMaxBytes
		}
		if len(s) > want {
			t.Fatalf("limit %d: %d bytes", limit, len(s))
		}
		got, err := DecodeCommitMetadata(0, s)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Acked) == 0 || len(got.Acked) >= len(acked) {
			t.Fatalf("limit %d: kept %d of %d ranges", limit, len(got.Acked), len(acked))
		}
		if !reflect.DeepEqual(got.Acked, acked[:len(got.Acked)]) {
			t.Errorf("limit %d: kept ranges are not the lowest", limit)
		}
		if got.DeliveredThrough != 20001 {
			t.Errorf("limit %d: delivered-through %d", limit, got.DeliveredThrough)
		}
		// Filled to within one range of the limit.
		if len(s) < want-8 {
			t.Errorf("limit %d: only %d bytes used", limit, len(s))
		}
	}
}

func TestDecodeCommitMetadataRefusesWhatKgateDidNotWrite(t *testing.T) {
	for i, tc := range []struct {
		commit int64
		in     string
		want   string // "" means ErrForeignMetadata
	}{
		0:  {0, "", ""},
		1:  {0, "some java consumer's note", ""},
		2:  {0, "kgate1:!!!", "base64"},
		3:  {0, "kgate1:", "writer length"},
		4:  {0, "kgate1:" + metadataEncoding.EncodeToString([]byte{5, 'a'}), "writer length"},
		5:  {0, "kgate1:" + metadataEncoding.EncodeToString([]byte{0}), "delivered-through"},
		6:  {0, "kgate1:" + metadataEncoding.EncodeToString([]byte{0, 10, 1}), "range length"},
		7:  {0, "kgate1:" + metadataEncoding.EncodeToString([]byte{0, 10, 1, 0}), "empty"},
		8:  {0, "kgate1:" + metadataEncoding.EncodeToString([]byte{0, 10, 1, 1, 0, 1}), "adjacent"},
		9:  {0, "kgate1:" + metadataEncoding.EncodeToString([]byte{0, 10, 1, 20}), "past delivered-through"},
		10: {1<<62 + 1<<61, "kgate1:" + metadataEncoding.EncodeToString([]byte{0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}), "overflows"},
		11: {-1, "kgate1:AAA", "negative"},
	} {
		_, err := DecodeCommitMetadata(tc.commit, tc.in)
		switch {
		case tc.want == "" && !errors.Is(err, ErrForeignMetadata):
			t.Errorf("%d: %q: got %v, want ErrForeignMetadata", i, tc.in, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%d: %q: got %v, want an error about %q", i, tc.in, err, tc.want)
		}
	}
}

// FuzzDecodeCommitMetadata decodes untrusted metadata (anyone with access
// to the group can commit any string): it never panics, and what it
// accepts follows CommitMetadata's rules and encodes back to an equal
// value.
func FuzzDecodeCommitMetadata(f *testing.F) {
	f.Add(int64(1), EncodeCommitMetadata(1, CommitMetadata{Writer: "w", DeliveredThrough: 1001, Acked: []OffsetRange{{2, 1001}}}, 0))
	f.Add(int64(0), "kgate1:AAA")
	f.Add(int64(7), "kgate1:AQF4BQEBAgI")
	f.Fuzz(func(t *testing.T, commit int64, s string) {
		m, err := DecodeCommitMetadata(commit, s)
		if err != nil {
			return
		}
		prev := commit
		for i, r := range m.Acked {
			if r.End <= r.Start || r.Start < prev || (i > 0 && r.Start == prev) || r.End > m.DeliveredThrough {
				t.Fatalf("decoded ranges break the rules: %+v (commit %d)", m, commit)
			}
			prev = r.End
		}
		again, err := DecodeCommitMetadata(commit, EncodeCommitMetadata(commit, m, 1<<20))
		if err != nil || !reflect.DeepEqual(again.Acked, m.Acked) || again.DeliveredThrough != m.DeliveredThrough || again.Writer != m.Writer {
			t.Fatalf("re-encoding %+v gave %+v, %v", m, again, err)
		}
	})
}
