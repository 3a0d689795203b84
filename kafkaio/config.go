package kafkaio

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// guard is a librdkafka property whose value the gateway's guarantees depend
// on: ok says whether an override is acceptable.
type guard struct {
	key  string
	ok   func(v string) bool
	want string
	why  string
}

func oneOf(vals ...string) func(string) bool {
	return func(v string) bool {
		for _, w := range vals {
			if strings.EqualFold(strings.TrimSpace(v), w) {
				return true
			}
		}
		return false
	}
}

// kafkaConfig builds a librdkafka ConfigMap: defaults first, then the
// user's overrides, refusing overrides of guarded keys with values that
// would break a guarantee.
func kafkaConfig(brokers string, defaults, overrides map[string]string, guards []guard) (kafka.ConfigMap, error) {
	if strings.TrimSpace(brokers) == "" {
		return nil, fmt.Errorf("no Kafka brokers configured: set bootstrap servers (host:port,...)")
	}
	cm := kafka.ConfigMap{"bootstrap.servers": brokers}
	for k, v := range defaults {
		cm[k] = goTyped(k, v)
	}
	for k, v := range overrides {
		if k == "bootstrap.servers" {
			return nil, fmt.Errorf("kafka property bootstrap.servers: set the brokers with --brokers instead")
		}
		for _, g := range guards {
			if g.key == k && !g.ok(v) {
				return nil, fmt.Errorf("kafka property %s=%s is refused: %s needs %s=%s", k, RedactProperty(k, v), g.why, k, g.want)
			}
		}
		cm[k] = goTyped(k, v)
	}
	return cm, nil
}

// CheckOverrides refuses librdkafka property overrides that would break a
// guarantee of the producer or of subscriptions, before anything starts:
// producer holds the producer's overrides, consumer the consumers'.
func CheckOverrides(producer, consumer map[string]string) error {
	if _, err := kafkaConfig("-", nil, producer, producerGuards); err != nil {
		return err
	}
	_, err := kafkaConfig("-", nil, consumer, consumerGuards)
	return err
}

// goTyped converts the value of a confluent-kafka-go "go.*" property, which
// must be a bool or an int (the *.size ones, so that 0 and 1 are sizes
// there), from its string form. librdkafka's own properties stay strings.
func goTyped(k, v string) kafka.ConfigValue {
	if !strings.HasPrefix(k, "go.") {
		return v
	}
	if strings.HasSuffix(k, ".size") {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	if b, err := strconv.ParseBool(v); err == nil {
		return b
	}
	if n, err := strconv.Atoi(v); err == nil {
		return n
	}
	return v
}

// forwardLogs writes librdkafka's log events to logger until the channel
// closes (when the client is closed).
func forwardLogs(logs chan kafka.LogEvent, logger *slog.Logger) {
	for ev := range logs {
		// syslog levels: 0-3 error, 4 warning, 5-6 info, 7 debug.
		lvl := slog.LevelDebug
		switch {
		case ev.Level <= 3:
			lvl = slog.LevelError
		case ev.Level == 4:
			lvl = slog.LevelWarn
		case ev.Level <= 6:
			lvl = slog.LevelInfo
		}
		logger.Log(context.Background(), lvl, ev.Message, "component", "librdkafka", "client", ev.Name, "tag", ev.Tag)
	}
}

// ValidateTopic reports whether name is a legal Kafka topic name, with a
// message a person can act on when it is not.
func ValidateTopic(name string) error {
	switch {
	case name == "":
		return errorf(KindInvalid, ReasonInvalidTopic, "topic is empty: name the topic to use")
	case name == "." || name == "..":
		return errorf(KindInvalid, ReasonInvalidTopic, "topic %q is not allowed by Kafka", name)
	case len(name) > 249:
		return errorf(KindInvalid, ReasonInvalidTopic, "topic name is %d characters long; Kafka allows at most 249", len(name))
	case !legalTopicChars(name):
		return errorf(KindInvalid, ReasonInvalidTopic, "topic %s has characters Kafka does not allow: use only ASCII letters, digits, '.', '_' and '-'", QuoteName(name))
	}
	return nil
}

// MaxGroupLength is the longest consumer group name the gateway accepts.
const MaxGroupLength = 255

// ValidateGroup reports whether name is a consumer group name the gateway
// accepts: not empty, at most MaxGroupLength bytes. Kafka itself sets no
// length limit.
func ValidateGroup(name string) error {
	switch {
	case name == "":
		return errorf(KindInvalid, "INVALID_SUBSCRIPTION", "group is empty: name the consumer group (streams of one group share the partitions)")
	case len(name) > MaxGroupLength:
		return errorf(KindInvalid, "INVALID_SUBSCRIPTION", "group is %d characters long; use at most %d", len(name), MaxGroupLength)
	}
	return nil
}

// maxQuoted is how much of a client-supplied name QuoteName shows.
const maxQuoted = 256

// QuoteName quotes a name a client chose (a topic, a group) for a message
// or a log line: Go-quoted, and cut to its first 256 bytes (at a character
// boundary) with its length, so that a huge name cannot make a huge
// message or log line.
func QuoteName(name string) string {
	if len(name) <= maxQuoted {
		return strconv.Quote(name)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes)", strconv.Quote(name[:cut]), len(name))
}

// legalTopicChars reports whether name has only the characters Kafka allows
// in topic names: ASCII letters, digits, '.', '_' and '-'. (Checked on every
// publish; a regular expression cost 2% of the gateway's CPU.)
func legalTopicChars(name string) bool {
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
