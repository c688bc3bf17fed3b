package storage

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestOpenDirPool(t *testing.T) {
	root := filepath.Join(t.TempDir(), "pools", "default")
	p, err := OpenDirPool("default", root, ExecRunner{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{root, 0o750}, {filepath.Join(root, "images"), 0o750}, {filepath.Join(root, "disks"), 0o700}} {
		st, err := os.Stat(d.path)
		if err != nil {
			t.Fatal(err)
		}
		// The umask can only take permissions away.
		if !st.IsDir() || st.Mode().Perm()&^d.mode != 0 {
			t.Errorf("%s: mode %v, want dir with at most %v", d.path, st.Mode(), d.mode)
		}
	}
	if p.Name() != "default" || p.Path() != root {
		t.Errorf("Name, Path = %q, %q", p.Name(), p.Path())
	}
	if _, err := OpenDirPool("default", root, ExecRunner{}); err != nil {
		t.Errorf("reopen: %v", err)
	}
	c, err := p.Capacity()
	if err != nil {
		t.Fatal(err)
	}
	if c.Total <= 0 || c.Used < 0 || c.Free < 0 || c.Used > c.Total || c.Free > c.Total {
		t.Errorf("Capacity = %+v", c)
	}
}

func TestDisksAndRemoveDisk(t *testing.T) {
	p, err := OpenDirPool("default", t.TempDir(), ExecRunner{})
	if err != nil {
		t.Fatal(err)
	}
	disks := filepath.Join(p.Path(), "disks")
	for _, n := range []string{"b-root.qcow2", "a-root.qcow2", "c-root.qcow2.tmp", "notes.txt", ".x-root.qcow2"} {
		if err := os.WriteFile(filepath.Join(disks, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(disks, "d-root.qcow2"), 0o700); err != nil {
		t.Fatal(err)
	}
	ids, err := p.Disks()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b"}; !slices.Equal(ids, want) {
		t.Errorf("Disks = %q, want %q", ids, want)
	}
	for _, id := range []string{"a", "a", "never-existed"} { // idempotent
		if err := p.RemoveDisk(id); err != nil {
			t.Errorf("RemoveDisk(%q): %v", id, err)
		}
	}
	if err := p.RemoveDisk("../images/x"); err == nil {
		t.Error("RemoveDisk accepted a path")
	}
	if ids, _ := p.Disks(); !slices.Equal(ids, []string{"b"}) {
		t.Errorf("Disks after remove = %q", ids)
	}
}

func TestCleanStaging(t *testing.T) {
	p, err := OpenDirPool("default", t.TempDir(), ExecRunner{})
	if err != nil {
		t.Fatal(err)
	}
	images, disks := filepath.Join(p.Path(), "images"), filepath.Join(p.Path(), "disks")
	files := map[string]bool{ // path → should survive
		filepath.Join(images, ".staging-123"):            false,
		filepath.Join(images, "debian.qcow2"):            true,
		filepath.Join(disks, "vm1-root.qcow2.tmp"):       false,
		filepath.Join(disks, "vm1-root.qcow2"):           true,
		filepath.Join(disks, "vm2-root.qcow2.tmp.notes"): true,
	}
	for f := range files {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := p.CleanStaging()
	if err != nil {
		t.Fatal(err)
	}
	var wantRemoved []string
	for f, keep := range files {
		_, err := os.Stat(f)
		if keep != (err == nil) {
			t.Errorf("%s: exists=%v, want %v", f, err == nil, keep)
		}
		if !keep {
			wantRemoved = append(wantRemoved, f)
		}
	}
	slices.Sort(removed)
	slices.Sort(wantRemoved)
	if !slices.Equal(removed, wantRemoved) {
		t.Errorf("removed %q, want %q", removed, wantRemoved)
	}
}
