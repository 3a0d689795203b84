package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is one row of the table and of the JSON file. CPU figures are
// microseconds of CPU time per completed message; -1 means not measured.
type Result struct {
	Scenario    string  `json:"scenario"`
	Concurrency int     `json:"concurrency"`
	Messages    int64   `json:"messages"`
	Rejected    int64   `json:"rejected,omitempty"`
	Errors      int64   `json:"errors,omitempty"`
	Duplicates  int64   `json:"duplicates,omitempty"`
	Seconds     float64 `json:"seconds"`
	MsgsPerSec  float64 `json:"msgs_per_sec"`
	MBPerSec    float64 `json:"mb_per_sec"`
	// Latency of completed (accepted) requests; 0 for consume phases.
	P50us  float64 `json:"p50_us"`
	P99us  float64 `json:"p99_us"`
	P999us float64 `json:"p999_us"`
	// Rejections (RESOURCE_EXHAUSTED), overload phase.
	RejectedPerSec float64 `json:"rejected_per_sec,omitempty"`
	RejP50us       float64 `json:"rej_p50_us,omitempty"`
	RejP99us       float64 `json:"rej_p99_us,omitempty"`
	// FirstRecordMs is, for consume phases, the time to the first record.
	FirstRecordMs float64 `json:"first_record_ms,omitempty"`
	// CPUusPerMsg is the measured process: the gateway, the no-op server,
	// or for direct phases the bench process (client and librdkafka).
	CPUusPerMsg       float64 `json:"cpu_us_per_msg"`
	ClientCPUusPerMsg float64 `json:"client_cpu_us_per_msg"`
	BrokerCPUusPerMsg float64 `json:"broker_cpu_us_per_msg"`
	// PeakRSSMB is the largest VmRSS sample (every 50 ms) of the measured
	// process during the phase.
	PeakRSSMB     float64 `json:"peak_rss_mb"`
	MaxInflightMB float64 `json:"max_inflight_mb,omitempty"`
	FirstError    string  `json:"first_error,omitempty"`
	Note          string  `json:"note,omitempty"`
}

func (r *Result) key() string { return fmt.Sprintf("%s/%d", r.Scenario, r.Concurrency) }

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func loadResult(name string, conc int, s loadStats, m *cpuMeter, size int) Result {
	sec := s.elapsed.Seconds()
	r := Result{
		Scenario: name, Concurrency: conc, Messages: s.ok, Rejected: s.rejected, Errors: s.errors,
		Seconds: sec, MsgsPerSec: float64(s.ok) / sec, MBPerSec: float64(s.ok) * float64(size) / sec / 1e6,
		P50us: us(s.okLat.quantile(0.5)), P99us: us(s.okLat.quantile(0.99)), P999us: us(s.okLat.quantile(0.999)),
		CPUusPerMsg: m.perMsg(0, s.ok), ClientCPUusPerMsg: m.perMsg(1, s.ok), BrokerCPUusPerMsg: m.perMsg(2, s.ok),
		PeakRSSMB: float64(m.peak) / 1e6, FirstError: s.firstErr,
	}
	if s.rejected > 0 {
		r.RejectedPerSec = float64(s.rejected) / sec
		r.RejP50us, r.RejP99us = us(s.rejLat.quantile(0.5)), us(s.rejLat.quantile(0.99))
	}
	return r
}

func consumeResult(name string, streams int, n, dup int64, first, elapsed time.Duration, m *cpuMeter, size int) Result {
	sec := elapsed.Seconds()
	return Result{
		Scenario: name, Concurrency: streams, Messages: n, Duplicates: dup, Seconds: sec,
		MsgsPerSec: float64(n) / sec, MBPerSec: float64(n) * float64(size) / sec / 1e6,
		FirstRecordMs: float64(first) / float64(time.Millisecond),
		CPUusPerMsg:   m.perMsg(0, n), ClientCPUusPerMsg: m.perMsg(1, n), BrokerCPUusPerMsg: m.perMsg(2, n),
		PeakRSSMB: float64(m.peak) / 1e6,
		Note:      fmt.Sprintf("rate from 1st to last record; 1st after %.0f ms; %d redelivered", float64(first)/float64(time.Millisecond), dup),
	}
}

func fmtUS(v float64) string {
	switch {
	case v <= 0:
		return "-"
	case v < 1000:
		return fmt.Sprintf("%.0fµs", v)
	case v < 1e6:
		return fmt.Sprintf("%.2fms", v/1000)
	}
	return fmt.Sprintf("%.2fs", v/1e6)
}

func fmtF(v float64) string {
	if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	if v < 10 {
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func printTable(w io.Writer, rs []Result, o *options) {
	fmt.Fprintf(w, "\nResults (message %d B; cpu = CPU µs per completed message of the measured process: gateway, no-op server, or the bench process for direct rows; client = bench process; broker = kfake process)\n\n", o.size)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario              \tconc\tmsgs/s\tMB/s\tp50\tp99\tp999\tcpu µs/msg\tclient µs/msg\tbroker µs/msg\tpeak RSS MB\terrors\t")
	for _, r := range rs {
		fmt.Fprintf(tw, "%-22s\t%d\t%.0f\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t%d\t\n", r.Scenario, r.Concurrency, r.MsgsPerSec, r.MBPerSec,
			fmtUS(r.P50us), fmtUS(r.P99us), fmtUS(r.P999us), fmtF(r.CPUusPerMsg), fmtF(r.ClientCPUusPerMsg), fmtF(r.BrokerCPUusPerMsg), r.PeakRSSMB, r.Errors)
	}
	_ = tw.Flush()
	for _, r := range rs {
		if r.Note != "" {
			fmt.Fprintf(w, "  %s/%d: %s\n", r.Scenario, r.Concurrency, r.Note)
		}
		if r.FirstError != "" {
			fmt.Fprintf(w, "  %s/%d: first error: %s\n", r.Scenario, r.Concurrency, r.FirstError)
		}
	}
}

func find(rs []Result, scenario string, conc int) *Result {
	for i := range rs {
		if rs[i].Scenario == scenario && rs[i].Concurrency == conc {
			return &rs[i]
		}
	}
	return nil
}

func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func printRatios(w io.Writer, rs []Result, conc []int) {
	if find(rs, "c kgate-publish", conc[0]) == nil && find(rs, "c2 kgate-stream", conc[0]) == nil && find(rs, "d direct-consume", 1) == nil {
		return
	}
	fmt.Fprintln(w, "\nRatios per concurrency (a direct, b no-op gRPC, c kgate Publish, c2 kgate PublishStream)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "ratio\t")
	for _, c := range conc {
		fmt.Fprintf(tw, "conc %d\t", c)
	}
	fmt.Fprintln(tw)
	type row struct {
		name     string
		num, den string
		field    func(*Result) float64
	}
	rate := func(r *Result) float64 { return r.MsgsPerSec }
	p50 := func(r *Result) float64 { return r.P50us }
	cpu := func(r *Result) float64 { return r.CPUusPerMsg }
	rows := []row{
		{"c/a msgs/s", "c kgate-publish", "a direct-produce", rate},
		{"c/a p50 latency", "c kgate-publish", "a direct-produce", p50},
		{"c/b msgs/s", "c kgate-publish", "b grpc-noop", rate},
		{"c/b p50 latency", "c kgate-publish", "b grpc-noop", p50},
		{"c/b server cpu/msg", "c kgate-publish", "b grpc-noop", cpu},
		{"c2/a msgs/s", "c2 kgate-stream", "a direct-produce", rate},
		{"c2/c msgs/s", "c2 kgate-stream", "c kgate-publish", rate},
		{"c2/c gateway cpu/msg", "c2 kgate-stream", "c kgate-publish", cpu},
	}
	for _, rw := range rows {
		fmt.Fprintf(tw, "%s\t", rw.name)
		for _, c := range conc {
			n, d := find(rs, rw.num, c), find(rs, rw.den, c)
			if n == nil || d == nil {
				fmt.Fprint(tw, "-\t")
				continue
			}
			fmt.Fprintf(tw, "%s\t", ratio(rw.field(n), rw.field(d)))
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()
	if d := find(rs, "d direct-consume", 1); d != nil {
		for i := range rs {
			k := &rs[i]
			if name, ok := strings.CutPrefix(k.Scenario, "d kgate-subscribe"); ok {
				fmt.Fprintf(w, "d kgate%s/direct: msgs/s %s, cpu/msg (gateway vs bench process) %s\n", name, ratio(k.MsgsPerSec, d.MsgsPerSec), ratio(k.CPUusPerMsg, d.CPUusPerMsg))
			}
		}
	}
}

type jsonFile struct {
	Time       time.Time `json:"time"`
	Commit     string    `json:"commit,omitempty"`
	GoVersion  string    `json:"go_version"`
	CPUs       int       `json:"cpus"`
	Size       int       `json:"size"`
	DurationS  float64   `json:"duration_s"`
	Conns      int       `json:"conns"`
	Partitions int       `json:"partitions"`
	Results    []Result  `json:"results"`
}

func writeJSON(path string, o *options, rs []Result) error {
	jf := jsonFile{Time: time.Now().UTC(), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Size: o.size,
		DurationS: o.duration.Seconds(), Conns: o.conns, Partitions: o.partitions, Results: rs}
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		jf.Commit = strings.TrimSpace(string(out))
	}
	b, err := json.MarshalIndent(jf, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func delta(old, cur float64) string {
	if old <= 0 || cur <= 0 {
		return "-"
	}
	return fmt.Sprintf("%+.1f%%", (cur/old-1)*100)
}

func compare(w io.Writer, path string, rs []Result) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var old jsonFile
	if err := json.Unmarshal(b, &old); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	fmt.Fprintf(w, "\nCompared with %s (commit %s, %s)\n\n", path, old.Commit, old.Time.Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario              \tconc\tmsgs/s old→new\tΔ\tp50 old→new\tΔ\tp99 old→new\tΔ\tcpu µs/msg old→new\tΔ\tpeak RSS MB old→new\t")
	for i := range rs {
		r := &rs[i]
		var o *Result
		for j := range old.Results {
			if old.Results[j].key() == r.key() {
				o = &old.Results[j]
			}
		}
		if o == nil {
			fmt.Fprintf(tw, "%s\t%d\tnew\t\t\t\t\t\t\t\t\t\n", r.Scenario, r.Concurrency)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f→%.0f\t%s\t%s→%s\t%s\t%s→%s\t%s\t%s→%s\t%s\t%.1f→%.1f\t\n", r.Scenario, r.Concurrency,
			o.MsgsPerSec, r.MsgsPerSec, delta(o.MsgsPerSec, r.MsgsPerSec),
			fmtUS(o.P50us), fmtUS(r.P50us), delta(o.P50us, r.P50us),
			fmtUS(o.P99us), fmtUS(r.P99us), delta(o.P99us, r.P99us),
			fmtF(o.CPUusPerMsg), fmtF(r.CPUusPerMsg), delta(o.CPUusPerMsg, r.CPUusPerMsg),
			o.PeakRSSMB, r.PeakRSSMB)
	}
	return tw.Flush()
}
