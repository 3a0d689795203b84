// Command gateway runs kgate: a gRPC publish/subscribe gateway in front of
// Apache Kafka. Run it with --help for its settings. With no --brokers it
// starts an embedded in-memory Kafka broker, so it works on a fresh machine.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/kgate/kgate/console"
	"github.com/kgate/kgate/internal/gctune"
	"github.com/kgate/kgate/kafkaio"
	"github.com/kgate/kgate/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "gateway: %v\n", err)
		os.Exit(1)
	}
}

// run runs the gateway until ctx is done, then shuts down in order: health
// NOT_SERVING; end Subscribe streams with UNAVAILABLE after committing their
// acked offsets; refuse new publishes and wait (bounded) for the broker's
// acknowledgements of those in flight; stop the gRPC server; stop the
// embedded broker.
//
// environ is the environment ("NAME=value"). --help prints to stdout; the
// log goes to stderr.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, environ, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log, err := newLogger(cfg, stderr)
	if err != nil {
		return err
	}
	for _, w := range cfg.warnings {
		log.Warn(w)
	}

	producerKafka, consumerKafka := cfg.producerKafka(), cfg.consumerKafka()
	if err := kafkaio.CheckOverrides(producerKafka, consumerKafka); err != nil {
		return err
	}
	sec, err := security(cfg)
	if err != nil {
		return err
	}
	if cfg.AuthTokens != "" && cfg.TLSCert == "" {
		log.Warn("bearer tokens are accepted over plaintext gRPC (no --tls-cert): anyone who sees the traffic can read them and act as their principals; serve TLS with --tls-cert and --tls-key, or keep the gateway behind a TLS-terminating proxy on a trusted network")
	}
	brokers := cfg.Brokers
	if brokers == "" {
		eb, err := startEmbedded(cfg.EmbeddedKafka, cfg.EmbeddedPartitions, cfg.EmbeddedRetentionBytes)
		if err != nil {
			return err
		}
		defer eb.Close()
		brokers = eb.Addr()
		log.Warn("NO --brokers GIVEN: running an EMBEDDED IN-MEMORY KAFKA broker. Nothing is durable: every record is lost when the gateway stops. Use --brokers host:port for a real cluster.",
			"embedded_kafka", brokers, "partitions_per_new_topic", cfg.EmbeddedPartitions, "retention_bytes_per_partition", cfg.EmbeddedRetentionBytes)
	}

	// Before any Kafka client starts: fewer glibc arenas for librdkafka's
	// threads, a Go memory limit from the gateway's own budgets, and the
	// garbage collector's headroom within it.
	kafkaio.TuneMalloc()
	inEnv := func(name string) bool {
		return slices.ContainsFunc(environ, func(kv string) bool { return strings.HasPrefix(kv, name+"=") })
	}
	if !inEnv("GOMEMLIMIT") && cfg.Brokers != "" {
		limit := cfg.MaxInflightBytes + cfg.SubscribeMemory + memoryBase
		debug.SetMemoryLimit(limit)
		log.Debug("Go memory limit set from the budgets: --max-inflight-bytes + --subscribe-memory + 128 MiB", "limit_bytes", limit)
	}
	if !inEnv("GOGC") && cfg.Brokers != "" {
		defer gctune.KeepHeadroom(gctune.GatewayHeadroom)()
		log.Debug("garbage collection headroom: the heap may grow by 48 MiB of garbage, or by as much as is live, between collections", "headroom_bytes", gctune.GatewayHeadroom)
	}

	prod, err := kafkaio.NewProducer(kafkaio.ProducerConfig{
		Brokers:          brokers,
		Kafka:            producerKafka,
		MaxInflightBytes: cfg.MaxInflightBytes,
		MaxInflightShare: cfg.MaxInflightBytes / 100 * int64(cfg.MaxInflightPercentPerPrincipal),
		MaxMessageBytes:  cfg.MaxMessageBytes,
		Logger:           log,
	})
	if err != nil {
		return err
	}
	metrics := server.NewMetrics(prod, server.WithGroupSeries(cfg.MetricsMaxGroups, 0))
	hs := health.NewServer()
	for _, name := range []string{"", server.PublisherServiceName, server.SubscriberServiceName, server.AdminServiceName} {
		hs.SetServingStatus(name, healthpb.HealthCheckResponse_NOT_SERVING) // until Kafka answers
	}
	ksub, err := kafkaio.NewSubscriber(kafkaio.SubscriberConfig{Brokers: brokers, Kafka: consumerKafka, DeadLetter: prod, Logger: log, Observer: metrics,
		Linger: cfg.SubscribeLinger, MemoryBudget: cfg.SubscribeMemory, Instance: instanceName(cfg.Listen)})
	if err != nil {
		prod.Close(context.Background())
		return err
	}
	metrics.WatchSubscriber(ksub)
	kadmin, err := kafkaio.NewAdmin(kafkaio.AdminConfig{Brokers: brokers, Kafka: consumerKafka, Subscriber: ksub, Publisher: prod,
		Instance: instanceName(cfg.Listen), Logger: log})
	if err != nil {
		prod.Close(context.Background())
		return err
	}
	defer kadmin.Close() // after the servers stopped: no Admin call runs any more
	subs := server.NewSubscriberService(server.KafkaSubscriber(ksub), log, metrics)
	pubs := server.NewPublisherService(prod, metrics)
	admins := server.NewAdminService(kadmin)
	admins.SetGateway(server.GatewayInfo{Instance: instanceName(cfg.Listen), Brokers: brokers, Embedded: cfg.Brokers == "", Health: hs,
		Services: []string{server.PublisherServiceName, server.SubscriberServiceName, server.AdminServiceName}, Producer: prod, Subscriber: ksub,
		Metrics: metrics, Started: time.Now()})
	gs := server.NewGRPCServer(server.Config{Publisher: pubs, Subscriber: subs, Admin: admins, Health: hs, Logger: log, Metrics: metrics,
		Auth: sec.auth, Streams: sec.streams, MaxPublishMessages: cfg.MaxMessagesPerRequest}, sec.opts...)
	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		prod.Close(context.Background())
		return fmt.Errorf("listening for gRPC on %s: %w (is another gateway running? choose another --listen)", cfg.Listen, err)
	}
	lis = server.LimitListener(lis, cfg.MaxConnections, metrics, log)
	var mlis, hlis net.Listener
	if cfg.MetricsListen != "" {
		if mlis, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			lis.Close()
			prod.Close(context.Background())
			return fmt.Errorf("listening for metrics on %s: %w (choose another --metrics-listen, or set it empty to serve no metrics)", cfg.MetricsListen, err)
		}
	}
	var httpSrv *http.Server
	if cfg.HTTPListen != "" {
		h, err := server.NewHTTPHandler(server.HTTPConfig{GRPC: gs, MaxRequestBytes: cfg.MaxRequestBytes, Logger: log, Metrics: metrics})
		if err == nil {
			hlis, err = net.Listen("tcp", cfg.HTTPListen)
			if err != nil {
				err = fmt.Errorf("listening for HTTP on %s: %w (choose another --http-listen, or set it empty to serve no HTTP)", cfg.HTTPListen, err)
			}
		}
		if err != nil {
			lis.Close()
			if mlis != nil {
				mlis.Close()
			}
			prod.Close(context.Background())
			return err
		}
		var tlsCfg *tls.Config
		if sec.tls != nil {
			tlsCfg = sec.tls.HTTPConfig()
		}
		hlis = server.LimitListener(hlis, cfg.MaxConnections, metrics, log)
		if tlsCfg != nil {
			hlis = tls.NewListener(hlis, tlsCfg)
		}
		// The console's pages at / beside the API, on the same origin.
		httpSrv = server.HTTPServer(console.Handler(h), tlsCfg, int(cfg.MaxHeaderBytes), log)
	}
	metricsAddr, httpAddr := "", ""
	if mlis != nil {
		metricsAddr = mlis.Addr().String()
	}
	if hlis != nil {
		httpAddr = hlis.Addr().String()
	}
	log.Info("kgate listening", "grpc", lis.Addr().String(), "brokers", brokers, "metrics", metricsAddr, "http", httpAddr)

	var wg sync.WaitGroup
	watchCtx, stopWatch := context.WithCancel(context.Background())
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	wg.Add(3)
	go func() { // reloads on SIGHUP until shutdown
		defer wg.Done()
		for {
			select {
			case <-hup:
				sec.reload(cfg, log)
			case <-watchCtx.Done():
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		server.WatchKafka(watchCtx, hs, prod, server.HealthPolicy{Interval: cfg.HealthInterval, Failures: cfg.HealthFailures}, log,
			server.PublisherServiceName, server.SubscriberServiceName, server.AdminServiceName)
	}()
	serveErr := make(chan error, 1)
	go func() {
		defer wg.Done()
		serveErr <- gs.Serve(lis)
	}()
	if httpSrv != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := httpSrv.Serve(hlis); !errors.Is(err, http.ErrServerClosed) {
				log.Error("HTTP listener failed", "err", err)
			}
		}()
	}
	hsrv := &http.Server{Handler: metricsHandler(metrics, hs), ReadHeaderTimeout: 10 * time.Second}
	if mlis != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := hsrv.Serve(mlis); !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics server failed", "err", err)
			}
		}()
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	case err = <-serveErr:
		log.Error("gRPC server failed", "err", err)
	}
	hs.Shutdown()
	stopWatch()
	deadline := time.Now().Add(cfg.ShutdownTimeout)
	sctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	// Group consumers commit what is acked, end their streams (UNAVAILABLE)
	// and leave their groups, each bounded by the deadline even when Kafka
	// does not answer.
	ksub.Close(sctx)
	subs.Shutdown()
	pubs.Shutdown() // publish streams end UNAVAILABLE once Kafka answered what they sent
	prod.Close(sctx)
	if httpSrv != nil {
		// Stop accepting HTTP and let unary calls in flight finish (their
		// streams ended above); then whatever is left is cut.
		if err := httpSrv.Shutdown(sctx); err != nil {
			log.Warn("HTTP calls still running at the shutdown deadline are cut", "err", err)
		}
		_ = httpSrv.Close()
	}
	forceStop := time.AfterFunc(time.Until(deadline), gs.Stop)
	gs.GracefulStop()
	forceStop.Stop()
	_ = hsrv.Close()
	subs.Wait()
	pubs.Wait()
	wg.Wait()
	log.Info("stopped")
	return err
}

// memoryBase is what the gateway's Go heap needs besides its budgets:
// gRPC buffers, metrics, metadata, and room for the garbage collector
// (gctune.GatewayHeadroom).
const memoryBase = 128 << 20

// instanceName names this gateway in commit metadata, stable across its
// restarts: the host name and the gRPC listen address.
func instanceName(listen string) string {
	host, _ := os.Hostname()
	return host + "/" + listen
}

// secured is what authenticates, bounds and encrypts the gateway's calls.
type secured struct {
	auth    *server.Auth
	tls     *server.TLSFiles // nil without --tls-cert
	streams server.StreamLimits
	opts    []grpc.ServerOption // transport: TLS, limits, keepalive
}

// security builds it from cfg.
func security(cfg *Config) (*secured, error) {
	sec := &secured{streams: server.StreamLimits{
		SubscribePerPrincipal:     cfg.MaxSubscribeStreamsPerPrincipal,
		PublishStreamPerPrincipal: cfg.MaxPublishStreamsPerPrincipal,
		HealthWatches:             cfg.MaxHealthWatches,
		ReflectionStreams:         cfg.MaxReflectionStreams,
	}}
	sec.opts = server.ServerOptions(server.Limits{MaxRequestBytes: cfg.MaxRequestBytes, MaxConcurrentStreams: uint32(cfg.MaxConcurrentStreams),
		MaxHeaderBytes: uint32(cfg.MaxHeaderBytes)})
	if cfg.TLSCert != "" {
		var err error
		if sec.tls, err = server.NewTLSFiles(cfg.TLSCert, cfg.TLSKey, cfg.TLSClientCA); err != nil {
			return nil, err
		}
		sec.opts = append(sec.opts, grpc.Creds(sec.tls.Credentials()))
	}
	ac, err := authFiles(cfg)
	if err != nil {
		return nil, err
	}
	ac.RequireIdentity = cfg.TLSClientCA != ""
	ac.AllowAnonymousAdmin = cfg.AllowAnonymousAdmin
	if sec.auth, err = server.NewAuth(ac); err != nil {
		return nil, fmt.Errorf("--auth-tokens and --acl: %w", err)
	}
	return sec, nil
}

// authFiles reads the token and ACL files of cfg.
func authFiles(cfg *Config) (server.AuthConfig, error) {
	var ac server.AuthConfig
	var err error
	if cfg.AuthTokens != "" {
		if ac.Tokens, err = parseFile("--auth-tokens", cfg.AuthTokens, server.ParseTokens); err != nil {
			return ac, err
		}
		if len(ac.Tokens) == 0 {
			return ac, fmt.Errorf("--auth-tokens %s holds no token: every call would be refused", cfg.AuthTokens)
		}
	}
	if cfg.ACL != "" {
		if ac.Rules, err = parseFile("--acl", cfg.ACL, server.ParseRules); err != nil {
			return ac, err
		}
	}
	return ac, nil
}

// reload reads the token, ACL and TLS files of cfg again (on SIGHUP) and
// logs what it did. Calls that start afterwards see the new tokens and
// rules, connections made afterwards the new certificate; open connections
// and streams go on. What fails to load leaves its previous version in
// force.
func (s *secured) reload(cfg *Config, log *slog.Logger) {
	if cfg.AuthTokens == "" && cfg.ACL == "" && s.tls == nil {
		log.Info("SIGHUP: nothing to reload (no --auth-tokens, --acl or --tls-cert)")
		return
	}
	ok := true
	if cfg.AuthTokens != "" || cfg.ACL != "" {
		ac, err := authFiles(cfg)
		if err == nil {
			err = s.auth.Reload(ac.Tokens, ac.Rules)
		}
		if err != nil {
			ok = false
			log.Error("SIGHUP: reloading --auth-tokens and --acl failed; the previous tokens and rules stay in force", "err", err)
		} else {
			log.Info("SIGHUP: reloaded tokens and ACL; open streams keep running", "tokens", len(ac.Tokens), "acl_rules", len(ac.Rules))
		}
	}
	if s.tls != nil {
		if err := s.tls.Reload(); err != nil {
			ok = false
			log.Error("SIGHUP: reloading the TLS certificate failed; the previous one stays in use", "err", err)
		} else {
			log.Info("SIGHUP: reloaded the TLS certificate and client CAs; new connections use them, open connections keep theirs", "cert", cfg.TLSCert)
		}
	}
	if ok {
		log.Info("reloaded on SIGHUP without dropping connections or streams")
	}
}

// parseFile opens path (given with flag) and parses it with parse.
func parseFile[T any](flag, path string, parse func(io.Reader) (T, error)) (T, error) {
	var zero T
	f, err := os.Open(path)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", flag, err)
	}
	defer f.Close()
	v, err := parse(f)
	if err != nil {
		return zero, fmt.Errorf("%s %s: %w", flag, path, err)
	}
	return v, nil
}

// metricsHandler serves /metrics in the Prometheus text format, and
// /healthz: the gRPC health service's status of ?service= (default the
// whole server), 200 when SERVING and 503 otherwise, for probes that
// cannot speak gRPC or present a client certificate (the metrics port
// serves no data).
func metricsHandler(m *server.Metrics, hs *health.Server) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		resp, err := hs.Check(r.Context(), &healthpb.HealthCheckRequest{Service: r.URL.Query().Get("service")})
		st := healthpb.HealthCheckResponse_SERVICE_UNKNOWN
		if err == nil {
			st = resp.GetStatus()
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if st != healthpb.HealthCheckResponse_SERVING {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, st)
	})
	return mux
}

func newLogger(cfg *Config, w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", cfg.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
