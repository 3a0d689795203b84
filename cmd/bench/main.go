// Command bench measures kgate side by side with its baselines, in one run
// on one machine: a direct confluent-kafka-go producer and consumer, a
// no-op gRPC server with the same request shape, the gateway's unary
// Publish (and PublishStream when the API has it), Subscribe with one and
// four streams, and the gateway under overload.
//
// The broker (kfake, internal/kafkatest/brokerd), the gateway (cmd/gateway)
// and the no-op server run as their own processes, so their CPU time (from
// /proc/PID/stat) and resident memory can be reported per message. Run it
// with `make bench`; --help lists its settings. Every child process is
// stopped when the bench exits, also on Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type kvFlag map[string]string

func (k kvFlag) String() string {
	var s []string
	for key, v := range k {
		s = append(s, key+"="+v)
	}
	return strings.Join(s, ",")
}

func (k kvFlag) Set(s string) error {
	key, v, ok := strings.Cut(s, "=")
	if !ok || key == "" {
		return fmt.Errorf("%q is not key=value", s)
	}
	k[key] = v
	return nil
}

type options struct {
	brokers            string
	binDir             string
	size               int
	duration           time.Duration
	warmup             time.Duration
	conc               []int
	conns              int
	partitions         int
	consumeN           int
	ackBatch           int
	subBatch           int
	overloadConc       int
	overloadRate       int
	overloadBrokerRate int
	overloadQ          int
	overloadMax        int64
	gatewayKafka       kvFlag
	only               map[string]bool
	jsonOut            string
	compare            string
	cpuprofile         string
	profConc           int
	profDur            time.Duration
	profPhase          string
}

func main() {
	o := options{gatewayKafka: kvFlag{}}
	var conc, only string
	var noop, serveGw bool
	var serveBrokers string
	var serveMaxInflight int64
	flag.StringVar(&o.brokers, "brokers", "", "Kafka bootstrap servers; empty starts kfake (internal/kafkatest/brokerd) as its own process")
	flag.StringVar(&o.binDir, "bin-dir", "", "directory holding the gateway and brokerd binaries (default: the bench binary's directory)")
	flag.IntVar(&o.size, "size", 100, "message value size in bytes")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "measured time of each produce phase")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up before each produce phase")
	flag.StringVar(&conc, "conc", "1,64,512", "concurrencies (requests in flight) of the produce phases")
	flag.IntVar(&o.conns, "conns", 8, "gRPC client connections, used round-robin by the workers")
	flag.IntVar(&o.partitions, "partitions", 8, "partitions of the topics the bench creates")
	flag.IntVar(&o.consumeN, "consume-n", 300_000, "records read by each consume phase")
	flag.IntVar(&o.ackBatch, "ack-batch", 100, "Subscribe acks are sent in batches of this many ack ids")
	flag.IntVar(&o.subBatch, "subscribe-batch", 500, "max_messages_per_response of the batched Subscribe phases")
	flag.IntVar(&o.overloadRate, "overload-rate", 8000, "Publish calls per second offered in the open-loop overload phase (e)")
	flag.IntVar(&o.overloadBrokerRate, "overload-broker-rate", 800, "records per second the overload phases' own broker accepts (not used with --brokers)")
	flag.IntVar(&o.overloadConc, "overload-conc", 2048, "requests in flight during the closed-loop saturation phase (e2), retried at once when refused")
	flag.IntVar(&o.overloadQ, "overload-queue", 200, "queue.buffering.max.messages of the overload phase's gateway")
	flag.Int64Var(&o.overloadMax, "overload-max-inflight-bytes", 64<<20, "--max-inflight-bytes of the overload phase's gateway")
	flag.Var(o.gatewayKafka, "gateway-kafka", "librdkafka property key=value for every gateway the bench starts (repeatable)")
	flag.StringVar(&only, "only", "", "comma-separated phases to run: direct,noop,kgate,stream,consume,streams (200 streams of one group),churn (a stream leaving and joining every 2 s),overload (default all); or console alone: what open console pages cost (see --console-pages)")
	flag.StringVar(&o.jsonOut, "json", "", "write all results to this JSON file")
	flag.StringVar(&o.compare, "compare", "", "print the differences from the results in this JSON file (written by --json)")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "profile mode: run the gateway in a child of this binary (wired from kafkaio and server) with runtime/pprof writing this file, under the load of --profile-phase")
	flag.IntVar(&o.profConc, "profile-conc", 64, "concurrency of the profile mode's load")
	flag.DurationVar(&o.profDur, "profile-duration", 10*time.Second, "duration of the profile mode's load (publish, stream, overload)")
	flag.StringVar(&o.profPhase, "profile-phase", "publish", "load of the profile mode: publish (unary Publish at --profile-conc), stream (PublishStream at --profile-conc), subscribe (one Subscribe stream reading 10 × --consume-n records), or overload (the open-loop overload phase)")
	flag.BoolVar(&noop, "noop-server", false, "internal: serve the no-op gRPC Publisher")
	flag.BoolVar(&serveGw, "serve-gateway", false, "internal: serve the gateway in this process")
	flag.StringVar(&serveBrokers, "serve-brokers", "", "internal: --serve-gateway's brokers")
	flag.Int64Var(&serveMaxInflight, "serve-max-inflight-bytes", 64<<20, "internal: --serve-gateway's in-flight byte budget")
	flag.Parse()

	switch {
	case noop:
		if err := serveNoop(); err != nil {
			fmt.Fprintf(os.Stderr, "bench --noop-server: %v\n", err)
			os.Exit(1)
		}
		return
	case serveGw:
		if err := serveGateway(serveBrokers, o.gatewayKafka, serveMaxInflight, o.cpuprofile); err != nil {
			fmt.Fprintf(os.Stderr, "bench --serve-gateway: %v\n", err)
			os.Exit(1)
		}
		return
	}

	for _, s := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bench: --conc %q: want positive integers separated by commas\n", conc)
			os.Exit(2)
		}
		o.conc = append(o.conc, n)
	}
	if only != "" {
		o.only = map[string]bool{}
		for _, s := range strings.Split(only, ",") {
			o.only[strings.TrimSpace(s)] = true
		}
		if o.only["console"] && len(o.only) > 1 {
			fmt.Fprintf(os.Stderr, "bench: --only %q: the console phase runs alone (--only console)\n", only)
			os.Exit(2)
		}
	}
	if o.binDir == "" {
		exe, err := os.Executable()
		if err == nil {
			o.binDir = filepath.Dir(exe)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var err error
	switch {
	case o.cpuprofile != "":
		err = runProfile(ctx, &o)
	case o.only["console"]: // console.go
		err = runConsole(ctx, &o)
	default:
		err = run(ctx, &o)
	}
	stop()
	stopChildren()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "bench: interrupted")
		} else {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		}
		os.Exit(1)
	}
}

func (o *options) want(phase string) bool { return o.only == nil || o.only[phase] }

// binary returns the path of a helper binary built next to the bench.
func (o *options) binary(name, pkg string) (string, error) {
	p := filepath.Join(o.binDir, name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s not found (build it with go build -o %s %s, or use make bench)", p, p, pkg)
	}
	return p, nil
}
