// Package console serves kgate's browser console: plain HTML, CSS and
// JavaScript modules embedded in the binary (web/), with no build step.
// The pages call the gateway's own API on the same listener (REST JSON
// routes and the Connect protocol), so they have exactly the API's
// authentication and permissions; serving them grants nothing.
//
// Handler mounts the console in front of the HTTP listener's API handler:
// it answers GET and HEAD of "/" and "/console/...", and passes every
// other request to the API untouched, so no API route is shadowed.
package console

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
)

//go:embed web
var files embed.FS

// Prefix is the path under which the console's files are served; "/"
// serves its index.html.
const Prefix = "/console/"

// ContentSecurityPolicy is sent with every console file: scripts, styles,
// images and requests from the gateway's own origin only (no inline
// script or style, no eval), no framing, no plugins, no forms posted
// elsewhere.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// file is one embedded file, ready to serve.
type file struct {
	body        []byte
	contentType string
	etag        string
}

// contentTypes by extension: set explicitly, so that nothing depends on
// the host's MIME tables (a .js module must be served as JavaScript, or
// browsers refuse to run it).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

type handler struct {
	api   http.Handler
	files map[string]*file // by path: "/" and "/console/..."
}

// Handler returns an http.Handler that serves the console at "/" (its
// index.html) and its files under Prefix, and passes every other request
// (and requests of other methods than GET and HEAD to "/") to api.
// Goroutine-safe; it holds the files in memory (a few tens of KiB).
func Handler(api http.Handler) http.Handler {
	h := &handler{api: api, files: map[string]*file{}}
	err := fs.WalkDir(files, "web", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return nil // not served: no file of an unknown type leaves the binary
		}
		body, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		f := &file{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		h.files[Prefix+strings.TrimPrefix(p, "web/")] = f
		if p == "web/index.html" {
			h.files["/"] = f
		}
		return nil
	})
	if err != nil {
		panic("console: reading the embedded files: " + err.Error()) // a build error, not a run-time one
	}
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p != "/" && !strings.HasPrefix(p, Prefix) {
		h.api.ServeHTTP(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if p == "/" {
			h.api.ServeHTTP(w, r) // the API's answer to a route it does not have
			return
		}
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "the console's files are read with GET", http.StatusMethodNotAllowed)
		return
	}
	f := h.files[p]
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	if f == nil {
		http.Error(w, "no such console file: the console is at /", http.StatusNotFound)
		return
	}
	hd.Set("Content-Security-Policy", ContentSecurityPolicy)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	// Revalidated on every load (a 304 costs a few hundred bytes), so a new
	// gateway binary's files are never mixed with an old one's.
	hd.Set("Cache-Control", "no-cache")
	hd.Set("ETag", f.etag)
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, f.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Type", f.contentType)
	hd.Set("Content-Length", strconv.Itoa(len(f.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(f.body)
	}
}

// etagMatches reports whether an If-None-Match header names etag (or *).
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}
