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

// Limits bound what one client can make the gateway hold.
type Limits struct {
	// MaxRequestBytes is the largest gRPC message accepted (a Publish
	// request with all its messages). Default 4 MiB.
	MaxRequestBytes int
	// MaxConcurrentStreams bounds the concurrent calls on one connection.
	// Default 100.
	MaxConcurrentStreams uint32
	// KeepaliveMinTime is the shortest interval between client pings the
	// gateway tolerates; a client pinging more often is disconnected
	// (GOAWAY "too_many_pings"). Default 10 s.
	KeepaliveMinTime time.Duration
	// MaxHeaderBytes bounds the headers (metadata) of one call, as HTTP/2
	// counts them: names, values and 32 bytes each. A call over it is reset
	// before anything reads it. Default 16 KiB.
	MaxHeaderBytes uint32
	// HandshakeTimeout bounds a new connection's TLS and HTTP/2 handshake:
	// a connection that has not completed it by then is closed. Default
	// 10 s.
	HandshakeTimeout time.Duration
}

// DefaultMaxHeaderBytes is the default of Limits.MaxHeaderBytes.
const DefaultMaxHeaderBytes = 16 << 10

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
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.HandshakeTimeout == 0 {
		l.HandshakeTimeout = 10 * time.Second
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
		grpc.MaxHeaderListSize(l.MaxHeaderBytes),
		grpc.ConnectionTimeout(l.HandshakeTimeout),
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
