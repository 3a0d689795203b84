package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// defaultConfig is the configuration of a gateway started with no flags
// and no KGATE_* variables.
func defaultConfig() *Config {
	return &Config{
		Listen:                          ":8080",
		Brokers:                         "",
		EmbeddedKafka:                   "127.0.0.1:9092",
		EmbeddedPartitions:              3,
		EmbeddedRetentionBytes:          32 << 20,
		Kafka:                           map[string]string{},
		KafkaProducer:                   map[string]string{},
		KafkaConsumer:                   map[string]string{},
		MaxInflightBytes:                64 << 20,
		MaxMessageBytes:                 1_000_000,
		MaxInflightPercentPerPrincipal:  25,
		ShutdownTimeout:                 15 * time.Second,
		HealthInterval:                  2 * time.Second,
		HealthFailures:                  3,
		MetricsListen:                   ":9090",
		HTTPListen:                      ":8081", // auto: the port after --listen's
		MetricsMaxGroups:                100,
		SubscribeLinger:                 10 * time.Second,
		SubscribeMemory:                 256 << 20,
		MaxSubscribeStreamsPerPrincipal: 1000,
		MaxPublishStreamsPerPrincipal:   100,
		MaxHealthWatches:                100,
		MaxReflectionStreams:            16,
		MaxRequestBytes:                 4 << 20,
		MaxMessagesPerRequest:           10_000,
		MaxHeaderBytes:                  16 << 10,
		MaxConnections:                  1024,
		MaxConcurrentStreams:            100,
		LogLevel:                        "info",
		LogFormat:                       "text",
	}
}

// envOf is vars as os.Environ gives them.
func envOf(vars map[string]string) []string {
	var env []string
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

func TestParseConfig(t *testing.T) {
	for i, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want func(*Config) // changes from defaultConfig
	}{
		0: {name: "defaults"},
		1: {
			name: "every flag",
			args: []string{
				"--listen", "127.0.0.1:7000", "--brokers", "k1:9092,k2:9092", "--embedded-kafka", "127.0.0.1:19092",
				"--embedded-partitions", "6", "--kafka", "linger.ms=5", "--kafka-producer", "acks=all",
				"--kafka-consumer", "fetch.wait.max.ms=50", "--max-inflight-bytes", "1024",
				"--max-message-bytes", "512", "--shutdown-timeout", "3s", "--health-interval", "250ms", "--health-failures", "5",
				"--log-level", "debug", "--log-format", "json", "--metrics-listen", "127.0.0.1:9999",
			},
			want: func(c *Config) {
				c.MetricsListen = "127.0.0.1:9999"
				c.Listen, c.Brokers, c.EmbeddedKafka, c.EmbeddedPartitions = "127.0.0.1:7000", "k1:9092,k2:9092", "127.0.0.1:19092", 6
				c.Kafka = map[string]string{"linger.ms": "5"}
				c.KafkaProducer = map[string]string{"acks": "all"}
				c.KafkaConsumer = map[string]string{"fetch.wait.max.ms": "50"}
				c.MaxInflightBytes, c.MaxMessageBytes = 1024, 512
				c.ShutdownTimeout, c.HealthInterval, c.HealthFailures = 3*time.Second, 250*time.Millisecond, 5
				c.LogLevel, c.LogFormat = "debug", "json"
			},
		},
		2: {
			name: "single-dash and = forms",
			args: []string{"-listen=:9000", "-brokers=k:9092"},
			want: func(c *Config) { c.Listen, c.Brokers = ":9000", "k:9092" },
		},
		3: {
			name: "every KGATE_ variable when its flag is absent",
			env: map[string]string{
				"KGATE_LISTEN": "127.0.0.1:7000", "KGATE_BROKERS": "k1:9092,k2:9092", "KGATE_EMBEDDED_KAFKA": "127.0.0.1:19092",
				"KGATE_EMBEDDED_PARTITIONS": "6", "KGATE_KAFKA": "linger.ms=5", "KGATE_MAX_INFLIGHT_BYTES": "1024",
				"KGATE_KAFKA_PRODUCER": "linger.ms=1", "KGATE_KAFKA_CONSUMER": "fetch.wait.max.ms=50",
				"KGATE_MAX_MESSAGE_BYTES": "512", "KGATE_SHUTDOWN_TIMEOUT": "3s", "KGATE_HEALTH_INTERVAL": "250ms",
				"KGATE_LOG_LEVEL": "debug", "KGATE_LOG_FORMAT": "json", "KGATE_METRICS_LISTEN": "127.0.0.1:9999",
			},
			want: func(c *Config) {
				c.Listen, c.Brokers, c.EmbeddedKafka, c.EmbeddedPartitions = "127.0.0.1:7000", "k1:9092,k2:9092", "127.0.0.1:19092", 6
				c.Kafka = map[string]string{"linger.ms": "5"}
				c.KafkaProducer = map[string]string{"linger.ms": "1"}
				c.KafkaConsumer = map[string]string{"fetch.wait.max.ms": "50"}
				c.MaxInflightBytes, c.MaxMessageBytes = 1024, 512
				c.ShutdownTimeout, c.HealthInterval = 3*time.Second, 250*time.Millisecond
				c.LogLevel, c.LogFormat, c.MetricsListen = "debug", "json", "127.0.0.1:9999"
			},
		},
		4: {
			name: "flag wins over its variable; other variables still apply",
			args: []string{"--brokers", "flag:9092", "--log-level", "warn"},
			env:  map[string]string{"KGATE_BROKERS": "env:9092", "KGATE_LOG_LEVEL": "debug", "KGATE_LISTEN": ":7001"},
			want: func(c *Config) { c.Brokers, c.LogLevel, c.Listen = "flag:9092", "warn", ":7001" },
		},
		5: {
			name: "explicitly empty --brokers wins over KGATE_BROKERS (embedded broker)",
			args: []string{"--brokers", ""},
			env:  map[string]string{"KGATE_BROKERS": "env:9092"},
		},
		6: {
			name: "empty variable counts as unset",
			env:  map[string]string{"KGATE_BROKERS": "", "KGATE_LISTEN": ""},
		},
		7: {
			name: "KGATE_KAFKA with ';'-separated pairs, spaces and empty pairs",
			env:  map[string]string{"KGATE_KAFKA": " security.protocol=SASL_SSL ; sasl.mechanism = PLAIN;;sasl.username=u=v;"},
			want: func(c *Config) {
				c.Kafka = map[string]string{"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "sasl.username": "u=v"}
			},
		},
		8: {
			name: "repeated --kafka accumulates; the last value of a key wins",
			args: []string{"--kafka", "linger.ms=5", "--kafka", "compression.type=zstd;batch.size=1000", "--kafka", "linger.ms=0"},
			want: func(c *Config) {
				c.Kafka = map[string]string{"linger.ms": "0", "compression.type": "zstd", "batch.size": "1000"}
			},
		},
		9: {
			name: "--kafka replaces KGATE_KAFKA entirely",
			args: []string{"--kafka", "linger.ms=5"},
			env:  map[string]string{"KGATE_KAFKA": "compression.type=zstd"},
			want: func(c *Config) { c.Kafka = map[string]string{"linger.ms": "5"} },
		},
		11: {
			name: "the former --max-streams-per-principal sets both stream bounds not given",
			args: []string{"--max-streams-per-principal", "50", "--max-subscribe-streams-per-principal", "7"},
			want: func(c *Config) {
				c.MaxStreamsPerPrincipal, c.MaxSubscribeStreamsPerPrincipal, c.MaxPublishStreamsPerPrincipal = 50, 7, 50
			},
		},
		12: {
			name: "KGATE_MAX_STREAMS_PER_PRINCIPAL likewise",
			env:  map[string]string{"KGATE_MAX_STREAMS_PER_PRINCIPAL": "3"},
			want: func(c *Config) {
				c.MaxStreamsPerPrincipal, c.MaxSubscribeStreamsPerPrincipal, c.MaxPublishStreamsPerPrincipal = 3, 3, 3
			},
		},
		14: {
			name: "unrelated variables are ignored; KGATE_ ones that name no flag with a warning",
			env:  map[string]string{"BROKERS": "x:1", "KGATE_TEST_BROKERS": "y:2", "KGATE_NO_SUCH": "z", "KGATE_MAX_MESAGE_BYTES": "5"},
			want: func(c *Config) {
				c.warnings = []string{
					"environment variable KGATE_MAX_MESAGE_BYTES names no setting of the gateway and is ignored; did you mean KGATE_MAX_MESSAGE_BYTES?",
					"environment variable KGATE_NO_SUCH names no setting of the gateway and is ignored (gateway --help lists the settings)",
					"environment variable KGATE_TEST_BROKERS names no setting of the gateway and is ignored (gateway --help lists the settings)",
				}
			},
		},
		13: {
			name: "the largest message that fits in a request",
			args: []string{"--max-message-bytes", "4193280"},
			want: func(c *Config) { c.MaxMessageBytes = 4193280 },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			got, err := parseConfig(tc.args, envOf(tc.env), &out)
			if err != nil {
				t.Fatalf("case %d: %v\n%s", i, err, out.String())
			}
			want := defaultConfig()
			if tc.want != nil {
				tc.want(want)
			}
			if want.HTTPListen == ":8081" && want.Listen != ":8080" { // auto follows --listen
				want.HTTPListen, _ = nextPort(want.Listen)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("case %d:\n got %+v\nwant %+v", i, got, want)
			}
			if out.Len() > 0 {
				t.Errorf("case %d: parsing a good configuration printed %q", i, out.String())
			}
		})
	}
}

func TestScopedKafkaPropertiesReachOnlyTheirClientsAndWin(t *testing.T) {
	cfg, err := parseConfig([]string{"--kafka", "security.protocol=SSL;linger.ms=5;fetch.wait.max.ms=500",
		"--kafka-producer", "linger.ms=1;message.timeout.ms=9000", "--kafka-consumer", "fetch.wait.max.ms=50"}, envOf(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.producerKafka(), map[string]string{"security.protocol": "SSL", "linger.ms": "1", "fetch.wait.max.ms": "500", "message.timeout.ms": "9000"}; !reflect.DeepEqual(got, want) {
		t.Errorf("producer properties %v, want %v", got, want)
	}
	if got, want := cfg.consumerKafka(), map[string]string{"security.protocol": "SSL", "linger.ms": "5", "fetch.wait.max.ms": "50"}; !reflect.DeepEqual(got, want) {
		t.Errorf("consumer properties %v, want %v", got, want)
	}
	if cfg.Kafka["linger.ms"] != "5" {
		t.Errorf("merging changed --kafka itself: %v", cfg.Kafka)
	}
}

func TestParseConfigRejectsBadValues(t *testing.T) {
	for i, tc := range []struct {
		args []string
		env  map[string]string
		want string // in the error
	}{
		0:  {args: []string{"--max-inflight-bytes", "0"}, want: "--max-inflight-bytes must be positive, got 0"},
		1:  {args: []string{"--max-inflight-bytes", "-1"}, want: "--max-inflight-bytes must be positive, got -1"},
		2:  {args: []string{"--max-message-bytes", "0"}, want: "--max-message-bytes must be positive, got 0"},
		3:  {args: []string{"--embedded-partitions", "0"}, want: "--embedded-partitions must be positive, got 0"},
		4:  {args: []string{"--shutdown-timeout", "0s"}, want: "--shutdown-timeout must be positive, got 0s"},
		5:  {args: []string{"--health-interval", "-1s"}, want: "--health-interval must be positive, got -1s"},
		6:  {args: []string{"--log-format", "xml"}, want: `--log-format must be text or json, got "xml"`},
		7:  {args: []string{"--max-inflight-bytes", "lots"}, want: `invalid value "lots" for flag -max-inflight-bytes: want a whole number of bytes, such as 67108864`},
		8:  {args: []string{"--shutdown-timeout", "15"}, want: `invalid value "15" for flag -shutdown-timeout: want a duration with its unit, such as 15s, 500ms or 2m`},
		9:  {args: []string{"--kafka", "novalue"}, want: `"novalue" is not key=value (for example --kafka linger.ms=5)`},
		10: {args: []string{"--kafka", "=5"}, want: `"=5" is not key=value`},
		11: {args: []string{"--kafka", "linger.ms=5;oops"}, want: `"oops" is not key=value`},
		12: {args: []string{"--no-such-flag"}, want: "flag provided but not defined: -no-such-flag"},
		13: {args: []string{"--listen", ":1", "extra"}, want: `unexpected argument "extra": every setting is a flag`},
		14: {env: map[string]string{"KGATE_MAX_INFLIGHT_BYTES": "lots"}, want: `KGATE_MAX_INFLIGHT_BYTES="lots": want a whole number of bytes, such as 67108864`},
		15: {env: map[string]string{"KGATE_KAFKA": "linger.ms=5;oops"}, want: `KGATE_KAFKA: "oops" is not key=value`},
		16: {env: map[string]string{"KGATE_HEALTH_INTERVAL": "0s"}, want: "--health-interval must be positive, got 0s (set by KGATE_HEALTH_INTERVAL)"},
		17: {env: map[string]string{"KGATE_LOG_FORMAT": "yaml"}, want: `--log-format must be text or json, got "yaml"`},
		18: {args: []string{"--max-message-bytes", "4194304"}, want: "--max-message-bytes 4194304 does not fit in --max-request-bytes 4194304: a request with one message of that size needs 1024 bytes more for its topic and framing"},
		19: {args: []string{"--max-request-bytes", "1000000"}, want: "lower --max-message-bytes to at most 998976 or raise --max-request-bytes to at least 1001024"},
		20: {args: []string{"--max-message-bytes", "4193281"}, want: "--max-message-bytes 4193281 does not fit"},
		21: {args: []string{"--health-failures", "0"}, want: "--health-failures must be positive, got 0"},
		22: {env: map[string]string{"KGATE_MAX_MESSAGE_BYTES": "abc"}, want: `KGATE_MAX_MESSAGE_BYTES="abc": want a whole number of bytes, such as 1000000`},
		23: {env: map[string]string{"KGATE_MAX_CONCURRENT_STREAMS": "-1"}, want: `KGATE_MAX_CONCURRENT_STREAMS="-1": want a whole number of calls, 1 or more, such as 100`},
		24: {env: map[string]string{"KGATE_SHUTDOWN_TIMEOUT": "soon"}, want: `KGATE_SHUTDOWN_TIMEOUT="soon": want a duration with its unit, such as 15s, 500ms or 2m`},
		25: {args: []string{"--embedded-partitions", "3.5"}, want: `invalid value "3.5" for flag -embedded-partitions: want a whole number of partitions, such as 3`},
		26: {env: map[string]string{"KGATE_MAX_REQUEST_BYTES": "1000"}, want: "does not fit in --max-request-bytes 1000: a request with one message of that size needs 1024 bytes more for its topic and framing, so such a message could never be sent; lower --max-message-bytes to at most -24 or raise --max-request-bytes to at least 1001024 (set by KGATE_MAX_REQUEST_BYTES)"},
		27: {args: []string{"--listen", "unix-socket"}, want: `--http-listen auto takes the port after --listen's, but --listen "unix-socket" has no port number`},
		28: {args: []string{"--listen", ":9000", "--http-listen", ":9000"}, want: `--http-listen ":9000" is --listen's address too`},
		29: {args: []string{"--allow-anonymous-admin=maybe"}, want: "allow-anonymous-admin"},
	} {
		var out bytes.Buffer
		cfg, err := parseConfig(tc.args, envOf(tc.env), &out)
		if err == nil {
			t.Errorf("case %d: %v %v accepted: %+v", i, tc.args, tc.env, cfg)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("case %d: error %q does not say %q", i, err, tc.want)
		}
	}
}

// TestKafkaSecretsAreNeverPrinted: a refused --kafka value, from the
// command line, the environment or the config file, never shows the value
// of a secret property, nor an item that may be a piece of one (a ';'
// inside a password splits it), yet says what is wrong and where.
func TestKafkaSecretsAreNeverPrinted(t *testing.T) {
	conf := t.TempDir() + "/gw.conf"
	if err := os.WriteFile(conf, []byte("kafka = sasl.password=hunter2;bogus\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		0: {env: map[string]string{"KGATE_KAFKA": "security.protocol=SASL_SSL;sasl.password=hunter2;bogus"}, want: "KGATE_KAFKA: item 3 is not key=value (not shown"},
		1: {args: []string{"--kafka", "sasl.password=hunter2;bogus"}, want: "--kafka: item 2 is not key=value (not shown"},
		2: {args: []string{"--kafka-consumer", "ssl.key.password hunter2"}, want: "--kafka-consumer: item 1 is not key=value (not shown"},
		3: {args: []string{"--config", conf}, want: "gw.conf:1: kafka: item 2 is not key=value (not shown"},
		4: {env: map[string]string{"KGATE_KAFKA_PRODUCER": "sasl.oauthbearer.client.secret=hunter2;x"}, want: "KGATE_KAFKA_PRODUCER: item 2 is not key=value"},
	} {
		var out bytes.Buffer
		_, err := parseConfig(tc.args, envOf(tc.env), &out)
		if err == nil {
			t.Errorf("case %d: accepted", i)
			continue
		}
		printed := err.Error() + out.String()
		if strings.Contains(printed, "hunter2") {
			t.Errorf("case %d: the secret is printed: %s", i, printed)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("case %d: error %q does not say %q", i, err, tc.want)
		}
	}
	// --help shows no value, and String (the flag's default) redacts.
	kf := &kafkaFlag{name: "kafka", props: map[string]string{}}
	_ = kf.Set("sasl.password=hunter2;linger.ms=5")
	if got := kf.String(); got != "linger.ms=5;sasl.password=[REDACTED]" {
		t.Errorf("String() = %q, want the password redacted", got)
	}
}

func TestParseConfigHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "-help"} {
		var out bytes.Buffer
		_, err := parseConfig([]string{arg}, envOf(nil), &out)
		if !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%s: error %v, want flag.ErrHelp", arg, err)
		}
		for _, want := range append(configFlagNames(), "Usage: gateway", "KGATE_BROKERS", "--max-message-bytes bytes",
			"(default 1000000)", "--shutdown-timeout duration", "(default 15s)", `--listen string`, `(default ":8080")`, "--kafka key=value") {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: usage does not mention %q:\n%s", arg, want, out.String())
			}
		}
	}
}

// TestParseConfigErrorsAreReturnedNotPrinted: a bad setting prints nothing
// itself (the caller prints the error once, to stderr), whatever its form.
func TestParseConfigErrorsAreReturnedNotPrinted(t *testing.T) {
	for _, args := range [][]string{{"--no-such-flag"}, {"--max-message-bytes", "abc"}, {"--listen"}} {
		var out bytes.Buffer
		if _, err := parseConfig(args, envOf(nil), &out); err == nil || out.Len() > 0 {
			t.Errorf("%v: error %v, printed %q; want an error and nothing printed", args, err, out.String())
		}
	}
}

func TestNearestSetting(t *testing.T) {
	names := []string{"KGATE_MAX_MESSAGE_BYTES", "KGATE_MAX_REQUEST_BYTES", "KGATE_BROKERS", "KGATE_LISTEN"}
	for in, want := range map[string]string{
		"KGATE_MAX_MESAGE_BYTES":  "KGATE_MAX_MESSAGE_BYTES",
		"KGATE_MAX_MESSAGES_BYTE": "KGATE_MAX_MESSAGE_BYTES",
		"KGATE_BROKER":            "KGATE_BROKERS",
		"KGATE_LISTENS":           "KGATE_LISTEN",
		"KGATE_TLS":               "",
		"KGATE_SOMETHING_ELSE":    "",
	} {
		if got := nearest(in, names); got != want {
			t.Errorf("nearest(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestExampleConfigFileParses(t *testing.T) {
	cfg, err := parseConfig([]string{"--config", "../../gateway.example.conf", "--listen", "127.0.0.1:1"},
		envOf(map[string]string{"KGATE_LOG_LEVEL": "debug"}), io.Discard)
	if err != nil {
		t.Fatalf("gateway.example.conf: %v", err)
	}
	switch {
	case cfg.Listen != "127.0.0.1:1":
		t.Errorf("a flag must win over the file: listen %q", cfg.Listen)
	case cfg.LogLevel != "debug":
		t.Errorf("a KGATE_ variable must win over the file: log level %q", cfg.LogLevel)
	case cfg.Brokers != "kafka-1:9092,kafka-2:9092,kafka-3:9092" || cfg.LogFormat != "json" || cfg.TLSClientCA != "/etc/kgate/clients-ca.pem":
		t.Errorf("file settings not applied: %+v", cfg)
	case cfg.Kafka["sasl.mechanism"] != "SCRAM-SHA-512" || len(cfg.Kafka) != 5:
		t.Errorf("repeated kafka lines: %v", cfg.Kafka)
	case cfg.producerKafka()["message.timeout.ms"] != "30000" || cfg.consumerKafka()["message.timeout.ms"] != "":
		t.Errorf("kafka-producer lines: producer %v, consumer %v", cfg.producerKafka(), cfg.consumerKafka())
	}
	for i, bad := range []string{"no-equals-sign", "unknown-setting = 1", "max-message-bytes = lots"} {
		f := t.TempDir() + "/bad.conf"
		if err := os.WriteFile(f, []byte(bad+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := parseConfig([]string{"--config", f}, envOf(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "bad.conf:1") {
			t.Errorf("case %d: %q gave %v, want an error naming the line", i, bad, err)
		}
	}
}

// TestEveryFlagIsDocumented: every flag is a line of gateway.example.conf
// (set, or commented out as "# name = ...") and a row of the README's flag
// table, so that neither falls behind --help.
func TestEveryFlagIsDocumented(t *testing.T) {
	conf, err := os.ReadFile("../../gateway.example.conf")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var help strings.Builder
	if _, err := parseConfig([]string{"--help"}, nil, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	names := regexp.MustCompile(`(?m)^  --([a-z0-9-]+) `).FindAllStringSubmatch(help.String(), -1)
	if len(names) < 30 {
		t.Fatalf("found %d flags in --help, want them all", len(names))
	}
	for _, m := range names {
		name := m[1]
		if name == "config" {
			continue // the file itself
		}
		if !regexp.MustCompile(`(?m)^(# )?` + regexp.QuoteMeta(name) + ` = `).Match(conf) {
			t.Errorf("gateway.example.conf has no line for %s (add \"%s = ...\", or \"# %s = ...\" with a comment)", name, name, name)
		}
		if !regexp.MustCompile("(?m)^\\|[^\\n]*`--" + regexp.QuoteMeta(name) + "[` ]").Match(readme) {
			t.Errorf("README.md's flag table has no row for --%s", name)
		}
	}
}
