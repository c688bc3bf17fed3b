package store

import (
	"context"
	"errors"
	"testing"
)

func TestPoolsAndVolumes(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.EnsurePool(ctx, Pool{Name: "default", Driver: "dir", Path: "/p/default"}))
	must(db.EnsurePool(ctx, Pool{Name: "default", Driver: "dir", Path: "/p/moved"})) // follows --data-dir
	must(db.CreatePool(ctx, Pool{Name: "fast", Driver: "dir", Path: "/srv/fast"}))
	must(db.CreateImage(ctx, Image{Name: "deb", Format: "qcow2", Path: "/x"}))
	must(db.CreateVM(ctx, VM{UUID: "u1", Name: "web1", Image: "deb", Spec: []byte(`{}`), State: "stopped"}))
	must(db.CreateVM(ctx, VM{UUID: "u2", Name: "web2", Image: "deb", Spec: []byte(`{}`), State: "stopped"}))
	must(db.CreateVolume(ctx, Volume{Name: "data1", Pool: "fast", Path: "/srv/fast/volumes/data1.qcow2", Format: "qcow2", Size: 1 << 30}))

	steps := []struct {
		name string
		do   func() error
		want error
	}{
		{"pool name taken", func() error { return db.CreatePool(ctx, Pool{Name: "fast", Driver: "dir", Path: "/other"}) }, ErrConflict},
		{"pool path taken", func() error { return db.CreatePool(ctx, Pool{Name: "other", Driver: "dir", Path: "/srv/fast"}) }, ErrConflict},
		{"volume name taken", func() error {
			return db.CreateVolume(ctx, Volume{Name: "data1", Pool: "fast", Path: "/y", Format: "qcow2"})
		}, ErrConflict},
		{"volume in a missing pool", func() error {
			return db.CreateVolume(ctx, Volume{Name: "data2", Pool: "nope", Path: "/z", Format: "qcow2"})
		}, ErrNotFound},
		{"attach to a missing vm", func() error { return db.AttachVolume(ctx, "data1", "nope", nil) }, ErrNotFound},
		{"attach a missing volume", func() error { return db.AttachVolume(ctx, "nope", "u1", nil) }, ErrNotFound},
		{"attach", func() error { return db.AttachVolume(ctx, "data1", "u1", nil) }, nil},
		{"attach again to the same vm", func() error { return db.AttachVolume(ctx, "data1", "u1", nil) }, nil},
		{"attach to another vm", func() error { return db.AttachVolume(ctx, "data1", "u2", nil) }, ErrInUse},
		{"detach by another vm", func() error { return db.DetachVolume(ctx, "data1", "u2", nil) }, ErrInUse},
		{"delete attached volume", func() error { return db.DeleteVolume(ctx, "data1") }, ErrInUse},
		{"delete pool with volumes", func() error { return db.DeletePool(ctx, "fast") }, ErrInUse},
		{"resize", func() error { return db.SetVolumeSize(ctx, "data1", 2<<30) }, nil},
	}
	for _, s := range steps {
		if err := s.do(); !errors.Is(err, s.want) || (s.want == nil && err != nil) {
			t.Fatalf("%s: %v, want %v", s.name, err, s.want)
		}
	}
	v, err := db.Volume(ctx, "data1")
	must(err)
	if v.VMUUID != "u1" || v.VMName != "web1" || v.Size != 2<<30 {
		t.Fatalf("volume = %+v", v)
	}
	must(db.AttachVolume(ctx, "data1", "u1", []byte(`{"disks":["data1"]}`)))
	if vms, _ := db.VMs(ctx); string(vms[0].Spec) != `{"disks":["data1"]}` {
		t.Fatalf("spec not recorded with the attachment: %s", vms[0].Spec)
	}
	if vs, _ := db.VolumesOf(ctx, "u1"); len(vs) != 1 || vs[0].Name != "data1" {
		t.Fatalf("VolumesOf(u1) = %+v", vs)
	}
	// Deleting the VM frees its volumes; they outlive it.
	must(db.DeleteVM(ctx, "u1"))
	if v, _ := db.Volume(ctx, "data1"); v.VMUUID != "" || v.VMName != "" {
		t.Fatalf("after vm delete: %+v", v)
	}
	must(db.AttachVolume(ctx, "data1", "u2", nil))
	must(db.DetachVolume(ctx, "data1", "u2", nil))
	must(db.DetachVolume(ctx, "data1", "u2", nil)) // already free: fine
	must(db.DeleteVolume(ctx, "data1"))
	must(db.DeletePool(ctx, "fast"))
	if ps, _ := db.Pools(ctx); len(ps) != 1 || ps[0].Path != "/p/moved" {
		t.Fatalf("pools = %+v", ps)
	}
}

func TestDerivedImageAndSnapshots(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	if err := db.CreateImage(ctx, Image{Name: "deb", Format: "qcow2", Path: "/x"}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateVM(ctx, VM{UUID: "u1", Name: "web1", Image: "deb", Spec: []byte(`{}`), State: "stopped"}); err != nil {
		t.Fatal(err)
	}
	base := Image{Name: "web1-base", Format: "qcow2", Path: "/b"}
	if err := db.CreateDerivedImage(ctx, base, "nope", "u1", []byte(`{"image":"web1-base"}`)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("derived from a missing parent: %v", err)
	}
	if err := db.CreateDerivedImage(ctx, base, "deb", "u1", []byte(`{"image":"web1-base"}`)); err != nil {
		t.Fatal(err)
	}
	vms, _ := db.VMs(ctx)
	if vms[0].Image != "web1-base" || string(vms[0].Spec) != `{"image":"web1-base"}` {
		t.Fatalf("vm not moved onto its base: %+v", vms[0])
	}
	if p, err := db.ImageParent(ctx, "web1-base"); err != nil || p != "deb" {
		t.Fatalf("parent = %q, %v", p, err)
	}
	if err := db.DeleteImage(ctx, "deb"); !errors.Is(err, ErrInUse) {
		t.Fatalf("delete the parent of an image: %v, want ErrInUse", err)
	}

	sn := Snapshot{VMUUID: "u1", Name: "s1", Memory: true, VMState: "running", Machine: "pc-q35-7.2", CPUModel: "max", Spec: []byte(`{"cpus":1}`)}
	if err := db.CreateSnapshot(ctx, sn); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateSnapshot(ctx, sn); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate snapshot: %v", err)
	}
	if err := db.CreateSnapshot(ctx, Snapshot{VMUUID: "nope", Name: "s1", Spec: []byte(`{}`)}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("snapshot of a missing vm: %v", err)
	}
	got, err := db.Snapshot(ctx, "u1", "s1")
	if err != nil || !got.Memory || got.Machine != "pc-q35-7.2" || string(got.Spec) != `{"cpus":1}` {
		t.Fatalf("snapshot = %+v, %v", got, err)
	}
	if err := db.DeleteSnapshot(ctx, "u1", "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete missing snapshot: %v", err)
	}
	// Snapshots go with their VM.
	if err := db.DeleteVM(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if all, _ := db.Snapshots(ctx, "u1"); len(all) != 0 {
		t.Fatalf("snapshots outlived their vm: %+v", all)
	}
}
