package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/limiquantix/limiquantix/api"
)

// storageLQD answers the storage routes with canned replies and records each request as
// "METHOD /path?query body".
type storageLQD struct {
	mu   sync.Mutex
	reqs []string
}

func (f *storageLQD) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	line := r.Method + " " + r.URL.Path
	if r.URL.RawQuery != "" {
		line += "?" + r.URL.RawQuery
	}
	if len(body) > 0 {
		line += " " + strings.TrimSpace(string(body))
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, line)
	f.mu.Unlock()
	created := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	vol := api.Volume{Name: "data1", Pool: "fast", Path: "/srv/fast/volumes/data1.qcow2", Format: "qcow2", VirtualSize: 20 << 30,
		ActualSize: 200704, AttachedTo: "web1", CreatedAt: created}
	vm := api.VM{Name: "web1", State: "running", Disks: []api.VMDisk{{Volume: "data1", Path: vol.Path, Port: 5, Serial: "data1"}}}
	switch {
	case r.URL.Path == "/api/v1/pools" && r.Method == "GET":
		writeTestJSON(w, 200, []api.StoragePool{
			{Name: "default", Driver: "dir", Path: "/var/lib/limiquantix/pools/default", Default: true, Total: 100 << 30, Used: 40 << 30, Free: 60 << 30},
			{Name: "fast", Driver: "dir", Path: "/srv/fast", Total: 10 << 30, Used: 1 << 30, Free: 9 << 30, Volumes: 1, Allocated: 20 << 30},
		})
	case r.URL.Path == "/api/v1/pools":
		writeTestJSON(w, 201, api.StoragePool{Name: "fast", Driver: "dir", Path: "/srv/fast", Total: 10 << 30, Free: 10 << 30})
	case r.URL.Path == "/api/v1/volumes" && r.Method == "GET":
		writeTestJSON(w, 200, []api.Volume{vol})
	case strings.HasPrefix(r.URL.Path, "/api/v1/volumes"):
		writeTestJSON(w, 200, vol)
	case strings.HasSuffix(r.URL.Path, "/snapshots") && r.Method == "GET":
		writeTestJSON(w, 200, []api.Snapshot{{Name: "before-upgrade", Memory: true, VMState: "running", Machine: "pc-q35-7.2",
			CPUs: 2, MemoryMiB: 1024, Disks: []string{"data1"}, CreatedAt: created}})
	case strings.HasSuffix(r.URL.Path, "/snapshots"):
		writeTestJSON(w, 201, api.Snapshot{Name: "disk-only", Quiesced: true, VMState: "running", Machine: "pc-q35-7.2", CPUs: 2, MemoryMiB: 1024, CreatedAt: created})
	case strings.HasSuffix(r.URL.Path, "/backup"):
		writeTestJSON(w, 201, api.Backup{VM: "web1", Path: "/backups/web1.qcow2", Size: 1 << 30, VirtualSize: 8 << 30, Live: true, Quiesced: true, DurationMS: 2500})
	case r.Method == "DELETE" && strings.Contains(r.URL.Path, "/snapshots/"):
		w.WriteHeader(204)
	default:
		writeTestJSON(w, 200, vm)
	}
}

func TestStorageCommands(t *testing.T) {
	lqd := &storageLQD{}
	srv := httptest.NewServer(lqd)
	t.Cleanup(srv.Close)
	tests := []struct {
		args       []string
		wantCode   int
		wantReq    string // "" for none
		wantStdout string // exact when set
	}{
		{[]string{"pool", "list"}, 0, "GET /api/v1/pools", "" +
			"NAME               DRIVER  PATH                                TOTAL     USED     FREE     VOLUMES  ALLOCATED\n" +
			"default (default)  dir     /var/lib/limiquantix/pools/default  100.0GiB  40.0GiB  60.0GiB  0        0B\n" +
			"fast               dir     /srv/fast                           10.0GiB   1.0GiB   9.0GiB   1        20.0GiB\n"},
		{[]string{"pool", "create", "fast", "--path", "/srv/fast"}, 0, `POST /api/v1/pools {"name":"fast","path":"/srv/fast"}`, ""},
		{[]string{"pool", "create", "fast"}, 2, "", ""},
		{[]string{"volume", "create", "data1", "--size", "20", "--pool", "fast"}, 0, `POST /api/v1/volumes {"name":"data1","pool":"fast","size_gib":20}`, ""},
		{[]string{"volume", "create", "data1"}, 2, "", ""},
		{[]string{"volume", "list"}, 0, "GET /api/v1/volumes", "" +
			"NAME   POOL  SIZE     ALLOCATED  ATTACHED TO  SNAPSHOTS\n" +
			"data1  fast  20.0GiB  196.0KiB   web1         0\n"},
		{[]string{"volume", "list", "--pool", "fast"}, 0, "GET /api/v1/volumes?pool=fast", ""},
		{[]string{"volume", "resize", "data1", "--size", "40"}, 0, `POST /api/v1/volumes/data1/resize {"size_gib":40}`, ""},
		{[]string{"volume", "delete", "data1"}, 0, "DELETE /api/v1/volumes/data1", ""},
		{[]string{"vm", "disk", "attach", "web1", "data1"}, 0, `POST /api/v1/vms/web1/disks {"volume":"data1"}`, "" +
			"VOLUME  SERIAL  PORT  PATH\n" +
			"data1   data1   rp5   /srv/fast/volumes/data1.qcow2\n"},
		{[]string{"vm", "disk", "detach", "web1", "data1", "--timeout", "30"}, 0, "DELETE /api/v1/vms/web1/disks/data1?timeout_seconds=30", ""},
		{[]string{"vm", "disk", "detach", "web1"}, 2, "", ""},
		{[]string{"vm", "snapshot", "create", "web1", "before-upgrade", "--memory"}, 0,
			`POST /api/v1/vms/web1/snapshots {"name":"before-upgrade","memory":true}`, ""},
		{[]string{"vm", "snapshot", "create", "web1", "disk-only", "--quiesce"}, 0,
			`POST /api/v1/vms/web1/snapshots {"name":"disk-only","quiesce":true}`, ""},
		{[]string{"vm", "snapshot", "create", "web1", "x", "--quiesce", "--memory"}, 2, "", ""},
		{[]string{"vm", "snapshot", "list", "web1"}, 0, "GET /api/v1/vms/web1/snapshots", "" +
			"NAME            CREATED                  MEMORY  QUIESCED  VM STATE  CPUS  RAM      VOLUMES  MACHINE\n" +
			"before-upgrade  " + formatTime(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)) + "  yes     no        running   2     1024MiB  data1    pc-q35-7.2\n"},
		{[]string{"vm", "snapshot", "revert", "web1", "before-upgrade"}, 0, "POST /api/v1/vms/web1/snapshots/before-upgrade/revert",
			"web1: reverted to before-upgrade; running\n"},
		{[]string{"vm", "snapshot", "delete", "web1", "before-upgrade"}, 0, "DELETE /api/v1/vms/web1/snapshots/before-upgrade", ""},
		{[]string{"vm", "clone", "web1", "web2", "--linked"}, 0, `POST /api/v1/vms/web1/clone {"name":"web2","linked":true}`, ""},
		{[]string{"image", "create-from-vm", "golden", "web1"}, 0, `POST /api/v1/images/from-vm {"name":"golden","vm":"web1"}`, ""},
		{[]string{"vm", "backup", "web1", "--to", "/backups/web1.qcow2"}, 0, `POST /api/v1/vms/web1/backup {"to":"/backups/web1.qcow2"}`, "" +
			"vm:            web1\n" +
			"path:          /backups/web1.qcow2\n" +
			"size:          1.0GiB\n" +
			"virtual_size:  8.0GiB\n" +
			"live:          yes\n" +
			"quiesced:      yes\n" +
			"duration:      2.5s\n"},
		{[]string{"vm", "backup", "web1"}, 2, "", ""},
		{[]string{"vm", "restore", "web1-restored", "--from", "/backups/web1.qcow2", "--start"}, 0,
			`POST /api/v1/vms/restore {"name":"web1-restored","from":"/backups/web1.qcow2","start":true}`, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			lqd.mu.Lock()
			before := len(lqd.reqs)
			lqd.mu.Unlock()
			code, stdout, stderr := runLQ(t, srv, "", tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.wantCode, stderr)
			}
			lqd.mu.Lock()
			got := strings.Join(lqd.reqs[before:], "\n")
			lqd.mu.Unlock()
			if got != tt.wantReq {
				t.Errorf("requests %q, want %q", got, tt.wantReq)
			}
			if tt.wantStdout != "" && stdout != tt.wantStdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", stdout, tt.wantStdout)
			}
		})
	}
}
