package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/limiquantix/limiquantix/store"
	"github.com/limiquantix/limiquantix/vmm"
)

// rtFixture is a real Server over a real store and vmm.Manager (for the event bus) in a temp
// dir, with the console endpoints' view of VMs faked and a fake clock for tickets.
type rtFixture struct {
	srv      *Server
	ts       *httptest.Server
	db       *store.DB
	vms      *vmm.Manager
	token    string
	clock    *fakeClock
	consoles *fakeConsoles
}

func newRTFixture(t testing.TB, origins ...string) *rtFixture {
	t.Helper()
	dir, err := os.MkdirTemp("", "lqrt")
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
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := vmm.New(vmm.Config{
		DataDir: dir,
		RunDir:  filepath.Join(dir, "run"),
		Host:    vmm.Host{QEMU: "/bin/false", QEMUVersion: "7.2.0", Accel: "tcg", CPUs: 4, MemoryBytes: 8 << 30},
		DB:      db,
		Log:     log,
	})
	t.Cleanup(m.Close)
	tokenPath := filepath.Join(dir, "admin.token")
	if _, err := EnsureAdminToken(ctx, db, tokenPath); err != nil {
		t.Fatal(err)
	}
	tok, err := os.ReadFile(tokenPath)
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(Config{VMs: m, DB: db, Log: log, Version: "test", ConsoleOrigins: origins})
	f := &rtFixture{srv: s, db: db, vms: m, token: strings.TrimSpace(string(tok)),
		clock: &fakeClock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}, consoles: &fakeConsoles{vms: map[string]*fakeVM{}}}
	s.rt.tickets.clock = f.clock
	s.rt.consoles = f.consoles
	f.ts = httptest.NewServer(s.Handler())
	t.Cleanup(f.ts.Close)
	return f
}

// do sends a request with the admin token.
func (f *rtFixture) do(t testing.TB, method, path string, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, f.ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+f.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fakeConsoles is vmm as the console endpoints see it.
type fakeConsoles struct {
	mu  sync.Mutex
	vms map[string]*fakeVM
}

type fakeVM struct {
	uuid    string
	vnc     string // VNC socket path; "" when not running
	serials chan *fakeSerial
}

func (c *fakeConsoles) add(name string, vm *fakeVM) {
	c.mu.Lock()
	c.vms[name] = vm
	c.mu.Unlock()
}

func (c *fakeConsoles) vm(name string) (*fakeVM, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	vm, ok := c.vms[name]
	if !ok {
		return nil, vmm.ErrNotFound
	}
	return vm, nil
}

func (c *fakeConsoles) UUID(name string) (string, error) {
	vm, err := c.vm(name)
	if err != nil {
		return "", err
	}
	return vm.uuid, nil
}

func (c *fakeConsoles) VNCSocket(name string) (string, error) {
	vm, err := c.vm(name)
	if err != nil {
		return "", err
	}
	if vm.vnc == "" {
		return "", vmm.ErrConflict
	}
	return vm.vnc, nil
}

func (c *fakeConsoles) SerialAttach(ctx context.Context, name string) (serialSession, error) {
	vm, err := c.vm(name)
	if err != nil {
		return nil, err
	}
	if vm.serials == nil {
		return nil, vmm.ErrConflict
	}
	s := &fakeSerial{out: make(chan []byte, 16), end: make(chan error, 1), in: make(chan []byte, 16), closed: make(chan struct{})}
	vm.serials <- s
	return s, nil
}

// fakeSerial is a serial session the test drives: out is guest output, end ends the session
// with an error, in receives what the viewer typed.
type fakeSerial struct {
	out       chan []byte
	end       chan error
	in        chan []byte
	closed    chan struct{}
	closeOnce sync.Once
}

func (s *fakeSerial) Read(ctx context.Context) ([]byte, error) {
	select {
	case p := <-s.out:
		return p, nil
	case err := <-s.end:
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *fakeSerial) Write(ctx context.Context, p []byte) error {
	s.in <- append([]byte(nil), p...)
	return nil
}

func (s *fakeSerial) Close() { s.closeOnce.Do(func() { close(s.closed) }) }
