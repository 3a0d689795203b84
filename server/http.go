package server

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"connectrpc.com/vanguard"
	"connectrpc.com/vanguard/vanguardgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
)

// HTTPConfig configures NewHTTPHandler.
type HTTPConfig struct {
	// GRPC is the gRPC server whose services the HTTP listener serves,
	// with its interceptors (authentication, stream bounds, logging,
	// metrics, panic recovery). Required; register every service first.
	GRPC *grpc.Server
	// MaxRequestBytes is the gRPC server's --max-request-bytes: the
	// largest request message once decoded. An HTTP request body may be a
	// third larger (bytes are base64 in JSON) plus 1 KiB; a larger one is
	// refused with 413 before it is read. Default 4 MiB.
	MaxRequestBytes int
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Metrics, when set, counts HTTP requests by protocol.
	Metrics *Metrics
}

// NewHTTPHandler serves GRPC's services over HTTP/1.1 and HTTP/2 with the
// Connect protocol, gRPC-Web, gRPC and REST-style JSON routes (the
// google.api.http annotations of proto/), by translating each request into
// a gRPC call that GRPC serves (connectrpc's vanguard-go onto
// grpc.Server.ServeHTTP). A call therefore runs the same handlers and
// interceptors as on the gRPC port: authentication (from the
// Authorization header or the TLS client certificate), ACLs, stream
// bounds, request ids, the call log and gRPC metrics. grpc-go runs no tap
// for ServeHTTP, so on this listener a call is authenticated after its
// body (at most the size bound) was read, and Publish's capacity refusal
// comes from the producer rather than before the request is read.
//
// Request bodies are bounded: a body over the bound is refused with 413
// before it is read (by its Content-Length) or when the bound is reached
// (the body is read whole before the call starts), with a JSON error
// saying so. Streams (gRPC and Connect streaming) are
// bounded per message instead, by MaxRequestBytes.
func NewHTTPHandler(cfg HTTPConfig) (http.Handler, error) {
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = 4 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	bodyMax := int64(cfg.MaxRequestBytes)/3*4 + 1024
	tc, err := vanguardgrpc.NewTranscoder(cfg.GRPC,
		vanguard.WithCodec(func(res vanguard.TypeResolver) vanguard.Codec {
			// Unknown fields are refused, so that a misspelt field of a
			// hand-written JSON body is an error rather than ignored.
			return &vanguard.JSONCodec{
				MarshalOptions:   protojson.MarshalOptions{Resolver: res, EmitUnpopulated: true},
				UnmarshalOptions: protojson.UnmarshalOptions{Resolver: res},
			}
		}),
		vanguard.WithDefaultServiceOptions(vanguard.WithMaxMessageBufferBytes(uint32(bodyMax))),
		vanguard.WithUnknownHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeHTTPError(w, httpProtocol(r), http.StatusNotFound, codes.NotFound,
				fmt.Sprintf("no route %s %s: the REST routes are the google.api.http options of proto/kgate/v1 (for example POST /v1/topics/{topic}/messages); Connect and gRPC-Web calls are POST /kgate.v1.Publisher/Publish and the like", r.Method, r.URL.Path))
		})))
	if err != nil {
		return nil, fmt.Errorf("HTTP listener: %w", err)
	}
	return &httpHandler{next: tc, bodyMax: bodyMax, metrics: cfg.Metrics}, nil
}

type httpHandler struct {
	next    http.Handler
	bodyMax int64
	metrics *Metrics
}

func (h *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	proto := httpProtocol(r)
	h.metrics.httpRequest(proto)
	if ct := r.Header.Get("Content-Type"); proto == "rest" && r.ContentLength != 0 && (ct == "" || strings.HasPrefix(ct, "application/x-www-form-urlencoded")) {
		// curl -d says form encoding: the JSON routes read JSON.
		r.Header.Set("Content-Type", "application/json")
	}
	if proto != "grpc" && proto != "connect-stream" { // a whole body is one request
		if r.ContentLength > h.bodyMax {
			writeHTTPError(w, proto, http.StatusRequestEntityTooLarge, codes.ResourceExhausted, h.tooLarge(r.ContentLength))
			return
		}
		// Read the whole body (the transcoder would buffer it anyway), so
		// that one over the bound is refused cleanly whatever its framing.
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.bodyMax))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeHTTPError(w, proto, http.StatusRequestEntityTooLarge, codes.ResourceExhausted, h.tooLarge(-1))
				return
			}
			writeHTTPError(w, proto, http.StatusBadRequest, codes.InvalidArgument, "reading the request body failed: "+err.Error())
			return
		}
		if isJSON(r) && !utf8.Valid(body) {
			// protojson's error would quote the bad bytes, which no JSON
			// error can carry.
			writeHTTPError(w, proto, http.StatusBadRequest, codes.InvalidArgument, "the request body is not valid UTF-8, which JSON must be: nothing was done")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	if proto == "rest" || proto == "connect" {
		// A body that does not decode is the client's error: the
		// transcoder answers it as UNKNOWN (HTTP 500); make it
		// INVALID_ARGUMENT (400) saying what to fix.
		dw := &decodeErrorWriter{ResponseWriter: w, proto: proto}
		h.next.ServeHTTP(dw, r)
		dw.finish()
		return
	}
	h.next.ServeHTTP(w, r)
}

func (h *httpHandler) tooLarge(n int64) string {
	what := "the request body"
	if n > 0 {
		what = fmt.Sprintf("the request body of %d bytes", n)
	}
	return fmt.Sprintf("%s is larger than the gateway takes (%d bytes: --max-request-bytes, with room for base64 in JSON); nothing was done: split the batch into smaller requests", what, h.bodyMax)
}

// isJSON reports whether a request's body is JSON (REST and Connect with
// the JSON codec, the default without a Content-Type).
func isJSON(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return ct == "" || strings.Contains(ct, "json")
}

// httpProtocol names a request's protocol for the metrics: grpc, grpc-web,
// connect (unary), connect-stream, or rest.
func httpProtocol(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "application/grpc-web"):
		return "grpc-web"
	case strings.HasPrefix(ct, "application/grpc"):
		return "grpc"
	case strings.HasPrefix(ct, "application/connect+"):
		return "connect-stream"
	case r.Header.Get("Connect-Protocol-Version") != "" || r.URL.Query().Has("connect"):
		return "connect"
	}
	return "rest"
}

// writeHTTPError writes an error as the protocol's clients read it: for
// Connect, {"code": "resource_exhausted", "message": ...}; otherwise the
// JSON of a google.rpc.Status, {"code": 8, "message": ..., "details": []},
// as the REST routes answer errors.
func writeHTTPError(w http.ResponseWriter, proto string, status int, code codes.Code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if strings.HasPrefix(proto, "connect") {
		_ = json.NewEncoder(w).Encode(map[string]string{"code": connectCodeName(code), "message": msg})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"code": int(code), "message": msg, "details": []any{}})
}

// connectCodeName is code's name in the Connect protocol.
func connectCodeName(c codes.Code) string {
	var b strings.Builder
	for i, r := range c.String() {
		if 'A' <= r && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// decodeErrorWriter turns the transcoder's answer to a request body that
// does not decode (HTTP 500, UNKNOWN, "proto: ...") into 400
// INVALID_ARGUMENT with a message saying what to fix. Other answers pass
// through untouched; only a 500 is held back to look at it.
type decodeErrorWriter struct {
	http.ResponseWriter
	proto  string
	held   bool
	status int
	buf    bytes.Buffer
}

func (w *decodeErrorWriter) WriteHeader(status int) {
	if status == http.StatusInternalServerError && !w.held {
		w.held, w.status = true, status
		return
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *decodeErrorWriter) Write(p []byte) (int, error) {
	if w.held {
		return w.buf.Write(p)
	}
	return w.ResponseWriter.Write(p)
}

// FlushError flushes what is not held back (http.ResponseController
// finds it before Unwrap).
func (w *decodeErrorWriter) FlushError() error {
	if w.held {
		return nil
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *decodeErrorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *decodeErrorWriter) finish() {
	if !w.held {
		return
	}
	var e struct {
		Code    any    `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(w.buf.Bytes(), &e) == nil && strings.HasPrefix(e.Message, "proto:") && (e.Code == float64(codes.Unknown) || e.Code == "unknown") {
		writeHTTPError(w.ResponseWriter, w.proto, http.StatusBadRequest, codes.InvalidArgument,
			"the request body does not decode as the call's request message ("+e.Message+"): send JSON with the proto's field names (lowerCamelCase or as written), bytes as base64, 64-bit integers as numbers or strings; nothing was done")
		return
	}
	w.ResponseWriter.WriteHeader(w.status)
	_, _ = w.ResponseWriter.Write(w.buf.Bytes())
}

// HTTPServer returns an http.Server for h: HTTP/1.1 and HTTP/2 (cleartext
// h2c without TLS), with tlsCfg (nil: plaintext), headers bounded by
// maxHeaderBytes, and a 10 s bound on reading a request's headers. Serve it
// on a listener of its own.
func HTTPServer(h http.Handler, tlsCfg *tls.Config, maxHeaderBytes int, log *slog.Logger) *http.Server {
	var p http.Protocols
	p.SetHTTP1(true)
	if tlsCfg != nil {
		p.SetHTTP2(true)
	} else {
		p.SetUnencryptedHTTP2(true)
	}
	if log == nil {
		log = slog.Default()
	}
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsCfg,
		Protocols:         &p,
		MaxHeaderBytes:    maxHeaderBytes,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.With("component", "http").Handler(), slog.LevelDebug),
	}
}

// HTTPConfig returns a TLS configuration for the HTTP listener, served
// from what was loaded last (so reloads apply), with HTTP/2 and HTTP/1.1.
func (f *TLSFiles) HTTPConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c := f.config.Load().Clone()
			c.NextProtos = []string{"h2", "http/1.1"}
			return c, nil
		}}
}
