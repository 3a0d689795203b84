package kafkaio

import (
	"testing"
)

// TestRedriveProgress: offsets redriven out of order are kept above the
// commit, the commit moves over contiguous ones, and the encoding carries
// them all or says it cannot.
func TestRedriveProgress(t *testing.T) {
	for i, tc := range []struct {
		add        []int64
		wantCommit int64
		wantRanges int
	}{
		{nil, 10, 0},
		{[]int64{10}, 11, 0},
		{[]int64{12}, 10, 1},
		{[]int64{12, 13, 11}, 10, 1},
		{[]int64{12, 10}, 11, 1},
		{[]int64{12, 10, 11}, 13, 0},
		{[]int64{14, 12, 13}, 10, 1},
		{[]int64{20, 12, 16}, 10, 3},
		{[]int64{5, 10}, 11, 0}, // below the commit: already done
	} {
		p := progressFrom(10, "", 0)
		for _, o := range tc.add {
			p.add(o)
		}
		if p.commit != tc.wantCommit || len(p.done) != tc.wantRanges {
			t.Errorf("%d. after %v: commit %d ranges %v, want commit %d and %d ranges", i, tc.add, p.commit, p.done, tc.wantCommit, tc.wantRanges)
		}
		for _, o := range tc.add {
			if !p.has(o) {
				t.Errorf("%d. %d not redriven after %v", i, o, tc.add)
			}
		}
		md, ok := p.metadata("gw")
		if !ok {
			t.Errorf("%d. metadata does not fit", i)
		}
		back := progressFrom(p.commit, md, 0)
		if back.commit != p.commit || len(back.done) != len(p.done) {
			t.Errorf("%d. decoded %+v, want %+v", i, back, p)
		}
	}
	// Thousands of gaps do not fit in 4096 bytes: metadata says so.
	p := progressFrom(0, "", 0)
	for o := int64(1); o < 20000; o += 2 {
		p.add(o)
	}
	if _, ok := p.metadata("gw"); ok {
		t.Errorf("10000 gaps fit in the metadata; the test expects them not to")
	}
	// Older records gone: the commit starts at the earliest kept.
	if p := progressFrom(3, "", 7); p.commit != 7 {
		t.Errorf("commit %d below earliest 7 stays at %d", 3, p.commit)
	}
}

// TestParseDeadLetter: the last occurrence of each kgate.dlq header is the
// gateway's and counts; a record without them is no dead letter.
func TestParseDeadLetter(t *testing.T) {
	hs := []Header{
		{Key: HeaderDeadLetterTopic, Value: []byte("forged")}, // the origin record's, written to Kafka directly
		{Key: "trace", Value: []byte("x")},
		{Key: HeaderDeadLetterTopic, Value: []byte("orders")},
		{Key: HeaderDeadLetterPartition, Value: []byte("2")},
		{Key: HeaderDeadLetterOffset, Value: []byte("41")},
		{Key: HeaderDeadLetterAttempts, Value: []byte("5")},
		{Key: HeaderDeadLetterReason, Value: []byte("nacked")},
	}
	o, err := parseDeadLetter(hs)
	if err != nil || o != (DeadLetterOrigin{Topic: "orders", Partition: 2, Offset: 41, Attempts: 5, Reason: "nacked"}) {
		t.Fatalf("parseDeadLetter = %+v, %v", o, err)
	}
	if _, err := parseDeadLetter([]Header{{Key: "trace", Value: []byte("x")}}); err == nil {
		t.Errorf("a record without kgate.dlq headers parsed as a dead letter")
	}
	if _, err := parseDeadLetter(hs[:3]); err == nil {
		t.Errorf("a dead letter without partition and offset parsed")
	}
	r := &Record{Topic: "dlq", Partition: 1, Offset: 9, Key: []byte("k"), Value: []byte("v"), Headers: append(hs, Header{Key: "KGATE.REDRIVEN.FROM", Value: []byte("old")})}
	m := redrivenCopy(r)
	if len(m.Headers) != 2 || m.Headers[0].Key != "trace" || m.Headers[1].Key != HeaderRedrivenFrom || string(m.Headers[1].Value) != "dlq/1@9" {
		t.Errorf("redriven copy headers %+v, want trace and %s=dlq/1@9", m.Headers, HeaderRedrivenFrom)
	}
}

// FuzzRedriveProgress checks the progress against a set of offsets: has
// agrees with what was added, and what fits in the metadata decodes back
// the same.
func FuzzRedriveProgress(f *testing.F) {
	f.Add([]byte{3, 1, 2, 9, 0})
	f.Add([]byte{0, 0, 255, 1})
	f.Fuzz(func(t *testing.T, adds []byte) {
		p := progressFrom(100, "", 0)
		set := map[int64]bool{}
		for _, b := range adds {
			o := 100 + int64(b)
			p.add(o)
			set[o] = true
		}
		for o := int64(90); o < 400; o++ {
			want := o < 100 || set[o]
			if p.has(o) != want {
				t.Fatalf("has(%d) = %v, want %v (added %v)", o, p.has(o), want, adds)
			}
		}
		if md, ok := p.metadata("w"); ok {
			back := progressFrom(p.commit, md, 0)
			for o := int64(90); o < 400; o++ {
				if back.has(o) != p.has(o) {
					t.Fatalf("decoded has(%d) = %v, want %v", o, back.has(o), p.has(o))
				}
			}
		}
	})
}
