package kafkaio

import (
	"sort"
	"strings"
)

// Redacted replaces the value of a secret-bearing property wherever the
// gateway would otherwise print it.
const Redacted = "[REDACTED]"

// secretProperties are the librdkafka properties that librdkafka itself
// marks sensitive (CONFIGURATION.md), whose values are passwords, client
// secrets or private keys.
var secretProperties = map[string]bool{
	"sasl.password":                  true,
	"sasl.oauthbearer.client.secret": true,
	"sasl.oauthbearer.config":        true,
	"ssl.key.password":               true,
	"ssl.key.pem":                    true,
	"ssl_key":                        true,
	"ssl.keystore.password":          true,
	"ssl.truststore.password":        true,
	"sasl.oauthbearer.assertion.private.key.passphrase": true,
	"sasl.oauthbearer.assertion.private.key.pem":        true,
}

// IsSecretProperty reports whether the value of librdkafka property key is
// a secret that must never be printed: librdkafka's sensitive properties,
// and, so that properties added later are covered too, any key that speaks
// of a password, a secret, a passphrase or a private key.
func IsSecretProperty(key string) bool {
	k := strings.ToLower(strings.TrimSpace(key))
	if secretProperties[k] {
		return true
	}
	for _, word := range []string{"password", "secret", "passphrase", "private.key", "key.pem"} {
		if strings.Contains(k, word) {
			return true
		}
	}
	return false
}

// RedactProperty returns value, or Redacted when key is a secret property.
func RedactProperty(key, value string) string {
	if IsSecretProperty(key) {
		return Redacted
	}
	return value
}

// RedactSecrets replaces, in s, every value of a secret property of props
// by Redacted: for text that did not come from the gateway (librdkafka's
// error messages) and might quote one. Longer values are replaced first,
// so that a secret holding another is replaced whole.
func RedactSecrets(s string, props map[string]string) string {
	var secrets []string
	for k, v := range props {
		if v != "" && IsSecretProperty(k) {
			secrets = append(secrets, v)
		}
	}
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	for _, v := range secrets {
		s = strings.ReplaceAll(s, v, Redacted)
	}
	return s
}
