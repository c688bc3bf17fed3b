package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/limiquantix/limiquantix/storage"
	"github.com/limiquantix/limiquantix/store"
	"github.com/limiquantix/limiquantix/vmm"
)

// TestConsolesRealQEMU runs a real qemu (TCG, a blank disk: no guest needed) under a real
// Manager and checks the live endpoints end to end: the VNC WebSocket gets qemu's RFB
// greeting, the serial WebSocket attaches to the run's hub, stats and metrics show the
// sampled VM, and stopping the VM closes both WebSockets with a reason.
func TestConsolesRealQEMU(t *testing.T) {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 not installed")
	}
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir, err := os.MkdirTemp("", "lqq") // short: unix socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	db, err := store.Open(ctx, filepath.Join(dir, "lq.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	pool, err := storage.OpenDirPool("default", filepath.Join(dir, "pool"), storage.ExecRunner{})
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(pool.ImagesDir(), "blank.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", base, "64M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v: %s", err, out)
	}
	if err := db.CreateImage(ctx, store.Image{Name: "blank", Format: "qcow2", Path: base, VirtualSize: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	host, err := vmm.ProbeHost(ctx, "", vmm.AccelTCG)
	if err != nil {
		t.Fatal(err)
	}
	log := discardLog()
	m := vmm.New(vmm.Config{DataDir: dir, RunDir: filepath.Join(dir, "run"), Host: host, DB: db, Disks: pool, Log: log})
	t.Cleanup(m.Close)
	if err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(ctx, vmm.Spec{Name: "con", Image: "blank", MemoryMiB: 128}, []vmm.NICRequest{}, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Stop(context.Background(), "con") })
	if _, err := EnsureAdminToken(ctx, db, filepath.Join(dir, "admin.token")); err != nil {
		t.Fatal(err)
	}
	tok, _ := os.ReadFile(filepath.Join(dir, "admin.token"))
	f := &rtFixture{db: db, vms: m, token: strings.TrimSpace(string(tok))}
	f.srv = NewServer(Config{VMs: m, DB: db, Pool: pool, Log: log})
	f.ts = httptest.NewServer(f.srv.Handler())
	t.Cleanup(f.ts.Close)

	vnc, _, err := f.dial(t, f.ticket(t, "con").VNCURL, f.ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	if got := readBytes(t, vnc, len(rfbGreeting)); string(got) != rfbGreeting {
		t.Errorf("first VNC message %q, want %q", got, rfbGreeting)
	}
	serial, _, err := f.dial(t, f.ticket(t, "con").SerialURL, f.ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := serial.Write(ctx, websocket.MessageText, []byte("\r\n")); err != nil {
		t.Fatal(err)
	}

	// The sampler takes its first sample as the run starts.
	var st VMStats
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp := f.do(t, "GET", "/api/v1/vms/con/stats", nil)
		err := json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("stats: %d %v", resp.StatusCode, err)
		}
		if st.SampledAt != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("stats: %+v", st)
	devices := map[string]bool{}
	for _, d := range st.Disks {
		devices[d.Device] = true
	}
	if st.SampledAt == nil || st.RSSBytes <= 0 || !devices["vda"] {
		t.Errorf("stats of a running VM: %+v; want a sample with RSS and disk vda", st)
	}
	resp := f.do(t, "GET", "/metrics", nil)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`limiquantix_vm_state{state="running",vm="con"} 1`, `limiquantix_vm_memory_rss_bytes{vm="con"}`,
		`limiquantix_vm_disk_read_bytes_total{device="vda",vm="con"}`, `limiquantix_pool_free_bytes{pool="default"}`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	if _, err := m.Stop(ctx, "con"); err != nil {
		t.Fatal(err)
	}
	expectClose(t, vnc, websocket.StatusNormalClosure, "console socket ended")
	expectClose(t, serial, websocket.StatusNormalClosure, "VM stopped")
}
