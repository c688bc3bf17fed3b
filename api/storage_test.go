package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/limiquantix/limiquantix/api"
	"github.com/limiquantix/limiquantix/storage"
	"github.com/limiquantix/limiquantix/store"
	"github.com/limiquantix/limiquantix/vmm"
)

// storageFixture is the fixture with pools, volumes and storage wired in, and a backup dir.
// qemu is /bin/false, so only stopped VMs exist: snapshots, clones and backups go through
// qemu-img.
type storageFixture struct {
	*fixture
	backups string
}

func newStorageFixture(t *testing.T) storageFixture {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed")
	}
	dir, err := os.MkdirTemp("", "lqapis")
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
	run := storage.ExecRunner{}
	pool, err := storage.OpenDirPool("default", filepath.Join(dir, "pools", "default"), run)
	if err != nil {
		t.Fatal(err)
	}
	lib := storage.NewLibrary(db, pool, run)
	vols, err := storage.OpenVolumes(ctx, db, run, pool)
	if err != nil {
		t.Fatal(err)
	}
	backups := filepath.Join(dir, "backups")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := vmm.New(vmm.Config{
		DataDir: dir,
		RunDir:  filepath.Join(dir, "run"),
		Host:    vmm.Host{QEMU: "/bin/false", QEMUVersion: "7.2.0", Accel: "tcg", CPUs: 4, MemoryBytes: 8 << 30},
		DB:      db,
		Disks:   pool,
		Storage: vmm.Storage{Tool: storage.Tool{R: run}, Images: lib, BackupDirs: []string{backups}},
		Log:     log,
	})
	t.Cleanup(m.Close)
	if err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.CleanBackupDirs(); err != nil {
		t.Fatal(err)
	}
	tokenPath := filepath.Join(dir, "admin.token")
	if _, err := api.EnsureAdminToken(ctx, db, tokenPath); err != nil {
		t.Fatal(err)
	}
	tok, _ := os.ReadFile(tokenPath)
	h := api.NewServer(api.Config{VMs: m, Images: lib, Pool: pool, Volumes: vols, DB: db, Log: log, Version: "test"}).Handler()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	f := &fixture{dir: dir, url: ts.URL, token: strings.TrimSpace(string(tok)), handler: h, db: db}
	disk, err := os.ReadFile(qcow2(t, "64M"))
	if err != nil {
		t.Fatal(err)
	}
	if r := f.send(t, upload(t, part{"name", "", "base"}, part{"disk", "x.qcow2", string(disk)})); r.status != http.StatusCreated {
		t.Fatalf("upload base image: %d %s", r.status, r.body)
	}
	return storageFixture{fixture: f, backups: backups}
}

// must sends a request and fails unless it gets status; it decodes the reply into out.
func (f storageFixture) must(t *testing.T, in request, status int, out any) {
	t.Helper()
	r := f.send(t, in)
	if r.status != status {
		t.Fatalf("%s %s: %d %s, want %d", in.method, in.path, r.status, r.body, status)
	}
	if out != nil {
		v := reflect.ValueOf(out).Elem()
		v.Set(reflect.Zero(v.Type())) // omitted fields must not keep an earlier reply's values
		if err := json.Unmarshal(r.body, out); err != nil {
			t.Fatalf("%s %s: %v: %s", in.method, in.path, err, r.body)
		}
	}
}

// listings adds pools and volumes to what "nothing changed" compares.
func (f storageFixture) listings(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, p := range []string{"/api/v1/volumes", "/api/v1/vms/web1/snapshots"} {
		r := f.send(t, get(p))
		b.Write(r.body)
	}
	r := f.send(t, get("/api/v1/pools"))
	var pools []api.StoragePool
	json.Unmarshal(r.body, &pools)
	for _, p := range pools { // free space moves on its own
		b.WriteString(p.Name + " " + p.Path + "\n")
	}
	return b.String()
}

func TestStorageBadInputChangesNothing(t *testing.T) {
	f := newStorageFixture(t)
	f.must(t, post("/api/v1/vms", `{"name":"web1","image":"base"}`), http.StatusCreated, nil)
	f.must(t, post("/api/v1/vms", `{"name":"web2","image":"base"}`), http.StatusCreated, nil)
	f.must(t, post("/api/v1/volumes", `{"name":"v1","size_gib":1}`), http.StatusCreated, nil)
	f.must(t, post("/api/v1/volumes", `{"name":"v2","size_gib":1}`), http.StatusCreated, nil)
	f.must(t, post("/api/v1/vms/web2/disks", `{"volume":"v2"}`), http.StatusOK, nil)
	os.MkdirAll(f.backups, 0o700)
	notQcow2 := filepath.Join(f.backups, "junk.qcow2")
	os.WriteFile(notQcow2, []byte("not a disk"), 0o600)

	tests := []struct {
		name string
		in   request
		want apiError
	}{
		{"pool without a name", post("/api/v1/pools", `{"path":"/srv/x"}`), apiError{400, api.CodeInvalid}},
		{"pool with a relative path", post("/api/v1/pools", `{"name":"x","path":"srv/x"}`), apiError{400, api.CodeInvalid}},
		{"pool inside the default pool", post("/api/v1/pools", `{"name":"x","path":"`+filepath.Join(f.dir, "pools", "default", "x")+`"}`), apiError{400, api.CodeInvalid}},
		{"pool with an unknown field", post("/api/v1/pools", `{"name":"x","path":"/srv/x","size":1}`), apiError{400, api.CodeBadRequest}},
		{"delete the default pool", del("/api/v1/pools/default"), apiError{400, api.CodeInvalid}},
		{"delete a missing pool", del("/api/v1/pools/nope"), apiError{404, api.CodeNotFound}},
		{"volume of size 0", post("/api/v1/volumes", `{"name":"v3","size_gib":0}`), apiError{400, api.CodeInvalid}},
		{"volume bigger than the pool", post("/api/v1/volumes", `{"name":"v3","size_gib":60000}`), apiError{400, api.CodeInvalid}},
		{"volume in a missing pool", post("/api/v1/volumes", `{"name":"v3","pool":"nope","size_gib":1}`), apiError{404, api.CodeNotFound}},
		{"volume with a bad name", post("/api/v1/volumes", `{"name":"../x","size_gib":1}`), apiError{400, api.CodeInvalid}},
		{"volume name taken", post("/api/v1/volumes", `{"name":"v1","size_gib":1}`), apiError{409, api.CodeConflict}},
		{"resize smaller", post("/api/v1/volumes/v1/resize", `{"size_gib":0}`), apiError{400, api.CodeInvalid}},
		{"resize a missing volume", post("/api/v1/volumes/nope/resize", `{"size_gib":2}`), apiError{404, api.CodeNotFound}},
		{"delete an attached volume", del("/api/v1/volumes/v2"), apiError{409, api.CodeInUse}},
		{"delete a missing volume", del("/api/v1/volumes/nope"), apiError{404, api.CodeNotFound}},
		{"attach to a missing vm", post("/api/v1/vms/nope/disks", `{"volume":"v1"}`), apiError{404, api.CodeNotFound}},
		{"attach a bad name", post("/api/v1/vms/web1/disks", `{"volume":"V1"}`), apiError{400, api.CodeInvalid}},
		{"attach a missing volume", post("/api/v1/vms/web1/disks", `{"volume":"nope"}`), apiError{404, api.CodeNotFound}},
		{"attach a volume in use", post("/api/v1/vms/web1/disks", `{"volume":"v2"}`), apiError{409, api.CodeInUse}},
		{"attach it again", post("/api/v1/vms/web2/disks", `{"volume":"v2"}`), apiError{409, api.CodeConflict}},
		{"detach what is not attached", del("/api/v1/vms/web1/disks/v1"), apiError{404, api.CodeNotFound}},
		{"detach with a bad timeout", del("/api/v1/vms/web2/disks/v2?timeout_seconds=-1"), apiError{400, api.CodeInvalid}},
		{"snapshot name", post("/api/v1/vms/web1/snapshots", `{"name":"Bad Name"}`), apiError{400, api.CodeInvalid}},
		{"memory snapshot of a stopped vm", post("/api/v1/vms/web1/snapshots", `{"name":"s1","memory":true}`), apiError{409, api.CodeConflict}},
		{"quiesce a stopped vm", post("/api/v1/vms/web1/snapshots", `{"name":"s1","quiesce":true}`), apiError{409, api.CodeConflict}},
		{"memory and quiesce", post("/api/v1/vms/web1/snapshots", `{"name":"s1","memory":true,"quiesce":true}`), apiError{400, api.CodeInvalid}},
		{"snapshot of a missing vm", post("/api/v1/vms/nope/snapshots", `{"name":"s1"}`), apiError{404, api.CodeNotFound}},
		{"revert a missing snapshot", post("/api/v1/vms/web1/snapshots/nope/revert", ""), apiError{404, api.CodeNotFound}},
		{"delete a missing snapshot", del("/api/v1/vms/web1/snapshots/nope"), apiError{404, api.CodeNotFound}},
		{"clone onto a taken name", post("/api/v1/vms/web1/clone", `{"name":"web2"}`), apiError{409, api.CodeConflict}},
		{"clone with a bad name", post("/api/v1/vms/web1/clone", `{"name":"-x"}`), apiError{400, api.CodeInvalid}},
		{"clone a missing vm", post("/api/v1/vms/nope/clone", `{"name":"x"}`), apiError{404, api.CodeNotFound}},
		{"image from a missing vm", post("/api/v1/images/from-vm", `{"name":"x","vm":"nope"}`), apiError{404, api.CodeNotFound}},
		{"image onto a taken name", post("/api/v1/images/from-vm", `{"name":"base","vm":"web1"}`), apiError{409, api.CodeConflict}},
		{"backup outside the backup dirs", post("/api/v1/vms/web1/backup", `{"to":"/etc/web1.qcow2"}`), apiError{400, api.CodeInvalid}},
		{"backup to a relative path", post("/api/v1/vms/web1/backup", `{"to":"web1.qcow2"}`), apiError{400, api.CodeInvalid}},
		{"backup over a file", post("/api/v1/vms/web1/backup", `{"to":"`+notQcow2+`"}`), apiError{409, api.CodeConflict}},
		{"backup of a missing vm", post("/api/v1/vms/nope/backup", `{"to":"`+filepath.Join(f.backups, "x.qcow2")+`"}`), apiError{404, api.CodeNotFound}},
		{"restore from outside", post("/api/v1/vms/restore", `{"name":"r1","from":"/etc/passwd"}`), apiError{400, api.CodeInvalid}},
		{"restore from a missing backup", post("/api/v1/vms/restore", `{"name":"r1","from":"`+filepath.Join(f.backups, "none.qcow2")+`"}`), apiError{404, api.CodeNotFound}},
		{"restore from a file that is no disk", post("/api/v1/vms/restore", `{"name":"r1","from":"`+notQcow2+`","image":"base"}`), apiError{400, api.CodeInvalid}},
		{"restore onto a taken name", post("/api/v1/vms/restore", `{"name":"web1","from":"`+notQcow2+`"}`), apiError{409, api.CodeConflict}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, lists := f.state(t), f.listings(t)
			r := f.send(t, tt.in)
			checkError(t, r, tt.want)
			diffState(t, before, f.state(t))
			if after := f.listings(t); after != lists {
				t.Errorf("listings changed:\n%s\n->\n%s", lists, after)
			}
		})
	}
}

func TestStorageHappyPath(t *testing.T) {
	f := newStorageFixture(t)
	var vm api.VM
	f.must(t, post("/api/v1/vms", `{"name":"web1","image":"base","disk_gib":1}`), http.StatusCreated, &vm)

	fast := filepath.Join(f.dir, "fast")
	var pool api.StoragePool
	f.must(t, post("/api/v1/pools", `{"name":"fast","path":"`+fast+`"}`), http.StatusCreated, &pool)
	if pool.Name != "fast" || pool.Driver != "dir" || pool.Total <= 0 {
		t.Fatalf("pool = %+v", pool)
	}
	var vol api.Volume
	f.must(t, post("/api/v1/volumes", `{"name":"data1","pool":"fast","size_gib":2}`), http.StatusCreated, &vol)
	if vol.Path != filepath.Join(fast, "volumes", "data1.qcow2") || vol.VirtualSize != 2<<30 || vol.Format != "qcow2" {
		t.Fatalf("volume = %+v", vol)
	}
	f.must(t, post("/api/v1/vms/web1/disks", `{"volume":"data1"}`), http.StatusOK, &vm)
	if len(vm.Disks) != 1 || vm.Disks[0].Volume != "data1" || vm.Disks[0].Port < vmm.FirstFreePort || vm.Disks[0].Serial != "data1" {
		t.Fatalf("disks = %+v", vm.Disks)
	}
	f.must(t, post("/api/v1/volumes/data1/resize", `{"size_gib":3}`), http.StatusOK, &vol)
	if vol.VirtualSize != 3<<30 || vol.AttachedTo != "web1" {
		t.Fatalf("resized volume = %+v", vol)
	}

	// Snapshots of a stopped VM cover the root disk and the volume.
	var sn api.Snapshot
	f.must(t, post("/api/v1/vms/web1/snapshots", `{"name":"s1"}`), http.StatusCreated, &sn)
	if sn.Name != "s1" || sn.Memory || sn.VMState != "stopped" || sn.CPUModel != "max" || sn.QEMUVersion != "7.2.0" || !reflect.DeepEqual(sn.Disks, []string{"data1"}) {
		t.Fatalf("snapshot = %+v", sn)
	}
	f.must(t, get("/api/v1/volumes/data1"), http.StatusOK, &vol)
	if !reflect.DeepEqual(vol.Snapshots, []string{"s1"}) {
		t.Fatalf("volume snapshots = %v", vol.Snapshots)
	}
	f.must(t, post("/api/v1/vms/web1/snapshots", `{"name":"s2"}`), http.StatusCreated, nil)
	f.must(t, post("/api/v1/vms/web1/snapshots", `{"name":"s1"}`), http.StatusConflict, nil)
	f.must(t, post("/api/v1/vms/web1/snapshots/s1/revert", ""), http.StatusOK, &vm)
	f.must(t, del("/api/v1/vms/web1/snapshots/s1"), http.StatusNoContent, nil)
	var sns []api.Snapshot
	f.must(t, get("/api/v1/vms/web1/snapshots"), http.StatusOK, &sns)
	if len(sns) != 1 || sns[0].Name != "s2" {
		t.Fatalf("snapshots = %+v", sns)
	}
	f.must(t, del("/api/v1/vms/web1/snapshots/s2"), http.StatusNoContent, nil)

	// Detach (stopped: no guest to ask), then the volume can go.
	f.must(t, del("/api/v1/vms/web1/disks/data1"), http.StatusOK, &vm)
	if len(vm.Disks) != 0 {
		t.Fatalf("disks after detach = %+v", vm.Disks)
	}

	// Clones, an image, a backup and a restore.
	var clone api.VM
	f.must(t, post("/api/v1/vms/web1/clone", `{"name":"full1"}`), http.StatusCreated, &clone)
	if clone.Image != "base" || clone.DiskGiB != 1 || clone.State != "stopped" {
		t.Fatalf("full clone = %+v", clone)
	}
	f.must(t, post("/api/v1/vms/web1/clone", `{"name":"link1","linked":true}`), http.StatusCreated, &clone)
	if !strings.HasPrefix(clone.Image, "web1-base-") {
		t.Fatalf("linked clone image = %q", clone.Image)
	}
	f.must(t, get("/api/v1/vms/web1"), http.StatusOK, &vm)
	if vm.Image != clone.Image {
		t.Fatalf("the source is on %q, the clone on %q", vm.Image, clone.Image)
	}
	f.must(t, del("/api/v1/images/"+clone.Image), http.StatusConflict, nil)
	f.must(t, del("/api/v1/images/base"), http.StatusConflict, nil)
	var img api.Image
	f.must(t, post("/api/v1/images/from-vm", `{"name":"golden","vm":"web1"}`), http.StatusCreated, &img)
	if img.Name != "golden" || img.Format != "qcow2" || img.SHA256 == "" || img.VirtualSize != 1<<30 {
		t.Fatalf("image = %+v", img)
	}
	target := filepath.Join(f.backups, "web1.qcow2")
	var b api.Backup
	f.must(t, post("/api/v1/vms/web1/backup", `{"to":"`+target+`"}`), http.StatusCreated, &b)
	if b.Path != target || b.Live || b.VirtualSize != 1<<30 {
		t.Fatalf("backup = %+v", b)
	}
	f.must(t, post("/api/v1/vms/restore", `{"name":"restored","from":"`+target+`"}`), http.StatusCreated, &vm)
	if vm.Image != clone.Image || vm.DiskGiB != 1 || vm.State != "stopped" {
		t.Fatalf("restored = %+v", vm)
	}
	f.must(t, del("/api/v1/volumes/data1"), http.StatusNoContent, nil)
	f.must(t, del("/api/v1/pools/fast"), http.StatusNoContent, nil)

	var evs []api.Event
	f.must(t, get("/api/v1/events?limit=1000"), http.StatusOK, &evs)
	var types []string
	for _, e := range evs {
		types = append(types, e.Type)
	}
	for _, want := range []string{"pool.created", "volume.created", "vm.disk.attached", "volume.resized", "vm.snapshot",
		"vm.disk.detached", "vm.cloned", "image.created-from-vm", "vm.backup", "vm.restored", "volume.deleted", "pool.deleted"} {
		if !strings.Contains(strings.Join(types, " "), want) {
			t.Errorf("no %s event in %v", want, types)
		}
	}
}

// TestOpenAPIStorageSchemas checks the storage schemas against their Go types, as
// TestOpenAPISchemas does for the others.
func TestOpenAPIStorageSchemas(t *testing.T) {
	f := newFixture(t)
	doc := loadOpenAPI(t, f)
	for _, tt := range []struct {
		name string
		in   any
	}{
		{"StoragePool", api.StoragePool{}}, {"CreatePoolRequest", api.CreatePoolRequest{}}, {"Volume", api.Volume{}},
		{"CreateVolumeRequest", api.CreateVolumeRequest{}}, {"ResizeVolumeRequest", api.ResizeVolumeRequest{}},
		{"AttachDiskRequest", api.AttachDiskRequest{}}, {"VMDisk", api.VMDisk{}}, {"Snapshot", api.Snapshot{}},
		{"CreateSnapshotRequest", api.CreateSnapshotRequest{}}, {"CloneVMRequest", api.CloneVMRequest{}},
		{"ImageFromVMRequest", api.ImageFromVMRequest{}}, {"BackupRequest", api.BackupRequest{}}, {"Backup", api.Backup{}},
		{"RestoreVMRequest", api.RestoreVMRequest{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := doc.Components.Schemas[tt.name]
			if !ok {
				t.Fatalf("no schema %s", tt.name)
			}
			var got, want []string
			for k := range s.Properties {
				got = append(got, k)
			}
			typ := reflect.TypeOf(tt.in)
			for i := range typ.NumField() {
				if name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
					want = append(want, name)
				}
			}
			sort.Strings(got)
			sort.Strings(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("schema %s properties:\n%v\nGo type fields:\n%v", tt.name, got, want)
			}
		})
	}
}
