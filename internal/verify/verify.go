// Package verify checks kgate's delivery promise under faults: every
// publish that got OK is later consumed, no publish that got an error is
// ever consumed, and a publish whose outcome is unknown may be consumed any
// number of times. Duplicates are counted, not failed, except two copies
// written by one producer under one epoch: the idempotent producer exists to
// prevent those.
//
// A load generator asks a Recorder for a unique payload (ID, Payload),
// publishes it, and records the outcome (Record). Afterwards the test feeds
// what came back, read from the topic with an independent client
// (AddRecords) or received on Subscribe streams (Consumed), and calls Check.
package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
)

// Class is what a publish outcome promises about the record.
type Class int

const (
	// OK: the gateway said the record is written; it must be consumed.
	OK Class = iota
	// Unknown: DEADLINE_EXCEEDED, CANCELED or UNKNOWN; UNAVAILABLE with
	// reason MESSAGE_TIMED_OUT (the brokers did not acknowledge in time,
	// possibly after writing); UNAVAILABLE or INTERNAL without kgate's
	// ErrorInfo (domain kgate.v1), which gRPC made, not the gateway: the
	// connection broke mid-call (the gateway was killed, a proxy or the
	// network cut it) or the handler panicked. The record may be consumed
	// any number of times, including none.
	Unknown
	// Failed: any other error (RESOURCE_EXHAUSTED, UNAVAILABLE with
	// kgate's ErrorInfo, INVALID_ARGUMENT, ...); the record must never be
	// consumed.
	Failed
)

func (c Class) String() string {
	switch c {
	case OK:
		return "ok"
	case Unknown:
		return "unknown"
	case Failed:
		return "failed"
	}
	return "Class(" + strconv.Itoa(int(c)) + ")"
}

// Classify classes the error a Publish call returned; nil is OK. Context
// errors of the caller count as unknown.
func Classify(err error) Class {
	if err == nil {
		return OK
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return Unknown
	}
	st := status.Convert(err)
	switch st.Code() {
	case codes.OK:
		return OK
	case codes.DeadlineExceeded, codes.Canceled, codes.Unknown:
		return Unknown
	}
	if possiblyWritten(st.Code(), kgateInfo(st)) {
		return Unknown
	}
	return Failed
}

// ErrorDomain is the google.rpc.ErrorInfo domain of the gateway's own
// errors.
const ErrorDomain = "kgate.v1"

// kgateInfo returns the gateway's ErrorInfo among st's details, or nil.
func kgateInfo(st *status.Status) *errdetails.ErrorInfo {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == ErrorDomain {
			return info
		}
	}
	return nil
}

// possiblyWritten reports whether an error with code and the gateway's
// ErrorInfo (nil when it has none) leaves the record possibly written, as
// the proto documents.
func possiblyWritten(c codes.Code, info *errdetails.ErrorInfo) bool {
	switch c {
	case codes.Unavailable:
		return info == nil || info.GetReason() == "MESSAGE_TIMED_OUT"
	case codes.Internal:
		return info == nil
	}
	return false
}

// sep ends the id at the start of a payload.
const sep = '|'

// Recorder records publish attempts and what was consumed. It is safe for
// concurrent use.
type Recorder struct {
	prefix string
	seq    atomic.Int64

	mu       sync.Mutex
	class    map[string]Class // by id, the best outcome of its attempts
	codes    map[codes.Code]int
	attempts int
	seen     map[string]int // by id, times consumed
	// by id, copies read back from the topic per producer ID and epoch
	writes   map[string]map[producerEpoch]int
	foreign  []string // consumed payloads without an id
	consumed int
}

// New returns a Recorder whose ids start with prefix (no '|' in it), so
// that two recorders never produce the same id.
func New(prefix string) *Recorder {
	return &Recorder{prefix: strings.ReplaceAll(prefix, string(sep), "_"), class: map[string]Class{},
		codes: map[codes.Code]int{}, seen: map[string]int{}, writes: map[string]map[producerEpoch]int{}}
}

// producerEpoch identifies the idempotent producer session that wrote a
// record: within one, the broker deduplicates retries by sequence number.
type producerEpoch struct {
	id    int64
	epoch int16
}

// ID returns a new unique payload id.
func (r *Recorder) ID() string {
	return r.prefix + "-" + strconv.FormatInt(r.seq.Add(1), 10)
}

// Payload returns a value carrying id, padded to size bytes when id is
// shorter.
func Payload(id string, size int) []byte {
	b := make([]byte, 0, max(size, len(id)+1))
	b = append(b, id...)
	b = append(b, sep)
	for len(b) < size {
		b = append(b, 'x')
	}
	return b
}

// IDOf returns the id carried by a value made by Payload, or "" when it
// carries none.
func IDOf(value []byte) string {
	i := bytes.IndexByte(value, sep)
	if i <= 0 {
		return ""
	}
	return string(value[:i])
}

// Record records the outcome of one attempt to publish id: err as the
// Publish call returned it. An id published more than once keeps its best
// class (OK over Unknown over Failed). It returns the attempt's class.
func (r *Recorder) Record(id string, err error) Class {
	c := Classify(err)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	r.codes[status.Code(err)]++
	if prev, ok := r.class[id]; !ok || c < prev {
		r.class[id] = c
	}
	return c
}

// RecordPublish records the outcome of one Publish call of a batch: ids
// in request order, err as the call returned it. When err carries a
// kgate.v1.PublishFailure (a partial batch), each message is recorded with
// its own outcome. It returns how many ids got OK.
func (r *Recorder) RecordPublish(ids []string, err error) (ok int) {
	if st, isStatus := status.FromError(err); isStatus && err != nil {
		for _, d := range st.Details() {
			f, isFailure := d.(*kgatev1.PublishFailure)
			if !isFailure || len(f.Outcomes) != len(ids) {
				continue
			}
			for i, o := range f.Outcomes {
				var e error
				if c := codes.Code(o.GetCode()); c != codes.OK {
					// A per-message outcome is the gateway's own answer.
					s, _ := status.New(c, o.GetMessage()).WithDetails(&errdetails.ErrorInfo{Reason: o.GetReason(), Domain: ErrorDomain})
					e = s.Err()
				}
				if r.Record(ids[i], e) == OK {
					ok++
				}
			}
			return ok
		}
	}
	for _, id := range ids {
		if r.Record(id, err) == OK {
			ok++
		}
	}
	return ok
}

// Fork returns a Recorder with the same publish outcomes and nothing
// consumed, to check a second consumer (a Subscribe stream besides the
// topic read back) against the same publishes.
func (r *Recorder) Fork() *Recorder {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := New(r.prefix)
	f.attempts = r.attempts
	for id, c := range r.class {
		f.class[id] = c
	}
	for c, n := range r.codes {
		f.codes[c] = n
	}
	return f
}

// Consumed records that a consumer received value (one delivery).
func (r *Recorder) Consumed(value []byte) { r.consume(value, nil) }

// AddRecords records the records read back from the topic, each once,
// with the producer ID and epoch that wrote them.
func (r *Recorder) AddRecords(recs []*kgo.Record) {
	for _, rec := range recs {
		var by *producerEpoch
		if rec.ProducerID >= 0 { // written by an idempotent producer
			by = &producerEpoch{rec.ProducerID, rec.ProducerEpoch}
		}
		r.consume(rec.Value, by)
	}
}

// consume records one delivery of value and, when by is known, which
// producer session wrote it.
func (r *Recorder) consume(value []byte, by *producerEpoch) {
	id := IDOf(value)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.consumed++
	if id == "" {
		if len(r.foreign) < 10 {
			r.foreign = append(r.foreign, fmt.Sprintf("%.40q", value))
		}
		return
	}
	// A consumer may see a record before its publisher learned the
	// outcome: whether an id is foreign is decided in Report.
	r.seen[id]++
	if by != nil {
		w := r.writes[id]
		if w == nil {
			w = map[producerEpoch]int{}
			r.writes[id] = w
		}
		w[*by]++
	}
}

// Seen reports how many times id was consumed so far.
func (r *Recorder) Seen(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[id]
}

// Report is the verdict: counts of attempts and consumption.
type Report struct {
	Published    int // publish attempts
	OK           int // ids that got OK
	Failed       int // ids whose every attempt failed
	Unknown      int // ids with an unknown outcome and no OK
	Consumed     int // deliveries (records read or messages received)
	Lost         int // OK ids never consumed
	Phantom      int // failed ids consumed
	Duplicates   int // deliveries beyond the first, of any id
	DuplicatesOK int // of those, deliveries of ids that got OK
	// Of Duplicates, copies in the topic written by the same producer ID
	// under the same epoch as an earlier copy: the idempotent producer's
	// retries were written twice. Copies under a later epoch are not
	// counted here: a non-transactional idempotent producer bumps its
	// epoch after a message timeout or UNKNOWN_PRODUCER_ID and then writes
	// again what it had sent but not had acknowledged, on every partition
	// (librdkafka#4953).
	SameEpoch    int
	UnknownFound int // unknown ids consumed at least once
	Foreign      int // deliveries of payloads never published
	Codes        map[codes.Code]int
	LostIDs      []string // up to 10
	PhantomIDs   []string // up to 10
	ForeignVals  []string // up to 10
}

// Report computes the verdict so far.
func (r *Recorder) Report() Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := Report{Published: r.attempts, Consumed: r.consumed, Foreign: r.consumed, Codes: map[codes.Code]int{}}
	for c, n := range r.codes {
		rep.Codes[c] = n
	}
	for id, c := range r.class {
		n := r.seen[id]
		rep.Foreign -= n
		if n > 1 {
			rep.Duplicates += n - 1
		}
		switch c {
		case OK:
			rep.OK++
			if n > 1 {
				rep.DuplicatesOK += n - 1
			}
			if n == 0 {
				rep.Lost++
				rep.LostIDs = append(rep.LostIDs, id)
			}
		case Failed:
			rep.Failed++
			if n > 0 {
				rep.Phantom++
				rep.PhantomIDs = append(rep.PhantomIDs, id)
			}
		case Unknown:
			rep.Unknown++
			if n > 0 {
				rep.UnknownFound++
			}
		}
	}
	for _, w := range r.writes {
		for _, n := range w {
			rep.SameEpoch += n - 1
		}
	}
	rep.ForeignVals = append(rep.ForeignVals, r.foreign...)
	for id := range r.seen {
		if _, ok := r.class[id]; !ok && len(rep.ForeignVals) < 10 {
			rep.ForeignVals = append(rep.ForeignVals, id)
		}
	}
	sort.Strings(rep.ForeignVals)
	sort.Strings(rep.LostIDs)
	sort.Strings(rep.PhantomIDs)
	rep.LostIDs = rep.LostIDs[:min(len(rep.LostIDs), 10)]
	rep.PhantomIDs = rep.PhantomIDs[:min(len(rep.PhantomIDs), 10)]
	return rep
}

// String is the one-line summary.
func (rep Report) String() string {
	var cs []string
	for c, n := range rep.Codes {
		cs = append(cs, fmt.Sprintf("%v=%d", c, n))
	}
	sort.Strings(cs)
	return fmt.Sprintf("published=%d ok=%d failed=%d unknown=%d consumed=%d lost=%d phantom=%d duplicates=%d (of ok: %d, same producer epoch: %d) unknown_found=%d foreign=%d codes=[%s]",
		rep.Published, rep.OK, rep.Failed, rep.Unknown, rep.Consumed, rep.Lost, rep.Phantom, rep.Duplicates, rep.DuplicatesOK, rep.SameEpoch, rep.UnknownFound, rep.Foreign, strings.Join(cs, " "))
}

// Problems lists the broken promises: lost OK'd records, failed records
// that were written, records written twice within one producer epoch, and
// records nobody published.
func (rep Report) Problems() []string {
	var p []string
	if rep.Lost > 0 {
		p = append(p, fmt.Sprintf("%d records that got OK were never consumed (lost), e.g. %v", rep.Lost, rep.LostIDs))
	}
	if rep.Phantom > 0 {
		p = append(p, fmt.Sprintf("%d records whose publish failed were consumed (phantom: the client was told they were not written), e.g. %v", rep.Phantom, rep.PhantomIDs))
	}
	if rep.SameEpoch > 0 {
		p = append(p, fmt.Sprintf("%d records were written again by the producer and epoch that had written them (idempotence broken)", rep.SameEpoch))
	}
	if rep.Foreign > 0 {
		p = append(p, fmt.Sprintf("%d consumed records were never published, e.g. %v", rep.Foreign, rep.ForeignVals))
	}
	return p
}

// Check logs the summary on one line and fails t (without stopping it) on
// any broken promise. It returns the report for further assertions.
func (r *Recorder) Check(t testing.TB) Report {
	t.Helper()
	rep := r.Report()
	t.Logf("verify: %s", rep)
	for _, p := range rep.Problems() {
		t.Errorf("verify: %s", p)
	}
	return rep
}
