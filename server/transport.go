package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync/atomic"
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

// TLSFiles serves TLS from PEM files (a certificate, its key and, for
// mTLS, the CAs of client certificates) that Reload reads again: a
// connection made afterwards gets the new certificate and client CAs,
// while open connections keep what they were made with. It is safe for
// concurrent use.
type TLSFiles struct {
	certFile, keyFile, clientCAFile string
	config                          atomic.Pointer[tls.Config]
}

// NewTLSFiles loads the server certificate and key and, with clientCAFile,
// requires clients to present a certificate signed by one of its CAs
// (mTLS); the certificate then identifies them to Auth.
func NewTLSFiles(certFile, keyFile, clientCAFile string) (*TLSFiles, error) {
	f := &TLSFiles{certFile: certFile, keyFile: keyFile, clientCAFile: clientCAFile}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Reload reads the files again. On an error the previous certificate and
// CAs stay in use.
func (f *TLSFiles) Reload() error {
	cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
	if err != nil {
		return fmt.Errorf("loading the TLS certificate %s and key %s: %w", f.certFile, f.keyFile, err)
	}
	// GetConfigForClient's config is used whole: it names HTTP/2 itself.
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2"}}
	if f.clientCAFile != "" {
		pem, err := os.ReadFile(f.clientCAFile)
		if err != nil {
			return fmt.Errorf("reading the client CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("the client CA file %s holds no PEM certificate", f.clientCAFile)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	f.config.Store(cfg)
	return nil
}

// Credentials are the gRPC server's transport credentials, served from
// what was loaded last.
func (f *TLSFiles) Credentials() credentials.TransportCredentials {
	return credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return f.config.Load(), nil }})
}
