// Package promtext reads a gateway's metrics the way Prometheus scrapes
// them, over HTTP in the text format, for the tests and the bench that
// watch a gateway process from outside.
package promtext

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Sum scrapes http://addr/metrics and returns the sum of the samples of
// the metric name, over all its labels (zero when it has none).
func Sum(addr, name string) (float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, fmt.Errorf("scraping the metrics on %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("scraping the metrics on %s: %s", addr, resp.Status)
	}
	return SumOf(resp.Body, name)
}

// SumOf returns the sum of the samples of the metric name in a text
// exposition.
func SumOf(r io.Reader, name string) (float64, error) {
	total := 0.0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("metric %s: sample %q: %w", name, line, err)
		}
		total += v
	}
	return total, sc.Err()
}
