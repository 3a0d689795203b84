package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kgate/kgate/kafkaio/direct"
)

// env is what the phases share: the broker, the children, the results.
type env struct {
	o         *options
	brokers   string
	brokerPID int // 0 when the broker is not ours
	adm       *kadm.Client
	results   []Result
	notes     []string
}

// startBroker returns --brokers, or starts brokerd with extra flags.
func startBroker(ctx context.Context, o *options, extra ...string) (brokers string, pid int, err error) {
	if o.brokers != "" {
		return o.brokers, 0, nil
	}
	bin, err := o.binary("brokerd", "./internal/kafkatest/brokerd")
	if err != nil {
		return "", 0, err
	}
	c, err := startChild(ctx, "broker", bin, append([]string{"--listen", "127.0.0.1:0", "--partitions", strconv.Itoa(o.partitions)}, extra...),
		func(line string) (string, bool) { return strings.CutPrefix(line, "BROKER ") })
	if err != nil {
		return "", 0, err
	}
	return c.addr, c.pid, nil
}

// startNoop runs this binary as the no-op gRPC Publisher server.
func startNoop(ctx context.Context) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return startChild(ctx, "noop", self, []string{"--noop-server"}, func(line string) (string, bool) { return strings.CutPrefix(line, "NOOP ") })
}

// startGateway runs the cmd/gateway binary against the broker with extra
// flags and returns it once it logged its gRPC address.
func (e *env) startGateway(ctx context.Context, name string, props map[string]string, extra ...string) (*child, error) {
	bin, err := e.o.binary("gateway", "./cmd/gateway")
	if err != nil {
		return nil, err
	}
	args := []string{"--brokers", e.brokers, "--listen", "127.0.0.1:0", "--shutdown-timeout", "3s"}
	// Older gateways have no metrics endpoint; newer ones must not take
	// the default port.
	if help, _ := exec.Command(bin, "--help").CombinedOutput(); strings.Contains(string(help), "-metrics-listen") {
		args = append(args, "--metrics-listen", "127.0.0.1:0")
	}
	for k, v := range e.o.gatewayKafka {
		args = append(args, "--kafka", k+"="+v)
	}
	for k, v := range props {
		args = append(args, "--kafka", k+"="+v)
	}
	args = append(args, extra...)
	return startChild(ctx, name, bin, args, func(line string) (string, bool) {
		if !strings.Contains(line, `msg="kgate listening"`) {
			return "", false
		}
		_, rest, ok := strings.Cut(line, " grpc=")
		if !ok {
			return "", false
		}
		addr, _, _ := strings.Cut(rest, " ")
		return strings.Trim(addr, `"`), true
	})
}

func (e *env) createTopic(ctx context.Context, prefix string) (string, error) {
	topic := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := e.adm.CreateTopic(cctx, int32(e.o.partitions), 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return "", fmt.Errorf("creating topic %s: %w", topic, err)
	}
	return topic, nil
}

// deleteTopic frees the broker's memory (kfake keeps every record).
func (e *env) deleteTopic(topic string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = e.adm.DeleteTopics(ctx, topic)
}

func run(ctx context.Context, o *options) error {
	e := &env{o: o}
	fmt.Printf("kgate bench: %d CPUs, GOMAXPROCS %d, message %d B, %v per phase after %v warm-up, %d gRPC connections, %d partitions\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), o.size, o.duration, o.warmup, o.conns, o.partitions)
	var err error
	if e.brokers, e.brokerPID, err = startBroker(ctx, o); err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(e.brokers, ",")...))
	if err != nil {
		return err
	}
	defer cl.Close()
	e.adm = kadm.NewClient(cl)
	fmt.Printf("broker %s (pid %d)\n", e.brokers, e.brokerPID)

	var gw *child
	if o.want("kgate") || o.want("stream") || o.want("consume") {
		if gw, err = e.startGateway(ctx, "gateway", nil); err != nil {
			return err
		}
		fmt.Printf("gateway %s (pid %d)\n", gw.addr, gw.pid)
	}
	if o.want("direct") {
		if err := e.directProduce(ctx); err != nil {
			return err
		}
	}
	if o.want("noop") {
		noop, err := startNoop(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("no-op server %s (pid %d)\n", noop.addr, noop.pid)
		if err := e.grpcProduce(ctx, "b grpc-noop", noop, false); err != nil {
			return err
		}
		noop.stop()
	}
	if o.want("kgate") {
		if err := e.grpcProduce(ctx, "c kgate-publish", gw, false); err != nil {
			return err
		}
	}
	if o.want("stream") {
		if err := e.grpcProduce(ctx, "c2 kgate-stream", gw, true); err != nil {
			return err
		}
	}
	if o.want("consume") {
		// A failed consume phase (a gateway bug, say) is reported, and the
		// other phases still run.
		if err := e.consume(ctx, gw); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			e.notes = append(e.notes, "consume phase failed: "+err.Error())
			fmt.Println("  consume phase failed (see the notes below the table)")
		}
	}
	if gw != nil {
		if n := gw.errorLines(); n > 0 {
			e.notes = append(e.notes, fmt.Sprintf("the gateway logged %d ERROR lines", n))
		}
		gw.stop()
	}
	for _, ph := range []struct {
		name string
		run  func(context.Context) error
	}{{"streams", e.streams}, {"churn", e.churn}} {
		if !o.want(ph.name) {
			continue
		}
		if err := ph.run(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			e.notes = append(e.notes, ph.name+" phase failed: "+err.Error())
		}
	}
	if o.want("overload") {
		if err := e.overload(ctx); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	printTable(os.Stdout, e.results, o)
	printRatios(os.Stdout, e.results, o.conc)
	for _, n := range e.notes {
		fmt.Println("note:", n)
	}
	if o.jsonOut != "" {
		if err := writeJSON(o.jsonOut, o, e.results); err != nil {
			return err
		}
		fmt.Printf("results written to %s\n", o.jsonOut)
	}
	if o.compare != "" {
		if err := compare(os.Stdout, o.compare, e.results); err != nil {
			return err
		}
	}
	return nil
}

func (e *env) progress(r Result) {
	fmt.Printf("  %-22s conc %4d: %9.0f msgs/s  p50 %8s  p99 %8s  cpu %6s µs/msg\n",
		r.Scenario, r.Concurrency, r.MsgsPerSec, fmtUS(r.P50us), fmtUS(r.P99us), fmtF(r.CPUusPerMsg))
}

// directProduce is phase a: confluent-kafka-go produce-and-wait at
// linger.ms=0 from the bench process itself.
func (e *env) directProduce(ctx context.Context) error {
	value := make([]byte, e.o.size)
	for _, c := range e.o.conc {
		topic, err := e.createTopic(ctx, "bench-direct")
		if err != nil {
			return err
		}
		bp, err := direct.NewProducer(e.brokers)
		if err != nil {
			return err
		}
		m := newCPUMeter(os.Getpid(), e.brokerPID)
		s := runLoad(ctx, c, e.o.warmup, e.o.duration, func(ctx context.Context, _ int) (outcome, error) {
			if err := bp.ProduceWait(ctx, topic, nil, value); err != nil {
				return opError, err
			}
			return opOK, nil
		}, m)
		bp.Close()
		e.deleteTopic(topic)
		r := loadResult("a direct-produce", c, s, m, e.o.size)
		r.Note = "linger.ms=0; cpu = bench process (client + librdkafka)"
		e.add(r)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// grpcProduce is phases b, c and c2: unary Publish (or PublishStream) to
// srv over several connections.
func (e *env) grpcProduce(ctx context.Context, name string, srv *child, stream bool) error {
	conns, err := dialAll(srv.addr, e.o.conns)
	if err != nil {
		return err
	}
	defer closeAll(conns)
	for _, c := range e.o.conc {
		topic, err := e.createTopic(ctx, "bench-grpc")
		if err != nil {
			return err
		}
		var o op
		var so *streamOps
		if stream {
			if so, err = newStreamOps(ctx, conns, topic, e.o.size, c); err != nil {
				return err
			}
			o = so.op()
		} else {
			o = unaryOp(conns, topic, e.o.size)
		}
		m := newCPUMeter(srv.pid, e.brokerPID)
		s := runLoad(ctx, c, e.o.warmup, e.o.duration, o, m)
		if so != nil {
			so.close()
		}
		e.deleteTopic(topic)
		r := loadResult(name, c, s, m, e.o.size)
		if stream {
			r.Note = fmt.Sprintf("%d streams", min(c, len(conns)))
		}
		e.add(r)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// subscribeRun is one Subscribe measurement: streams streams of one group,
// asking for batch records per response (0: one per response).
type subscribeRun struct{ streams, batch int }

// consume is phase d: N records read by a direct consumer; by one
// Subscribe stream taking one record per response; and by one and by four
// streams of one group taking batches.
func (e *env) consume(ctx context.Context, gw *child) error {
	b := e.o.subBatch
	return e.consumeWith(ctx, gw, e.o.consumeN, []subscribeRun{{1, 0}, {1, b}, {4, b}}, true)
}

// consumeKgate fills a topic with n records and reads them with Subscribe
// streams only.
func (e *env) consumeKgate(ctx context.Context, gw *child, n int, runs []subscribeRun) error {
	return e.consumeWith(ctx, gw, n, runs, false)
}

func (e *env) consumeWith(ctx context.Context, gw *child, n int, runs []subscribeRun, withDirect bool) error {
	topic, err := e.createTopic(ctx, "bench-consume")
	if err != nil {
		return err
	}
	defer e.deleteTopic(topic)
	fctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := direct.Fill(fctx, e.brokers, topic, e.o.size, n); err != nil {
		return fmt.Errorf("filling %s: %w", topic, err)
	}
	if withDirect {
		m := newCPUMeter(os.Getpid(), e.brokerPID)
		m.start()
		dr, err := direct.Consume(fctx, e.brokers, topic, n)
		m.stop()
		if err != nil {
			return fmt.Errorf("direct consume: %w", err)
		}
		r := consumeResult("d direct-consume", 1, dr.Records, 0, dr.FirstRecord, dr.Elapsed, m, e.o.size)
		r.Note += "; cpu = bench process"
		e.add(r)
	}

	conns, err := dialAll(gw.addr, e.o.conns)
	if err != nil {
		return err
	}
	defer closeAll(conns)
	for _, r := range runs {
		m := newCPUMeter(gw.pid, e.brokerPID)
		m.start()
		s := subscribeN(fctx, conns, topic, r.streams, n, e.o.ackBatch, r.batch)
		m.stop()
		if s.err != nil {
			return fmt.Errorf("kgate subscribe with %d streams: %w\ngateway output:\n%s", r.streams, s.err, gw.output())
		}
		name := fmt.Sprintf("d kgate-subscribe×%d", r.streams)
		if r.batch > 1 {
			name += fmt.Sprintf(" batch %d", r.batch)
		}
		e.add(consumeResult(name, r.streams, s.unique, s.dup, s.firstAfter, s.elapsed, m, e.o.size))
	}
	return nil
}

// overload is phase e: more Publish calls than the cluster accepts, through
// a gateway with a small producer queue. The cluster is a broker of its own
// that accepts --overload-broker-rate records/s (unless --brokers names a
// cluster, which is used as it is).
//
//   - e overload: calls arrive open-loop at --overload-rate per second and
//     are not retried, as from many independent producers.
//   - e2 saturation: --overload-conc clients each retry at once when
//     refused, ignoring RetryInfo: the gateway's CPU is saturated by
//     refusals, and a refusal's latency is mostly queueing for the CPU.
func (e *env) overload(ctx context.Context) error {
	ov := *e
	if e.o.brokers == "" {
		bin, err := e.o.binary("brokerd", "./internal/kafkatest/brokerd")
		if err != nil {
			return err
		}
		b, err := startChild(ctx, "slow broker", bin, []string{"--listen", "127.0.0.1:0", "--partitions", strconv.Itoa(e.o.partitions),
			"--produce-rate", strconv.Itoa(e.o.overloadBrokerRate)}, func(line string) (string, bool) { return strings.CutPrefix(line, "BROKER ") })
		if err != nil {
			return err
		}
		defer b.stop()
		ov.brokers, ov.brokerPID = b.addr, b.pid
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr))
		if err != nil {
			return err
		}
		defer cl.Close()
		ov.adm = kadm.NewClient(cl)
		fmt.Printf("slow broker %s (pid %d): accepts %d records/s\n", b.addr, b.pid, e.o.overloadBrokerRate)
	}
	props := map[string]string{"queue.buffering.max.messages": strconv.Itoa(e.o.overloadQ)}
	gw, err := ov.startGateway(ctx, "overload gateway", props, "--max-inflight-bytes", strconv.FormatInt(e.o.overloadMax, 10))
	if err != nil {
		return err
	}
	defer gw.stop()
	fmt.Printf("overload gateway %s (pid %d): queue.buffering.max.messages=%d, --max-inflight-bytes=%d\n", gw.addr, gw.pid, e.o.overloadQ, e.o.overloadMax)
	topic, err := ov.createTopic(ctx, "bench-overload")
	if err != nil {
		return err
	}
	defer ov.deleteTopic(topic)
	conns, err := dialAll(gw.addr, e.o.conns)
	if err != nil {
		return err
	}
	defer closeAll(conns)

	// The floor: the same arrivals answered by the no-op server, whose
	// every answer is as cheap as a gRPC call can be on this machine.
	noop, err := startNoop(ctx)
	if err != nil {
		return err
	}
	noopConns, err := dialAll(noop.addr, e.o.conns)
	if err != nil {
		noop.stop()
		return err
	}
	m := newCPUMeter(noop.pid, 0)
	s, skipped := runOpenLoad(ctx, e.o.overloadRate, e.o.warmup, e.o.duration, unaryOp(noopConns, topic, e.o.size), m, 8192)
	closeAll(noopConns)
	noop.stop()
	r := loadResult("e0 noop-open-loop", 1, s, m, e.o.size)
	r.Note = fmt.Sprintf("open loop, %d calls/s to the no-op server (%d not made: client behind): the latency floor for e's refusals", e.o.overloadRate, skipped)
	e.add(r)

	m = newCPUMeter(gw.pid, ov.brokerPID)
	s, skipped = runOpenLoad(ctx, e.o.overloadRate, e.o.warmup, e.o.duration, unaryOp(conns, topic, e.o.size), m, 8192)
	r = loadResult("e overload", 1, s, m, e.o.size)
	r.MaxInflightMB = float64(e.o.overloadMax) / 1e6
	r.Note = fmt.Sprintf("open loop, %d calls/s offered (%d not made: client behind); queue %d msgs; accepted %.0f/s, refused %.0f/s (refusal p50 %s p99 %s); peak RSS %.1f MB vs --max-inflight-bytes %.1f MB",
		e.o.overloadRate, skipped, e.o.overloadQ, r.MsgsPerSec, r.RejectedPerSec, fmtUS(r.RejP50us), fmtUS(r.RejP99us), r.PeakRSSMB, r.MaxInflightMB)
	e.add(r)

	m = newCPUMeter(gw.pid, ov.brokerPID)
	s = runLoad(ctx, e.o.overloadConc, e.o.warmup, e.o.duration, unaryOp(conns, topic, e.o.size), m)
	r = loadResult("e2 saturation", e.o.overloadConc, s, m, e.o.size)
	r.MaxInflightMB = float64(e.o.overloadMax) / 1e6
	r.Note = fmt.Sprintf("closed loop, refused calls retried at once; accepted %.0f/s, refused %.0f/s (refusal p50 %s p99 %s); peak RSS %.1f MB vs --max-inflight-bytes %.1f MB",
		r.MsgsPerSec, r.RejectedPerSec, fmtUS(r.RejP50us), fmtUS(r.RejP99us), r.PeakRSSMB, r.MaxInflightMB)
	e.add(r)
	if n := gw.errorLines(); n > 0 {
		e.notes = append(e.notes, fmt.Sprintf("the overload gateway logged %d ERROR lines", n))
	}
	return nil
}

func (e *env) add(r Result) {
	e.results = append(e.results, r)
	e.progress(r)
}

// runProfile is the --cpuprofile mode: the gateway runs in a child of this
// binary wired from kafkaio and server, with runtime/pprof on, while this
// process drives the load of --profile-phase: kgate Publish or
// PublishStream at --profile-conc for --profile-duration, Subscribe, or the
// overload phase.
func runProfile(ctx context.Context, o *options) error {
	e := &env{o: o}
	var err error
	var brokerArgs []string
	if o.profPhase == "overload" {
		brokerArgs = []string{"--produce-rate", strconv.Itoa(o.overloadBrokerRate)}
		o.gatewayKafka["queue.buffering.max.messages"] = strconv.Itoa(o.overloadQ)
	}
	if e.brokers, e.brokerPID, err = startBroker(ctx, o, brokerArgs...); err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(e.brokers, ",")...))
	if err != nil {
		return err
	}
	defer cl.Close()
	e.adm = kadm.NewClient(cl)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{"--serve-gateway", "--serve-brokers", e.brokers, "--cpuprofile", o.cpuprofile}
	for k, v := range o.gatewayKafka {
		args = append(args, "--gateway-kafka", k+"="+v)
	}
	gw, err := startChild(ctx, "in-process gateway", self, args, func(line string) (string, bool) { return strings.CutPrefix(line, "GATEWAY ") })
	if err != nil {
		return err
	}
	switch o.profPhase {
	case "publish":
		fmt.Printf("profiling the gateway (pid %d, %s) under kgate Publish at concurrency %d for %v\n", gw.pid, gw.addr, o.profConc, o.profDur)
		o.conc, o.duration = []int{o.profConc}, o.profDur
		if err := e.grpcProduce(ctx, "c kgate-publish", gw, false); err != nil {
			return err
		}
	case "stream":
		fmt.Printf("profiling the gateway (pid %d, %s) under kgate PublishStream at concurrency %d for %v\n", gw.pid, gw.addr, o.profConc, o.profDur)
		o.conc, o.duration = []int{o.profConc}, o.profDur
		if err := e.grpcProduce(ctx, "c2 kgate-stream", gw, true); err != nil {
			return err
		}
	case "subscribe":
		fmt.Printf("profiling the gateway (pid %d, %s) under one Subscribe stream reading %d records in batches of up to %d\n", gw.pid, gw.addr, 10*o.consumeN, o.subBatch)
		if err := e.consumeKgate(ctx, gw, 10*o.consumeN, []subscribeRun{{1, o.subBatch}}); err != nil {
			return err
		}
	case "overload":
		fmt.Printf("profiling the gateway (pid %d, %s) under %d Publish calls/s, open loop, against a broker accepting %d records/s\n",
			gw.pid, gw.addr, o.overloadRate, o.overloadBrokerRate)
		topic, err := e.createTopic(ctx, "bench-overload")
		if err != nil {
			return err
		}
		conns, err := dialAll(gw.addr, o.conns)
		if err != nil {
			return err
		}
		defer closeAll(conns)
		m := newCPUMeter(gw.pid, e.brokerPID)
		s, _ := runOpenLoad(ctx, o.overloadRate, o.warmup, o.profDur, unaryOp(conns, topic, o.size), m, 8192)
		e.add(loadResult("e overload", 1, s, m, o.size))
	default:
		return fmt.Errorf("--profile-phase %q: want publish, stream, subscribe or overload", o.profPhase)
	}
	gw.stop() // SIGTERM: the child writes the profile
	printTable(os.Stdout, e.results, o)
	fmt.Printf("CPU profile written to %s; read it with:\n  go tool pprof -top -nodecount=30 %s %s\n", o.cpuprofile, self, o.cpuprofile)
	return nil
}
