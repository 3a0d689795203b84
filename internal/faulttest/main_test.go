package faulttest

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"os"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/gatewaytest"
	"github.com/kgate/kgate/internal/kafkatest"
	"github.com/kgate/kgate/internal/verify"
	"github.com/kgate/kgate/kafkaio"
)

func TestMain(m *testing.M) { kafkatest.Main(m) }

const (
	timeoutScale = gatewaytest.TimeoutScale // waits stretched under -race
	raceEnabled  = gatewaytest.RaceEnabled
)

// gateway is an in-process kgate gRPC server on 127.0.0.1, assembled as
// cmd/gateway assembles it, with a client connection.
type gateway struct {
	addr    string
	conn    *grpc.ClientConn
	prod    *kafkaio.Producer
	pub     kgatev1.PublisherClient
	sub     kgatev1.SubscriberClient
	brokers string
}

// logger discards the gateway's logs (faults make librdkafka log an error
// per dropped connection) unless the tests run with -v and KGATE_TEST_LOG
// set: warnings and errors, or everything with KGATE_TEST_LOG=debug.
func logger(t testing.TB) *slog.Logger {
	if testing.Verbose() && os.Getenv("KGATE_TEST_LOG") != "" {
		lvl := slog.LevelWarn
		if os.Getenv("KGATE_TEST_LOG") == "debug" {
			lvl = slog.LevelDebug
		}
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})).With("test", t.Name())
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startGateway starts a gateway in front of brokers, stopped and waited
// for when the test ends. sub adjusts the subscriber settings (default: a
// 200 ms commit interval, 6 s session timeout).
func startGateway(t testing.TB, cfg kafkaio.ProducerConfig, sub ...func(*kafkaio.SubscriberConfig)) *gateway {
	t.Helper()
	cfg.Logger = logger(t)
	// librdkafka's debug contexts for the producer, for example eos,msg
	// (seen with KGATE_TEST_LOG=debug).
	if d := os.Getenv("KGATE_TEST_RDKAFKA_DEBUG"); d != "" {
		cfg.Kafka = maps.Clone(cfg.Kafka)
		if cfg.Kafka == nil {
			cfg.Kafka = map[string]string{}
		}
		cfg.Kafka["debug"] = d
	}
	shorter := func(s *kafkaio.SubscriberConfig) { s.Kafka = map[string]string{"session.timeout.ms": "6000"} }
	g := gatewaytest.Start(t, gatewaytest.Options{Producer: cfg, Subscriber: append([]func(*kafkaio.SubscriberConfig){shorter}, sub...)})
	return &gateway{addr: g.Addr, conn: g.Conn, prod: g.Producer, pub: g.Pub, sub: g.Sub, brokers: cfg.Brokers}
}

func testContext(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d*timeoutScale)
	t.Cleanup(cancel)
	return ctx
}

// loadConfig shapes a publish load.
type loadConfig struct {
	topic       string
	workers     int           // concurrent publishers
	batch       int           // messages per Publish call
	size        int           // bytes per value
	callTimeout time.Duration // deadline of each call
	pace        time.Duration // pause between a worker's calls
	max         int           // stop after this many calls in all (0: until stopped)
}

// publisher runs a publish load, recording every attempt in rec.
type publisher struct {
	stop   context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	events []pubEvent // every call's outcome, in completion order
}

type pubEvent struct {
	at    time.Time
	class verify.Class
	err   error
	took  time.Duration
}

// startLoad publishes until stopped (or cfg.max calls); stopped and
// waited for when the test ends.
func startLoad(t testing.TB, pub kgatev1.PublisherClient, rec *verify.Recorder, cfg loadConfig) *publisher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &publisher{stop: cancel}
	var calls sync.Mutex
	n := 0
	for w := 0; w < cfg.workers; w++ {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for ctx.Err() == nil {
				calls.Lock()
				if cfg.max > 0 && n >= cfg.max {
					calls.Unlock()
					return
				}
				n++
				calls.Unlock()
				req := &kgatev1.PublishRequest{Topic: cfg.topic}
				ids := make([]string, cfg.batch)
				for i := range ids {
					ids[i] = rec.ID()
					req.Messages = append(req.Messages, &kgatev1.Message{Value: verify.Payload(ids[i], cfg.size)})
				}
				// A call's own deadline, not the load's context: stopping the
				// load lets calls in flight finish, so that no outcome is
				// made unknown by the test itself.
				cctx, ccancel := context.WithTimeout(context.Background(), cfg.callTimeout)
				began := time.Now()
				_, err := pub.Publish(cctx, req)
				ccancel()
				rec.RecordPublish(ids, err)
				p.mu.Lock()
				p.events = append(p.events, pubEvent{at: time.Now(), class: verify.Classify(err), err: err, took: time.Since(began)})
				p.mu.Unlock()
				if cfg.pace > 0 {
					select {
					case <-time.After(cfg.pace): // pacing the load
					case <-ctx.Done():
					}
				}
			}
		}()
	}
	t.Cleanup(p.Stop)
	return p
}

// slowest returns the longest call.
func (p *publisher) slowest() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var d time.Duration
	for _, e := range p.events {
		d = max(d, e.took)
	}
	return d
}

// Stop stops the load and waits for the calls in flight.
func (p *publisher) Stop() {
	p.stop()
	p.wg.Wait()
}

// Wait waits for a load with a call limit to finish.
func (p *publisher) Wait() { p.wg.Wait() }

// eventsSince returns the outcomes of calls that completed after at.
func (p *publisher) eventsSince(at time.Time) []pubEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []pubEvent
	for _, e := range p.events {
		if e.at.After(at) {
			out = append(out, e)
		}
	}
	return out
}

// stream is a test client's Subscribe stream (see gatewaytest.Stream).
type stream = gatewaytest.Stream

// openStream opens a Subscribe stream; it is cancelled and its receiver
// waited for when the test ends.
func openStream(t testing.TB, sub kgatev1.SubscriberClient, open *kgatev1.SubscribeOpen) *stream {
	t.Helper()
	return gatewaytest.OpenStream(t, sub, open)
}

func earliest(topic, group string) *kgatev1.SubscribeOpen {
	return &kgatev1.SubscribeOpen{Topics: []string{topic}, Group: group, StartPosition: kgatev1.StartPosition_START_POSITION_EARLIEST}
}
