package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/kafkatest"
)

func TestMain(m *testing.M) { kafkatest.Main(m) }

// Bounds on the waits of the process-level tests. The children are plain
// (not -race) builds; the generous margins are for a loaded 2-core machine.
const (
	buildTimeout   = 5 * time.Minute
	startTimeout   = 60 * time.Second // process start to "kgate listening" / "BROKER"
	servingTimeout = 30 * time.Second // health SERVING after listening
	exitTimeout    = 30 * time.Second // SIGTERM (or a refused start) to exit
	rpcTimeout     = 30 * time.Second
)

var (
	listeningRE = regexp.MustCompile(`msg="kgate listening" grpc=(\S+) brokers=(\S+)`)
	embeddedRE  = regexp.MustCompile(`level=WARN msg="[^"]*EMBEDDED IN-MEMORY KAFKA[^"]*Nothing is durable[^"]*" embedded_kafka=(\S+)`)
	stoppedRE   = regexp.MustCompile(`(?m)level=INFO msg=stopped$`)
)

// TestGatewayBinary runs the gateway binary the way a newcomer does. The
// binaries are built once, into this test's temporary directory, which
// outlives every subtest.
func TestGatewayBinary(t *testing.T) {
	dir := t.TempDir()
	gateway := goBuild(t, dir, "gateway", "github.com/kgate/kgate/cmd/gateway")

	t.Run("embedded", func(t *testing.T) {
		t.Parallel()
		testEmbedded(t, gateway)
	})
	t.Run("brokers", func(t *testing.T) {
		t.Parallel()
		testBrokers(t, gateway)
	})
	t.Run("flags", func(t *testing.T) {
		t.Parallel()
		testFlags(t, gateway)
	})
}

// testEmbedded: with no brokers the gateway starts its own in-memory Kafka,
// warns that nothing is durable, serves reflection, health and Publish, and
// stops cleanly on SIGTERM.
func testEmbedded(t *testing.T, gateway string) {
	gw := startProc(t, "gateway", gateway, childEnv(), "--listen", "127.0.0.1:0", "--embedded-kafka", "127.0.0.1:0")
	m := gw.waitFor(t, listeningRE, startTimeout, "the gateway logs that it is listening")
	grpcAddr, brokers := m[1], m[2]
	checkBoundAddr(t, "gRPC", grpcAddr)
	checkBoundAddr(t, "embedded Kafka", brokers)

	w := embeddedRE.FindStringSubmatch(gw.stderr.String())
	if w == nil {
		t.Errorf("no WARN line saying the embedded broker keeps data in memory only, and nothing is durable")
	} else if w[1] != brokers {
		t.Errorf("the WARN line names the embedded broker %s; the gateway uses %s", w[1], brokers)
	}

	conn := dial(t, grpcAddr)
	services := listServices(t, conn)
	for _, want := range []string{"kgate.v1.Publisher", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		if !slices.Contains(services, want) {
			t.Errorf("server reflection lists %v, without %s", services, want)
		}
	}
	waitServing(t, conn, "", "kgate.v1.Publisher")
	checkReflectionComments(t, conn)

	publishAndVerify(t, conn, brokers, "orders")

	gw.terminate(t)
}

// checkReflectionComments asks server reflection, as `grpcurl describe`
// does, for the file defining each of kgate's services, and checks that it
// carries the proto's comments: the status codes of each RPC and what to
// do about them.
func checkReflectionComments(t *testing.T, conn *grpc.ClientConn) {
	t.Helper()
	for svc, want := range map[string]struct{ method, says string }{
		"kgate.v1.Publisher":  {"Publish", "Status codes and what the client should do"},
		"kgate.v1.Subscriber": {"Subscribe", "Status codes that end the stream and what the client should do"},
	} {
		fd := fileContainingSymbol(t, conn, svc)
		var comments []string
		for si, s := range fd.GetService() {
			if fd.GetPackage()+"."+s.GetName() != svc {
				continue
			}
			for mi, m := range s.GetMethod() {
				if m.GetName() != want.method {
					continue
				}
				for _, loc := range fd.GetSourceCodeInfo().GetLocation() {
					if slices.Equal(loc.GetPath(), []int32{6, int32(si), 2, int32(mi)}) { // service, method
						comments = append(comments, loc.GetLeadingComments())
					}
				}
			}
		}
		if len(comments) != 1 || !strings.Contains(comments[0], want.says) {
			t.Errorf("server reflection describes %s.%s with comments %q, want them to say %q", svc, want.method, comments, want.says)
		}
	}
}

// fileContainingSymbol asks server reflection (v1) for the file that
// defines symbol.
func fileContainingSymbol(t *testing.T, conn *grpc.ClientConn, symbol string) *descriptorpb.FileDescriptorProto {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatalf("server reflection: %v", err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: symbol},
	}); err != nil {
		t.Fatalf("server reflection send: %v", err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("server reflection, file containing %s: %v", symbol, err)
	}
	_ = stream.CloseSend()
	for _, b := range resp.GetFileDescriptorResponse().GetFileDescriptorProto() {
		fd := new(descriptorpb.FileDescriptorProto)
		if err := proto.Unmarshal(b, fd); err != nil {
			t.Fatalf("server reflection sent a file descriptor that does not parse: %v", err)
		}
		for _, s := range fd.GetService() {
			if fd.GetPackage()+"."+s.GetName() == symbol {
				return fd
			}
		}
	}
	t.Fatalf("server reflection sent no file defining %s: %v", symbol, resp)
	return nil
}

// testBrokers: with --brokers (or KGATE_BROKERS) the gateway uses that
// cluster, a broker in its own process, and starts no embedded one.
func testBrokers(t *testing.T, gateway string) {
	brokers := kafkatest.BrokerProcess(t) // stopped with SIGTERM, and must exit cleanly

	for _, tc := range []struct {
		name string
		args []string
		env  []string
	}{
		{"flag", []string{"--brokers", brokers}, nil},
		{"environment", nil, []string{"KGATE_BROKERS=" + brokers}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			topic := kafkatest.CreateTopic(t, brokers, "orders", 3)
			gw := startProc(t, "gateway", gateway, childEnv(tc.env...), append([]string{"--listen", "127.0.0.1:0"}, tc.args...)...)
			m := gw.waitFor(t, listeningRE, startTimeout, "the gateway logs that it is listening")
			if m[2] != brokers {
				t.Errorf("the gateway uses brokers %s, want %s", m[2], brokers)
			}
			conn := dial(t, m[1])
			waitServing(t, conn, "", "kgate.v1.Publisher")
			publishAndVerify(t, conn, brokers, topic)
			gw.terminate(t)
			if out := gw.stderr.String(); strings.Contains(out, "EMBEDDED") || strings.Contains(out, "embedded_kafka") {
				t.Errorf("the gateway given brokers talks of an embedded broker:\n%s", out)
			}
		})
	}
}

// testFlags: --help documents every setting; a bad setting stops the
// gateway at once with a message that names the problem.
func testFlags(t *testing.T, gateway string) {
	t.Run("help", func(t *testing.T) {
		t.Parallel()
		p := startProc(t, "gateway", gateway, childEnv(), "--help")
		if code := p.wait(t, exitTimeout); code != 0 {
			t.Fatalf("--help exited %d, want 0", code)
		}
		// On stdout, so that `gateway --help | less` shows it.
		out := p.stdout.String()
		for _, want := range append(configFlagNames(), "Usage: gateway", "KGATE_") {
			if !strings.Contains(out, want) {
				t.Errorf("--help does not mention %q on stdout", want)
			}
		}
		if e := p.stderr.String(); e != "" {
			t.Errorf("--help wrote to stderr: %q", e)
		}
		if strings.Contains(out, "kgate listening") {
			t.Errorf("--help started the gateway")
		}
	})

	// A KGATE_ variable that names no setting is warned about, with the
	// setting it looks like; the gateway starts anyway.
	t.Run("unknown variable", func(t *testing.T) {
		t.Parallel()
		p := startProc(t, "gateway", gateway, childEnv("KGATE_MAX_MESAGE_BYTES=5"), "--listen", "127.0.0.1:0", "--embedded-kafka", "127.0.0.1:0")
		p.waitFor(t, listeningRE, startTimeout, "the gateway logs that it is listening")
		want := `level=WARN msg="environment variable KGATE_MAX_MESAGE_BYTES names no setting of the gateway and is ignored; did you mean KGATE_MAX_MESSAGE_BYTES?"`
		if !strings.Contains(p.stderr.String(), want) {
			t.Errorf("no warning %s", want)
		}
		p.terminate(t)
	})

	// Fixed ports are taken here, so that the gateway meets them in use.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	free := []string{"--listen", "127.0.0.1:0", "--embedded-kafka", "127.0.0.1:0"}

	for i, tc := range []struct {
		name string
		args []string
		env  []string
		want string
	}{
		0:  {name: "log-format xml", args: []string{"--log-format", "xml"}, want: `--log-format must be text or json, got "xml"`},
		1:  {name: "log-level loud", args: []string{"--log-level", "loud"}, want: `--log-level "loud": use debug, info, warn or error`},
		2:  {name: "kafka novalue", args: []string{"--kafka", "novalue"}, want: `"novalue" is not key=value`},
		3:  {name: "kafka enable.idempotence=false", args: []string{"--kafka", "enable.idempotence=false"}, want: "kafka property enable.idempotence=false is refused"},
		4:  {name: "kafka acks=1", args: []string{"--kafka", "acks=1"}, want: "kafka property acks=1 is refused"},
		5:  {name: "kafka bootstrap.servers", args: []string{"--kafka", "bootstrap.servers=x:9092"}, want: "set the brokers with --brokers"},
		6:  {name: "max-inflight-bytes 0", args: []string{"--max-inflight-bytes", "0"}, want: "--max-inflight-bytes must be positive"},
		7:  {name: "shutdown-timeout soon", args: []string{"--shutdown-timeout", "soon"}, want: `invalid value "soon" for flag -shutdown-timeout`},
		8:  {name: "unknown flag", args: []string{"--no-such-flag"}, want: "flag provided but not defined: -no-such-flag"},
		9:  {name: "positional argument", args: []string{"extra"}, want: `unexpected argument "extra"`},
		10: {name: "KGATE_LOG_FORMAT xml", env: []string{"KGATE_LOG_FORMAT=xml"}, want: `--log-format must be text or json, got "xml"`},
		11: {name: "KGATE_KAFKA acks=0", env: []string{"KGATE_KAFKA=linger.ms=5;acks=0"}, want: "kafka property acks=0 is refused"},
		12: {name: "KGATE_EMBEDDED_PARTITIONS three", env: []string{"KGATE_EMBEDDED_PARTITIONS=three"}, want: `KGATE_EMBEDDED_PARTITIONS="three"`},
		13: {name: "listen address in use", args: []string{"--listen", busy.Addr().String()}, want: "listening for gRPC on " + busy.Addr().String()},
		14: {name: "embedded-kafka address in use", args: []string{"--embedded-kafka", busy.Addr().String()}, want: "starting the embedded Kafka broker on " + busy.Addr().String()},
		15: {name: "kafka-producer acks=1", args: []string{"--kafka-producer", "acks=1"}, want: "kafka property acks=1 is refused"},
		16: {name: "kafka-consumer enable.auto.offset.store=true", args: []string{"--kafka-consumer", "enable.auto.offset.store=true"}, want: "kafka property enable.auto.offset.store=true is refused"},
		17: {name: "kafka-consumer bootstrap.servers", args: []string{"--kafka-consumer", "bootstrap.servers=x:9092"}, want: "set the brokers with --brokers"},
		18: {name: "max-message-bytes over max-request-bytes", args: []string{"--max-message-bytes", "2000000", "--max-request-bytes", "1048576"},
			want: "--max-message-bytes 2000000 does not fit in --max-request-bytes 1048576"},
		19: {name: "KGATE_MAX_MESSAGE_BYTES abc", env: []string{"KGATE_MAX_MESSAGE_BYTES=abc"}, want: `KGATE_MAX_MESSAGE_BYTES="abc": want a whole number of bytes, such as 1000000`},
		20: {name: "max-message-bytes abc", args: []string{"--max-message-bytes", "abc"},
			want: `invalid value "abc" for flag -max-message-bytes: want a whole number of bytes, such as 1000000 (see gateway --help)`},
		// The password must not be printed (nor "bogus", which may be the
		// rest of a password holding a ';').
		21: {name: "KGATE_KAFKA with a password", env: []string{"KGATE_KAFKA=security.protocol=SASL_SSL;sasl.password=hunter2;bogus"}, want: "KGATE_KAFKA: item 3 is not key=value"},
		22: {name: "kafka with a password", args: []string{"--kafka", "sasl.password=hunter2;bogus"}, want: "--kafka: item 2 is not key=value"},
		23: {name: "kafka-producer go.delivery.report.fields=all", args: []string{"--kafka-producer", "go.delivery.report.fields=all"},
			want: "kafka property go.delivery.report.fields=all is refused: delivery reports that hold no copy of the message"},
		24: {name: "kafka go.delivery.report.fields=key,value", args: []string{"--kafka", "go.delivery.report.fields=key,value"},
			want: "kafka property go.delivery.report.fields=key,value is refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := startProc(t, "gateway", gateway, childEnv(tc.env...), append(slices.Clone(free), tc.args...)...)
			code := p.wait(t, exitTimeout)
			out := p.stderr.String()
			if code == 0 {
				t.Errorf("case %d: exited 0, want a failure", i)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("case %d: output does not say %q:\n%s", i, tc.want, out)
			}
			if strings.Contains(out, "kgate listening") {
				t.Errorf("case %d: the gateway started serving despite the bad setting", i)
			}
			if strings.Contains(out, "hunter2") || strings.Contains(out, "bogus") {
				t.Errorf("case %d: the output shows a secret:\n%s", i, out)
			}
			if strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
				t.Errorf("case %d: the gateway crashed instead of refusing:\n%s", i, out)
			}
		})
	}
}

// configFlagNames derives a flag name from each Config field (documented
// as "each field is a flag"): MaxInflightBytes is -max-inflight-bytes.
func configFlagNames() []string {
	var names []string
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		if !typ.Field(i).IsExported() {
			continue // not a setting
		}
		if tag := typ.Field(i).Tag.Get("flag"); tag != "" {
			names = append(names, "-"+tag)
			continue
		}
		// CamelCase to kebab-case; a run of capitals is one word:
		// TLSClientCA -> tls-client-ca, MaxInflightBytes -> max-inflight-bytes.
		name := []rune(typ.Field(i).Name)
		var b strings.Builder
		b.WriteByte('-')
		upper := func(j int) bool { return j < len(name) && name[j] >= 'A' && name[j] <= 'Z' }
		for j, r := range name {
			if upper(j) {
				if j > 0 && (!upper(j-1) || (j+1 < len(name) && !upper(j+1))) {
					b.WriteByte('-')
				}
				r += 'a' - 'A'
			}
			b.WriteRune(r)
		}
		names = append(names, b.String())
	}
	return names
}

// publishAndVerify publishes three keyed messages to topic and checks, with
// an independent Kafka client, that the broker holds exactly them, each at
// the partition and offset Publish reported.
func publishAndVerify(t *testing.T, conn *grpc.ClientConn, brokers, topic string) {
	t.Helper()
	req := &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{
		{Key: []byte("order-1"), Value: []byte(`{"total":42}`)},
		{Key: []byte("order-2"), Value: []byte(`{"total":7}`)},
		{Key: []byte("order-3"), Value: []byte(`{"total":1}`)},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	resp, err := kgatev1.NewPublisherClient(conn).Publish(ctx, req)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if len(resp.Results) != len(req.Messages) {
		t.Fatalf("%d results for %d messages", len(resp.Results), len(req.Messages))
	}
	recs := kafkatest.ReadAll(t, brokers, topic)
	if len(recs) != len(req.Messages) {
		for _, r := range recs {
			t.Logf("broker has %s", kafkatest.Describe(r))
		}
		t.Fatalf("broker has %d records in %s, want exactly the %d published", len(recs), topic, len(req.Messages))
	}
	type at struct {
		p int32
		o int64
	}
	byPos := map[at]*kgo.Record{}
	for _, r := range recs {
		byPos[at{r.Partition, r.Offset}] = r
	}
	for i, msg := range req.Messages {
		res := resp.Results[i]
		if want := kafkatest.ExpectedPartition(msg.Key, 3); res.Partition != want {
			t.Errorf("message %d key %q: partition %d, murmur2 (the Java client) chooses %d", i, msg.Key, res.Partition, want)
		}
		r, ok := byPos[at{res.Partition, res.Offset}]
		switch {
		case !ok:
			t.Errorf("message %d: Publish said %d@%d; the broker has nothing there", i, res.Partition, res.Offset)
		case !bytes.Equal(r.Key, msg.Key) || !bytes.Equal(r.Value, msg.Value):
			t.Errorf("message %d (key %q): the broker has %s at its reported offset", i, msg.Key, kafkatest.Describe(r))
		case !r.Timestamp.Equal(res.Timestamp.AsTime()):
			t.Errorf("message %d: broker timestamp %v, Publish said %v", i, r.Timestamp, res.Timestamp.AsTime())
		}
	}
}

func checkBoundAddr(t *testing.T, what, addr string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" || port == "0" || port == "" {
		t.Fatalf("%s address %q: want 127.0.0.1 and the port actually bound", what, addr)
	}
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc client for %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// listServices asks server reflection for the service names, as
// `grpcurl -plaintext ADDR list` does.
func listServices(t *testing.T, conn *grpc.ClientConn) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatalf("server reflection: %v", err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{ListServices: "*"},
	}); err != nil {
		t.Fatalf("server reflection send: %v", err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("server reflection list: %v", err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatalf("server reflection close: %v", err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("server reflection: want the stream to end after CloseSend, got %v", err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	return names
}

// waitServing polls grpc.health.v1.Health/Check until every service is
// SERVING.
func waitServing(t *testing.T, conn *grpc.ClientConn, services ...string) {
	t.Helper()
	hc := healthpb.NewHealthClient(conn)
	for _, svc := range services {
		var last string
		defer func() {
			if t.Failed() {
				t.Logf("last health answer for %q: %s", svc, last)
			}
		}()
		kafkatest.Eventually(t, servingTimeout, "health of "+strconv.Quote(svc)+" is SERVING", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
			if err != nil {
				last = err.Error()
				return false
			}
			last = resp.GetStatus().String()
			return resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
		})
	}
}

// goBuild builds pkg into dir/name with the go command that runs the tests.
func goBuild(t *testing.T, dir, name, pkg string) string {
	t.Helper()
	goTool, err := exec.LookPath("go") // go test puts its own GOROOT/bin first in PATH
	if err != nil {
		t.Fatalf("cannot build %s: no go command in PATH: %v", pkg, err)
	}
	out := dir + "/" + name
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	t.Logf("built %s in %v", name, time.Since(start).Round(time.Millisecond))
	return out
}

// childEnv is this process's environment without any KGATE_* setting (a
// developer's own must not change what the test runs), plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KGATE_") {
			env = append(env, kv)
		}
	}
	// Gateways of parallel tests must not share the default metrics and
	// HTTP ports.
	return append(append(env, "KGATE_METRICS_LISTEN=127.0.0.1:0", "KGATE_HTTP_LISTEN=127.0.0.1:0"), extra...)
}

type syncBuffer = kafkatest.SyncBuffer

// proc is a child process of the test.
type proc struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{} // closed when Wait returned
	waitErr        error         // Wait's result; read after done
}

// startProc starts bin; when the test ends the process is killed if it
// still runs, and waited for. When the test failed, its output is logged.
func startProc(t *testing.T, name, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.WaitDelay = 5 * time.Second // bounds Wait should a grandchild hold the pipes
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if err := p.stop(syscall.SIGKILL, exitTimeout); err != nil {
			t.Errorf("%s (pid %d): %v", name, p.cmd.Process.Pid, err)
		}
		if t.Failed() {
			t.Logf("%s %s\n--- stdout:\n%s--- stderr:\n%s", name, strings.Join(args, " "), p.stdout, p.stderr)
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig unless the process already exited, and waits up to
// timeout; a process still running then is killed. It reports an error
// unless the process exited 0 on its own or was the one killed by SIGKILL.
func (p *proc) stop(sig syscall.Signal, timeout time.Duration) error {
	if p.exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(sig)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
		if sig == syscall.SIGKILL {
			return nil
		}
		return p.waitErr
	case <-timer.C:
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
		return errors.New("did not exit within " + timeout.String() + " of " + sig.String() + "; killed")
	case <-time.After(exitTimeout):
		return errors.New("still running after SIGKILL")
	}
}

// wait waits up to timeout for the process to exit and returns its exit
// code.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %v", p.name, timeout)
	}
	return p.cmd.ProcessState.ExitCode()
}

// terminate sends SIGTERM and expects exit code 0 within exitTimeout and
// the "stopped" log line.
func (p *proc) terminate(t *testing.T) {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM to %s: %v", p.name, err)
	}
	if code := p.wait(t, exitTimeout); code != 0 {
		t.Errorf("%s exited %d after SIGTERM, want 0", p.name, code)
	}
	t.Logf("%s stopped %v after SIGTERM", p.name, time.Since(start).Round(time.Millisecond))
	if !stoppedRE.MatchString(p.stderr.String()) {
		t.Errorf("%s did not log \"stopped\"", p.name)
	}
}

// waitFor waits for a line matching re on stderr and returns the match; it
// fails at once should the process exit first.
func (p *proc) waitFor(t *testing.T, re *regexp.Regexp, timeout time.Duration, what string) []string {
	t.Helper()
	return p.waitOn(t, p.stderr, re, timeout, what)
}

func (p *proc) waitOn(t *testing.T, buf *syncBuffer, re *regexp.Regexp, timeout time.Duration, what string) []string {
	t.Helper()
	var m []string
	kafkatest.Eventually(t, timeout, what, func() bool {
		exited := p.exited() // before reading, so that all output is in
		if m = re.FindStringSubmatch(buf.String()); m != nil {
			return true
		}
		if exited {
			t.Fatalf("%s exited (%v) before: %s", p.name, p.waitErr, what)
		}
		return false
	})
	return m
}
