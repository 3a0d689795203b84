package verify

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
)

func TestClassify(t *testing.T) {
	for i, tc := range []struct {
		err  error
		want Class
	}{
		{nil, OK},
		{status.Error(codes.OK, ""), OK},
		{status.Error(codes.DeadlineExceeded, "x"), Unknown},
		{status.Error(codes.Canceled, "x"), Unknown},
		{status.Error(codes.Unknown, "x"), Unknown},
		{context.DeadlineExceeded, Unknown},
		{fmt.Errorf("wrapped: %w", context.Canceled), Unknown},
		{status.Error(codes.ResourceExhausted, "x"), Failed},
		{kgateErr(codes.ResourceExhausted, "PRODUCER_QUEUE_FULL"), Failed},
		{kgateErr(codes.Unavailable, "ALL_BROKERS_ARE_DOWN"), Failed},
		{kgateErr(codes.Unavailable, "GATEWAY_SHUTTING_DOWN"), Failed},
		{kgateErr(codes.Unavailable, "MESSAGE_TIMED_OUT"), Unknown},
		// UNAVAILABLE without the gateway's ErrorInfo: gRPC's own, such as
		// "connection reset by peer" when the gateway was killed mid-call.
		{status.Error(codes.Unavailable, "error reading from server: read: connection reset by peer"), Unknown},
		{withInfo(codes.Unavailable, &errdetails.ErrorInfo{Reason: "MESSAGE_TIMED_OUT", Domain: "example.com"}), Unknown},
		{withInfo(codes.Unavailable, &errdetails.ErrorInfo{Reason: "ALL_BROKERS_ARE_DOWN", Domain: "example.com"}), Unknown},
		{status.Error(codes.InvalidArgument, "x"), Failed},
		{kgateErr(codes.Internal, "FATAL_PRODUCER_ERROR"), Failed},
		// INTERNAL without the gateway's ErrorInfo: a panic in the handler.
		{status.Error(codes.Internal, "internal error; see the gateway's log"), Unknown},
		{fmt.Errorf("not a status"), Unknown}, // status.Code of a plain error is Unknown
	} {
		if got := Classify(tc.err); got != tc.want {
			t.Errorf("%d: Classify(%v) = %v, want %v", i, tc.err, got, tc.want)
		}
	}
}

// kgateErr is an error as the gateway answers it: with its ErrorInfo.
func kgateErr(c codes.Code, reason string) error {
	return withInfo(c, &errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain})
}

func withInfo(c codes.Code, info *errdetails.ErrorInfo) error {
	st, err := status.New(c, "x").WithDetails(info)
	if err != nil {
		panic(err)
	}
	return st.Err()
}

func TestPayloadCarriesItsID(t *testing.T) {
	r := New("t|x")
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		id := r.ID()
		if seen[id] {
			t.Fatalf("id %s twice", id)
		}
		seen[id] = true
		for _, size := range []int{0, 1, len(id) + 1, 1024} {
			p := Payload(id, size)
			if len(p) < size {
				t.Fatalf("Payload(%s, %d) is %d bytes", id, size, len(p))
			}
			if got := IDOf(p); got != id {
				t.Fatalf("IDOf(Payload(%s, %d)) = %q", id, size, got)
			}
		}
	}
	if IDOf([]byte("no separator")) != "" || IDOf([]byte("|x")) != "" || IDOf(nil) != "" {
		t.Fatal("IDOf found an id in a value without one")
	}
}

func TestReport(t *testing.T) {
	for i, tc := range []struct {
		name     string
		outcomes map[string][]error // id -> attempts
		consumed []string           // ids, in delivery order
		want     string             // Report fields
		problems []string           // substrings, one per problem
	}{
		{name: "all ok and consumed once",
			outcomes: map[string][]error{"a": {nil}, "b": {nil}},
			consumed: []string{"a", "b"},
			want:     "published=2 ok=2 failed=0 unknown=0 consumed=2 lost=0 phantom=0 duplicates=0 (of ok: 0, same producer epoch: 0) unknown_found=0 foreign=0"},
		{name: "duplicates are counted, not failed",
			outcomes: map[string][]error{"a": {nil}, "b": {status.Error(codes.DeadlineExceeded, "")}},
			consumed: []string{"a", "a", "b", "b", "b"},
			want:     "published=2 ok=1 failed=0 unknown=1 consumed=5 lost=0 phantom=0 duplicates=3 (of ok: 1, same producer epoch: 0) unknown_found=1 foreign=0"},
		{name: "unknown may be absent",
			outcomes: map[string][]error{"a": {status.Error(codes.Canceled, "")}, "b": {status.Error(codes.Unknown, "")}},
			want:     "published=2 ok=0 failed=0 unknown=2 consumed=0 lost=0 phantom=0 duplicates=0 (of ok: 0, same producer epoch: 0) unknown_found=0 foreign=0"},
		{name: "lost",
			outcomes: map[string][]error{"a": {nil}, "b": {nil}},
			consumed: []string{"b"},
			want:     "published=2 ok=2 failed=0 unknown=0 consumed=1 lost=1 phantom=0",
			problems: []string{"1 records that got OK were never consumed (lost), e.g. [p-a]"}},
		{name: "phantom: resource exhausted yet written",
			outcomes: map[string][]error{"a": {status.Error(codes.ResourceExhausted, "")}},
			consumed: []string{"a"},
			want:     "published=1 ok=0 failed=1 unknown=0 consumed=1 lost=0 phantom=1",
			problems: []string{"1 records whose publish failed were consumed"}},
		{name: "retried: failed then ok is ok",
			outcomes: map[string][]error{"a": {kgateErr(codes.Unavailable, "ALL_BROKERS_ARE_DOWN"), nil}},
			consumed: []string{"a"},
			want:     "published=2 ok=1 failed=0 unknown=0 consumed=1 lost=0 phantom=0"},
		{name: "retried: failed then unknown is unknown",
			outcomes: map[string][]error{"a": {kgateErr(codes.Unavailable, "ALL_BROKERS_ARE_DOWN"), status.Error(codes.DeadlineExceeded, "")}},
			consumed: []string{"a"},
			want:     "published=2 ok=0 failed=0 unknown=1 consumed=1 lost=0 phantom=0 duplicates=0 (of ok: 0, same producer epoch: 0) unknown_found=1"},
		{name: "foreign record",
			outcomes: map[string][]error{"a": {nil}},
			consumed: []string{"a", "zzz"},
			want:     "consumed=2 lost=0 phantom=0 duplicates=0 (of ok: 0, same producer epoch: 0) unknown_found=0 foreign=1",
			problems: []string{"1 consumed records were never published"}},
	} {
		t.Run(fmt.Sprintf("%d %s", i, tc.name), func(t *testing.T) {
			r := New("p")
			for id, errs := range tc.outcomes {
				for _, err := range errs {
					r.Record("p-"+id, err)
				}
			}
			for _, id := range tc.consumed {
				r.Consumed(Payload("p-"+id, 10))
			}
			rep := r.Report()
			if !strings.Contains(rep.String(), tc.want) {
				t.Errorf("report\n %s\nwant it to contain\n %s", rep, tc.want)
			}
			got := rep.Problems()
			if len(got) != len(tc.problems) {
				t.Fatalf("problems %q, want %d", got, len(tc.problems))
			}
			for j, p := range tc.problems {
				if !strings.Contains(got[j], p) {
					t.Errorf("problem %q, want it to contain %q", got[j], p)
				}
			}
		})
	}
}

// fakeTB records what Check reports.
type fakeTB struct {
	testing.TB
	mu     sync.Mutex
	logs   []string
	errors []string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Logf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs = append(f.logs, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func TestCheckLogsOneLineAndFailsOnLossOrPhantom(t *testing.T) {
	r := New("c")
	ok, failed := r.ID(), r.ID()
	r.Record(ok, nil)
	r.Record(failed, status.Error(codes.ResourceExhausted, "full"))
	r.AddRecords([]*kgo.Record{{Value: Payload(failed, 5)}})

	f := &fakeTB{TB: t}
	rep := r.Check(f)
	if len(f.logs) != 1 || strings.Contains(f.logs[0], "\n") || !strings.HasPrefix(f.logs[0], "verify: published=2 ok=1 failed=1") {
		t.Errorf("logs %q, want one summary line", f.logs)
	}
	if rep.Lost != 1 || rep.Phantom != 1 || len(f.errors) != 2 {
		t.Errorf("lost %d phantom %d errors %q; want 1, 1 and two errors", rep.Lost, rep.Phantom, f.errors)
	}

	clean := New("d")
	id := clean.ID()
	clean.Record(id, nil)
	clean.Consumed(Payload(id, 0))
	clean.Consumed(Payload(id, 0))
	f = &fakeTB{TB: t}
	if rep := clean.Check(f); len(f.errors) != 0 || rep.Duplicates != 1 {
		t.Errorf("a duplicate failed the check (%q) or was not counted (%d)", f.errors, rep.Duplicates)
	}
}

func TestRecorderIsSafeForConcurrentUse(t *testing.T) {
	r := New("cc")
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				id := r.ID()
				r.Record(id, nil)
				r.Consumed(Payload(id, 16))
			}
		}()
	}
	wg.Wait()
	if rep := r.Report(); rep.OK != 1600 || rep.Consumed != 1600 || rep.Lost != 0 || rep.Duplicates != 0 {
		t.Fatalf("got %s", rep)
	}
}

func TestRecordPublishUsesPerMessageOutcomesOfAPartialBatch(t *testing.T) {
	r := New("b")
	ids := []string{r.ID(), r.ID(), r.ID()}
	st, err := status.New(codes.ResourceExhausted, "1 of 3 not written").WithDetails(&kgatev1.PublishFailure{Outcomes: []*kgatev1.MessageOutcome{
		{Result: &kgatev1.PublishResult{Offset: 1}}, {Code: int32(codes.ResourceExhausted)}, {Code: int32(codes.DeadlineExceeded)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if ok := r.RecordPublish(ids, st.Err()); ok != 1 {
		t.Fatalf("RecordPublish counted %d OK, want 1", ok)
	}
	if ok := r.RecordPublish([]string{r.ID(), r.ID()}, nil); ok != 2 {
		t.Fatalf("RecordPublish of a successful batch counted %d OK, want 2", ok)
	}
	r.RecordPublish([]string{r.ID()}, kgateErr(codes.Unavailable, "ALL_BROKERS_ARE_DOWN"))
	r.RecordPublish([]string{r.ID()}, status.Error(codes.Unavailable, "connection reset by peer"))
	rep := r.Fork().Report()
	if rep.Published != 7 || rep.OK != 3 || rep.Failed != 2 || rep.Unknown != 2 || rep.Lost != 3 {
		t.Fatalf("got %s; want 7 published, 3 OK (all lost: nothing consumed in the fork), 2 failed, 2 unknown", rep)
	}
}

func TestConsumedBeforeTheOutcomeIsRecordedIsNotForeign(t *testing.T) {
	r := New("early")
	id := r.ID()
	r.Consumed(Payload(id, 8)) // the consumer is faster than the publisher's answer
	r.Record(id, nil)
	if rep := r.Report(); rep.Foreign != 0 || rep.Lost != 0 || rep.Consumed != 1 {
		t.Fatalf("got %s, want the early delivery to count", rep)
	}
	r.Consumed([]byte("no id at all"))
	if rep := r.Report(); rep.Foreign != 1 || len(rep.ForeignVals) != 1 {
		t.Fatalf("got %s %q, want one foreign delivery", rep, rep.ForeignVals)
	}
}

func TestCopiesWithinOneProducerEpochAreAProblemAndAcrossEpochsAreNot(t *testing.T) {
	r := New("e")
	rebumped, twice, plain := r.ID(), r.ID(), r.ID()
	for _, id := range []string{rebumped, twice, plain} {
		r.Record(id, nil)
	}
	r.AddRecords([]*kgo.Record{
		{Value: Payload(rebumped, 8), ProducerID: 7, ProducerEpoch: 0},
		{Value: Payload(rebumped, 8), ProducerID: 7, ProducerEpoch: 1}, // written again after an epoch bump
		{Value: Payload(twice, 8), ProducerID: 7, ProducerEpoch: 1},
		{Value: Payload(twice, 8), ProducerID: 7, ProducerEpoch: 1}, // a retry written twice
		{Value: Payload(plain, 8), ProducerID: -1},                  // not idempotent: only counted
		{Value: Payload(plain, 8), ProducerID: -1},
	})
	rep := r.Report()
	if rep.Duplicates != 3 || rep.DuplicatesOK != 3 || rep.SameEpoch != 1 {
		t.Errorf("duplicates %d, of ok %d, same epoch %d; want 3, 3, 1", rep.Duplicates, rep.DuplicatesOK, rep.SameEpoch)
	}
	if p := rep.Problems(); len(p) != 1 || !strings.Contains(p[0], "1 records were written again by the producer and epoch that had written them") {
		t.Errorf("problems %q, want the same-epoch copy alone", p)
	}
	if f := r.Fork(); f.Report().SameEpoch != 0 {
		t.Error("a fork kept the copies read back")
	}
}
