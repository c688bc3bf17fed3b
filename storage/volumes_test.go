package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/limiquantix/limiquantix/store"
)

func TestParseDetails(t *testing.T) {
	d, err := parseDetails([]byte(readTestdata(t, "info-chain.json")))
	if err != nil {
		t.Fatal(err)
	}
	want := Details{
		Info: Info{Format: "qcow2", VirtualSize: 2 << 30, ActualSize: 208896, ClusterSize: 65536,
			BackingFile: "/var/lib/lq/pools/default/images/base.qcow2", FullBackingFile: "/var/lib/lq/pools/default/images/base.qcow2",
			BackingFormat: "qcow2"},
		Chain:     []string{"/var/lib/lq/pools/default/images/base.qcow2"},
		Snapshots: []SnapshotTag{{Name: "s1", DateSec: 1795667742}},
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("parseDetails\n got %+v\nwant %+v", d, want)
	}
	for _, bad := range []string{"", "{}", "[]", `[{"format": 1}]`} {
		if _, err := parseDetails([]byte(bad)); err == nil {
			t.Errorf("parseDetails(%q) = nil error", bad)
		}
	}
}

type testVolumes struct {
	v    *Volumes
	db   *store.DB
	def  *DirPool
	root string
}

func newTestVolumes(t *testing.T) testVolumes {
	t.Helper()
	needQemuImg(t)
	ctx := context.Background()
	root := t.TempDir()
	db, err := store.Open(ctx, filepath.Join(root, "lq.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	def, err := OpenDirPool("default", filepath.Join(root, "pools", "default"), ExecRunner{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := OpenVolumes(ctx, db, ExecRunner{}, def)
	if err != nil {
		t.Fatal(err)
	}
	return testVolumes{v: v, db: db, def: def, root: root}
}

// snapshotTree lists the files under dir, for "nothing changed" checks.
func snapshotTree(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(p, ".db-wal") && !strings.HasSuffix(p, ".db-shm") && !strings.HasSuffix(p, ".db") {
			st, _ := d.Info()
			out[p] = st.Size()
		}
		return nil
	})
	return out
}

func TestVolumesBadInputChangesNothing(t *testing.T) {
	tv := newTestVolumes(t)
	ctx := context.Background()
	fast := filepath.Join(tv.root, "fast")
	if _, err := tv.v.CreatePool(ctx, "fast", fast); err != nil {
		t.Fatal(err)
	}
	if _, err := tv.v.Create(ctx, "data1", "fast", 1<<30); err != nil {
		t.Fatal(err)
	}
	c, err := tv.def.Capacity()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		do   func() error
		want error
	}{
		{"volume name", func() error { _, err := tv.v.Create(ctx, "Bad_Name", "", 1<<30); return err }, ErrInvalid},
		{"volume size zero", func() error { _, err := tv.v.Create(ctx, "x", "", 0); return err }, ErrInvalid},
		{"volume bigger than the pool", func() error { _, err := tv.v.Create(ctx, "x", "", c.Free+(1<<30)); return err }, ErrInvalid},
		{"volume in a missing pool", func() error { _, err := tv.v.Create(ctx, "x", "nope", 1<<30); return err }, store.ErrNotFound},
		{"volume name taken", func() error { _, err := tv.v.Create(ctx, "data1", "", 1<<30); return err }, store.ErrConflict},
		{"resize smaller", func() error { return tv.v.CheckResize(ctx, "data1", 1<<29) }, ErrInvalid},
		{"resize beyond the pool", func() error { return tv.v.CheckResize(ctx, "data1", c.Free+(2<<30)) }, ErrInvalid},
		{"resize a missing volume", func() error { return tv.v.CheckResize(ctx, "nope", 2<<30) }, store.ErrNotFound},
		{"pool name", func() error { _, err := tv.v.CreatePool(ctx, "A", filepath.Join(tv.root, "a")); return err }, ErrInvalid},
		{"pool path relative", func() error { _, err := tv.v.CreatePool(ctx, "a", "srv/a"); return err }, ErrInvalid},
		{"pool path unclean", func() error { _, err := tv.v.CreatePool(ctx, "a", tv.root+"/x/../a"); return err }, ErrInvalid},
		{"pool inside a pool", func() error { _, err := tv.v.CreatePool(ctx, "a", filepath.Join(fast, "sub")); return err }, ErrInvalid},
		{"pool around a pool", func() error { _, err := tv.v.CreatePool(ctx, "a", tv.root); return err }, ErrInvalid},
		{"pool name taken", func() error { _, err := tv.v.CreatePool(ctx, "fast", filepath.Join(tv.root, "b")); return err }, store.ErrConflict},
		{"delete the default pool", func() error { return tv.v.DeletePool(ctx, "default") }, ErrInvalid},
		{"delete a pool with volumes", func() error { return tv.v.DeletePool(ctx, "fast") }, store.ErrInUse},
		{"delete a missing volume", func() error { return tv.v.Delete(ctx, "nope") }, store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := snapshotTree(t, tv.root)
			pools, _ := tv.v.Pools(ctx)
			err := tt.do()
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if after := snapshotTree(t, tv.root); !maps.Equal(before, after) {
				t.Errorf("files changed:\nbefore %v\nafter  %v", before, after)
			}
			if after, _ := tv.v.Pools(ctx); len(after) != len(pools) {
				t.Errorf("pools changed: %d -> %d", len(pools), len(after))
			}
		})
	}
}

func TestVolumeLifecycle(t *testing.T) {
	tv := newTestVolumes(t)
	ctx := context.Background()
	fast := filepath.Join(tv.root, "fast")
	p, err := tv.v.CreatePool(ctx, "fast", fast)
	if err != nil {
		t.Fatal(err)
	}
	if p.Driver != DriverDir || p.Total <= 0 || p.Default {
		t.Errorf("pool = %+v", p)
	}
	v, err := tv.v.Create(ctx, "data1", "fast", 3<<30)
	if err != nil {
		t.Fatal(err)
	}
	if v.Format != "qcow2" || v.VirtualSize != 3<<30 || v.ActualSize <= 0 || v.Path != filepath.Join(fast, "volumes", "data1.qcow2") || len(v.Chain) != 0 {
		t.Errorf("volume = %+v", v)
	}
	ps, err := tv.v.Pools(ctx)
	if err != nil || len(ps) != 2 || ps[1].Name != "fast" || ps[1].Volumes != 1 || ps[1].Allocated != 3<<30 || !ps[0].Default {
		t.Fatalf("pools = %+v, %v", ps, err)
	}
	// A volume in use cannot be deleted; nothing is lost trying.
	if err := tv.db.CreateImage(ctx, store.Image{Name: "img", Format: "qcow2", Path: "/x"}); err != nil {
		t.Fatal(err)
	}
	if err := tv.db.CreateVM(ctx, store.VM{UUID: "u1", Name: "web1", Image: "img", Spec: []byte(`{}`), State: "stopped"}); err != nil {
		t.Fatal(err)
	}
	if err := tv.db.AttachVolume(ctx, "data1", "u1", nil); err != nil {
		t.Fatal(err)
	}
	if err := tv.v.Delete(ctx, "data1"); !errors.Is(err, store.ErrInUse) {
		t.Fatalf("delete attached volume: %v, want ErrInUse", err)
	}
	if _, err := os.Stat(v.Path); err != nil {
		t.Fatalf("attached volume's file: %v", err)
	}
	if got, _ := tv.v.Get(ctx, "data1"); got.VMName != "web1" {
		t.Errorf("attached_to = %q", got.VMName)
	}
	if err := tv.db.DetachVolume(ctx, "data1", "u1", nil); err != nil {
		t.Fatal(err)
	}
	if err := tv.v.CheckResize(ctx, "data1", 4<<30); err != nil {
		t.Errorf("CheckResize: %v", err)
	}
	if err := tv.v.Delete(ctx, "data1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(v.Path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("deleted volume's file: %v", err)
	}
	if err := tv.v.DeletePool(ctx, "fast"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(fast); err != nil {
		t.Errorf("a deleted pool's directory stays: %v", err)
	}
}

func TestVolumesGC(t *testing.T) {
	tv := newTestVolumes(t)
	ctx := context.Background()
	if _, err := tv.v.Create(ctx, "kept", "", 1<<20); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tv.def.Path(), "volumes")
	orphan, tmp := filepath.Join(dir, "orphan.qcow2"), filepath.Join(dir, "half.qcow2.tmp")
	for _, f := range []string{orphan, tmp} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := tv.v.GC(ctx)
	if err != nil || len(removed) != 1 || removed[0] != orphan {
		t.Fatalf("GC = %v, %v; want [%s]", removed, err, orphan)
	}
	for f, want := range map[string]bool{orphan: false, tmp: false, filepath.Join(dir, "kept.qcow2"): true} {
		if _, err := os.Stat(f); (err == nil) != want {
			t.Errorf("%s exists = %v, want %v", f, err == nil, want)
		}
	}
}

// qemuIO runs qemu-io commands on a disk and fails the test if a read does not match.
func qemuIO(t *testing.T, disk string, cmds ...string) {
	t.Helper()
	args := []string{"-f", "qcow2"}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	out, err := exec.Command("qemu-io", append(args, disk)...).CombinedOutput()
	if err != nil || strings.Contains(string(out), "Pattern verification failed") || strings.Contains(string(out), "failed") {
		t.Fatalf("qemu-io %v %s: %v\n%s", cmds, disk, err, out)
	}
}

// TestToolSnapshotChain: internal snapshots are independent, so deleting one in the middle
// keeps the others, each with its own data.
func TestToolSnapshotChain(t *testing.T) {
	needQemuImg(t)
	if _, err := exec.LookPath("qemu-io"); err != nil {
		t.Skip("qemu-io not installed")
	}
	ctx := context.Background()
	tool := Tool{R: ExecRunner{}}
	disk := filepath.Join(t.TempDir(), "d.qcow2")
	if err := tool.CreateQcow2(ctx, disk, 64<<20); err != nil {
		t.Fatal(err)
	}
	if err := tool.CreateQcow2(ctx, disk, 64<<20); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("CreateQcow2 over a file: %v", err)
	}
	for i, s := range []string{"s1", "s2", "s3"} {
		qemuIO(t, disk, fmt.Sprintf("write -P %d 0 64k", 0xa1+i))
		if err := tool.Snapshot(ctx, disk, SnapshotCreate, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := tool.Snapshot(ctx, disk, SnapshotDelete, "s2"); err != nil {
		t.Fatal(err)
	}
	tags, err := tool.SnapshotTags(ctx, disk)
	if err != nil || !reflect.DeepEqual(tags, []string{"s1", "s3"}) {
		t.Fatalf("tags = %v, %v", tags, err)
	}
	if err := tool.Snapshot(ctx, disk, SnapshotApply, "s1"); err != nil {
		t.Fatal(err)
	}
	qemuIO(t, disk, "read -P 161 0 64k")
	if err := tool.Snapshot(ctx, disk, SnapshotApply, "s3"); err != nil {
		t.Fatal(err)
	}
	qemuIO(t, disk, "read -P 163 0 64k")
	for _, bad := range []struct{ op, tag string }{{"frobnicate", "s1"}, {SnapshotApply, "-x"}, {SnapshotApply, "s2"}} {
		if err := tool.Snapshot(ctx, disk, bad.op, bad.tag); err == nil {
			t.Errorf("Snapshot(%s, %s) succeeded", bad.op, bad.tag)
		}
	}
	if err := tool.Resize(ctx, disk, 32<<20); !errors.Is(err, ErrInvalid) {
		t.Errorf("shrink: %v, want ErrInvalid", err)
	}
	if err := tool.Resize(ctx, disk, 128<<20); err != nil {
		t.Fatal(err)
	}
	if n, err := tool.VirtualSize(ctx, disk); err != nil || n != 128<<20 {
		t.Errorf("after resize: %d, %v", n, err)
	}
}

func TestToolCopyAndStandalone(t *testing.T) {
	needQemuImg(t)
	ctx := context.Background()
	tool := Tool{R: ExecRunner{}}
	dir := t.TempDir()
	base, top := filepath.Join(dir, "base.qcow2"), filepath.Join(dir, "top.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", base, "64M")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", base, top, "128M")
	if _, err := tool.Standalone(ctx, top); !errors.Is(err, ErrInvalid) {
		t.Errorf("Standalone(overlay) = %v, want ErrInvalid", err)
	}
	raw := filepath.Join(dir, "raw.img")
	os.WriteFile(raw, make([]byte, 1<<20), 0o600)
	if _, err := tool.Standalone(ctx, raw); !errors.Is(err, ErrInvalid) {
		t.Errorf("Standalone(raw) = %v, want ErrInvalid", err)
	}
	dst := filepath.Join(dir, "copy.qcow2")
	if err := tool.Copy(ctx, top, dst); err != nil {
		t.Fatal(err)
	}
	if n, err := tool.Standalone(ctx, dst); err != nil || n != 128<<20 {
		t.Errorf("Standalone(copy) = %d, %v", n, err)
	}
	if err := tool.Copy(ctx, top, dst); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Copy over an existing file: %v", err)
	}
	// A copy that fails leaves nothing: neither the target nor its partial file.
	before := snapshotTree(t, dir)
	if err := tool.Copy(ctx, filepath.Join(dir, "missing.qcow2"), filepath.Join(dir, "bad.qcow2")); err == nil {
		t.Fatal("copy of a missing file succeeded")
	}
	if after := snapshotTree(t, dir); !maps.Equal(before, after) {
		t.Errorf("a failed copy left files: %v", after)
	}
}

func TestNoSpace(t *testing.T) {
	err := noSpace(errors.New("qemu-img convert: exit status 1: error while writing at byte 0: No space left on device"))
	if !errors.Is(err, ErrNoSpace) {
		t.Errorf("%v is not ErrNoSpace", err)
	}
	if errors.Is(noSpace(errors.New("other")), ErrNoSpace) {
		t.Error("any error is ErrNoSpace")
	}
}

// TestFreezeAndFromDisk: a linked clone's base is the VM's own disk, moved into the library
// as an overlay on the VM's image, with the VM on a new overlay on it; an image from a VM is
// a flattened standalone copy.
func TestFreezeAndFromDisk(t *testing.T) {
	needQemuImg(t)
	tl := newTestLib(t)
	ctx := context.Background()
	kernel := tl.file(t, "vmlinuz", fakeBzImage())
	base, err := tl.lib.Commit(ctx, ImportRequest{Name: "deb", Disk: tl.stage(t, qcow2File(t, tl.src, "deb.qcow2", "64M")), Kernel: tl.stage(t, kernel), Cmdline: "console=ttyS0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := tl.db.CreateVM(ctx, store.VM{UUID: "u1", Name: "web1", Image: "deb", Spec: []byte(`{"image":"deb"}`), State: "stopped"}); err != nil {
		t.Fatal(err)
	}
	disk, err := tl.pool.CreateOverlay(ctx, base, "u1", 128<<20)
	if err != nil {
		t.Fatal(err)
	}
	im, err := tl.lib.Freeze(ctx, "web1-base", disk, base, "u1", []byte(`{"image":"web1-base"}`), []byte(`{"image":"deb"}`))
	if err != nil {
		t.Fatal(err)
	}
	if im.Path != filepath.Join(tl.images, "web1-base.qcow2") || im.VirtualSize != 128<<20 || im.Kernel != filepath.Join(tl.images, "web1-base.vmlinuz") || im.Cmdline != "console=ttyS0" {
		t.Errorf("frozen image = %+v", im)
	}
	top, err := InspectDetails(ctx, ExecRunner{}, disk)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(top.Chain, []string{im.Path, base.Path}) || top.VirtualSize != 128<<20 {
		t.Errorf("the VM's disk chain = %v (size %d)", top.Chain, top.VirtualSize)
	}
	if p, _ := tl.db.ImageParent(ctx, "web1-base"); p != "deb" {
		t.Errorf("parent = %q", p)
	}
	if vms, _ := tl.db.VMs(ctx); vms[0].Image != "web1-base" {
		t.Errorf("vm image = %q", vms[0].Image)
	}
	if err := tl.lib.Delete(ctx, "deb"); !errors.Is(err, store.ErrInUse) {
		t.Errorf("delete the parent of a base: %v", err)
	}
	// The name is taken now: a second freeze changes nothing.
	before := snapshotTree(t, tl.pool.Path())
	if _, err := tl.lib.Freeze(ctx, "web1-base", disk, base, "u1", nil, nil); !errors.Is(err, store.ErrConflict) {
		t.Errorf("freeze onto a taken name: %v", err)
	}
	if after := snapshotTree(t, tl.pool.Path()); !maps.Equal(before, after) {
		t.Errorf("a failed freeze changed files:\n%v\n%v", before, after)
	}

	golden, err := tl.lib.FromDisk(ctx, "golden", disk, base)
	if err != nil {
		t.Fatal(err)
	}
	gd, err := InspectDetails(ctx, ExecRunner{}, golden.Path)
	if err != nil || len(gd.Chain) != 0 || gd.VirtualSize != 128<<20 || golden.SHA256 == "" || golden.Kernel == "" {
		t.Errorf("image from disk = %+v, details %+v, %v", golden, gd, err)
	}
	if _, err := tl.lib.FromDisk(ctx, "golden", disk, base); !errors.Is(err, store.ErrConflict) {
		t.Errorf("image from disk onto a taken name: %v", err)
	}
}

// qcow2File makes an empty qcow2 of size in dir.
func qcow2File(t *testing.T, dir, name, size string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	qemuImg(t, "create", "-q", "-f", "qcow2", p, size)
	return p
}
