package server

import "testing"

// TestReachability: NOT_SERVING until the first success; then SERVING until
// failures checks in a row failed; SERVING again at the first success.
func TestReachability(t *testing.T) {
	for i, tc := range []struct {
		failures int
		checks   string // one per check: + succeeded, - failed
		want     string // the state after each: S serving, N not serving
	}{
		0: {3, "---", "NNN"},
		1: {3, "+", "S"},
		2: {3, "+-", "SS"},
		3: {3, "+--", "SSS"},
		4: {3, "+---", "SSSN"},
		5: {3, "+---+", "SSSNS"},
		6: {3, "+--+--+", "SSSSSSS"},
		7: {3, "+-----+-", "SSSNNNSS"},
		8: {1, "+-+", "SNS"},
		9: {2, "-+--+-", "NSSNSS"},
	} {
		r := reachability{failures: tc.failures}
		got := make([]byte, len(tc.checks))
		for j := range tc.checks {
			got[j] = 'N'
			if r.observe(tc.checks[j] == '+') {
				got[j] = 'S'
			}
		}
		if string(got) != tc.want {
			t.Errorf("%d: failures %d, checks %s: states %s, want %s", i, tc.failures, tc.checks, got, tc.want)
		}
	}
}
