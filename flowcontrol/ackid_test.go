package flowcontrol

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestAckIDRoundTrip(t *testing.T) {
	for i, tc := range []struct {
		id   AckID
		want string
	}{
		0: {AckID{Assignment: 1, Offset: 0, Attempt: 1}, "1.0.1"},
		1: {AckID{Assignment: 3, Offset: 2560, Attempt: 1}, "3.1z4.1"},
		2: {AckID{Assignment: 0, Offset: 35, Attempt: 36}, "0.z.10"},
		3: {AckID{Assignment: math.MaxUint32, Offset: math.MaxInt64, Attempt: math.MaxInt32}, "1z141z3.1y2p0ij32e8e7.zik0zj"},
	} {
		s := tc.id.String()
		if s != tc.want {
			t.Errorf("case %d: %#v.String() = %q, want %q", i, tc.id, s, tc.want)
		}
		got, err := ParseAckID(s)
		if err != nil || got != tc.id {
			t.Errorf("case %d: ParseAckID(%q) = %#v, %v; want %#v", i, s, got, err, tc.id)
		}
	}
	if n := len(AckID{math.MaxUint32, math.MaxInt64, math.MaxInt32}.String()); n != maxAckIDLen {
		t.Errorf("longest ack id is %d bytes, maxAckIDLen = %d", n, maxAckIDLen)
	}
}

func TestParseAckIDErrors(t *testing.T) {
	for i, tc := range []struct {
		in, wantErr string
	}{
		0:  {"", "invalid ack id: empty"},
		1:  {"1.2", `invalid ack id "1.2": 2 fields, want 3 separated by '.'`},
		2:  {"1.2.3.4", `invalid ack id "1.2.3.4": 4 fields, want 3 separated by '.'`},
		3:  {".2.3", `invalid ack id ".2.3": assignment is empty`},
		4:  {"1..3", `invalid ack id "1..3": offset is empty`},
		5:  {"1.2.", `invalid ack id "1.2.": attempt is empty`},
		6:  {"+1.2.3", `invalid ack id "+1.2.3": assignment has '+' at byte 0, want 0-9 or a-z`},
		7:  {"1.-2.3", `invalid ack id "1.-2.3": offset has '-' at byte 0, want 0-9 or a-z`},
		8:  {" 1.2.3", `invalid ack id " 1.2.3": assignment has ' ' at byte 0, want 0-9 or a-z`},
		9:  {"1.2.3\n", `invalid ack id "1.2.3\n": attempt has '\n' at byte 1, want 0-9 or a-z`},
		10: {"1.A.3", `invalid ack id "1.A.3": offset has 'A' at byte 0, want 0-9 or a-z`},
		11: {"1.02.3", `invalid ack id "1.02.3": offset has a leading zero`},
		12: {"1z141z4.0.1", `invalid ack id "1z141z4.0.1": assignment overflows 32 bits`},
		13: {"1.1y2p0ij32e8e8.1", `invalid ack id "1.1y2p0ij32e8e8.1": offset overflows 63 bits`},
		14: {"1.0.zik0zk", `invalid ack id "1.0.zik0zk": attempt overflows 31 bits`},
		15: {"1.0.0", `invalid ack id "1.0.0": attempt is 0, must be at least 1`},
		16: {strings.Repeat("1", 29), "invalid ack id: 29 bytes long, at most 28 allowed"},
		17: {"1.é.1", `invalid ack id "1.é.1": offset has 'é' at byte 0, want 0-9 or a-z`},
	} {
		id, err := ParseAckID(tc.in)
		if err == nil || err.Error() != tc.wantErr || !errors.Is(err, ErrInvalidAckID) || id != (AckID{}) {
			t.Errorf("case %d: ParseAckID(%q) = %#v, %v; want error %q", i, tc.in, id, err, tc.wantErr)
		}
	}
}

func FuzzParseAckID(f *testing.F) {
	for _, s := range []string{"1.0.1", "3.1z4.1", "1z141z3.1y2p0ij32e8e7.zik0zj", "1.02.3", "1..", "0.0.0", "+1.2.3", "1.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseAckID(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidAckID) || id != (AckID{}) {
				t.Fatalf("ParseAckID(%q) = %#v, %v", s, id, err)
			}
			return
		}
		if id.Offset < 0 || id.Attempt < 1 {
			t.Fatalf("ParseAckID(%q) = %#v: out of range", s, id)
		}
		if id.String() != s {
			t.Fatalf("ParseAckID(%q) = %#v, which formats as %q", s, id, id.String())
		}
	})
}

func ExampleParseAckID() {
	id := AckID{Assignment: 3, Offset: 2560, Attempt: 1}
	fmt.Println(id)
	parsed, err := ParseAckID(id.String())
	fmt.Println(parsed == id, err)
	_, err = ParseAckID("3.-1z4.1")
	fmt.Println(err)
	// Output:
	// 3.1z4.1
	// true <nil>
	// invalid ack id "3.-1z4.1": offset has '-' at byte 0, want 0-9 or a-z
}

func BenchmarkParseAckID(b *testing.B) {
	s := AckID{Assignment: 12, Offset: 123456789, Attempt: 1}.String()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseAckID(s); err != nil {
			b.Fatal(err)
		}
	}
}
