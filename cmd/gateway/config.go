package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kgate/kgate/kafkaio"
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
	// MaxInflightPercentPerPrincipal is the most of MaxInflightBytes, in
	// percent, that one principal may hold while another publishes; 100
	// lets one principal take it all.
	MaxInflightPercentPerPrincipal int
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
	// certificate they signed (mTLS), which identifies them by its subject
	// common name, else its first DNS name, else its first URI.
	TLSClientCA string
	// AuthTokens is a file of "principal token" lines: callers must send
	// one as "authorization: Bearer <token>" (or a client certificate).
	AuthTokens string
	// ACL is a file of "principal publish|subscribe topic-pattern
	// [group-pattern]" rules; without it every caller may do everything.
	// AuthTokens, ACL and the TLS files are read again on SIGHUP.
	ACL string
	// SubscribeLinger is how long a group's consumer stays in its group
	// after the group's last stream on this gateway ended.
	SubscribeLinger time.Duration
	// SubscribeMemory is the subscription memory budget: every group
	// consumer's librdkafka fetch buffers and held records.
	SubscribeMemory int64
	// MaxSubscribeStreamsPerPrincipal bounds each principal's open
	// Subscribe streams; 0 = no bound.
	MaxSubscribeStreamsPerPrincipal int
	// MaxPublishStreamsPerPrincipal bounds each principal's open
	// PublishStream streams, counted apart; 0 = no bound.
	MaxPublishStreamsPerPrincipal int
	// MaxStreamsPerPrincipal is the former single bound, kept so that old
	// configurations still start: given, it sets both bounds above that are
	// not given themselves.
	MaxStreamsPerPrincipal int
	// MaxHealthWatches bounds the open health Watch streams of the gateway
	// (they need no identity); 0 = no bound.
	MaxHealthWatches int
	// MaxReflectionStreams bounds the open server reflection streams of the
	// gateway (they need no identity); 0 = no bound.
	MaxReflectionStreams int
	// MaxRequestBytes is the largest gRPC request accepted.
	MaxRequestBytes int
	// MaxMessagesPerRequest bounds the messages of one Publish request.
	MaxMessagesPerRequest int
	// MaxHeaderBytes bounds the headers (metadata) of one call.
	MaxHeaderBytes uint
	// MaxConnections bounds the open client connections; 0 = no bound.
	MaxConnections int
	// MaxConcurrentStreams bounds the concurrent calls per connection.
	MaxConcurrentStreams uint
	// ConfigFile is an optional file of "flag-name = value" lines.
	ConfigFile string `flag:"config"`
	// MetricsListen is the address of the Prometheus /metrics endpoint;
	// empty serves no metrics.
	MetricsListen string
	// HTTPListen is the address of the HTTP listener (Connect, gRPC-Web
	// and JSON routes for the same services); "auto" is the port after
	// Listen's on the same host; empty serves none.
	HTTPListen string
	// AllowAnonymousAdmin lets anonymous callers change offsets and
	// redrive dead letters when there is no ACL.
	AllowAnonymousAdmin bool
	// MetricsMaxGroups bounds the consumer groups labelled in the metrics
	// at once; the others are counted under group "_other".
	MetricsMaxGroups int
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// LogFormat is text or json.
	LogFormat string

	// warnings are for the log at start: KGATE_ variables that name no
	// setting.
	warnings []string
}

// kafkaFlag is a repeatable flag of librdkafka properties (--kafka,
// --kafka-producer, --kafka-consumer): key=value, several separated by
// ';'. Its values may be secrets (sasl.password, ssl.key.password, ...), so
// no message of it quotes one: String redacts them, and an item that is not
// key=value is quoted only when it cannot be part of a secret. Set never
// fails, because the flag package would print the whole value: it keeps
// its first error for parseConfig to report.
type kafkaFlag struct {
	name  string // the flag's name
	props map[string]string
	err   error // the first error of Set
}

func (k *kafkaFlag) String() string {
	if k == nil {
		return ""
	}
	parts := make([]string, 0, len(k.props))
	for key, v := range k.props {
		parts = append(parts, key+"="+kafkaio.RedactProperty(key, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ";")
}

func (k *kafkaFlag) Set(s string) error {
	if err := k.set(s); err != nil && k.err == nil {
		k.err = fmt.Errorf("--%s: %w", k.name, err)
	}
	return nil
}

// set adds the key=value pairs of s; its error quotes no secret.
func (k *kafkaFlag) set(s string) error {
	afterSecret := false // the previous item set a secret: a ';' in it may have split it
	for i, kv := range strings.Split(s, ";") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		key, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(key) == "" {
			if afterSecret || kafkaio.IsSecretProperty(key) {
				return fmt.Errorf("item %d is not key=value (not shown, as it may hold a secret; a ';' inside a value splits it in two)", i+1)
			}
			return fmt.Errorf("%q is not key=value (for example --%s linger.ms=5)", kv, k.name)
		}
		key = strings.TrimSpace(key)
		k.props[key] = strings.TrimSpace(v)
		afterSecret = kafkaio.IsSecretProperty(key)
	}
	return nil
}

// parseConfig reads flags from args, then the KGATE_* variables of environ
// ("NAME=value", as os.Environ returns) for flags not given, then the
// --config file for the rest. --help prints the usage to help and returns
// flag.ErrHelp. Errors are returned, never printed; each names the flag,
// variable or file line and the form expected (quoting no secret of a
// librdkafka property). KGATE_ variables that name no flag are not an
// error: Config.warnings lists them, for the log.
func parseConfig(args, environ []string, help io.Writer) (*Config, error) {
	cfg := &Config{Kafka: map[string]string{}, KafkaProducer: map[string]string{}, KafkaConsumer: map[string]string{}}
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned; --help goes to help
	fs.StringVar(&cfg.Listen, "listen", ":8080", "gRPC listen address")
	fs.StringVar(&cfg.Brokers, "brokers", "", "Kafka bootstrap servers, host:port[,host:port...]; empty starts an embedded in-memory broker (nothing durable)")
	fs.StringVar(&cfg.EmbeddedKafka, "embedded-kafka", "127.0.0.1:9092", "listen address of the embedded broker, for kcat and other Kafka tools")
	intVar(fs, &cfg.EmbeddedPartitions, "embedded-partitions", 3, "a whole number of partitions", "partitions of topics the embedded broker creates on first use")
	intVar(fs, &cfg.EmbeddedRetentionBytes, "embedded-retention-bytes", 32<<20, "a whole number of bytes", "bytes each partition of the embedded broker keeps before dropping its oldest records")
	kafkaFlags := []*kafkaFlag{{name: "kafka", props: cfg.Kafka}, {name: "kafka-producer", props: cfg.KafkaProducer}, {name: "kafka-consumer", props: cfg.KafkaConsumer}}
	fs.Var(kafkaFlags[0], "kafka", "librdkafka property key=value passed to the producer and the consumers, such as security settings (repeatable; in KGATE_KAFKA separate pairs with ';')")
	fs.Var(kafkaFlags[1], "kafka-producer", "librdkafka property key=value for the producer only, such as linger.ms or message.timeout.ms (repeatable; wins over --kafka)")
	fs.Var(kafkaFlags[2], "kafka-consumer", "librdkafka property key=value for the consumers only, such as fetch.wait.max.ms (repeatable; wins over --kafka)")
	intVar(fs, &cfg.MaxInflightBytes, "max-inflight-bytes", 64<<20, "a whole number of bytes", "bytes of published messages awaiting broker acknowledgement before Publish answers RESOURCE_EXHAUSTED")
	intVar(fs, &cfg.MaxInflightPercentPerPrincipal, "max-inflight-percent-per-principal", 25, "a whole percentage, 1 to 100", "most of --max-inflight-bytes, in percent, one principal may hold while another publishes (100: no bound); alone it may use it all")
	intVar(fs, &cfg.MaxMessageBytes, "max-message-bytes", 1_000_000, "a whole number of bytes", "largest message (key+value+headers) Publish accepts; at most --max-request-bytes - 1024")
	durationVar(fs, &cfg.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long SIGTERM waits for in-flight publishes and streams")
	durationVar(fs, &cfg.HealthInterval, "health-interval", 2*time.Second, "how often Kafka reachability is checked for the health service (each check may take as long)")
	intVar(fs, &cfg.HealthFailures, "health-failures", 3, "a whole number of checks", "checks in a row that must fail before health turns NOT_SERVING; the first success turns it SERVING again")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate for TLS on the gRPC port (with --tls-key); reloaded on SIGHUP for new connections")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key for --tls-cert")
	fs.StringVar(&cfg.TLSClientCA, "tls-client-ca", "", "PEM CA bundle: clients must present a certificate it signed (mTLS); its subject common name, else its first DNS name, else its first URI (SAN), is the caller's principal. Reloaded on SIGHUP, with --tls-cert and --tls-key")
	fs.StringVar(&cfg.AuthTokens, "auth-tokens", "", "file of 'principal token' lines; callers send 'authorization: Bearer <token>'. Reloaded on SIGHUP")
	fs.StringVar(&cfg.ACL, "acl", "", "file of 'principal publish|subscribe topic-pattern [group-pattern]' rules; without a group pattern a rule allows the principal's own groups (its name, or its name and '.'); empty allows every caller everything. Reloaded on SIGHUP")
	durationVar(fs, &cfg.SubscribeLinger, "subscribe-linger", 10*time.Second, "how long a group's Kafka consumer stays in its group after the group's last Subscribe stream on this gateway ended, so reconnecting clients find their partitions (meanwhile no other member serves them)")
	intVar(fs, &cfg.SubscribeMemory, "subscribe-memory", 256<<20, "a whole number of bytes", "subscription memory budget in bytes: the group consumers' librdkafka fetch buffers and the records they hold; when spent, partitions pause and new Subscribe streams get RESOURCE_EXHAUSTED")
	intVar(fs, &cfg.MaxSubscribeStreamsPerPrincipal, "max-subscribe-streams-per-principal", 1000, "a whole number of streams", "open Subscribe streams per principal (0 = unbounded); room for a 200-consumer service reconnecting all at once")
	intVar(fs, &cfg.MaxPublishStreamsPerPrincipal, "max-publish-streams-per-principal", 100, "a whole number of streams", "open PublishStream streams per principal, counted apart from Subscribe (0 = unbounded)")
	intVar(fs, &cfg.MaxStreamsPerPrincipal, "max-streams-per-principal", 0, "a whole number of streams", "deprecated: sets both --max-subscribe-streams-per-principal and --max-publish-streams-per-principal where they are not given")
	intVar(fs, &cfg.MaxHealthWatches, "max-health-watches", 100, "a whole number of streams", "open grpc.health.v1.Health/Watch streams, gateway-wide: they need no identity (0 = unbounded)")
	intVar(fs, &cfg.MaxReflectionStreams, "max-reflection-streams", 16, "a whole number of streams", "open server reflection streams, gateway-wide: they need no identity (0 = unbounded)")
	intVar(fs, &cfg.MaxRequestBytes, "max-request-bytes", 4<<20, "a whole number of bytes", "largest gRPC request accepted (a whole Publish batch); gRPC refuses a larger one with RESOURCE_EXHAUSTED without details")
	intVar(fs, &cfg.MaxMessagesPerRequest, "max-messages-per-request", 10_000, "a whole number of messages", "most messages in one Publish request; more are INVALID_ARGUMENT (TOO_MANY_MESSAGES)")
	intVar(fs, &cfg.MaxHeaderBytes, "max-header-bytes", 16<<10, "a whole number of bytes", "largest headers (metadata, bearer token included) of one call; larger calls are reset unread")
	intVar(fs, &cfg.MaxConnections, "max-connections", 1024, "a whole number of connections", "open client connections; more are closed at once (0 = unbounded)")
	intVar(fs, &cfg.MaxConcurrentStreams, "max-concurrent-streams", 100, "a whole number of calls, 1 or more", "concurrent calls per client connection")
	fs.StringVar(&cfg.ConfigFile, "config", "", "optional file of 'flag-name = value' lines (see gateway.example.conf); flags and KGATE_* variables override it")
	fs.StringVar(&cfg.MetricsListen, "metrics-listen", ":9090", "address of the Prometheus /metrics endpoint (HTTP); empty serves none")
	fs.StringVar(&cfg.HTTPListen, "http-listen", "auto", "address of the HTTP listener: HTTP/1.1 and HTTP/2 with Connect, gRPC-Web and JSON routes (POST /v1/topics/{topic}/messages, ...) for the same services, with the same TLS, authentication and limits; auto: the port after --listen's (:8081 by default); empty serves none")
	fs.BoolVar(&cfg.AllowAnonymousAdmin, "allow-anonymous-admin", false, "without --acl, let anonymous callers reset group offsets and redrive dead letters (kgate.v1.Admin); off, those need an identified principal (a token or client certificate). Never on an open port")
	fs.IntVar(&cfg.MetricsMaxGroups, "metrics-max-groups", server.DefaultMetricsMaxGroups, "consumer groups labelled in the metrics at once; the others are counted under group \"_other\", and a group's series go 5 minutes after its last stream ended")
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
	for _, kf := range kafkaFlags {
		if kf.err != nil {
			return nil, kf.err
		}
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
			if kf, ok := f.Value.(*kafkaFlag); ok {
				if err := kf.set(v); err != nil {
					envErr = fmt.Errorf("%s: %v", name, err) // the value may hold a secret
				}
			} else if err := f.Value.Set(v); err != nil {
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
	if given["max-streams-per-principal"] != "" {
		if given["max-subscribe-streams-per-principal"] == "" {
			cfg.MaxSubscribeStreamsPerPrincipal = cfg.MaxStreamsPerPrincipal
		}
		if given["max-publish-streams-per-principal"] == "" {
			cfg.MaxPublishStreamsPerPrincipal = cfg.MaxStreamsPerPrincipal
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
		if kf, ok := f.Value.(*kafkaFlag); ok {
			if err := kf.set(value); err != nil {
				return fmt.Errorf("%s:%d: %s: %v", path, n+1, name, err) // the value may hold a secret
			}
		} else if err := f.Value.Set(value); err != nil {
			return fmt.Errorf("%s:%d: %s = %q: %v", path, n+1, name, value, err)
		}
	}
	return nil
}

// nextPort is addr with its port plus one: ":8080" gives ":8081"; port 0
// (any free port) stays 0.
func nextPort(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if port == "0" {
		return addr, nil
	}
	n, err := strconv.Atoi(port)
	if err != nil || n <= 0 || n >= 65535 {
		return "", fmt.Errorf("port %q is not a number from 1 to 65534", port)
	}
	return net.JoinHostPort(host, strconv.Itoa(n+1)), nil
}

func (c *Config) validate() error {
	switch {
	case c.MaxInflightBytes <= 0:
		return fmt.Errorf("--max-inflight-bytes must be positive, got %d", c.MaxInflightBytes)
	case c.MaxInflightPercentPerPrincipal < 1 || c.MaxInflightPercentPerPrincipal > 100:
		return fmt.Errorf("--max-inflight-percent-per-principal %d is out of range: use 1 to 100", c.MaxInflightPercentPerPrincipal)
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
	case c.MaxSubscribeStreamsPerPrincipal < 0:
		return fmt.Errorf("--max-subscribe-streams-per-principal must not be negative, got %d", c.MaxSubscribeStreamsPerPrincipal)
	case c.MaxPublishStreamsPerPrincipal < 0:
		return fmt.Errorf("--max-publish-streams-per-principal must not be negative, got %d", c.MaxPublishStreamsPerPrincipal)
	case c.MaxHealthWatches < 0:
		return fmt.Errorf("--max-health-watches must not be negative, got %d", c.MaxHealthWatches)
	case c.MaxReflectionStreams < 0:
		return fmt.Errorf("--max-reflection-streams must not be negative, got %d", c.MaxReflectionStreams)
	case c.MaxRequestBytes <= 0:
		return fmt.Errorf("--max-request-bytes must be positive, got %d", c.MaxRequestBytes)
	case c.MaxMessageBytes > int64(c.MaxRequestBytes)-server.RequestOverheadBytes:
		return fmt.Errorf("--max-message-bytes %d does not fit in --max-request-bytes %d: a request with one message of that size needs %d bytes more for its topic and framing, so such a message could never be sent; lower --max-message-bytes to at most %d or raise --max-request-bytes to at least %d",
			c.MaxMessageBytes, c.MaxRequestBytes, server.RequestOverheadBytes, int64(c.MaxRequestBytes)-server.RequestOverheadBytes, c.MaxMessageBytes+server.RequestOverheadBytes)
	case c.MaxConcurrentStreams == 0:
		return fmt.Errorf("--max-concurrent-streams must be positive")
	case c.MaxMessagesPerRequest <= 0:
		return fmt.Errorf("--max-messages-per-request must be positive, got %d", c.MaxMessagesPerRequest)
	case c.MaxHeaderBytes < 1024 || c.MaxHeaderBytes > 1<<24:
		return fmt.Errorf("--max-header-bytes %d is out of range: use 1024 to 16777216 (16 KiB is the default)", c.MaxHeaderBytes)
	case c.MetricsMaxGroups <= 0:
		return fmt.Errorf("--metrics-max-groups must be positive, got %d", c.MetricsMaxGroups)
	case c.MaxConnections < 0:
		return fmt.Errorf("--max-connections must not be negative, got %d", c.MaxConnections)
	}
	if c.HTTPListen == "auto" {
		addr, err := nextPort(c.Listen)
		if err != nil {
			return fmt.Errorf("--http-listen auto takes the port after --listen's, but --listen %q has no port number (%v): give --http-listen an address, or empty for none", c.Listen, err)
		}
		c.HTTPListen = addr
	}
	if _, port, _ := net.SplitHostPort(c.HTTPListen); c.HTTPListen != "" && c.HTTPListen == c.Listen && port != "0" {
		return fmt.Errorf("--http-listen %q is --listen's address too: give it a port of its own", c.HTTPListen)
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
