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

// WatchKafka sets the health of the overall server ("") and of services to
// SERVING while p.Ping succeeds and NOT_SERVING while it fails, checking
// every interval. It blocks until ctx is done. It never undoes
// hs.Shutdown: after shutdown begins, every service stays NOT_SERVING.
func WatchKafka(ctx context.Context, hs *health.Server, p Pinger, interval time.Duration, log *slog.Logger, services ...string) {
	services = append([]string{""}, services...)
	serving := false
	check := func() {
		pctx, cancel := context.WithTimeout(ctx, interval)
		err := p.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		st := healthpb.HealthCheckResponse_SERVING
		if err != nil {
			st = healthpb.HealthCheckResponse_NOT_SERVING
		}
		if now := err == nil; now != serving {
			serving = now
			if now {
				log.Info("Kafka is reachable: health SERVING")
			} else {
				log.Warn("Kafka is not reachable: health NOT_SERVING", "err", err)
			}
		}
		for _, s := range services {
			hs.SetServingStatus(s, st)
		}
	}
	for _, s := range services {
		hs.SetServingStatus(s, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	check()
	t := time.NewTicker(interval)
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
