package server_test

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/protobuf/types/known/durationpb"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/kafkatest"
	"github.com/kgate/kgate/kafkaio"
	"github.com/kgate/kgate/server"
)

// scrape fetches /metrics as Prometheus would and returns each sample line
// ("name{labels}" -> value).
func scrape(t testing.TB, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %s %s", resp.Status, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// gatherSamples scrapes the test gateway's metrics over HTTP.
func gatherSamples(t testing.TB, gw *gateway) map[string]float64 {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(gw.metrics.Registry, promhttp.HandlerOpts{}))
	defer srv.Close()
	return scrape(t, srv.URL+"/metrics")
}

// sum adds the samples whose name is name and whose labels contain every
// one of labels.
func sum(samples map[string]float64, name string, labels ...string) (total float64, found bool) {
	for k, v := range samples {
		if k != name && !strings.HasPrefix(k, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(k, l)
		}
		if ok {
			total, found = total+v, true
		}
	}
	return total, found
}

func TestMetricsMoveWithPublishAndSubscribe(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "metrics", 2)
	gw := startGateway(t, kafkaProducer(brokers))
	srv := httptest.NewServer(promhttp.HandlerFor(gw.metrics.Registry, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	url := srv.URL + "/metrics"

	before := scrape(t, url)
	if v, ok := sum(before, "kgate_producer_inflight_limit_bytes"); !ok || v != 64<<20 {
		t.Fatalf("kgate_producer_inflight_limit_bytes = %v (found %v), want the 64 MiB default", v, ok)
	}
	publishN(t, gw, topic, 10, nil)
	_, _ = gw.pub.Publish(testContext(t, 10*time.Second), &kgatev1.PublishRequest{Topic: "bad topic", Messages: []*kgatev1.Message{{}}})

	group := kafkatest.Name("g")
	open := earliest([]string{topic}, group)
	open.MinBackoff = durationpb.New(10 * time.Millisecond)
	s := openStream(t, gw, open)
	recs := s.NextN(10, 30*time.Second)
	for _, m := range recs[1:] {
		s.Ack(m.AckId)
	}
	s.Nack(nil, recs[0].AckId)
	again := s.Next(30 * time.Second)
	s.Ack("not-an-ack-id")

	want := func(what string, cond func(map[string]float64) bool) {
		t.Helper()
		var last map[string]float64
		kafkatest.Eventually(t, 10*time.Second*timeoutScale, what, func() bool {
			last = scrape(t, url)
			return cond(last)
		})
	}
	atLeast := func(min float64, name string, labels ...string) func(map[string]float64) bool {
		return func(m map[string]float64) bool { v, _ := sum(m, name, labels...); return v >= min }
	}
	want("10 OK messages counted", atLeast(10, "kgate_publish_messages_total", `code="OK"`))
	want("the invalid message counted", atLeast(1, "kgate_publish_messages_total", `code="InvalidArgument"`))
	want("publish latency observed", atLeast(2, "kgate_publish_duration_seconds_count"))
	want("standard gRPC server metrics", atLeast(2, "grpc_server_handled_total", `grpc_method="Publish"`))
	want("Publish's one OK call and one invalid one", func(m map[string]float64) bool {
		ok, _ := sum(m, "grpc_server_handled_total", `grpc_method="Publish"`, `grpc_code="OK"`, `grpc_type="unary"`)
		bad, _ := sum(m, "grpc_server_handled_total", `grpc_method="Publish"`, `grpc_code="InvalidArgument"`)
		return ok >= 1 && bad >= 1
	})
	want("Publish latencies observed", atLeast(2, "grpc_server_handling_seconds_count", `grpc_method="Publish"`))
	want("Subscribe's messages counted as sent", atLeast(10, "grpc_server_msg_sent_total", `grpc_method="Subscribe"`, `grpc_type="bidi_stream"`))
	want("Subscribe's open and acks counted as received", atLeast(3, "grpc_server_msg_received_total", `grpc_method="Subscribe"`))
	want("the Subscribe stream counted as started", atLeast(1, "grpc_server_started_total", `grpc_method="Subscribe"`))
	want("one Subscribe stream open", atLeast(1, "kgate_streams", `rpc="Subscribe"`))
	want("the redelivery counted", atLeast(1, "kgate_subscribe_redeliveries_total", `group="`+group+`"`))
	want("the bad ack id counted", atLeast(1, "kgate_subscribe_ignored_acks_total", `group="`+group+`"`))
	want("one record outstanding", atLeast(1, "kgate_subscribe_outstanding_records"))
	want("commits counted", atLeast(1, "kgate_subscribe_commits_total", `result="ok"`))
	want("lag reported per partition", func(m map[string]float64) bool {
		_, ok := sum(m, "kgate_subscribe_lag_records", `group="`+group+`"`, `topic="`+topic+`"`)
		return ok
	})

	s.Ack(again.AckId)
	if err := s.End(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	want("stream gauge and outstanding back to 0, lag series removed", func(m map[string]float64) bool {
		streams, _ := sum(m, "kgate_streams", `rpc="Subscribe"`)
		held, _ := sum(m, "kgate_subscribe_outstanding_records")
		_, lag := sum(m, "kgate_subscribe_lag_records", `group="`+group+`"`)
		return streams == 0 && held == 0 && !lag
	})
}

// TestThrowawayGroupsLeaveNoSeriesBehind: 30 groups in three rounds of 10
// at once, each with one stream that acks a bad id (a group-labelled
// counter) and ends. With room for 5 group labels, no more than 5 groups
// are ever labelled (the others are counted under "_other"), and once the
// streams ended and the linger passed no series names any of them.
func TestThrowawayGroupsLeaveNoSeriesBehind(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "throwaway", 1)
	// A short linger: each group's consumer leaves (and gives its share of
	// the subscription budget back) soon after its stream ended.
	gw := startGatewayWith(t, kafkaProducer(brokers), security{metrics: []server.MetricsOption{server.WithGroupSeries(5, 500*time.Millisecond)}},
		func(s *kafkaio.SubscriberConfig) { s.Linger = 100 * time.Millisecond })
	publishN(t, gw, topic, 1, nil)
	groups := map[string]bool{}
	labelled := func(m map[string]float64) map[string]bool {
		out := map[string]bool{}
		for k := range m {
			if !strings.HasPrefix(k, "kgate_subscribe_") {
				continue
			}
			if _, rest, ok := strings.Cut(k, `group="`); ok {
				out[rest[:strings.IndexByte(rest, '"')]] = true
			}
		}
		return out
	}
	most := 0
	for range 3 {
		var streams []*stream
		for range 10 {
			group := kafkatest.Name("throwaway-g")
			groups[group] = true
			s := openStream(t, gw, earliest([]string{topic}, group))
			s.Ack("not-an-ack-id", s.Next(30*time.Second).AckId)
			streams = append(streams, s)
		}
		kafkatest.Eventually(t, 10*time.Second*timeoutScale, "the bad ack ids are counted", func() bool {
			samples := gatherSamples(t, gw)
			l := labelled(samples)
			delete(l, "_other")
			most = max(most, len(l))
			n, _ := sum(samples, "kgate_subscribe_ignored_acks_total")
			return n >= 10
		})
		for _, s := range streams {
			if err := s.End(30 * time.Second); err != nil {
				t.Fatal(err)
			}
		}
	}
	if most > 5 {
		t.Errorf("%d groups labelled at once, want at most 5", most)
	}
	if n, _ := sum(gatherSamples(t, gw), "kgate_subscribe_ignored_acks_total", `group="_other"`); n < 5 {
		t.Errorf("%v ignored acks counted under group _other, want those of the groups without a label", n)
	}
	kafkatest.Eventually(t, 30*time.Second*timeoutScale, "no series names a throwaway group once the linger passed", func() bool {
		for g := range labelled(gatherSamples(t, gw)) {
			if groups[g] {
				return false
			}
		}
		return true
	})
}
