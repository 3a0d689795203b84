package server

import (
	"bufio"
	"context"
	"crypto/subtle"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/kgate/kgate/kafkaio"
)

// Action is what a principal may be allowed to do with a topic.
type Action string

// Actions that ACL rules name.
const (
	ActionPublish   Action = "publish"
	ActionSubscribe Action = "subscribe"
)

// Anonymous is the principal of calls when authentication is off.
const Anonymous = "anonymous"

// Auth authenticates callers and authorizes what they do. The zero value
// (and a nil *Auth) lets everyone do everything as Anonymous.
//
// A caller is identified by a bearer token ("authorization: Bearer <t>"
// metadata) found in Tokens, or else by the verified client certificate of
// an mTLS connection (its subject common name, or its first DNS or URI
// name). When Tokens is set or RequireIdentity is true, a call with neither
// is UNAUTHENTICATED. Health checks and server reflection need no identity.
//
// Auth is safe for concurrent use.
type Auth struct {
	// Tokens maps bearer tokens to principals.
	Tokens map[string]string
	// RequireIdentity refuses anonymous calls even without Tokens (set it
	// with mTLS, where the TLS handshake already demands a certificate).
	RequireIdentity bool
	// Rules, when not nil, are the only permissions: a call is allowed when
	// some rule matches, else PERMISSION_DENIED. nil allows everything.
	Rules []Rule
	// MaxStreams bounds each principal's open Subscribe and PublishStream
	// streams; 0 means unbounded. Beyond it a new stream gets
	// RESOURCE_EXHAUSTED.
	MaxStreams int

	mu      sync.Mutex
	streams map[string]int
}

// Rule allows Principal ("*" for anyone identified) to do Action on the
// topics matching Topic and, for subscribe, in the groups matching Group
// (path.Match patterns, e.g. "orders.*"; an empty Group matches any group).
type Rule struct {
	Principal string
	Action    Action
	Topic     string
	Group     string
}

type principalKey struct{}

// Principal returns the caller's identity as set by Auth's interceptors, or
// Anonymous.
func Principal(ctx context.Context) string {
	if p, ok := ctx.Value(principalKey{}).(string); ok {
		return p
	}
	return Anonymous
}

func (a *Auth) enabled() bool { return a != nil && (len(a.Tokens) > 0 || a.RequireIdentity) }

// exempt lists the services that need no identity.
func exempt(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/") || strings.HasPrefix(fullMethod, "/grpc.reflection.")
}

// authenticate finds the caller's principal.
func (a *Auth) authenticate(ctx context.Context) (string, error) {
	if a == nil {
		return Anonymous, nil
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		for _, v := range md.Get("authorization") {
			scheme, tok, _ := strings.Cut(v, " ")
			if !strings.EqualFold(scheme, "bearer") {
				continue
			}
			for known, principal := range a.Tokens {
				if subtle.ConstantTimeCompare([]byte(known), []byte(strings.TrimSpace(tok))) == 1 {
					return principal, nil
				}
			}
			return "", status.Error(codes.Unauthenticated, "the bearer token is not known to this gateway: check the token the operator issued")
		}
	}
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 && len(ti.State.VerifiedChains[0]) > 0 {
			c := ti.State.VerifiedChains[0][0]
			switch {
			case c.Subject.CommonName != "":
				return c.Subject.CommonName, nil
			case len(c.DNSNames) > 0:
				return c.DNSNames[0], nil
			case len(c.URIs) > 0:
				return c.URIs[0].String(), nil
			}
		}
	}
	if a.enabled() {
		return "", status.Error(codes.Unauthenticated, "no identity: send \"authorization: Bearer <token>\" metadata or connect with a client certificate")
	}
	return Anonymous, nil
}

// authorize returns a KindPermission error unless the caller may do action
// on topic (and, for subscribe, in group).
func (a *Auth) authorize(ctx context.Context, action Action, topic, group string) *kafkaio.Error {
	if a == nil || a.Rules == nil {
		return nil
	}
	who := Principal(ctx)
	for _, r := range a.Rules {
		if (r.Principal == "*" || r.Principal == who) && r.Action == action && match(r.Topic, topic) && (action != ActionSubscribe || r.Group == "" || match(r.Group, group)) {
			return nil
		}
	}
	what := fmt.Sprintf("%s topic %q", action, topic)
	if action == ActionSubscribe {
		what += fmt.Sprintf(" in group %q", group)
	}
	return &kafkaio.Error{Kind: kafkaio.KindPermission, Reason: "NOT_ALLOWED",
		Message: fmt.Sprintf("principal %q may not %s: ask the gateway's operator for a rule", who, what)}
}

func match(pattern, name string) bool {
	ok, err := path.Match(pattern, name)
	return err == nil && ok
}

// UnaryInterceptor authenticates unary calls.
func (a *Auth) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if exempt(info.FullMethod) {
			return handler(ctx, req)
		}
		who, err := a.authenticate(ctx)
		if err != nil {
			return nil, err
		}
		return handler(context.WithValue(ctx, principalKey{}, who), req)
	}
}

// StreamInterceptor authenticates streams and enforces MaxStreams.
func (a *Auth) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if exempt(info.FullMethod) {
			return handler(srv, ss)
		}
		who, err := a.authenticate(ss.Context())
		if err != nil {
			return err
		}
		if release, err := a.openStream(who); err != nil {
			return err
		} else {
			defer release()
		}
		return handler(srv, &ctxStream{ServerStream: ss, ctx: context.WithValue(ss.Context(), principalKey{}, who)})
	}
}

func (a *Auth) openStream(who string) (release func(), err error) {
	if a == nil || a.MaxStreams <= 0 {
		return func() {}, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.streams == nil {
		a.streams = map[string]int{}
	}
	if a.streams[who] >= a.MaxStreams {
		return nil, toStatus(&kafkaio.Error{Kind: kafkaio.KindExhausted, Reason: "TOO_MANY_STREAMS",
			Message: fmt.Sprintf("principal %q has %d streams open, the most this gateway allows: close one first", who, a.MaxStreams)})
	}
	a.streams[who]++
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.streams[who]--; a.streams[who] == 0 {
			delete(a.streams, who)
		}
	}, nil
}

// ctxStream is a ServerStream with a context of its own.
type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }

// ParseTokens reads a token file: one "principal token" pair per line;
// blank lines and lines starting with '#' are ignored.
func ParseTokens(r io.Reader) (map[string]string, error) {
	tokens := map[string]string{}
	err := eachLine(r, func(n int, f []string) error {
		if len(f) != 2 {
			return fmt.Errorf("line %d: want \"principal token\", got %d fields", n, len(f))
		}
		if _, dup := tokens[f[1]]; dup {
			return fmt.Errorf("line %d: the same token is given twice", n)
		}
		tokens[f[1]] = f[0]
		return nil
	})
	return tokens, err
}

// ParseRules reads an ACL file: one "principal action topic-pattern
// [group-pattern]" rule per line, action being publish or subscribe;
// blank lines and lines starting with '#' are ignored.
func ParseRules(r io.Reader) ([]Rule, error) {
	rules := []Rule{}
	err := eachLine(r, func(n int, f []string) error {
		if len(f) < 3 || len(f) > 4 {
			return fmt.Errorf("line %d: want \"principal publish|subscribe topic-pattern [group-pattern]\"", n)
		}
		r := Rule{Principal: f[0], Action: Action(f[1]), Topic: f[2]}
		if len(f) == 4 {
			r.Group = f[3]
		}
		if r.Action != ActionPublish && r.Action != ActionSubscribe {
			return fmt.Errorf("line %d: action %q: use publish or subscribe", n, f[1])
		}
		if r.Action == ActionPublish && r.Group != "" {
			return fmt.Errorf("line %d: a publish rule takes no group", n)
		}
		for _, p := range []string{r.Topic, r.Group} {
			if _, err := path.Match(p, ""); err != nil {
				return fmt.Errorf("line %d: bad pattern %q: %v", n, p, err)
			}
		}
		rules = append(rules, r)
		return nil
	})
	return rules, err
}

func eachLine(r io.Reader, f func(n int, fields []string) error) error {
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := f(n, strings.Fields(line)); err != nil {
			return err
		}
	}
	return sc.Err()
}
