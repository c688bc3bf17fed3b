// Package webui serves the browser app (the "vSphere Client" of limiquantix) that lqd and
// lqcoord embed. The app itself is TypeScript and React under src/, built by Vite into
// dist/ (`make ui`, or `cd webui && npm ci && npm run build`); this package embeds dist/
// and serves it as a single-page app: index.html at / and at every path the app routes
// itself, hashed assets with immutable cache headers.
//
// dist/ is gitignored except dist/README, so `go build` works from a clean clone; a binary
// built without the UI serves a page that says how to build it.
package webui

import (
	"bytes"
	"compress/gzip"
	"embed"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

//go:embed all:dist
var dist embed.FS

// Handler serves the embedded UI.
func Handler() http.Handler {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is a literal that go:embed guarantees
	}
	return NewHandler(sub)
}

// NewHandler serves the UI in files, whose root holds index.html and assets/.
func NewHandler(files fs.FS) http.Handler {
	h := &handler{files: files}
	if b, err := fs.ReadFile(files, "index.html"); err == nil {
		h.index = b
	}
	return h
}

type handler struct {
	files fs.FS
	index []byte // nil when the UI was not built
	gz    sync.Map
}

// Cache policies: Vite puts a content hash in every file name under assets/, so those never
// change; everything else must be revalidated so a new lqd serves its new UI at once.
const (
	cacheImmutable = "public, max-age=31536000, immutable"
	cacheRevalid   = "no-cache"
)

// modTime is the time embedded files claim (embed.FS has none); a fixed one keeps
// Last-Modified stable across restarts of the same binary.
var modTime = time.Unix(0, 0)

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := path.Clean("/" + r.URL.Path)
	if p == "/api" || strings.HasPrefix(p, "/api/") {
		// The API router owns these; a path that reaches us is not an API route.
		http.NotFound(w, r)
		return
	}
	name := strings.TrimPrefix(p, "/")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if h.index == nil {
		if looksLikeFile(name) {
			http.NotFound(w, r)
			return
		}
		h.serveBytes(w, r, "index.html", notBuilt, cacheRevalid)
		return
	}
	if name == "" || name == "index.html" {
		h.serveBytes(w, r, "index.html", h.index, cacheRevalid)
		return
	}
	if name != "README" {
		if b, err := fs.ReadFile(h.files, name); err == nil {
			cache := cacheRevalid
			if strings.HasPrefix(name, "assets/") {
				cache = cacheImmutable
			}
			h.serveBytes(w, r, name, b, cache)
			return
		}
	}
	// A missing asset must stay a 404 (a stale chunk answered with HTML breaks the app in
	// confusing ways); any other path is one of the app's routes.
	if strings.HasPrefix(name, "assets/") || looksLikeFile(name) {
		http.NotFound(w, r)
		return
	}
	h.serveBytes(w, r, "index.html", h.index, cacheRevalid)
}

// looksLikeFile reports whether the last element of a path has an extension, as asset
// names do and the app's routes (/vms/web-1/console) do not.
func looksLikeFile(name string) bool {
	base := path.Base(name)
	return strings.Contains(base, ".") && !strings.HasSuffix(base, ".")
}

// serveBytes writes content with the type its name implies, gzipped when the client
// accepts it and the type compresses.
func (h *handler) serveBytes(w http.ResponseWriter, r *http.Request, name string, content []byte, cache string) {
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	hdr := w.Header()
	hdr.Set("Content-Type", ctype)
	hdr.Set("Cache-Control", cache)
	if compressible(ctype) && len(content) > 1024 {
		hdr.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			hdr.Set("Content-Encoding", "gzip")
			content = h.gzipped(name, content)
		}
	}
	http.ServeContent(w, r, name, modTime, bytes.NewReader(content))
}

// gzipped compresses an embedded file once and keeps the result; the files never change.
// The fallback page and index.html are keyed by their content length too, as tests swap
// file systems.
func (h *handler) gzipped(name string, content []byte) []byte {
	type key struct {
		name string
		n    int
	}
	k := key{name, len(content)}
	if v, ok := h.gz.Load(k); ok {
		return v.([]byte)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	io.Copy(zw, bytes.NewReader(content))
	zw.Close()
	b := buf.Bytes()
	h.gz.Store(k, b)
	return b
}

func compressible(ctype string) bool {
	for _, p := range []string{"text/", "application/javascript", "application/json", "image/svg+xml"} {
		if strings.HasPrefix(ctype, p) {
			return true
		}
	}
	return false
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			continue
		}
		q, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q=")
		return !ok || strings.Trim(q, "0.") != ""
	}
	return false
}

// notBuilt is what a binary built without the UI serves.
var notBuilt = []byte(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>limiquantix: web UI not built</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:42rem;margin:4rem auto;padding:0 1rem;color:#1d2330}
code,pre{background:#f1f3f7;border-radius:4px;padding:.1rem .3rem}pre{padding:.75rem 1rem}</style></head>
<body>
<h1>The web UI is not built into this binary</h1>
<p>This lqd was compiled without the browser app. The REST API under <code>/api/v1</code> works as usual.</p>
<p>To include the UI, build it and then rebuild the binary:</p>
<pre>make ui build</pre>
<p>or by hand:</p>
<pre>cd webui &amp;&amp; npm ci &amp;&amp; npm run build
cd .. &amp;&amp; go build -o bin/ ./cmd/...</pre>
</body>
</html>
`)
