package server

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"sync/atomic"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/kafkaio"
)

// Action is what a principal may be allowed to do with a topic.
type Action string

// Actions that ACL rules name.
const (
	ActionPublish   Action = "publish"
	ActionSubscribe Action = "subscribe"
	// ActionAdmin allows kgate.v1.Admin calls on the topics (and groups)
	// a rule matches.
	ActionAdmin Action = "admin"
)

// Anonymous is the principal of calls when authentication is off. It is
// reserved: no token and no certificate may name it.
const Anonymous = "anonymous"

// anyPrincipal in a rule matches every identified principal, never
// Anonymous.
const anyPrincipal = "*"

// AuthConfig is what an Auth identifies and authorizes callers with.
type AuthConfig struct {
	// Tokens maps bearer tokens to principals. No principal may be
	// Anonymous or "*".
	Tokens map[string]string
	// RequireIdentity refuses anonymous calls even without Tokens (set it
	// with mTLS, where the TLS handshake already demands a certificate).
	RequireIdentity bool
	// Rules, when not nil, are the only permissions: a call is allowed when
	// some rule matches, else PERMISSION_DENIED. nil allows everything,
	// except the Admin calls that change something, which then need an
	// identified principal unless AllowAnonymousAdmin.
	Rules []Rule
	// AllowAnonymousAdmin lets anonymous callers make the Admin calls that
	// change something (offset resets, redrives) when there are no Rules.
	AllowAnonymousAdmin bool
}

// Auth authenticates callers and authorizes what they do. A nil *Auth lets
// everyone do everything as Anonymous.
//
// A caller is identified by a bearer token ("authorization: Bearer <t>"
// metadata) found in Tokens, or else by the verified client certificate of
// an mTLS connection: its subject common name, else its first DNS name,
// else its first URI. Tokens and certificates name principals in one name
// space: a token of principal "alice" and a certificate for CN "alice" are
// the same caller, with the same rules, groups and stream counts. When
// Tokens is set or RequireIdentity is true, a call with neither is
// UNAUTHENTICATED. Health checks and server reflection need no identity.
//
// Consumer groups have owners: a subscribe rule with a group pattern
// allows the groups it matches; one without allows only the principal's
// own groups, named after it: the principal's name itself, or its name, a
// '.' and anything ("alice", "alice.billing"). Where two principals the
// gateway knows of (from Tokens and Rules) could both claim a group that
// way ("alice" and "alice.ops" for "alice.ops.audit"), the longer name
// owns it.
//
// Auth is safe for concurrent use; Reload swaps its tokens and rules while
// calls run.
type Auth struct {
	// identify is true when every call must be identified: Tokens were
	// given, or RequireIdentity. Reload does not change it.
	identify bool
	// anonymousAdmin is AuthConfig.AllowAnonymousAdmin.
	anonymousAdmin bool
	policy         atomic.Pointer[policy]
}

// policy is an Auth's tokens and rules, replaced whole by Reload.
type policy struct {
	tokens map[[sha256.Size]byte]string // sha256 of the token -> principal
	rules  []Rule                       // nil: everything allowed
	// known are the principals named by tokens and rules, longest first:
	// the candidate owners of a group (see Auth).
	known []string
}

// Rule allows Principal ("*" for every identified principal, never
// Anonymous) to do Action on the topics matching Topic and, for subscribe,
// in the groups matching Group (path.Match patterns, e.g. "orders.*"; an
// empty Group allows the principal's own groups, see Auth).
type Rule struct {
	Principal string
	Action    Action
	Topic     string
	Group     string
}

// String is the rule as an ACL file line.
func (r Rule) String() string {
	return strings.TrimSpace(fmt.Sprintf("%s %s %s %s", r.Principal, r.Action, r.Topic, r.Group))
}

// NewAuth returns an Auth for cfg, or an error saying what in cfg would
// not work.
func NewAuth(cfg AuthConfig) (*Auth, error) {
	a := &Auth{identify: len(cfg.Tokens) > 0 || cfg.RequireIdentity, anonymousAdmin: cfg.AllowAnonymousAdmin}
	if err := a.Reload(cfg.Tokens, cfg.Rules); err != nil {
		return nil, err
	}
	return a, nil
}

// Reload replaces the tokens and rules; calls that start afterwards see the
// new ones, and streams already open go on. On an error nothing changes.
// Whether calls must be identified is fixed by NewAuth: tokens cannot be
// emptied once given.
func (a *Auth) Reload(tokens map[string]string, rules []Rule) error {
	if old := a.policy.Load(); old != nil && (len(old.tokens) > 0) != (len(tokens) > 0) {
		if len(tokens) == 0 {
			return fmt.Errorf("no token left: tokens cannot be turned off while the gateway runs")
		}
		return fmt.Errorf("tokens cannot be turned on while the gateway runs: restart it with them")
	}
	p := &policy{tokens: make(map[[sha256.Size]byte]string, len(tokens)), rules: rules}
	seen := map[string]bool{}
	for tok, who := range tokens {
		if err := checkPrincipalName(who); err != nil {
			return fmt.Errorf("token principal: %w", err)
		}
		p.tokens[sha256.Sum256([]byte(tok))] = who
		seen[who] = true
	}
	for _, r := range rules {
		switch {
		case r.Principal == Anonymous && a.identify:
			return fmt.Errorf("rule %q names %s, but every caller must identify (tokens or client certificates): no call is anonymous", r, Anonymous)
		case r.Principal == anyPrincipal && !a.identify:
			return fmt.Errorf("rule %q names %q, which matches identified principals only, but this gateway identifies nobody (no tokens, no client CA): name %s instead", r, anyPrincipal, Anonymous)
		case r.Principal != anyPrincipal:
			seen[r.Principal] = true
		}
	}
	for who := range seen {
		p.known = append(p.known, who)
	}
	sort.Slice(p.known, func(i, j int) bool { return len(p.known[i]) > len(p.known[j]) })
	a.policy.Store(p)
	return nil
}

// checkPrincipalName refuses the names the gateway reserves.
func checkPrincipalName(who string) error {
	switch who {
	case Anonymous:
		return fmt.Errorf("%q is reserved for unauthenticated callers: name the principal otherwise", Anonymous)
	case anyPrincipal:
		return fmt.Errorf("%q is reserved (in rules it means every identified principal): name the principal otherwise", anyPrincipal)
	}
	return nil
}

type principalKey struct{}

// Principal returns the caller's identity as Auth found it, or Anonymous.
func Principal(ctx context.Context) string {
	if p, ok := ctx.Value(principalKey{}).(string); ok {
		return p
	}
	return Anonymous
}

func withPrincipal(ctx context.Context, who string) context.Context {
	return context.WithValue(ctx, principalKey{}, who)
}

// identified reports whether ctx carries a principal Auth found.
func identified(ctx context.Context) bool {
	_, ok := ctx.Value(principalKey{}).(string)
	return ok
}

// exempt lists the services that need no identity.
func exempt(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/") || strings.HasPrefix(fullMethod, "/grpc.reflection.")
}

// The UNAUTHENTICATED statuses, made once: an unauthenticated flood is
// refused without building one per call.
var (
	errNoIdentity = unauthenticated(ReasonNoIdentity,
		`no identity: send "authorization: Bearer <token>" metadata or connect with a client certificate`)
	errUnknownToken = unauthenticated(ReasonUnknownToken,
		"the bearer token is not known to this gateway: check the token the operator issued")
	errReservedPrincipal = unauthenticated(ReasonReservedPrincipal,
		`the client certificate names a principal the gateway reserves ("anonymous" or "*"): ask for a certificate with another name`)
)

// ErrorInfo reasons of UNAUTHENTICATED.
const (
	ReasonNoIdentity        = "NO_IDENTITY"
	ReasonUnknownToken      = "UNKNOWN_TOKEN"
	ReasonReservedPrincipal = "RESERVED_PRINCIPAL"
)

func unauthenticated(reason, msg string) error {
	st := status.New(codes.Unauthenticated, msg)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: errorDomain}); err == nil {
		st = d
	}
	return st.Err()
}

// authenticate finds the caller's principal from ctx's metadata and peer.
// It does not block and allocates little: it runs on the connection's
// reader, before the request is read.
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
			if who, ok := a.policy.Load().tokens[sha256.Sum256([]byte(strings.TrimSpace(tok)))]; ok {
				return who, nil
			}
			return "", errUnknownToken
		}
	}
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 && len(ti.State.VerifiedChains[0]) > 0 {
			c := ti.State.VerifiedChains[0][0]
			who := ""
			switch {
			case c.Subject.CommonName != "":
				who = c.Subject.CommonName
			case len(c.DNSNames) > 0:
				who = c.DNSNames[0]
			case len(c.URIs) > 0:
				who = c.URIs[0].String()
			}
			if checkPrincipalName(who) != nil {
				return "", errReservedPrincipal
			}
			if who != "" {
				return who, nil
			}
		}
	}
	if a.identify {
		return "", errNoIdentity
	}
	return Anonymous, nil
}

// authorize returns an error unless the caller may do action on topic
// (and, for subscribe, in group): a KindPermission error naming what is
// missing, or, when there are rules, a KindInvalid one for a name Kafka
// would refuse anyway, checked first, so that a huge name costs no more
// than a short one.
func (a *Auth) authorize(ctx context.Context, action Action, topic, group string) *kafkaio.Error {
	if a == nil {
		return nil
	}
	p := a.policy.Load()
	if p.rules == nil {
		return nil // kafkaio checks the names, saying which field is wrong
	}
	if err := kafkaio.ValidateTopic(topic); err != nil {
		return err.(*kafkaio.Error)
	}
	if action == ActionSubscribe {
		if err := kafkaio.ValidateGroup(group); err != nil {
			return err.(*kafkaio.Error)
		}
	}
	who := Principal(ctx)
	for _, r := range p.rules {
		if r.appliesTo(who) && r.Action == action && match(r.Topic, topic) &&
			(action != ActionSubscribe || p.allowsGroup(r, who, group)) {
			return nil
		}
	}
	what := fmt.Sprintf("%s topic %s", action, kafkaio.QuoteName(topic))
	hint := "ask the gateway's operator for a rule"
	if action == ActionSubscribe {
		what += " in group " + kafkaio.QuoteName(group)
		hint = fmt.Sprintf("its own groups are %s and %s followed by '.' and anything; for another group, ask the gateway's operator for a rule naming it",
			kafkaio.QuoteName(who), kafkaio.QuoteName(who))
	}
	return &kafkaio.Error{Kind: kafkaio.KindPermission, Reason: ReasonNotAllowed,
		Message: fmt.Sprintf("principal %s may not %s: %s", kafkaio.QuoteName(who), what, hint)}
}

// ReasonNotAllowed is the ErrorInfo reason of PERMISSION_DENIED when no
// ACL rule allows the call.
const ReasonNotAllowed = "NOT_ALLOWED"

// owns reports whether group is one of who's own groups: who, or who + "."
// + anything, unless a longer known principal claims it the same way.
func (p *policy) owns(who, group string) bool {
	if !namedAfter(group, who) {
		return false
	}
	for _, other := range p.known { // longest first
		if len(other) <= len(who) {
			break
		}
		if namedAfter(group, other) {
			return false
		}
	}
	return true
}

func namedAfter(group, who string) bool {
	return group == who || (strings.HasPrefix(group, who) && len(group) > len(who) && group[len(who)] == '.')
}

func match(pattern, name string) bool {
	ok, err := path.Match(pattern, name)
	return err == nil && ok
}

// ParseTokens reads a token file: one "principal token" pair per line;
// blank lines and lines starting with '#' are ignored. The principals
// "anonymous" and "*" are refused.
func ParseTokens(r io.Reader) (map[string]string, error) {
	tokens := map[string]string{}
	err := eachLine(r, func(n int, f []string) error {
		if len(f) != 2 {
			return fmt.Errorf("line %d: want \"principal token\", got %d fields", n, len(f))
		}
		if err := checkPrincipalName(f[0]); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
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
// [group-pattern]" rule per line, action being publish, subscribe or admin;
// blank lines and lines starting with '#' are ignored.
func ParseRules(r io.Reader) ([]Rule, error) {
	rules := []Rule{}
	err := eachLine(r, func(n int, f []string) error {
		if len(f) < 3 || len(f) > 4 {
			return fmt.Errorf("line %d: want \"principal publish|subscribe|admin topic-pattern [group-pattern]\"", n)
		}
		r := Rule{Principal: f[0], Action: Action(f[1]), Topic: f[2]}
		if len(f) == 4 {
			r.Group = f[3]
		}
		if r.Action != ActionPublish && r.Action != ActionSubscribe && r.Action != ActionAdmin {
			return fmt.Errorf("line %d: action %q: use publish, subscribe or admin", n, f[1])
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

// authorizeAdmin returns an error unless the caller may make an Admin call
// on topic and group (either may be empty: not part of the call). With
// rules, an admin rule must match both (a rule without a group pattern
// matches the principal's own groups, as for subscribe). Without rules,
// calls that change something need an identified principal unless
// anonymous admin is allowed; other calls are open, like Subscribe.
func (a *Auth) authorizeAdmin(ctx context.Context, topic, group string, change bool) *kafkaio.Error {
	if a == nil {
		return nil
	}
	who := Principal(ctx)
	p := a.policy.Load()
	if p.rules == nil {
		if change && who == Anonymous && !a.anonymousAdmin {
			return &kafkaio.Error{Kind: kafkaio.KindPermission, Reason: ReasonNotAllowed,
				Message: "an anonymous caller may not change offsets or redrive dead letters: identify with a bearer token or a client certificate, or run the gateway with --allow-anonymous-admin (not on an open port)"}
		}
		return nil
	}
	if p.adminAllows(who, topic, group) {
		return nil
	}
	what := "make Admin calls"
	if topic != "" {
		what += " on topic " + kafkaio.QuoteName(topic)
	}
	if group != "" {
		what += " for group " + kafkaio.QuoteName(group)
	}
	return &kafkaio.Error{Kind: kafkaio.KindPermission, Reason: ReasonNotAllowed,
		Message: fmt.Sprintf("principal %s may not %s: ask the gateway's operator for an admin rule (\"principal admin topic-pattern [group-pattern]\")", kafkaio.QuoteName(who), what)}
}

// caller says who the caller is and whether any change may be allowed to
// it (see kgatev1.Caller).
func (a *Auth) caller(ctx context.Context) *kgatev1.Caller {
	who := Principal(ctx)
	c := &kgatev1.Caller{Principal: who, Identified: who != Anonymous, MayChange: true}
	if a == nil {
		return c
	}
	p := a.policy.Load()
	if p.rules == nil {
		c.MayChange = who != Anonymous || a.anonymousAdmin
		return c
	}
	c.Acl = true
	c.MayChange = p.adminAllows(who, "", "")
	return c
}

// appliesTo reports whether r is a rule for who: it names who, or is "*",
// which stands for any identified principal (never anonymous callers).
func (r Rule) appliesTo(who string) bool {
	return r.Principal == who || (r.Principal == anyPrincipal && who != Anonymous)
}

// allowsGroup reports whether r lets who use group: r's group pattern, or
// without one the groups who owns (named after who or prefixed by it).
func (p *policy) allowsGroup(r Rule, who, group string) bool {
	if r.Group == "" {
		return p.owns(who, group)
	}
	return match(r.Group, group)
}

// adminAllows reports whether a rule lets who administer topic and group
// ("" matches any).
func (p *policy) adminAllows(who, topic, group string) bool {
	for _, r := range p.rules {
		if r.Action != ActionAdmin || !r.appliesTo(who) {
			continue
		}
		if topic != "" && !match(r.Topic, topic) {
			continue
		}
		if group != "" && !p.allowsGroup(r, who, group) {
			continue
		}
		return true
	}
	return false
}

// adminFilter returns whether the caller may administer a topic or group,
// for lists: nil when everything is allowed.
func (a *Auth) adminFilter(ctx context.Context) func(topic, group string) bool {
	if a == nil {
		return nil
	}
	p := a.policy.Load()
	if p.rules == nil {
		return nil
	}
	who := Principal(ctx)
	return func(topic, group string) bool { return p.adminAllows(who, topic, group) }
}

// authorizeRead returns an error unless the caller may read records of
// topic: with rules, a subscribe rule for the topic, whatever its group
// pattern (Admin reads records without a group of the caller's).
func (a *Auth) authorizeRead(ctx context.Context, topic string) *kafkaio.Error {
	if a == nil {
		return nil
	}
	p := a.policy.Load()
	if p.rules == nil {
		return nil
	}
	who := Principal(ctx)
	for _, r := range p.rules {
		if r.Action == ActionSubscribe && r.appliesTo(who) && match(r.Topic, topic) {
			return nil
		}
	}
	return &kafkaio.Error{Kind: kafkaio.KindPermission, Reason: ReasonNotAllowed,
		Message: fmt.Sprintf("principal %s may not read the records of topic %s: ask the gateway's operator for a subscribe rule for it", kafkaio.QuoteName(who), kafkaio.QuoteName(topic))}
}
