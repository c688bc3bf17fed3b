package webui

import (
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

// built is a file system shaped like Vite's output, under dist/ as the embed is.
var built = fstest.MapFS{
	"dist/README":                  {Data: []byte("build me")},
	"dist/index.html":              {Data: []byte(`<!doctype html><title>limiquantix</title><script type="module" src="/assets/index-abc123.js"></script>`)},
	"dist/assets/index-abc123.js":  {Data: []byte("console.log('app');" + strings.Repeat(" ", 4096))},
	"dist/assets/index-abc123.css": {Data: []byte("body{}")},
	"dist/assets/logo-9f8e.svg":    {Data: []byte("<svg xmlns='http://www.w3.org/2000/svg'/>")},
	"dist/favicon.ico":             {Data: []byte{0, 0, 1, 0}},
}

func sub(t *testing.T, fsys fs.FS) fs.FS {
	t.Helper()
	s, err := fs.Sub(fsys, "dist")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func get(t *testing.T, h http.Handler, method, path string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHandlerServesBuiltUI(t *testing.T) {
	h := NewHandler(sub(t, built))
	for _, tc := range []struct {
		name, method, path string
		status             int
		ctype, cache, body string
	}{
		{"root is index", "GET", "/", 200, "text/html; charset=utf-8", "no-cache", "<title>limiquantix</title>"},
		{"index by name", "GET", "/index.html", 200, "text/html; charset=utf-8", "no-cache", "<title>limiquantix</title>"},
		{"spa route", "GET", "/vms/web-1/console", 200, "text/html; charset=utf-8", "no-cache", "<title>limiquantix</title>"},
		{"spa route, top level", "GET", "/images", 200, "text/html; charset=utf-8", "no-cache", "<title>limiquantix</title>"},
		{"spa route, dotted vm name is still a route", "GET", "/vms/a-b/", 200, "text/html; charset=utf-8", "no-cache", "<title>"},
		{"hashed js", "GET", "/assets/index-abc123.js", 200, "text/javascript; charset=utf-8", cacheImmutable, "console.log('app');"},
		{"hashed css", "GET", "/assets/index-abc123.css", 200, "text/css; charset=utf-8", cacheImmutable, "body{}"},
		{"svg", "GET", "/assets/logo-9f8e.svg", 200, "image/svg+xml", cacheImmutable, "<svg"},
		{"unhashed root file", "GET", "/favicon.ico", 200, "image/vnd.microsoft.icon", "no-cache", "\x00\x00\x01\x00"},
		{"missing asset is 404, not index", "GET", "/assets/index-gone.js", 404, "", "", ""},
		{"missing file-like path is 404", "GET", "/robots.txt", 404, "", "", ""},
		{"README is not served as a file", "GET", "/README", 200, "text/html; charset=utf-8", "no-cache", "<title>limiquantix</title>"},
		{"api paths are not the app's", "GET", "/api/v2/vms", 404, "", "", ""},
		{"head", "HEAD", "/", 200, "text/html; charset=utf-8", "no-cache", ""},
		{"post refused", "POST", "/", 405, "", "", ""},
		{"dot-dot stays inside", "GET", "/../../etc/passwd", 200, "text/html; charset=utf-8", "no-cache", "<title>limiquantix</title>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := get(t, h, tc.method, tc.path)
			b := body(t, res)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (body %q)", res.StatusCode, tc.status, b)
			}
			if tc.ctype != "" {
				if got := res.Header.Get("Content-Type"); got != tc.ctype {
					t.Errorf("Content-Type %q, want %q", got, tc.ctype)
				}
			}
			if tc.cache != "" {
				if got := res.Header.Get("Cache-Control"); got != tc.cache {
					t.Errorf("Cache-Control %q, want %q", got, tc.cache)
				}
			}
			if !strings.Contains(b, tc.body) {
				t.Errorf("body %q lacks %q", b, tc.body)
			}
		})
	}
}

func TestHandlerGzip(t *testing.T) {
	h := NewHandler(sub(t, built))
	res := get(t, h, "GET", "/assets/index-abc123.js", "Accept-Encoding", "br, gzip")
	if res.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(res.Header.Get("Vary"), "Accept-Encoding") {
		t.Fatalf("headers %v", res.Header)
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(zr)
	if !strings.HasPrefix(string(b), "console.log('app');") {
		t.Fatalf("gunzipped %q", b[:40])
	}
	// Refused gzip, and tiny files, go out as they are.
	for _, tc := range [][2]string{{"/assets/index-abc123.js", "gzip;q=0"}, {"/assets/index-abc123.css", "gzip"}} {
		res := get(t, h, "GET", tc[0], "Accept-Encoding", tc[1])
		if res.Header.Get("Content-Encoding") != "" {
			t.Errorf("%s with %q: Content-Encoding %q", tc[0], tc[1], res.Header.Get("Content-Encoding"))
		}
	}
}

// A binary built without `npm run build` embeds only dist/README: it must still serve a
// page that says how to build the UI, at / and at the app's routes.
func TestHandlerNotBuilt(t *testing.T) {
	h := NewHandler(sub(t, fstest.MapFS{"dist/README": {Data: []byte("build me")}}))
	for _, p := range []string{"/", "/vms", "/vms/web-1/console"} {
		res := get(t, h, "GET", p)
		b := body(t, res)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("%s: %d %q", p, res.StatusCode, res.Header.Get("Content-Type"))
		}
		for _, want := range []string{"not built", "make ui", "npm ci", "npm run build"} {
			if !strings.Contains(b, want) {
				t.Errorf("%s: fallback page lacks %q", p, want)
			}
		}
	}
	if res := get(t, h, "GET", "/assets/index-abc123.js"); res.StatusCode != 404 {
		t.Errorf("asset without a build: %d", res.StatusCode)
	}
}

// The real embed compiles and answers, built or not.
func TestEmbeddedHandler(t *testing.T) {
	res := get(t, Handler(), "GET", "/")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
}
