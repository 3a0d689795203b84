package promtext

import (
	"strings"
	"testing"
)

func TestSumOfAddsEverySampleOfTheMetricOnly(t *testing.T) {
	const text = `# HELP kgate_x_total X.
# TYPE kgate_x_total counter
kgate_x_total{group="a"} 2
kgate_x_total{group="b",reason="nack"} 3.5
kgate_x_total_other 100
kgate_x 7
kgate_y 1e3
`
	for name, want := range map[string]float64{"kgate_x_total": 5.5, "kgate_x": 7, "kgate_y": 1000, "kgate_z": 0} {
		got, err := SumOf(strings.NewReader(text), name)
		if err != nil || got != want {
			t.Errorf("SumOf(%s) = %v, %v; want %v", name, got, err, want)
		}
	}
	if _, err := SumOf(strings.NewReader("kgate_x{a=\"b\"} not-a-number\n"), "kgate_x"); err == nil {
		t.Error("SumOf read a sample that is not a number")
	}
}
