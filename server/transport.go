package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
)

// RequestOverheadBytes is the room a request needs besides one message's
// key, value and headers: its topic (at most 249 bytes), a correlation id
// and the protobuf framing. MaxRequestBytes must exceed the largest
// message by at least this much, so that any message the gateway accepts
// fits in a request; a message near the limit with a long correlation id
// or very many headers (about 6 bytes of framing each) can still exceed it.
const RequestOverheadBytes = 1 << 10

// Limits bound what one client can make the gateway hold.
type Limits struct {
	// MaxRequestBytes is the largest gRPC message accepted (a Publish
	// request with all its messages, one PublishStream or Subscribe
	// request). Default 4 MiB. grpc-go refuses a larger one with
	// RESOURCE_EXHAUSTED, without ErrorInfo, before any handler runs; on a
	// stream that also ends the stream.
	MaxRequestBytes int
	// MaxConcurrentStreams bounds the concurrent calls on one connection.
	// Default 100.
	MaxConcurrentStreams uint32
	// KeepaliveMinTime is the shortest interval between client pings the
	// gateway tolerates; a client pinging more often is disconnected
	// (GOAWAY "too_many_pings"). Default 10 s.
	KeepaliveMinTime time.Duration
}

// ServerOptions turns l (zero fields: defaults) into gRPC server options,
// including the keepalive policy: the gateway pings idle connections
// every 30 s and drops them when the ping is not answered in 10 s.
func ServerOptions(l Limits) []grpc.ServerOption {
	if l.MaxRequestBytes == 0 {
		l.MaxRequestBytes = 4 << 20
	}
	if l.MaxConcurrentStreams == 0 {
		l.MaxConcurrentStreams = 100
	}
	if l.KeepaliveMinTime == 0 {
		l.KeepaliveMinTime = 10 * time.Second
	}
	return []grpc.ServerOption{
		// Serve calls on a pool of long-lived goroutines instead of a new
		// one per call, whose stack growth cost ~10% of the CPU under load.
		// Publish handlers block until Kafka acknowledges, so the pool is
		// sized for the concurrency of a busy gateway rather than for its
		// cores; calls beyond it get a goroutine of their own as before.
		grpc.NumStreamWorkers(256),
		grpc.MaxRecvMsgSize(l.MaxRequestBytes),
		grpc.MaxConcurrentStreams(l.MaxConcurrentStreams),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: l.KeepaliveMinTime, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	}
}

// TLSCredentials loads the server certificate and key (PEM files). With
// clientCAFile, clients must present a certificate signed by one of its
// CAs (mTLS), and the certificate identifies them to Auth.
func TLSCredentials(certFile, keyFile, clientCAFile string) (credentials.TransportCredentials, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading the TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCAFile != "" {
		pem, err := os.ReadFile(clientCAFile)
		if err != nil {
			return nil, fmt.Errorf("reading the client CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the client CA file %s holds no PEM certificate", clientCAFile)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return credentials.NewTLS(cfg), nil
}
