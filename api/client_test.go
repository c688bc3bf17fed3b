package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

const clientTestToken = "s3cret"

// clientRecorded is what the fake server saw of one request.
type clientRecorded struct {
	method, path, query, auth, contentType string
	body                                   []byte
}

// clientFakeServer answers every request with status and body, recording the request.
func clientFakeServer(t *testing.T, status int, contentType, body string) (*Client, *clientRecorded) {
	t.Helper()
	rec := &clientRecorded{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read request body: %v", err)
		}
		*rec = clientRecorded{
			method:      r.Method,
			path:        r.URL.EscapedPath(),
			query:       r.URL.RawQuery,
			auth:        r.Header.Get("Authorization"),
			contentType: r.Header.Get("Content-Type"),
			body:        b,
		}
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return NewClient(srv.URL+"/", clientTestToken), rec
}

// clientJSONEqual reports whether a and b hold the same JSON value (both empty counts as equal).
func clientJSONEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	if len(bytes.TrimSpace(a)) == 0 || len(bytes.TrimSpace(b)) == 0 {
		return len(bytes.TrimSpace(a)) == len(bytes.TrimSpace(b))
	}
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("bad JSON %q: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("bad JSON %q: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

func TestClientCalls(t *testing.T) {
	ptr := func(v int) *int { return &v }
	str := func(v string) *string { return &v }
	vm := `{"uuid":"u1","name":"web 1","host":"h","state":"running","cpus":2,"memory_mib":1024,"disk_gib":10,"image":"debian","restart_policy":"never","autostart":false,"created_at":"2025-01-02T03:04:05Z"}`
	wantVM := VM{UUID: "u1", Name: "web 1", Host: "h", State: "running", CPUs: 2, MemoryMiB: 1024, DiskGiB: 10,
		Image: "debian", RestartPolicy: "never", CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	img := `{"name":"debian","format":"qcow2","size":100,"virtual_size":200,"sha256":"ab","kernel":false,"initrd":false,"created_at":"2025-01-02T03:04:05Z"}`
	wantImg := Image{Name: "debian", Format: "qcow2", Size: 100, VirtualSize: 200, SHA256: "ab", CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}

	tests := []struct {
		name     string
		call     func(context.Context, *Client) (any, error)
		status   int
		respType string
		resp     string

		wantMethod, wantPath, wantQuery string
		wantNoAuth                      bool
		wantBody                        string // JSON, compared semantically; "" = empty
		want                            any
	}{
		{
			name:     "health",
			call:     func(ctx context.Context, c *Client) (any, error) { return nil, c.Health(ctx) },
			status:   200,
			resp:     `{"status":"ok"}`,
			wantPath: "/healthz", wantMethod: "GET", wantNoAuth: true,
		},
		{
			name:     "host",
			call:     func(ctx context.Context, c *Client) (any, error) { return c.Host(ctx) },
			status:   200,
			resp:     `{"name":"h1","version":"0.1","qemu_version":"9.2","accel":"kvm","cpus":8,"memory_bytes":1024,"vms":2,"vms_running":1,"pools":[{"name":"default","path":"/p","total":10,"used":4,"free":6}]}`,
			wantPath: "/api/v1/host", wantMethod: "GET",
			want: Host{Name: "h1", Version: "0.1", QEMUVersion: "9.2", Accel: "kvm", CPUs: 8, MemoryBytes: 1024, VMs: 2, VMsRunning: 1,
				Pools: []Pool{{Name: "default", Path: "/p", Total: 10, Used: 4, Free: 6}}},
		},
		{
			name:     "list vms",
			call:     func(ctx context.Context, c *Client) (any, error) { return c.VMs(ctx) },
			status:   200,
			resp:     "[" + vm + "]",
			wantPath: "/api/v1/vms", wantMethod: "GET",
			want: []VM{wantVM},
		},
		{
			name:     "get vm escapes name",
			call:     func(ctx context.Context, c *Client) (any, error) { return c.VM(ctx, "web 1/x") },
			status:   200,
			resp:     vm,
			wantPath: "/api/v1/vms/web%201%2Fx", wantMethod: "GET",
			want: wantVM,
		},
		{
			name: "create vm",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateVM(ctx, CreateVMRequest{Name: "web 1", Image: "debian", CPUs: 2, SSHKeys: []string{"ssh-ed25519 AAA a@b"}, Start: true})
			},
			status:   201,
			resp:     vm,
			wantPath: "/api/v1/vms", wantMethod: "POST",
			wantBody: `{"name":"web 1","image":"debian","cpus":2,"ssh_keys":["ssh-ed25519 AAA a@b"],"start":true}`,
			want:     wantVM,
		},
		{
			name: "update vm sends only set fields",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.UpdateVM(ctx, "web 1", UpdateVMRequest{MemoryMiB: ptr(2048), RestartPolicy: str("always")})
			},
			status:   200,
			resp:     vm,
			wantPath: "/api/v1/vms/web%201", wantMethod: "PATCH",
			wantBody: `{"memory_mib":2048,"restart_policy":"always"}`,
			want:     wantVM,
		},
		{
			name:     "delete vm",
			call:     func(ctx context.Context, c *Client) (any, error) { return nil, c.DeleteVM(ctx, "a", false) },
			status:   204,
			wantPath: "/api/v1/vms/a", wantMethod: "DELETE",
		},
		{
			name:     "delete vm force",
			call:     func(ctx context.Context, c *Client) (any, error) { return nil, c.DeleteVM(ctx, "a", true) },
			status:   204,
			wantPath: "/api/v1/vms/a", wantMethod: "DELETE", wantQuery: "force=true",
		},
		{
			name:     "start",
			call:     func(ctx context.Context, c *Client) (any, error) { return c.VMAction(ctx, "web 1", "start", nil) },
			status:   200,
			resp:     vm,
			wantPath: "/api/v1/vms/web%201/start", wantMethod: "POST",
			want: wantVM,
		},
		{
			name: "shutdown with timeout",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.VMAction(ctx, "a", "shutdown", ShutdownRequest{TimeoutSeconds: 60})
			},
			status:   200,
			resp:     vm,
			wantPath: "/api/v1/vms/a/shutdown", wantMethod: "POST",
			wantBody: `{"timeout_seconds":60}`,
			want:     wantVM,
		},
		{
			name:     "console log tail",
			call:     func(ctx context.Context, c *Client) (any, error) { return c.ConsoleLog(ctx, "a", 4096) },
			status:   200,
			respType: "text/plain",
			resp:     "login: \x1b[0m",
			wantPath: "/api/v1/vms/a/console-log", wantMethod: "GET", wantQuery: "tail=4096",
			want: []byte("login: \x1b[0m"),
		},
		{
			name:     "console log whole",
			call:     func(ctx context.Context, c *Client) (any, error) { return c.ConsoleLog(ctx, "a", 0) },
			status:   200,
			respType: "text/plain",
			resp:     "boot",
			wantPath: "/api/v1/vms/a/console-log", wantMethod: "GET",
			want: []byte("boot"),
		},
		{
			name: "exec",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Exec(ctx, "a", ExecRequest{Command: []string{"cat"}, Input: []byte("hi"), TimeoutSeconds: 5})
			},
			status:   200,
			resp:     `{"exit_code":3,"stdout":"aGk=","stderr":null}`,
			wantPath: "/api/v1/vms/a/exec", wantMethod: "POST",
			wantBody: `{"command":["cat"],"input":"aGk=","timeout_seconds":5}`,
			want:     ExecResult{ExitCode: 3, Stdout: []byte("hi")},
		},
		{
			name:     "list images",
			call:     func(ctx context.Context, c *Client) (any, error) { return c.Images(ctx) },
			status:   200,
			resp:     "[" + img + "]",
			wantPath: "/api/v1/images", wantMethod: "GET",
			want: []Image{wantImg},
		},
		{
			name:     "get image",
			call:     func(ctx context.Context, c *Client) (any, error) { return c.Image(ctx, "debian") },
			status:   200,
			resp:     img,
			wantPath: "/api/v1/images/debian", wantMethod: "GET",
			want: wantImg,
		},
		{
			name:     "delete image",
			call:     func(ctx context.Context, c *Client) (any, error) { return nil, c.DeleteImage(ctx, "my img") },
			status:   204,
			wantPath: "/api/v1/images/my%20img", wantMethod: "DELETE",
		},
		{
			name:     "events",
			call:     func(ctx context.Context, c *Client) (any, error) { return c.Events(ctx, 41, 10) },
			status:   200,
			resp:     `[{"id":42,"time":"2025-01-02T03:04:05Z","type":"vm.started","vm":"a"}]`,
			wantPath: "/api/v1/events", wantMethod: "GET", wantQuery: "after=41&limit=10",
			want: []Event{{ID: 42, Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Type: "vm.started", VM: "a"}},
		},
		{
			name:     "events defaults",
			call:     func(ctx context.Context, c *Client) (any, error) { return c.Events(ctx, 0, 0) },
			status:   200,
			resp:     `[]`,
			wantPath: "/api/v1/events", wantMethod: "GET",
			want: []Event{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rec := clientFakeServer(t, tt.status, tt.respType, tt.resp)
			got, err := tt.call(t.Context(), c)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if rec.method != tt.wantMethod || rec.path != tt.wantPath || rec.query != tt.wantQuery {
				t.Errorf("request = %s %s?%s, want %s %s?%s", rec.method, rec.path, rec.query, tt.wantMethod, tt.wantPath, tt.wantQuery)
			}
			wantAuth := "Bearer " + clientTestToken
			if tt.wantNoAuth {
				wantAuth = ""
			}
			if rec.auth != wantAuth {
				t.Errorf("Authorization = %q, want %q", rec.auth, wantAuth)
			}
			if !clientJSONEqual(t, rec.body, []byte(tt.wantBody)) {
				t.Errorf("body = %s, want %s", rec.body, tt.wantBody)
			}
			if tt.wantBody != "" && rec.contentType != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", rec.contentType)
			}
			if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("result = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestClientErrors(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		want        APIError
		wantString  string
	}{
		{
			name:        "json error body",
			status:      404,
			contentType: "application/json",
			body:        `{"error":{"code":"not_found","message":"no VM named \"x\""}}`,
			want:        APIError{Status: 404, Code: CodeNotFound, Message: `no VM named "x"`},
			wantString:  `lq: not_found: no VM named "x" (HTTP 404)`,
		},
		{
			name:        "conflict",
			status:      409,
			contentType: "application/json",
			body:        `{"error":{"code":"conflict","message":"VM is running"}}`,
			want:        APIError{Status: 409, Code: CodeConflict, Message: "VM is running"},
			wantString:  "lq: conflict: VM is running (HTTP 409)",
		},
		{
			name:        "plain text from a proxy",
			status:      502,
			contentType: "text/plain; charset=utf-8",
			body:        "upstream down\nmore detail",
			want:        APIError{Status: 502, Code: CodeUnavailable, Message: "Bad Gateway: upstream down"},
			wantString:  "lq: unavailable: Bad Gateway: upstream down (HTTP 502)",
		},
		{
			name:        "html",
			status:      500,
			contentType: "text/html",
			body:        "<html>oops</html>",
			want:        APIError{Status: 500, Code: CodeInternal, Message: "Internal Server Error"},
			wantString:  "lq: internal: Internal Server Error (HTTP 500)",
		},
		{
			name:       "empty 401",
			status:     401,
			want:       APIError{Status: 401, Code: CodeUnauthorized, Message: "Unauthorized"},
			wantString: "lq: unauthorized: Unauthorized (HTTP 401)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := clientFakeServer(t, tt.status, tt.contentType, tt.body)
			_, err := c.VM(t.Context(), "x")
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v (%T), want *APIError", err, err)
			}
			if *ae != tt.want {
				t.Errorf("APIError = %+v, want %+v", *ae, tt.want)
			}
			if err.Error() != tt.wantString {
				t.Errorf("Error() = %q, want %q", err.Error(), tt.wantString)
			}
			if got, want := IsNotFound(err), tt.want.Code == CodeNotFound; got != want {
				t.Errorf("IsNotFound = %v, want %v", got, want)
			}
		})
	}
}

// uploadPart is one multipart part as the server saw it.
type uploadPart struct {
	FormName, FileName, Data string
}

// uploadServer records the parts of a POST /api/v1/images in the order received.
func uploadServer(t *testing.T, onPart func(p uploadPart)) (*Client, *[]uploadPart) {
	t.Helper()
	var parts []uploadPart
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/api/v1/images" || r.Header.Get("Authorization") != "Bearer "+clientTestToken {
			t.Errorf("request = %s %s auth %q", r.Method, r.URL.Path, r.Header.Get("Authorization"))
		}
		mr, err := r.MultipartReader()
		if err != nil {
			t.Errorf("MultipartReader: %v", err)
			w.WriteHeader(400)
			return
		}
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Errorf("NextPart: %v", err)
				w.WriteHeader(400)
				return
			}
			var data bytes.Buffer
			buf := make([]byte, 4)
			for {
				n, err := p.Read(buf)
				data.Write(buf[:n])
				if onPart != nil && n > 0 {
					onPart(uploadPart{FormName: p.FormName(), FileName: p.FileName(), Data: data.String()})
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Errorf("read part %s: %v", p.FormName(), err)
					w.WriteHeader(400)
					return
				}
			}
			parts = append(parts, uploadPart{FormName: p.FormName(), FileName: p.FileName(), Data: data.String()})
		}
		w.WriteHeader(201)
		io.WriteString(w, `{"name":"img","format":"raw","size":4}`)
	}))
	t.Cleanup(srv.Close)
	return NewClient(srv.URL, clientTestToken), &parts
}

func TestImportImageParts(t *testing.T) {
	tests := []struct {
		name string
		up   ImageUpload
		want []uploadPart
	}{
		{
			name: "everything",
			up: ImageUpload{Name: "tiny", Format: "raw", Cmdline: "console=ttyS0",
				Disk: strings.NewReader("DISK"), Kernel: strings.NewReader("KERNEL"), Initrd: strings.NewReader("INITRD")},
			want: []uploadPart{
				{FormName: "name", Data: "tiny"},
				{FormName: "format", Data: "raw"},
				{FormName: "cmdline", Data: "console=ttyS0"},
				{FormName: "disk", FileName: "disk", Data: "DISK"},
				{FormName: "kernel", FileName: "kernel", Data: "KERNEL"},
				{FormName: "initrd", FileName: "initrd", Data: "INITRD"},
			},
		},
		{
			name: "disk only",
			up:   ImageUpload{Name: "debian", Disk: strings.NewReader("QFI\xfb")},
			want: []uploadPart{
				{FormName: "name", Data: "debian"},
				{FormName: "disk", FileName: "disk", Data: "QFI\xfb"},
			},
		},
		{
			name: "kernel only, no disk uploadPart",
			up:   ImageUpload{Name: "tiny", Cmdline: "console=ttyS0", Kernel: strings.NewReader("K"), Initrd: strings.NewReader("I")},
			want: []uploadPart{
				{FormName: "name", Data: "tiny"},
				{FormName: "cmdline", Data: "console=ttyS0"},
				{FormName: "kernel", FileName: "kernel", Data: "K"},
				{FormName: "initrd", FileName: "initrd", Data: "I"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, parts := uploadServer(t, nil)
			img, err := c.ImportImage(t.Context(), tt.up)
			if err != nil {
				t.Fatalf("ImportImage: %v", err)
			}
			if img.Name != "img" || img.Size != 4 {
				t.Errorf("image = %+v", img)
			}
			if !reflect.DeepEqual(*parts, tt.want) {
				t.Errorf("parts =\n%q\nwant\n%q", *parts, tt.want)
			}
		})
	}
}

// TestImportImageStreams checks that the disk reaches the server while the client is still
// reading it: a client that buffered the body first would deadlock here.
func TestImportImageStreams(t *testing.T) {
	gotFirst := make(chan struct{})
	c, parts := uploadServer(t, func(p uploadPart) {
		if p.FormName == "disk" && p.Data == "first" {
			close(gotFirst)
		}
	})
	diskR, diskW := io.Pipe()
	go func() {
		io.WriteString(diskW, "first")
		select {
		case <-gotFirst:
			io.WriteString(diskW, "second")
			diskW.Close()
		case <-time.After(10 * time.Second):
			diskW.CloseWithError(errors.New("server never saw the first chunk: upload is not streamed"))
		}
	}()
	if _, err := c.ImportImage(t.Context(), ImageUpload{Name: "big", Disk: diskR}); err != nil {
		t.Fatalf("ImportImage: %v", err)
	}
	want := []uploadPart{{FormName: "name", Data: "big"}, {FormName: "disk", FileName: "disk", Data: "firstsecond"}}
	if !reflect.DeepEqual(*parts, want) {
		t.Errorf("parts = %q, want %q", *parts, want)
	}
}

type failingDiskReader struct{}

func (failingDiskReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestImportImageReadError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(400)
	}))
	t.Cleanup(srv.Close)
	c := NewClient(srv.URL, clientTestToken)
	_, err := c.ImportImage(t.Context(), ImageUpload{Name: "x", Disk: failingDiskReader{}})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("err = %v, want it to mention the read error", err)
	}
}

func TestClientHonoursContext(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := NewClient(srv.URL, clientTestToken).VMAction(ctx, "a", "shutdown", ShutdownRequest{TimeoutSeconds: 600})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
}

// TestImportImageEarlyRejection checks that when lqd refuses an upload before reading the
// disk (e.g. the name is taken), the caller gets lqd's error rather than a broken pipe.
func TestImportImageEarlyRejection(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mr, err := r.MultipartReader()
		if err != nil {
			t.Errorf("MultipartReader: %v", err)
			return
		}
		if _, err := mr.NextPart(); err != nil { // the name field
			t.Errorf("NextPart: %v", err)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		io.WriteString(w, `{"error":{"code":"conflict","message":"image \"big\" already exists"}}`)
	}))
	t.Cleanup(srv.Close)
	disk := io.LimitReader(zeroReader{}, 256<<20) // far more than the server will drain
	_, err := NewClient(srv.URL, clientTestToken).ImportImage(t.Context(), ImageUpload{Name: "big", Disk: disk})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != CodeConflict {
		t.Fatalf("err = %v, want an APIError with code conflict", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
