// Package gatewaytest runs kgate's gRPC services in process for tests:
// assembled as cmd/gateway assembles them, served over TCP on 127.0.0.1 in
// front of a Kafka cluster, with a client connection. Everything Start
// starts is stopped, and waited for, when the test ends.
package gatewaytest

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"

	"github.com/kgate/kgate/console"
	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/kafkaio"
	"github.com/kgate/kgate/server"
)

// Options shape a test gateway.
type Options struct {
	// Producer configures the producer; its Brokers and Logger serve the
	// subscriber too.
	Producer kafkaio.ProducerConfig
	// Subscriber adjusts the subscriber settings, which start as the
	// producer's brokers and logger, the producer as dead-letter writer,
	// the metrics as observer, a 200 ms commit interval and the test's
	// name as the instance.
	Subscriber []func(*kafkaio.SubscriberConfig)
	// Auth, when set, authenticates and authorizes callers.
	Auth *server.Auth
	// Streams bounds the open streams (zero: unbounded).
	Streams server.StreamLimits
	// Listener, when set, wraps the gateway's listener (a connection
	// limit, for example); it gets the gateway's metrics.
	Listener func(net.Listener, *server.Metrics) net.Listener
	// MaxPublishMessages bounds a Publish request's messages (zero: the
	// default).
	MaxPublishMessages int
	// Metrics options (the group series' bounds).
	Metrics []server.MetricsOption
	// ServerOptions are extra gRPC server options (TLS, limits).
	ServerOptions []grpc.ServerOption
	// DialOptions are the client connection's; nil dials plaintext.
	DialOptions []grpc.DialOption
	// Admin serves kgate.v1.Admin (a kafkaio.Admin of the gateway's
	// brokers, with its subscriber and producer).
	Admin bool
	// HTTP serves the HTTP listener too (Connect, gRPC-Web, REST), on
	// 127.0.0.1; HTTPTLS, when set, is its TLS configuration.
	HTTP    bool
	HTTPTLS *tls.Config
	// MaxRequestBytes is the HTTP listener's bound (zero: the default).
	MaxRequestBytes int
}

// Gateway is a running test gateway.
type Gateway struct {
	Addr        string
	Conn        *grpc.ClientConn
	Pub         kgatev1.PublisherClient
	Sub         kgatev1.SubscriberClient
	Producer    *kafkaio.Producer
	Subscriber  *kafkaio.Subscriber
	Publishers  *server.PublisherService
	Subscribers *server.SubscriberService
	Health      *health.Server
	Metrics     *server.Metrics
	// Admin is the Admin client (with Options.Admin); KafkaAdmin its
	// backend.
	Admin      kgatev1.AdminClient
	KafkaAdmin *kafkaio.Admin
	// HTTPAddr is the HTTP listener's address (with Options.HTTP), and
	// HTTPURL its base URL (http:// or https://).
	HTTPAddr, HTTPURL string
}

// Start starts a gateway; it fails the test if any part cannot start.
func Start(t testing.TB, o Options) *Gateway {
	t.Helper()
	prod, err := kafkaio.NewProducer(o.Producer)
	if err != nil {
		t.Fatalf("NewProducer: %v", err)
	}
	metrics := server.NewMetrics(prod, o.Metrics...)
	sc := kafkaio.SubscriberConfig{Brokers: o.Producer.Brokers, DeadLetter: prod, Logger: o.Producer.Logger,
		CommitInterval: 200 * time.Millisecond, Observer: metrics, Instance: t.Name()}
	for _, adjust := range o.Subscriber {
		adjust(&sc)
	}
	ksub, err := kafkaio.NewSubscriber(sc)
	if err != nil {
		prod.Close(context.Background())
		t.Fatalf("NewSubscriber: %v", err)
	}
	metrics.WatchSubscriber(ksub)
	subs := server.NewSubscriberService(server.KafkaSubscriber(ksub), o.Producer.Logger, metrics)
	pubs := server.NewPublisherService(prod, metrics)
	hs := health.NewServer()
	var kadmin *kafkaio.Admin
	var admins *server.AdminService
	if o.Admin {
		if kadmin, err = kafkaio.NewAdmin(kafkaio.AdminConfig{Brokers: o.Producer.Brokers, Subscriber: ksub, Publisher: prod, Instance: t.Name(), Logger: o.Producer.Logger}); err != nil {
			prod.Close(context.Background())
			t.Fatalf("NewAdmin: %v", err)
		}
		admins = server.NewAdminService(kadmin)
		admins.SetGateway(server.GatewayInfo{Instance: t.Name(), Brokers: o.Producer.Brokers, Health: hs,
			Services: []string{server.PublisherServiceName, server.SubscriberServiceName, server.AdminServiceName}, Producer: prod, Subscriber: ksub,
			Metrics: metrics, Started: time.Now()})
	}
	gs := server.NewGRPCServer(server.Config{Publisher: pubs, Subscriber: subs, Admin: admins, Health: hs, Logger: o.Producer.Logger,
		Metrics: metrics, Auth: o.Auth, Streams: o.Streams, MaxPublishMessages: o.MaxPublishMessages}, o.ServerOptions...)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		prod.Close(context.Background())
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	if o.Listener != nil {
		lis = o.Listener(lis, metrics)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = gs.Serve(lis)
	}()
	var hsrv *http.Server
	httpServed := make(chan struct{})
	var httpAddr, httpURL string
	if o.HTTP {
		h, err := server.NewHTTPHandler(server.HTTPConfig{GRPC: gs, MaxRequestBytes: o.MaxRequestBytes, Logger: o.Producer.Logger, Metrics: metrics})
		if err != nil {
			t.Fatal(err)
		}
		hlis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		httpAddr, httpURL = hlis.Addr().String(), "http://"+hlis.Addr().String()
		if o.HTTPTLS != nil {
			hlis = tls.NewListener(hlis, o.HTTPTLS)
			httpURL = "https://" + httpAddr
		}
		hsrv = server.HTTPServer(console.Handler(h), o.HTTPTLS, server.DefaultMaxHeaderBytes, o.Producer.Logger)
		go func() {
			defer close(httpServed)
			_ = hsrv.Serve(hlis)
		}()
	} else {
		close(httpServed)
	}
	t.Cleanup(func() { // after the connection's cleanup, registered below
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		ksub.Close(ctx)
		subs.Shutdown()
		pubs.Shutdown()
		prod.Close(ctx)
		if hsrv != nil {
			_ = hsrv.Shutdown(ctx)
			_ = hsrv.Close()
		}
		<-httpServed
		gs.Stop()
		<-served
		subs.Wait()
		pubs.Wait()
		if kadmin != nil {
			kadmin.Close()
		}
	})
	dial := o.DialOptions
	if dial == nil {
		dial = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	conn, err := grpc.NewClient(addr, dial...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &Gateway{Addr: addr, Conn: conn, Pub: kgatev1.NewPublisherClient(conn), Sub: kgatev1.NewSubscriberClient(conn),
		Producer: prod, Subscriber: ksub, Publishers: pubs, Subscribers: subs, Health: hs, Metrics: metrics,
		Admin: kgatev1.NewAdminClient(conn), KafkaAdmin: kadmin, HTTPAddr: httpAddr, HTTPURL: httpURL}
}
