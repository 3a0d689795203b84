package kafkaio

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kgate/kgate/internal/kafkatest"
)

func TestIsSecretProperty(t *testing.T) {
	for i, tc := range []struct {
		key    string
		secret bool
	}{
		0:  {"sasl.password", true},
		1:  {"ssl.key.password", true},
		2:  {"ssl.keystore.password", true},
		3:  {"sasl.oauthbearer.client.secret", true},
		4:  {"sasl.oauthbearer.config", true},
		5:  {"ssl.key.pem", true},
		6:  {" SASL.Password ", true},
		7:  {"sasl.oauthbearer.assertion.private.key.passphrase", true},
		8:  {"some.future.password.property", true},
		9:  {"sasl.username", false},
		10: {"ssl.key.location", false},
		11: {"ssl.certificate.pem", false},
		12: {"linger.ms", false},
		13: {"security.protocol", false},
	} {
		if got := IsSecretProperty(tc.key); got != tc.secret {
			t.Errorf("case %d: IsSecretProperty(%q) = %v, want %v", i, tc.key, got, tc.secret)
		}
	}
}

func TestRedactSecrets(t *testing.T) {
	props := map[string]string{"sasl.password": "hunter2", "ssl.key.password": "hunter2-longer", "sasl.username": "kgate"}
	got := RedactSecrets(`bad "hunter2-longer" and hunter2 for kgate`, props)
	if want := `bad "[REDACTED]" and [REDACTED] for kgate`; got != want {
		t.Errorf("RedactSecrets = %q, want %q", got, want)
	}
}

// TestRefusedOverrideNeverShowsASecret: the message refusing a guarded
// override shows its value, but never a secret's.
func TestRefusedOverrideNeverShowsASecret(t *testing.T) {
	guards := []guard{{key: "sasl.password", ok: func(string) bool { return false }, want: "x", why: "a test"}}
	_, err := kafkaConfig("b:9092", nil, map[string]string{"sasl.password": "hunter2"}, guards)
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "sasl.password=[REDACTED] is refused") {
		t.Fatalf("refusal %v: want the property named and its value redacted", err)
	}
}

// TestProducerLogsNoSecret: with librdkafka's configuration debug log on,
// which lists every property, the producer's log shows that sasl.password
// and ssl.key.password are set but not their values.
func TestProducerLogsNoSecret(t *testing.T) {
	var buf kafkatest.SyncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := NewProducer(ProducerConfig{Brokers: kafkatest.Brokers(t), Logger: log, Kafka: map[string]string{
		"debug": "conf", "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
		"sasl.username": "u", "sasl.password": "hunter2", "ssl.key.password": "hunter3"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(t.Context())
	kafkatest.Eventually(t, 30*time.Second, "librdkafka logs its configuration", func() bool {
		s := buf.String()
		return strings.Contains(s, "sasl.password") && strings.Contains(s, "ssl.key.password")
	})
	if s := buf.String(); strings.Contains(s, "hunter") {
		t.Fatalf("a secret is in the log:\n%s", s)
	}
}
