package server

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Pinger reports whether Kafka is reachable; *kafkaio.Producer implements it.
type Pinger interface {
	// Ping returns nil when the brokers answered. It must return by ctx's
	// deadline.
	Ping(ctx context.Context) error
}

// HealthPolicy says how often WatchKafka checks Kafka and how many failed
// checks it takes to report NOT_SERVING. Zero fields mean the defaults.
type HealthPolicy struct {
	// Interval is the time between checks, and the time each check may
	// take. Default 2 s.
	Interval time.Duration
	// Failures is how many consecutive checks must fail before SERVING
	// turns into NOT_SERVING, so that one slow or failed metadata request
	// (a loaded machine, a broker's GC pause) does not make a load balancer
	// drop the instance. The first successful check turns it back to
	// SERVING. Default 3: NOT_SERVING between 2 and 3 intervals after
	// Kafka stopped answering.
	Failures int
}

func (p *HealthPolicy) setDefaults() {
	if p.Interval <= 0 {
		p.Interval = 2 * time.Second
	}
	if p.Failures <= 0 {
		p.Failures = 3
	}
}

// reachability turns the results of Kafka checks into a serving state:
// NOT_SERVING until the first successful check, then SERVING until
// failures consecutive checks failed, and SERVING again at the first
// success. It is plain data, owned by WatchKafka's goroutine.
type reachability struct {
	failures int  // consecutive failed checks that make NOT_SERVING
	failed   int  // consecutive failed checks so far
	serving  bool // the state
}

// observe records one check and returns the state after it.
func (r *reachability) observe(ok bool) (serving bool) {
	if ok {
		r.failed = 0
		r.serving = true
		return true
	}
	r.failed++
	if r.failed >= r.failures {
		r.serving = false
	}
	return r.serving
}

// WatchKafka sets the health of the overall server ("") and of services
// from p.Ping, checked every policy.Interval: NOT_SERVING until Kafka first
// answers, SERVING from then on until policy.Failures consecutive checks
// failed, SERVING again at the first check that succeeds. It blocks until
// ctx is done. It never undoes hs.Shutdown: after shutdown begins, every
// service stays NOT_SERVING.
func WatchKafka(ctx context.Context, hs *health.Server, p Pinger, policy HealthPolicy, log *slog.Logger, services ...string) {
	policy.setDefaults()
	services = append([]string{""}, services...)
	r := reachability{failures: policy.Failures}
	check := func() {
		pctx, cancel := context.WithTimeout(ctx, policy.Interval)
		err := p.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		was, failedBefore := r.serving, r.failed
		serving := r.observe(err == nil)
		switch {
		case serving && !was && failedBefore > 0:
			log.Info("Kafka is reachable again: health SERVING", "failed_checks", failedBefore)
		case serving && !was:
			log.Info("Kafka is reachable: health SERVING")
		case !serving && was:
			log.Warn("Kafka is not reachable: health NOT_SERVING", "failed_checks", r.failed, "err", err)
		case serving && err != nil:
			log.Info("a Kafka health check failed; health stays SERVING until more fail in a row",
				"failed_checks", r.failed, "not_serving_after", policy.Failures, "err", err)
		case serving && failedBefore > 0:
			log.Info("a Kafka health check succeeded again", "failed_checks", failedBefore)
		}
		st := healthpb.HealthCheckResponse_NOT_SERVING
		if serving {
			st = healthpb.HealthCheckResponse_SERVING
		}
		for _, s := range services {
			hs.SetServingStatus(s, st)
		}
	}
	for _, s := range services {
		hs.SetServingStatus(s, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	check()
	t := time.NewTicker(policy.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			check()
		}
	}
}
