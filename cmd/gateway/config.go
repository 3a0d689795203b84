package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/kgate/kgate/server"
)

// Config is everything the gateway binary is configured with. Each exported
// field is a flag and, when the flag is not given, the environment variable
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
	// EmbeddedRetentionBytes is how much each partition of the embedded
	// broker keeps; older records are dropped, so memory stays bounded.
	EmbeddedRetentionBytes int64
	// Kafka holds librdkafka properties (key=value) passed through to the
	// gateway's Kafka clients, producer and consumers alike.
	Kafka map[string]string
	// KafkaProducer and KafkaConsumer hold librdkafka properties for the
	// producer only and for the consumers only; they win over Kafka for
	// the same key. librdkafka warns about a property of the other kind,
	// once per client, and every Subscribe stream is a consumer.
	KafkaProducer map[string]string
	KafkaConsumer map[string]string
	// MaxInflightBytes bounds the bytes of published messages waiting for
	// the broker's acknowledgement; beyond it Publish answers
	// RESOURCE_EXHAUSTED.
	MaxInflightBytes int64
	// MaxMessageBytes is the largest message (key, value and headers)
	// Publish accepts; at most MaxRequestBytes - server.RequestOverheadBytes,
	// so that such a message fits in a request.
	MaxMessageBytes int64
	// ShutdownTimeout bounds the wait for in-flight work on SIGTERM.
	ShutdownTimeout time.Duration
	// HealthInterval is how often Kafka reachability is checked.
	HealthInterval time.Duration
	// HealthFailures is how many checks in a row must fail before health
	// turns NOT_SERVING; the first successful check makes it SERVING again.
	HealthFailures int
	// TLSCert and TLSKey are PEM files: with them the gRPC port speaks TLS.
	TLSCert, TLSKey string
	// TLSClientCA is a PEM file of CAs: with it clients must present a
	// certificate they signed (mTLS), which identifies them.
	TLSClientCA string
	// AuthTokens is a file of "principal token" lines: callers must send
	// one as "authorization: Bearer <token>" (or a client certificate).
	AuthTokens string
	// ACL is a file of "principal publish|subscribe topic-pattern
	// [group-pattern]" rules; without it every identified caller may do
	// everything.
	ACL string
	// SubscribeLinger is how long a group's consumer stays in its group
	// after the group's last stream on this gateway ended.
	SubscribeLinger time.Duration
	// SubscribeMemory is the subscription memory budget: every group
	// consumer's librdkafka fetch buffers and held records.
	SubscribeMemory int64
	// MaxStreamsPerPrincipal bounds each caller's open streams; 0 = no bound.
	MaxStreamsPerPrincipal int
	// MaxRequestBytes is the largest gRPC request accepted.
	MaxRequestBytes int
	// MaxConcurrentStreams bounds the concurrent calls per connection.
	MaxConcurrentStreams uint
	// ConfigFile is an optional file of "flag-name = value" lines.
	ConfigFile string `flag:"config"`
	// MetricsListen is the address of the Prometheus /metrics endpoint;
	// empty serves no metrics.
	MetricsListen string
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// LogFormat is text or json.
	LogFormat string

	// warnings are for the log at start: KGATE_ variables that name no
	// setting.
	warnings []string
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

// parseConfig reads flags from args, then the KGATE_* variables of environ
// ("NAME=value", as os.Environ returns) for flags not given, then the
// --config file for the rest. --help prints the usage to help and returns
// flag.ErrHelp. Errors are returned, never printed; each names the flag,
// variable or file line and the form expected. KGATE_ variables that name
// no flag are not an error: Config.warnings lists them, for the log.
func parseConfig(args, environ []string, help io.Writer) (*Config, error) {
	cfg := &Config{Kafka: kafkaProps{}, KafkaProducer: kafkaProps{}, KafkaConsumer: kafkaProps{}}
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned; --help goes to help
	fs.StringVar(&cfg.Listen, "listen", ":8080", "gRPC listen address")
	fs.StringVar(&cfg.Brokers, "brokers", "", "Kafka bootstrap servers, host:port[,host:port...]; empty starts an embedded in-memory broker (nothing durable)")
	fs.StringVar(&cfg.EmbeddedKafka, "embedded-kafka", "127.0.0.1:9092", "listen address of the embedded broker, for kcat and other Kafka tools")
	intVar(fs, &cfg.EmbeddedPartitions, "embedded-partitions", 3, "a whole number of partitions", "partitions of topics the embedded broker creates on first use")
	intVar(fs, &cfg.EmbeddedRetentionBytes, "embedded-retention-bytes", 32<<20, "a whole number of bytes", "bytes each partition of the embedded broker keeps before dropping its oldest records")
	fs.Var(kafkaProps(cfg.Kafka), "kafka", "librdkafka property key=value passed to the producer and the consumers, such as security settings (repeatable; in KGATE_KAFKA separate pairs with ';')")
	fs.Var(kafkaProps(cfg.KafkaProducer), "kafka-producer", "librdkafka property key=value for the producer only, such as linger.ms or message.timeout.ms (repeatable; wins over --kafka)")
	fs.Var(kafkaProps(cfg.KafkaConsumer), "kafka-consumer", "librdkafka property key=value for the consumers only, such as fetch.wait.max.ms (repeatable; wins over --kafka)")
	intVar(fs, &cfg.MaxInflightBytes, "max-inflight-bytes", 64<<20, "a whole number of bytes", "bytes of published messages awaiting broker acknowledgement before Publish answers RESOURCE_EXHAUSTED")
	intVar(fs, &cfg.MaxMessageBytes, "max-message-bytes", 1_000_000, "a whole number of bytes", "largest message (key+value+headers) Publish accepts; at most --max-request-bytes - 1024")
	durationVar(fs, &cfg.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long SIGTERM waits for in-flight publishes and streams")
	durationVar(fs, &cfg.HealthInterval, "health-interval", 2*time.Second, "how often Kafka reachability is checked for the health service (each check may take as long)")
	intVar(fs, &cfg.HealthFailures, "health-failures", 3, "a whole number of checks", "checks in a row that must fail before health turns NOT_SERVING; the first success turns it SERVING again")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate for TLS on the gRPC port (with --tls-key)")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key for --tls-cert")
	fs.StringVar(&cfg.TLSClientCA, "tls-client-ca", "", "PEM CA bundle: clients must present a certificate it signed (mTLS); the certificate's common name is the caller's principal")
	fs.StringVar(&cfg.AuthTokens, "auth-tokens", "", "file of 'principal token' lines; callers send 'authorization: Bearer <token>'")
	fs.StringVar(&cfg.ACL, "acl", "", "file of 'principal publish|subscribe topic-pattern [group-pattern]' rules; empty allows every identified caller everything")
	durationVar(fs, &cfg.SubscribeLinger, "subscribe-linger", 10*time.Second, "how long a group's Kafka consumer stays in its group after the group's last Subscribe stream on this gateway ended, so reconnecting clients find their partitions (meanwhile no other member serves them)")
	intVar(fs, &cfg.SubscribeMemory, "subscribe-memory", 256<<20, "a whole number of bytes", "subscription memory budget in bytes: the group consumers' librdkafka fetch buffers and the records they hold; when spent, partitions pause and new Subscribe streams get RESOURCE_EXHAUSTED")
	intVar(fs, &cfg.MaxStreamsPerPrincipal, "max-streams-per-principal", 100, "a whole number of streams", "open Subscribe/PublishStream streams per caller (0 = unbounded)")
	intVar(fs, &cfg.MaxRequestBytes, "max-request-bytes", 4<<20, "a whole number of bytes", "largest gRPC request accepted (a whole Publish batch); gRPC refuses a larger one with RESOURCE_EXHAUSTED without details")
	intVar(fs, &cfg.MaxConcurrentStreams, "max-concurrent-streams", 100, "a whole number of calls, 1 or more", "concurrent calls per client connection")
	fs.StringVar(&cfg.ConfigFile, "config", "", "optional file of 'flag-name = value' lines (see gateway.example.conf); flags and KGATE_* variables override it")
	fs.StringVar(&cfg.MetricsListen, "metrics-listen", ":9090", "address of the Prometheus /metrics endpoint (HTTP); empty serves none")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&cfg.LogFormat, "log-format", "text", "log format: text or json")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(help, "Usage: gateway [flags]\n\nkgate: a gRPC publish/subscribe gateway in front of Apache Kafka.\nEvery flag can also be set as KGATE_<NAME>, e.g. KGATE_BROKERS=localhost:9092, or in a --config file.\nA KGATE_ variable that names no flag is ignored, with a warning at start.\n\n")
			printUsage(help, fs)
			return nil, err
		}
		return nil, fmt.Errorf("%w (see gateway --help)", err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: every setting is a flag (see --help)", fs.Arg(0))
	}
	given := map[string]string{} // flag name: where its value came from
	fs.Visit(func(f *flag.Flag) { given[f.Name] = "--" + f.Name })
	env := environMap(environ)
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := envName(f.Name)
		if v := env[name]; v != "" && given[f.Name] == "" && envErr == nil {
			given[f.Name] = name
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s=%q: %v", name, v, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if cfg.ConfigFile != "" {
		if err := applyConfigFile(fs, cfg.ConfigFile, given); err != nil {
			return nil, err
		}
	}
	cfg.warnings = unknownEnv(environ, fs)
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("%w%s", err, setBy(err, given))
	}
	return cfg, nil
}

// setBy says where the flags an error of validate names were set, when
// that was not the command line: " (set by KGATE_HEALTH_INTERVAL)".
func setBy(err error, given map[string]string) string {
	var from []string
	msg := err.Error()
	for name, src := range given {
		if strings.HasPrefix(src, "--") {
			continue
		}
		if i := strings.Index(msg, "--"+name); i >= 0 {
			if end := i + 2 + len(name); end == len(msg) || msg[end] == ' ' || msg[end] == ',' || msg[end] == ':' {
				from = append(from, src)
			}
		}
	}
	if len(from) == 0 {
		return ""
	}
	sort.Strings(from)
	return " (set by " + strings.Join(from, ", ") + ")"
}

// producerKafka is the librdkafka properties of the producer: --kafka, then
// --kafka-producer.
func (c *Config) producerKafka() map[string]string { return merged(c.Kafka, c.KafkaProducer) }

// consumerKafka is the librdkafka properties of the consumers: --kafka,
// then --kafka-consumer.
func (c *Config) consumerKafka() map[string]string { return merged(c.Kafka, c.KafkaConsumer) }

func merged(common, own map[string]string) map[string]string {
	m := make(map[string]string, len(common)+len(own))
	maps.Copy(m, common)
	maps.Copy(m, own)
	return m
}

// applyConfigFile sets the flags not given otherwise from a file of
// "name = value" lines ('#' starts a comment line). A repeatable flag
// (kafka, kafka-producer, kafka-consumer) may appear on several lines.
// given maps the flags set so far to where from; the file's are added.
func applyConfigFile(fs *flag.FlagSet, path string, given map[string]string) error {
	fromFile := map[string]bool{}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" {
			return fmt.Errorf("%s:%d: want 'name = value', got %q", path, n+1, line)
		}
		f := fs.Lookup(name)
		if f == nil || name == "config" {
			return fmt.Errorf("%s:%d: unknown setting %q (settings are the flag names of --help)", path, n+1, name)
		}
		if given[name] != "" && !fromFile[name] {
			continue
		}
		fromFile[name] = true
		given[name] = fmt.Sprintf("%s:%d", path, n+1)
		if err := f.Value.Set(value); err != nil {
			return fmt.Errorf("%s:%d: %s = %q: %v", path, n+1, name, value, err)
		}
	}
	return nil
}

func (c *Config) validate() error {
	switch {
	case c.MaxInflightBytes <= 0:
		return fmt.Errorf("--max-inflight-bytes must be positive, got %d", c.MaxInflightBytes)
	case c.MaxMessageBytes <= 0:
		return fmt.Errorf("--max-message-bytes must be positive, got %d", c.MaxMessageBytes)
	case c.EmbeddedRetentionBytes <= 0:
		return fmt.Errorf("--embedded-retention-bytes must be positive, got %d", c.EmbeddedRetentionBytes)
	case c.EmbeddedPartitions <= 0:
		return fmt.Errorf("--embedded-partitions must be positive, got %d", c.EmbeddedPartitions)
	case c.SubscribeLinger <= 0:
		return fmt.Errorf("--subscribe-linger must be positive, got %v", c.SubscribeLinger)
	case c.SubscribeMemory <= 0:
		return fmt.Errorf("--subscribe-memory must be positive, got %d", c.SubscribeMemory)
	case c.ShutdownTimeout <= 0:
		return fmt.Errorf("--shutdown-timeout must be positive, got %v", c.ShutdownTimeout)
	case c.HealthInterval <= 0:
		return fmt.Errorf("--health-interval must be positive, got %v", c.HealthInterval)
	case c.HealthFailures <= 0:
		return fmt.Errorf("--health-failures must be positive, got %d", c.HealthFailures)
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return fmt.Errorf("--tls-cert and --tls-key go together: give both or neither")
	case c.TLSClientCA != "" && c.TLSCert == "":
		return fmt.Errorf("--tls-client-ca (mTLS) needs --tls-cert and --tls-key")
	case c.MaxStreamsPerPrincipal < 0:
		return fmt.Errorf("--max-streams-per-principal must not be negative, got %d", c.MaxStreamsPerPrincipal)
	case c.MaxRequestBytes <= 0:
		return fmt.Errorf("--max-request-bytes must be positive, got %d", c.MaxRequestBytes)
	case c.MaxMessageBytes > int64(c.MaxRequestBytes)-server.RequestOverheadBytes:
		return fmt.Errorf("--max-message-bytes %d does not fit in --max-request-bytes %d: a request with one message of that size needs %d bytes more for its topic and framing, so such a message could never be sent; lower --max-message-bytes to at most %d or raise --max-request-bytes to at least %d",
			c.MaxMessageBytes, c.MaxRequestBytes, server.RequestOverheadBytes, int64(c.MaxRequestBytes)-server.RequestOverheadBytes, c.MaxMessageBytes+server.RequestOverheadBytes)
	case c.MaxConcurrentStreams == 0:
		return fmt.Errorf("--max-concurrent-streams must be positive")
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
