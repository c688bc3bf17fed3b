package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/limiquantix/limiquantix/api"
	"github.com/limiquantix/limiquantix/storage"
	"github.com/limiquantix/limiquantix/store"
	"github.com/limiquantix/limiquantix/vmm"
)

// fixture is a real API server over a real store, pool, library and manager in a temp
// data dir. qemu is /bin/false: nothing here starts a VM. qemu-img is real.
type fixture struct {
	dir      string // data dir: lq.db, admin.token, vms/, run/, pools/default/
	url      string
	token    string
	handler  http.Handler
	db       *store.DB
	baseSize int64  // the uploaded base image's file size
	baseSHA  string // and its SHA-256
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed")
	}
	dir, err := os.MkdirTemp("", "lqapi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(dir, "lq.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	pool, err := storage.OpenDirPool("default", filepath.Join(dir, "pools", "default"), storage.ExecRunner{})
	if err != nil {
		t.Fatal(err)
	}
	lib := storage.NewLibrary(db, pool, storage.ExecRunner{})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := vmm.New(vmm.Config{
		DataDir: dir,
		RunDir:  filepath.Join(dir, "run"),
		Host:    vmm.Host{QEMU: "/bin/false", QEMUVersion: "7.2.0", Accel: "tcg", CPUs: 4, MemoryBytes: 8 << 30},
		DB:      db,
		Disks:   pool,
		Log:     log,
	})
	t.Cleanup(m.Close)
	if err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	tokenPath := filepath.Join(dir, "admin.token")
	if _, err := api.EnsureAdminToken(ctx, db, tokenPath); err != nil {
		t.Fatal(err)
	}
	tok, err := os.ReadFile(tokenPath)
	if err != nil {
		t.Fatal(err)
	}
	h := api.NewServer(api.Config{VMs: m, Images: lib, Pool: pool, DB: db, Log: log, Version: "test"}).Handler()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	f := &fixture{dir: dir, url: ts.URL, token: strings.TrimSpace(string(tok)), handler: h, db: db}

	disk := qcow2(t, "64M")
	b, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	f.baseSize, f.baseSHA = int64(len(b)), hex.EncodeToString(sum[:])
	r := f.send(t, upload(t, part{"name", "", "base"}, part{"disk", "x.qcow2", string(b)}))
	if r.status != http.StatusCreated {
		t.Fatalf("upload base image: %d %s", r.status, r.body)
	}
	return f
}

// qcow2 makes an empty qcow2 of the given size outside the data dir; extra args go before
// the file name (e.g. a backing file).
func qcow2(t *testing.T, size string, extra ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "x.qcow2")
	args := append(append([]string{"create", "-q", "-f", "qcow2"}, extra...), path, size)
	if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %v: %v: %s", args, err, out)
	}
	return path
}

// request is one HTTP request to the fixture. The token is the admin's unless auth is set;
// auth "-" sends no Authorization header.
type request struct {
	method, path, ctype, body, auth string
}

func get(path string) request { return request{method: "GET", path: path} }
func del(path string) request { return request{method: "DELETE", path: path} }
func post(path, body string) request {
	return request{method: "POST", path: path, ctype: "application/json", body: body}
}
func patch(path, body string) request {
	return request{method: "PATCH", path: path, ctype: "application/json", body: body}
}

// part is one multipart part: a plain field when file is "", else a file part.
type part struct{ field, file, data string }

// upload is POST /api/v1/images with the parts in order.
func upload(t *testing.T, parts ...part) request {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		var w io.Writer
		var err error
		if p.file == "" {
			w, err = mw.CreateFormField(p.field)
		} else {
			w, err = mw.CreateFormFile(p.field, p.file)
		}
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, p.data)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return request{method: "POST", path: "/api/v1/images", ctype: mw.FormDataContentType(), body: buf.String()}
}

// reply is what the server answered.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (f *fixture) send(t *testing.T, in request) reply {
	t.Helper()
	req, err := http.NewRequest(in.method, f.url+in.path, strings.NewReader(in.body))
	if err != nil {
		t.Fatal(err)
	}
	if in.ctype != "" {
		req.Header.Set("Content-Type", in.ctype)
	}
	switch in.auth {
	case "":
		req.Header.Set("Authorization", "Bearer "+f.token)
	case "-":
	default:
		req.Header.Set("Authorization", in.auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", in.method, in.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", in.method, in.path, err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// apiError is the part of an error reply a row pins down.
type apiError struct {
	status int
	code   string
}

// checkError checks that r is a well-formed error reply: the status, JSON content type, and
// a body that is exactly {"error":{"code","message"}} with a non-empty message.
func checkError(t *testing.T, r reply, want apiError) {
	t.Helper()
	if r.status != want.status {
		t.Errorf("status %d, want %d; body %s", r.status, want.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var e struct {
		Error *struct {
			Code    *string `json:"code"`
			Message *string `json:"message"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || dec.More() {
		t.Errorf("error body %q is not {\"error\":{\"code\",\"message\"}}: %v", r.body, err)
		return
	}
	if e.Error == nil || e.Error.Code == nil || e.Error.Message == nil {
		t.Errorf("error body %s lacks error.code or error.message", r.body)
		return
	}
	if *e.Error.Code != want.code {
		t.Errorf("code %q, want %q; body %s", *e.Error.Code, want.code, r.body)
	}
	if strings.TrimSpace(*e.Error.Message) == "" {
		t.Errorf("empty error message: %s", r.body)
	}
}

// state is everything a request could change: the files under the data dir (SQLite's -shm
// index is left out: readers write to it through mmap) and what the API lists.
type state struct {
	files               map[string]string
	vms, images, events string
}

func (f *fixture) state(t *testing.T) state {
	t.Helper()
	s := state{files: map[string]string{}}
	err := filepath.WalkDir(f.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(f.dir, path)
		switch {
		case strings.HasSuffix(rel, "-shm"):
		case d.IsDir():
			s.files[rel] = "dir" // a directory's own mtime moves when a staged upload comes and goes
		default:
			fi, err := d.Info()
			if err != nil {
				return err
			}
			s.files[rel] = fmt.Sprintf("%v %d bytes, mtime %s", fi.Mode(), fi.Size(), fi.ModTime().Format("15:04:05.000000000"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct {
		path string
		out  *string
	}{{"/api/v1/vms", &s.vms}, {"/api/v1/images", &s.images}, {"/api/v1/events?limit=1000", &s.events}} {
		r := f.send(t, get(l.path))
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", l.path, r.status, r.body)
		}
		*l.out = string(r.body)
	}
	return s
}

// diffState reports every difference between two states.
func diffState(t *testing.T, before, after state) {
	t.Helper()
	var paths []string
	for p := range before.files {
		paths = append(paths, p)
	}
	for p := range after.files {
		if _, ok := before.files[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		b, inBefore := before.files[p]
		a, inAfter := after.files[p]
		switch {
		case !inBefore:
			t.Errorf("file appeared: %s (%s)", p, a)
		case !inAfter:
			t.Errorf("file vanished: %s (was %s)", p, b)
		case a != b:
			t.Errorf("file changed: %s: %s -> %s", p, b, a)
		}
	}
	if before.vms != after.vms {
		t.Errorf("VM list changed:\n%s\n->\n%s", before.vms, after.vms)
	}
	if before.images != after.images {
		t.Errorf("image list changed:\n%s\n->\n%s", before.images, after.images)
	}
	if before.events != after.events {
		t.Errorf("event list changed:\n%s\n->\n%s", before.events, after.events)
	}
}

func TestAuth(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name string
		in   request
		want int
	}{
		{"healthz needs no token", request{method: "GET", path: "/healthz", auth: "-"}, 200},
		{"openapi needs no token", request{method: "GET", path: "/api/v1/openapi.json", auth: "-"}, 200},
		{"no token", request{method: "GET", path: "/api/v1/vms", auth: "-"}, 401},
		{"empty bearer", request{method: "GET", path: "/api/v1/vms", auth: "Bearer "}, 401},
		{"basic auth", request{method: "GET", path: "/api/v1/vms", auth: "Basic YWRtaW46YWRtaW4="}, 401},
		{"wrong token", request{method: "GET", path: "/api/v1/vms", auth: "Bearer lq_wrong"}, 401},
		{"token without Bearer", request{method: "GET", path: "/api/v1/vms", auth: f.token}, 401},
		{"right token", get("/api/v1/vms"), 200},
		{"no token on a write", request{method: "POST", path: "/api/v1/vms", ctype: "application/json",
			body: `{"name":"a","image":"base"}`, auth: "-"}, 401},
		{"no token on a missing VM", request{method: "DELETE", path: "/api/v1/vms/nope", auth: "-"}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.send(t, tt.in)
			if tt.want == http.StatusUnauthorized {
				checkError(t, r, apiError{401, api.CodeUnauthorized})
				if r.header.Get("WWW-Authenticate") == "" {
					t.Errorf("401 without WWW-Authenticate")
				}
				return
			}
			if r.status != tt.want {
				t.Errorf("status %d, want %d; body %s", r.status, tt.want, r.body)
			}
		})
	}
	// The 401s left nothing behind.
	if r := f.send(t, get("/api/v1/vms")); string(r.body) != "[]\n" {
		t.Errorf("VMs after unauthenticated requests: %s", r.body)
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	f := newFixture(t)
	if r := f.send(t, post("/api/v1/vms", `{"name":"dup","image":"base"}`)); r.status != http.StatusCreated {
		t.Fatalf("create dup: %d %s", r.status, r.body)
	}
	create := func(req api.CreateVMRequest) request {
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		return post("/api/v1/vms", string(b))
	}
	vm := func(name string) api.CreateVMRequest { return api.CreateVMRequest{Name: name, Image: "base"} }
	with := func(r api.CreateVMRequest, edit func(*api.CreateVMRequest)) api.CreateVMRequest { edit(&r); return r }
	bzImage := func() string {
		b := make([]byte, 1024)
		copy(b[0x202:], "HdrS")
		return string(b)
	}()
	backed := qcow2(t, "64M", "-F", "raw", "-b", "/etc/hostname")
	backedBytes, err := os.ReadFile(backed)
	if err != nil {
		t.Fatal(err)
	}

	bad := func(status int, code string) apiError { return apiError{status, code} }
	tests := []struct {
		name string
		in   request
		want apiError
	}{
		// JSON framing.
		{"malformed JSON", post("/api/v1/vms", `{"name":`), bad(400, api.CodeBadRequest)},
		{"empty body", post("/api/v1/vms", ``), bad(400, api.CodeBadRequest)},
		{"two JSON values", post("/api/v1/vms", `{"name":"a","image":"base"} {"name":"b","image":"base"}`), bad(400, api.CodeBadRequest)},
		{"trailing bracket", post("/api/v1/vms", `{"name":"a","image":"base"}]`), bad(400, api.CodeBadRequest)},
		{"trailing brace", post("/api/v1/vms", `{"name":"a","image":"base"}}`), bad(400, api.CodeBadRequest)},
		{"unknown field", post("/api/v1/vms", `{"name":"a","image":"base","bogus":1}`), bad(400, api.CodeBadRequest)},
		{"wrong type", post("/api/v1/vms", `{"name":"a","image":"base","cpus":"2"}`), bad(400, api.CodeBadRequest)},
		{"array body", post("/api/v1/vms", `[]`), bad(400, api.CodeBadRequest)},
		{"body over 1 MiB", post("/api/v1/vms", `{"name":"a","image":"base","user_data":"#!`+strings.Repeat("x", 1<<20)+`"}`), bad(413, api.CodeTooLarge)},
		{"trailing data over 1 MiB", post("/api/v1/vms", `{"name":"a","image":"base"}`+strings.Repeat(" ", 1<<20)+`{}`), bad(413, api.CodeTooLarge)},

		// Create: references and names.
		{"unknown image", create(api.CreateVMRequest{Name: "a", Image: "nope"}), bad(404, api.CodeNotFound)},
		{"invalid image name", create(api.CreateVMRequest{Name: "a", Image: "../base"}), bad(400, api.CodeInvalid)},
		{"duplicate name", create(vm("dup")), bad(409, api.CodeConflict)},
		{"name with capital", create(vm("Web1")), bad(400, api.CodeInvalid)},
		{"name with leading dash", create(vm("-a")), bad(400, api.CodeInvalid)},
		{"name with underscore", create(vm("a_b")), bad(400, api.CodeInvalid)},
		{"name of 64 chars", create(vm(strings.Repeat("a", 64))), bad(400, api.CodeInvalid)},
		{"empty name", create(vm("")), bad(400, api.CodeInvalid)},
		{"name with slash", create(vm("a/b")), bad(400, api.CodeInvalid)},

		// Create: sizes and policies.
		{"cpus -1", create(with(vm("a"), func(r *api.CreateVMRequest) { r.CPUs = -1 })), bad(400, api.CodeInvalid)},
		{"cpus 1000", create(with(vm("a"), func(r *api.CreateVMRequest) { r.CPUs = 1000 })), bad(400, api.CodeInvalid)},
		{"cpus one over the host", create(with(vm("a"), func(r *api.CreateVMRequest) { r.CPUs = 5 })), bad(400, api.CodeInvalid)},
		{"memory 10 MiB", create(with(vm("a"), func(r *api.CreateVMRequest) { r.MemoryMiB = 10 })), bad(400, api.CodeInvalid)},
		{"memory 100000000 MiB", create(with(vm("a"), func(r *api.CreateVMRequest) { r.MemoryMiB = 100000000 })), bad(400, api.CodeInvalid)},
		{"memory -1", create(with(vm("a"), func(r *api.CreateVMRequest) { r.MemoryMiB = -1 })), bad(400, api.CodeInvalid)},
		{"disk 1000000 GiB", create(with(vm("a"), func(r *api.CreateVMRequest) { r.DiskGiB = 1000000 })), bad(400, api.CodeInvalid)},
		{"disk -1", create(with(vm("a"), func(r *api.CreateVMRequest) { r.DiskGiB = -1 })), bad(400, api.CodeInvalid)},
		{"bad restart policy", create(with(vm("a"), func(r *api.CreateVMRequest) { r.RestartPolicy = "sometimes" })), bad(400, api.CodeInvalid)},

		// Create: cloud-init input.
		{"user-data over 64 KiB", create(with(vm("a"), func(r *api.CreateVMRequest) {
			r.UserData = "#cloud-config\n# " + strings.Repeat("x", 70<<10) + "\n"
		})), bad(400, api.CodeInvalid)},
		{"user-data without header", create(with(vm("a"), func(r *api.CreateVMRequest) { r.UserData = "hello" })), bad(400, api.CodeInvalid)},
		{"cloud-config that is not a mapping", create(with(vm("a"), func(r *api.CreateVMRequest) { r.UserData = "#cloud-config\n- a\n" })), bad(400, api.CodeInvalid)},
		{"bad ssh key", create(with(vm("a"), func(r *api.CreateVMRequest) { r.SSHKeys = []string{"ssh-rsa notbase64!!"} })), bad(400, api.CodeInvalid)},
		{"ssh key of unknown type", create(with(vm("a"), func(r *api.CreateVMRequest) { r.SSHKeys = []string{"ssh-foo AAAA"} })), bad(400, api.CodeInvalid)},

		// Update.
		{"patch a missing VM", patch("/api/v1/vms/nope", `{"cpus":2}`), bad(404, api.CodeNotFound)},
		{"patch cpus 1000", patch("/api/v1/vms/dup", `{"cpus":1000}`), bad(400, api.CodeInvalid)},
		{"patch memory 10", patch("/api/v1/vms/dup", `{"memory_mib":10}`), bad(400, api.CodeInvalid)},
		{"patch disk", patch("/api/v1/vms/dup", `{"disk_gib":2}`), bad(400, api.CodeInvalid)},
		{"patch restart policy", patch("/api/v1/vms/dup", `{"restart_policy":"sometimes"}`), bad(400, api.CodeInvalid)},
		{"patch user-data without header", patch("/api/v1/vms/dup", `{"user_data":"hello"}`), bad(400, api.CodeInvalid)},
		{"patch unknown field", patch("/api/v1/vms/dup", `{"name":"other"}`), bad(400, api.CodeBadRequest)},
		{"patch empty body", patch("/api/v1/vms/dup", ``), bad(400, api.CodeBadRequest)},

		// Routes and actions.
		{"unknown path", get("/api/v1/nope"), bad(404, api.CodeNotFound)},
		{"unknown action", post("/api/v1/vms/x/explode", ``), bad(404, api.CodeNotFound)},
		{"unknown action on a real VM", post("/api/v1/vms/dup/explode", ``), bad(404, api.CodeNotFound)},
		{"wrong method", request{method: "PUT", path: "/api/v1/vms/dup"}, bad(405, api.CodeBadRequest)},
		{"get a missing VM", get("/api/v1/vms/nope"), bad(404, api.CodeNotFound)},
		{"start a missing VM", post("/api/v1/vms/nope/start", ``), bad(404, api.CodeNotFound)},
		{"stop a missing VM", post("/api/v1/vms/nope/stop", ``), bad(404, api.CodeNotFound)},
		{"pause a stopped VM", post("/api/v1/vms/dup/pause", ``), bad(409, api.CodeConflict)},
		{"resume a stopped VM", post("/api/v1/vms/dup/resume", ``), bad(409, api.CodeConflict)},
		{"reset a stopped VM", post("/api/v1/vms/dup/reset", ``), bad(409, api.CodeConflict)},
		{"reboot a stopped VM", post("/api/v1/vms/dup/reboot", ``), bad(409, api.CodeConflict)},
		{"shutdown a stopped VM", post("/api/v1/vms/dup/shutdown", ``), bad(409, api.CodeConflict)},
		{"shutdown timeout -1", post("/api/v1/vms/dup/shutdown", `{"timeout_seconds":-1}`), bad(400, api.CodeInvalid)},
		{"shutdown timeout over an hour", post("/api/v1/vms/dup/shutdown", `{"timeout_seconds":3601}`), bad(400, api.CodeInvalid)},
		{"action with unknown field", post("/api/v1/vms/dup/start", `{"force":true}`), bad(400, api.CodeBadRequest)},
		{"exec on a stopped VM", post("/api/v1/vms/dup/exec", `{"command":["true"]}`), bad(409, api.CodeConflict)},
		{"exec on a missing VM", post("/api/v1/vms/nope/exec", `{"command":["true"]}`), bad(404, api.CodeNotFound)},
		{"exec with empty command", post("/api/v1/vms/dup/exec", `{"command":[]}`), bad(400, api.CodeInvalid)},
		{"exec with empty program", post("/api/v1/vms/dup/exec", `{"command":[""]}`), bad(400, api.CodeInvalid)},
		{"exec without body", post("/api/v1/vms/dup/exec", ``), bad(400, api.CodeBadRequest)},
		{"exec timeout -1", post("/api/v1/vms/dup/exec", `{"command":["true"],"timeout_seconds":-1}`), bad(400, api.CodeInvalid)},
		{"console-log tail=-5", get("/api/v1/vms/dup/console-log?tail=-5"), bad(400, api.CodeInvalid)},
		{"console-log tail=abc", get("/api/v1/vms/dup/console-log?tail=abc"), bad(400, api.CodeInvalid)},
		{"console-log of a missing VM", get("/api/v1/vms/nope/console-log"), bad(404, api.CodeNotFound)},
		{"events limit=0", get("/api/v1/events?limit=0"), bad(400, api.CodeInvalid)},
		{"events limit=1001", get("/api/v1/events?limit=1001"), bad(400, api.CodeInvalid)},
		{"events after=-1", get("/api/v1/events?after=-1"), bad(400, api.CodeInvalid)},
		{"delete VM force=maybe", del("/api/v1/vms/dup?force=maybe"), bad(400, api.CodeInvalid)},
		{"delete a missing VM", del("/api/v1/vms/nope"), bad(404, api.CodeNotFound)},

		// Images.
		{"upload not multipart", post("/api/v1/images", `{"name":"x"}`), bad(400, api.CodeBadRequest)},
		{"upload without content type", request{method: "POST", path: "/api/v1/images", body: "x"}, bad(400, api.CodeBadRequest)},
		{"upload with invalid name", upload(t, part{"name", "", "Bad_Name"}, part{"disk", "d", "x"}), bad(400, api.CodeInvalid)},
		{"upload with a taken name", upload(t, part{"name", "", "base"}, part{"disk", "d", "x"}), bad(409, api.CodeConflict)},
		{"upload text as qcow2", upload(t, part{"name", "", "txt"}, part{"format", "", "qcow2"}, part{"disk", "d", "hello, not a disk\n"}), bad(400, api.CodeInvalid)},
		{"upload with unknown format", upload(t, part{"name", "", "txt"}, part{"format", "", "vmdk"}, part{"disk", "d", "hello\n"}), bad(400, api.CodeInvalid)},
		{"upload a qcow2 with a backing file", upload(t, part{"name", "", "backed"}, part{"disk", "d", string(backedBytes)}), bad(400, api.CodeInvalid)},
		{"upload without disk or kernel", upload(t, part{"name", "", "empty"}), bad(400, api.CodeInvalid)},
		{"upload without name", upload(t), bad(400, api.CodeInvalid)},
		{"upload with the disk before the name", upload(t, part{"disk", "d", "x"}, part{"name", "", "late"}), bad(400, api.CodeInvalid)},
		{"upload with a field twice", upload(t, part{"name", "", "a"}, part{"name", "", "b"}), bad(400, api.CodeInvalid)},
		{"upload with unknown field", upload(t, part{"name", "", "a"}, part{"colour", "", "red"}), bad(400, api.CodeInvalid)},
		{"upload with a kernel that is not a bzImage", upload(t, part{"name", "", "k"}, part{"kernel", "k", "not a kernel"}), bad(400, api.CodeInvalid)},
		{"upload an initrd without kernel", upload(t, part{"name", "", "k"}, part{"initrd", "i", "x"}), bad(400, api.CodeInvalid)},
		{"upload a cmdline with a newline", upload(t, part{"name", "", "k"}, part{"cmdline", "", "a\nb"}, part{"kernel", "k", bzImage}), bad(400, api.CodeInvalid)},
		{"upload an empty initrd", upload(t, part{"name", "", "k"}, part{"kernel", "k", bzImage}, part{"initrd", "i", ""}), bad(400, api.CodeInvalid)},
		{"get a missing image", get("/api/v1/images/nope"), bad(404, api.CodeNotFound)},
		{"delete a missing image", del("/api/v1/images/nope"), bad(404, api.CodeNotFound)},
		{"delete an image in use", del("/api/v1/images/base"), bad(409, api.CodeInUse)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.state(t)
			checkError(t, f.send(t, tt.in), tt.want)
			diffState(t, before, f.state(t))
		})
	}
}

// masks hide what differs between runs: UUIDs, timestamps and the host name.
var masks = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"`), `"UUID"`},
	{regexp.MustCompile(`"\d{4}-\d\d-\d\dT[0-9:.]+(Z|[+-]\d\d:\d\d)"`), `"TIME"`},
	{regexp.MustCompile(`"host": "[^"]*"`), `"host": "HOST"`},
}

// canonical re-indents JSON (keys sorted) so that a row's want can be written compactly.
func canonical(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, m := range masks {
		s = m.re.ReplaceAllString(s, m.with)
	}
	return s
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func TestHappyPath(t *testing.T) {
	f := newFixture(t)
	var id string // the VM's uuid, learned from the create
	disk := func() string { return filepath.Join(f.dir, "pools", "default", "disks", id+"-root.qcow2") }
	vmDir := func() string { return filepath.Join(f.dir, "vms", id) }
	baseFile := filepath.Join(f.dir, "pools", "default", "images", "base.qcow2")
	const (
		web = `{"uuid":"UUID","name":"web","host":"HOST","state":"stopped","cpus":1,"memory_mib":512,"disk_gib":1,` +
			`"image":"base","restart_policy":"never","autostart":false,"created_at":"TIME"}`
		web2 = `{"uuid":"UUID","name":"web","host":"HOST","state":"stopped","cpus":2,"memory_mib":512,"disk_gib":1,` +
			`"image":"base","restart_policy":"never","autostart":false,"created_at":"TIME"}`
	)
	base := fmt.Sprintf(`{"name":"base","format":"qcow2","size":%d,"virtual_size":%d,"sha256":%q,"kernel":false,"initrd":false,"created_at":"TIME"}`,
		f.baseSize, 64<<20, f.baseSHA)

	steps := []struct {
		name   string
		in     request
		status int
		want   string                      // the whole body: JSON (compared canonically) or text
		check  func(t *testing.T, r reply) // what the body does not show
	}{
		{"create", post("/api/v1/vms", `{"name":"web","image":"base","start":false}`), 201, web, func(t *testing.T, r reply) {
			var v api.VM
			if err := json.Unmarshal(r.body, &v); err != nil {
				t.Fatal(err)
			}
			id = v.UUID
			if loc := r.header.Get("Location"); loc != "/api/v1/vms/web" {
				t.Errorf("Location %q", loc)
			}
			if !exists(disk()) || !exists(vmDir()) {
				t.Errorf("after create: disk %s exists %v, data dir %s exists %v", disk(), exists(disk()), vmDir(), exists(vmDir()))
			}
			if v.CreatedAt.IsZero() {
				t.Errorf("created_at is zero")
			}
		}},
		{"list", get("/api/v1/vms"), 200, "[" + web + "]", nil},
		{"get", get("/api/v1/vms/web"), 200, web, nil},
		{"patch cpus", patch("/api/v1/vms/web", `{"cpus":2}`), 200, web2, nil},
		{"get after patch", get("/api/v1/vms/web"), 200, web2, func(t *testing.T, r reply) {
			rows, err := f.db.VMs(context.Background())
			if err != nil || len(rows) != 1 {
				t.Fatalf("store VMs: %v %v", rows, err)
			}
			var spec vmm.Spec
			if err := json.Unmarshal(rows[0].Spec, &spec); err != nil || spec.CPUs != 2 {
				t.Errorf("stored spec %s: cpus %d, want 2 (%v)", rows[0].Spec, spec.CPUs, err)
			}
		}},
		{"patch disk", patch("/api/v1/vms/web", `{"disk_gib":2}`), 400,
			`{"error":{"code":"invalid","message":"disk_gib cannot be changed yet: resize the volume instead (storage API)"}}`, nil},
		{"console log never started", get("/api/v1/vms/web/console-log"), 200, "", func(t *testing.T, r reply) {
			if ct := r.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
		}},
		{"console log tail", get("/api/v1/vms/web/console-log?tail=10"), 200, "", nil},
		{"image list", get("/api/v1/images"), 200, "[" + base + "]", nil},
		{"image get", get("/api/v1/images/base"), 200, base, nil},
		{"delete image in use", del("/api/v1/images/base"), 409,
			`{"error":{"code":"in_use","message":"storage: delete image \"base\": store: image \"base\" is used by 1 VM(s): in use"}}`, nil},
		{"delete", del("/api/v1/vms/web"), 204, "", func(t *testing.T, r reply) {
			if exists(disk()) || exists(vmDir()) {
				t.Errorf("after delete: disk exists %v, data dir exists %v", exists(disk()), exists(vmDir()))
			}
		}},
		{"get deleted", get("/api/v1/vms/web"), 404, `{"error":{"code":"not_found","message":"not found: vm \"web\""}}`, nil},
		{"list after delete", get("/api/v1/vms"), 200, "[]", nil},
		{"delete image", del("/api/v1/images/base"), 204, "", func(t *testing.T, r reply) {
			if exists(baseFile) {
				t.Errorf("%s still there", baseFile)
			}
			left, _ := filepath.Glob(filepath.Join(f.dir, "pools", "default", "*", "*"))
			if len(left) != 0 {
				t.Errorf("pool not empty: %v", left)
			}
		}},
		{"image list after delete", get("/api/v1/images"), 200, "[]", nil},
		{"events", get("/api/v1/events"), 200,
			`[{"id":1,"time":"TIME","type":"vm.created","vm":"web"},` +
				`{"id":2,"time":"TIME","type":"vm.updated","vm":"web"},` +
				`{"id":3,"time":"TIME","type":"vm.deleted","vm":"web"}]`, nil},
		{"events after 2", get("/api/v1/events?after=2&limit=5"), 200,
			`[{"id":3,"time":"TIME","type":"vm.deleted","vm":"web"}]`, nil},
		{"healthz", request{method: "GET", path: "/healthz", auth: "-"}, 200, `{"status":"ok"}`, nil},
	}
	for _, s := range steps {
		ok := t.Run(s.name, func(t *testing.T) {
			r := f.send(t, s.in)
			if r.status != s.status {
				t.Fatalf("status %d, want %d; body %s", r.status, s.status, r.body)
			}
			if strings.HasPrefix(s.want, "{") || strings.HasPrefix(s.want, "[") {
				if got, want := canonical(t, r.body), canonical(t, []byte(s.want)); got != want {
					t.Errorf("body:\n%s\nwant:\n%s", got, want)
				}
				if ct := r.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q, want application/json", ct)
				}
			} else if string(r.body) != s.want {
				t.Errorf("body %q, want %q", r.body, s.want)
			}
			if s.check != nil {
				s.check(t, r)
			}
		})
		if !ok {
			t.FailNow() // later steps depend on earlier ones
		}
	}
}

func TestHost(t *testing.T) {
	f := newFixture(t)
	if r := f.send(t, post("/api/v1/vms", `{"name":"web","image":"base"}`)); r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	r := f.send(t, get("/api/v1/host"))
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var got api.Host
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Pools) != 1 || got.Pools[0].Total <= 0 || got.Pools[0].Free <= 0 || got.Pools[0].Used < 0 ||
		got.Pools[0].Free > got.Pools[0].Total {
		t.Fatalf("pools %+v: want one with Total > 0 and 0 < Free <= Total", got.Pools)
	}
	hostname, _ := os.Hostname()
	want := api.Host{Name: hostname, Version: "test", QEMUVersion: "7.2.0", Accel: "tcg", CPUs: 4, MemoryBytes: 8 << 30,
		VMs: 1, VMsRunning: 0,
		Pools: []api.Pool{{Name: "default", Path: filepath.Join(f.dir, "pools", "default"),
			Total: got.Pools[0].Total, Used: got.Pools[0].Used, Free: got.Pools[0].Free}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("host:\n%+v\nwant:\n%+v", got, want)
	}
}

func TestKernelImageUpload(t *testing.T) {
	f := newFixture(t)
	kernel := make([]byte, 4096)
	copy(kernel[0x202:], "HdrS")
	const initrd = "070701 a fake cpio archive"
	images := filepath.Join(f.dir, "pools", "default", "images")

	tests := []struct {
		name  string
		in    []part
		want  string            // the reply, with "SIZE" and "SHA" for the disk file's
		files map[string]string // library files besides the disk and what they hold
	}{
		{
			name: "kernel initrd cmdline",
			in: []part{{"name", "", "kern"}, {"cmdline", "", "console=ttyS0"},
				{"kernel", "vmlinuz", string(kernel)}, {"initrd", "initrd.img", initrd}},
			want: `{"name":"kern","format":"qcow2","size":SIZE,"virtual_size":1073741824,"sha256":"SHA",` +
				`"kernel":true,"initrd":true,"cmdline":"console=ttyS0","created_at":"TIME"}`,
			files: map[string]string{"kern.vmlinuz": string(kernel), "kern.initrd": initrd},
		},
		{
			name: "kernel only",
			in:   []part{{"name", "", "bare"}, {"kernel", "vmlinuz", string(kernel)}},
			want: `{"name":"bare","format":"qcow2","size":SIZE,"virtual_size":1073741824,"sha256":"SHA",` +
				`"kernel":true,"initrd":false,"created_at":"TIME"}`,
			files: map[string]string{"bare.vmlinuz": string(kernel)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.send(t, upload(t, tt.in...))
			if r.status != http.StatusCreated {
				t.Fatalf("status %d, want 201: %s", r.status, r.body)
			}
			name := tt.in[0].data
			if loc := r.header.Get("Location"); loc != "/api/v1/images/"+name {
				t.Errorf("Location %q", loc)
			}
			disk, err := os.ReadFile(filepath.Join(images, name+".qcow2"))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(disk)
			want := strings.NewReplacer("SIZE", fmt.Sprint(len(disk)), "SHA", hex.EncodeToString(sum[:])).Replace(tt.want)
			if got, want := canonical(t, r.body), canonical(t, []byte(want)); got != want {
				t.Errorf("reply:\n%s\nwant:\n%s", got, want)
			}
			if got := f.send(t, get("/api/v1/images/"+name)); canonical(t, got.body) != canonical(t, r.body) {
				t.Errorf("GET image:\n%s\nwant the upload's reply:\n%s", got.body, r.body)
			}
			for file, content := range tt.files {
				b, err := os.ReadFile(filepath.Join(images, file))
				if err != nil || string(b) != content {
					t.Errorf("%s: %d bytes, err %v; want the uploaded %d bytes", file, len(b), err, len(content))
				}
			}
			staged, _ := filepath.Glob(filepath.Join(images, ".staging-*"))
			if len(staged) != 0 {
				t.Errorf("staged files left: %v", staged)
			}
		})
	}
}
