package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// Config is everything the gateway binary is configured with. Each field is
// a flag and, when the flag is not given, the environment variable
// KGATE_<FLAG NAME> (upper case, '-' as '_'), for example KGATE_BROKERS.
type Config struct {
	// Listen is the gRPC listen address.
	Listen string
	// Brokers is the Kafka bootstrap server list; empty starts the embedded
	// in-memory broker.
	Brokers string
	// EmbeddedKafka is where the embedded broker listens, so that Kafka
	// tools can inspect it.
	EmbeddedKafka string
	// EmbeddedPartitions is the partition count of topics the embedded
	// broker creates on first use.
	EmbeddedPartitions int
	// Kafka holds librdkafka properties (key=value) passed through to the
	// gateway's Kafka clients.
	Kafka map[string]string
	// MaxInflightBytes bounds the bytes of published messages waiting for
	// the broker's acknowledgement; beyond it Publish answers
	// RESOURCE_EXHAUSTED.
	MaxInflightBytes int64
	// MaxMessageBytes is the largest message (key, value and headers)
	// Publish accepts.
	MaxMessageBytes int64
	// ShutdownTimeout bounds the wait for in-flight work on SIGTERM.
	ShutdownTimeout time.Duration
	// HealthInterval is how often Kafka reachability is checked.
	HealthInterval time.Duration
	// MetricsListen is the address of the Prometheus /metrics endpoint;
	// empty serves no metrics.
	MetricsListen string
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// LogFormat is text or json.
	LogFormat string
}

// kafkaProps is the repeatable --kafka key=value flag.
type kafkaProps map[string]string

func (k kafkaProps) String() string {
	var parts []string
	for key, v := range k {
		parts = append(parts, key+"="+v)
	}
	return strings.Join(parts, ";")
}

func (k kafkaProps) Set(s string) error {
	for _, kv := range strings.Split(s, ";") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		key, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(key) == "" {
			return fmt.Errorf("%q is not key=value (for example --kafka linger.ms=5)", kv)
		}
		k[strings.TrimSpace(key)] = strings.TrimSpace(v)
	}
	return nil
}

// parseConfig reads flags from args, then the KGATE_* variables from
// getenv for flags not given.
func parseConfig(args []string, getenv func(string) string, out io.Writer) (*Config, error) {
	cfg := &Config{Kafka: kafkaProps{}}
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&cfg.Listen, "listen", ":8080", "gRPC listen address")
	fs.StringVar(&cfg.Brokers, "brokers", "", "Kafka bootstrap servers, host:port[,host:port...]; empty starts an embedded in-memory broker (nothing durable)")
	fs.StringVar(&cfg.EmbeddedKafka, "embedded-kafka", "127.0.0.1:9092", "listen address of the embedded broker, for kcat and other Kafka tools")
	fs.IntVar(&cfg.EmbeddedPartitions, "embedded-partitions", 3, "partitions of topics the embedded broker creates on first use")
	fs.Var(kafkaProps(cfg.Kafka), "kafka", "librdkafka property key=value passed to the Kafka clients (repeatable; in KGATE_KAFKA separate pairs with ';')")
	fs.Int64Var(&cfg.MaxInflightBytes, "max-inflight-bytes", 64<<20, "bytes of published messages awaiting broker acknowledgement before Publish answers RESOURCE_EXHAUSTED")
	fs.Int64Var(&cfg.MaxMessageBytes, "max-message-bytes", 1_000_000, "largest message (key+value+headers) Publish accepts")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long SIGTERM waits for in-flight publishes and streams")
	fs.DurationVar(&cfg.HealthInterval, "health-interval", 2*time.Second, "how often Kafka reachability is checked for the health service")
	fs.StringVar(&cfg.MetricsListen, "metrics-listen", ":9090", "address of the Prometheus /metrics endpoint (HTTP); empty serves none")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&cfg.LogFormat, "log-format", "text", "log format: text or json")
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: gateway [flags]\n\nkgate: a gRPC publish/subscribe gateway in front of Apache Kafka.\nEvery flag can also be set as KGATE_<NAME>, e.g. KGATE_BROKERS=localhost:9092.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: every setting is a flag (see --help)", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		env := "KGATE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := lookup(getenv, env); ok && !given[f.Name] && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s=%q: %v", env, v, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	return cfg, cfg.validate()
}

func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

func (c *Config) validate() error {
	switch {
	case c.MaxInflightBytes <= 0:
		return fmt.Errorf("--max-inflight-bytes must be positive, got %d", c.MaxInflightBytes)
	case c.MaxMessageBytes <= 0:
		return fmt.Errorf("--max-message-bytes must be positive, got %d", c.MaxMessageBytes)
	case c.EmbeddedPartitions <= 0:
		return fmt.Errorf("--embedded-partitions must be positive, got %d", c.EmbeddedPartitions)
	case c.ShutdownTimeout <= 0:
		return fmt.Errorf("--shutdown-timeout must be positive, got %v", c.ShutdownTimeout)
	case c.HealthInterval <= 0:
		return fmt.Errorf("--health-interval must be positive, got %v", c.HealthInterval)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return fmt.Errorf("--log-level %q: use debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("--log-format must be text or json, got %q", c.LogFormat)
	}
	return nil
}
