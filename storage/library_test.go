package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/limiquantix/limiquantix/store"
)

// These tests run the real qemu-img; they skip where it is not installed.

func needQemuImg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed")
	}
}

type testLib struct {
	lib    *Library
	db     *store.DB
	pool   *DirPool
	images string
	src    string // scratch dir for files to upload
}

func newTestLib(t *testing.T) testLib {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "lq.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	pool, err := OpenDirPool("default", filepath.Join(t.TempDir(), "pool"), ExecRunner{})
	if err != nil {
		t.Fatal(err)
	}
	return testLib{
		lib: NewLibrary(db, pool, ExecRunner{}), db: db, pool: pool,
		images: pool.ImagesDir(), src: t.TempDir(),
	}
}

// qemuImg runs qemu-img for test setup.
func qemuImg(t *testing.T, args ...string) {
	t.Helper()
	if _, err := (ExecRunner{}).Run(context.Background(), "qemu-img", args...); err != nil {
		t.Fatal(err)
	}
}

// rawData is 1 MiB of a recognisable pattern (probes as raw).
func rawData() []byte { return bytes.Repeat([]byte("limiquantix raw disk\n"), 1<<20/21+1)[:1<<20] }

func (tl testLib) file(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(tl.src, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (tl testLib) stage(t *testing.T, path string) *Staged {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := tl.lib.Stage(context.Background(), f, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sha256File(t *testing.T, path string) (string, int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), int64(len(b))
}

func TestLibraryImportIntegration(t *testing.T) {
	needQemuImg(t)
	tests := []struct {
		name        string
		format      string // ImportRequest.Format
		make        func(t *testing.T, tl testLib) string
		kernel      bool
		wantFormat  string
		wantVirtual int64
	}{
		{
			name: "raw", format: "raw", wantFormat: "raw", wantVirtual: 1 << 20,
			make: func(t *testing.T, tl testLib) string { return tl.file(t, "disk.raw", rawData()) },
		},
		{
			name: "qcow2 with data", format: "qcow2", wantFormat: "qcow2", wantVirtual: 1 << 20,
			make: func(t *testing.T, tl testLib) string {
				raw := tl.file(t, "in.raw", rawData())
				out := filepath.Join(tl.src, "disk.qcow2")
				qemuImg(t, "convert", "-f", "raw", "-O", "qcow2", raw, out)
				return out
			},
		},
		{
			name: "qcow2, format probed", format: "", wantFormat: "qcow2", wantVirtual: 64 << 20,
			make: func(t *testing.T, tl testLib) string {
				out := filepath.Join(tl.src, "disk.qcow2")
				qemuImg(t, "create", "-q", "-f", "qcow2", out, "64M")
				return out
			},
		},
		{
			name: "raw with kernel, initrd and cmdline", format: "raw", kernel: true, wantFormat: "raw", wantVirtual: 1 << 20,
			make: func(t *testing.T, tl testLib) string { return tl.file(t, "disk.raw", rawData()) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			tl := newTestLib(t)
			src := tt.make(t, tl)
			wantSum, wantSize := sha256File(t, src)

			req := ImportRequest{Name: "img", Format: tt.format, Disk: tl.stage(t, src)}
			if tt.kernel {
				req.Kernel = tl.stage(t, tl.file(t, "vmlinuz", fakeBzImage()))
				req.Initrd = tl.stage(t, tl.file(t, "initrd", []byte("070701 cpio")))
				req.Cmdline = "console=ttyS0 root=/dev/vda"
			}
			im, err := tl.lib.Commit(ctx, req)
			if err != nil {
				t.Fatalf("Commit: %v", err)
			}
			req.Disk.Discard() // no-op after Commit
			req.Kernel.Discard()

			wantPath := filepath.Join(tl.images, "img."+tt.wantFormat)
			if im.Name != "img" || im.Format != tt.wantFormat || im.Path != wantPath || im.Size != wantSize ||
				im.VirtualSize != tt.wantVirtual || im.SHA256 != wantSum || im.CreatedAt.IsZero() {
				t.Errorf("Commit = %+v\nwant format %s path %s size %d virtual %d sha %s",
					im, tt.wantFormat, wantPath, wantSize, tt.wantVirtual, wantSum)
			}
			row, err := tl.db.Image(ctx, "img")
			if err != nil {
				t.Fatal(err)
			}
			if row != im {
				t.Errorf("db row = %+v, want %+v", row, im)
			}
			if got, _ := sha256File(t, row.Path); got != wantSum {
				t.Errorf("library file sha256 = %s, want %s", got, wantSum)
			}
			wantFiles := []string{"img." + tt.wantFormat}
			if tt.kernel {
				if row.Kernel != filepath.Join(tl.images, "img.vmlinuz") || row.Initrd != filepath.Join(tl.images, "img.initrd") ||
					row.Cmdline != req.Cmdline {
					t.Errorf("kernel, initrd, cmdline = %q, %q, %q", row.Kernel, row.Initrd, row.Cmdline)
				}
				wantFiles = append(wantFiles, "img.initrd", "img.vmlinuz")
				slices.Sort(wantFiles)
			}
			if got := dirNames(t, tl.images); !slices.Equal(got, wantFiles) {
				t.Errorf("images/ = %q, want %q (staging files gone)", got, wantFiles)
			}
			for _, f := range wantFiles {
				if st, err := os.Stat(filepath.Join(tl.images, f)); err != nil || st.Mode().Perm() != 0o444 {
					t.Errorf("%s: mode %v, %v; want 0444", f, st.Mode().Perm(), err)
				}
			}
			if list, err := tl.lib.List(ctx); err != nil || len(list) != 1 || list[0] != im {
				t.Errorf("List = %+v, %v", list, err)
			}

			// A VM root disk on the image.
			const id = "0b7d4c1e-vm"
			size := tt.wantVirtual * 4
			disk, err := tl.pool.CreateOverlay(ctx, im, id, size)
			if err != nil {
				t.Fatalf("CreateOverlay: %v", err)
			}
			info, err := Inspect(ctx, ExecRunner{}, disk)
			if err != nil {
				t.Fatal(err)
			}
			want := Info{Format: "qcow2", BackingFile: im.Path, FullBackingFile: im.Path, BackingFormat: im.Format, VirtualSize: size}
			if info.Format != want.Format || info.BackingFile != want.BackingFile || info.BackingFormat != want.BackingFormat ||
				info.VirtualSize != want.VirtualSize {
				t.Errorf("overlay info = %+v, want %+v", info, want)
			}
			if _, err := tl.pool.CreateOverlay(ctx, im, id, 0); !errors.Is(err, fs.ErrExist) {
				t.Errorf("second CreateOverlay err = %v, want fs.ErrExist", err)
			}
			if ids, err := tl.pool.Disks(); err != nil || !slices.Equal(ids, []string{id}) {
				t.Errorf("Disks = %q, %v", ids, err)
			}

			// In use: Delete refuses and keeps the files.
			if err := tl.db.CreateVM(ctx, store.VM{UUID: id, Name: "vm", Image: "img", Spec: []byte("{}"), State: "stopped"}); err != nil {
				t.Fatal(err)
			}
			if err := tl.lib.Delete(ctx, "img"); !errors.Is(err, store.ErrInUse) {
				t.Errorf("Delete while in use: %v, want store.ErrInUse", err)
			}
			if got := dirNames(t, tl.images); !slices.Equal(got, wantFiles) {
				t.Errorf("images/ after refused Delete = %q", got)
			}
			if err := tl.db.DeleteVM(ctx, id); err != nil {
				t.Fatal(err)
			}
			if err := tl.pool.RemoveDisk(id); err != nil {
				t.Fatal(err)
			}
			if err := tl.lib.Delete(ctx, "img"); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if got := dirNames(t, tl.images); len(got) != 0 {
				t.Errorf("images/ after Delete = %q", got)
			}
			if _, err := tl.lib.Get(ctx, "img"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Get after Delete: %v", err)
			}
			if err := tl.lib.Delete(ctx, "img"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("second Delete: %v", err)
			}
		})
	}
}

func TestLibraryRefusesIntegration(t *testing.T) {
	needQemuImg(t)
	qcow2 := func(t *testing.T, tl testLib) string {
		p := filepath.Join(tl.src, "ok.qcow2")
		qemuImg(t, "create", "-q", "-f", "qcow2", p, "1M")
		return p
	}
	tests := []struct {
		name    string
		disk    func(t *testing.T, tl testLib) string
		edit    func(t *testing.T, tl testLib, req *ImportRequest)
		wantErr error
		why     string // in the error message: refused for the right reason
	}{
		{
			name: "text file claiming to be qcow2",
			disk: func(t *testing.T, tl testLib) string {
				return tl.file(t, "fake.qcow2", []byte(strings.Repeat("this is not a disk image\n", 100)))
			},
			edit:    func(t *testing.T, tl testLib, req *ImportRequest) { req.Format = "qcow2" },
			wantErr: ErrInvalid, why: "disk is raw, not qcow2",
		},
		{
			name:    "qcow2 claiming to be raw",
			disk:    qcow2,
			edit:    func(t *testing.T, tl testLib, req *ImportRequest) { req.Format = "raw" },
			wantErr: ErrInvalid, why: "disk is qcow2, not raw",
		},
		{
			name: "qcow2 with a backing file",
			disk: func(t *testing.T, tl testLib) string {
				secret := tl.file(t, "host-secret", []byte("host file"))
				p := filepath.Join(tl.src, "evil.qcow2")
				qemuImg(t, "create", "-q", "-f", "qcow2", "-F", "raw", "-b", secret, p, "1M")
				return p
			},
			wantErr: ErrInvalid, why: "backing file",
		},
		{
			name: "qcow2 with an external data file",
			disk: func(t *testing.T, tl testLib) string {
				data := tl.file(t, "host-data", nil)
				p := filepath.Join(tl.src, "evil.qcow2")
				qemuImg(t, "create", "-q", "-f", "qcow2", "-o", "data_file="+data+",data_file_raw=on", p, "1M")
				return p
			},
			wantErr: ErrInvalid, why: "external data file",
		},
		{
			name: "encrypted qcow2",
			disk: func(t *testing.T, tl testLib) string {
				p := filepath.Join(tl.src, "enc.qcow2")
				// LUKS key setup times PBKDF2 with the thread's CPU clock, which on a busy
				// virtual machine sometimes reads as zero ("Unable to get accurate CPU
				// usage"): try a few times.
				var err error
				for range 10 {
					os.Remove(p)
					if _, err = (ExecRunner{}).Run(context.Background(), "qemu-img", "create", "-q", "-f", "qcow2", "--object", "secret,id=s0,data=pw",
						"-o", "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=250", p, "1M"); err == nil {
						return p
					}
				}
				t.Fatal(err)
				return p
			},
			wantErr: ErrInvalid, why: "encrypted",
		},
		{
			name: "vmdk",
			disk: func(t *testing.T, tl testLib) string {
				p := filepath.Join(tl.src, "disk.vmdk")
				qemuImg(t, "create", "-q", "-f", "vmdk", p, "1M")
				return p
			},
			wantErr: ErrInvalid, why: "disk is vmdk",
		},
		{
			name: "fake kernel",
			disk: qcow2,
			edit: func(t *testing.T, tl testLib, req *ImportRequest) {
				req.Kernel = tl.stage(t, tl.file(t, "vmlinuz", []byte("#!/bin/sh\necho not a kernel\n")))
			},
			wantErr: ErrInvalid, why: "not an x86 bzImage",
		},
		{
			name: "initrd without kernel",
			disk: qcow2,
			edit: func(t *testing.T, tl testLib, req *ImportRequest) {
				req.Initrd = tl.stage(t, tl.file(t, "initrd", []byte("cpio")))
			},
			wantErr: ErrInvalid, why: "initrd without kernel",
		},
		{
			name:    "cmdline without kernel",
			disk:    qcow2,
			edit:    func(t *testing.T, tl testLib, req *ImportRequest) { req.Cmdline = "console=ttyS0" },
			wantErr: ErrInvalid, why: "cmdline without kernel",
		},
		{
			name: "cmdline with a newline",
			disk: qcow2,
			edit: func(t *testing.T, tl testLib, req *ImportRequest) {
				req.Kernel = tl.stage(t, tl.file(t, "vmlinuz", fakeBzImage()))
				req.Cmdline = "console=ttyS0\ninit=/bin/sh"
			},
			wantErr: ErrInvalid, why: "control character",
		},
		{
			name:    "name that is a path",
			disk:    qcow2,
			edit:    func(t *testing.T, tl testLib, req *ImportRequest) { req.Name = "../../etc/x" },
			wantErr: ErrInvalid, why: "bad image name",
		},
		{
			name:    "unknown expected format",
			disk:    qcow2,
			edit:    func(t *testing.T, tl testLib, req *ImportRequest) { req.Format = "vmdk" },
			wantErr: ErrInvalid, why: "format \"vmdk\"",
		},
		{
			name: "a host file passed off as an upload",
			disk: qcow2,
			edit: func(t *testing.T, tl testLib, req *ImportRequest) {
				req.Disk = &Staged{Path: filepath.Join(tl.src, "ok.qcow2")}
			},
			wantErr: ErrInvalid, why: "not a staged upload",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			tl := newTestLib(t)
			req := ImportRequest{Name: "img", Disk: tl.stage(t, tt.disk(t, tl))}
			staged := []*Staged{req.Disk}
			if tt.edit != nil {
				tt.edit(t, tl, &req)
				staged = append(staged, req.Kernel, req.Initrd)
			}

			_, err := tl.lib.Commit(ctx, req)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Commit err = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.why) {
				t.Errorf("Commit err = %v, want it to say %q", err, tt.why)
			}
			for _, n := range dirNames(t, tl.images) {
				if !strings.HasPrefix(n, ".staging-") {
					t.Errorf("images/ has %q after a refused Commit", n)
				}
			}
			for _, s := range staged {
				s.Discard()
			}
			if got := dirNames(t, tl.images); len(got) != 0 {
				t.Errorf("images/ = %q after Discard, want empty", got)
			}
			if list, err := tl.lib.List(ctx); err != nil || len(list) != 0 {
				t.Errorf("db images = %+v, %v; want none", list, err)
			}
		})
	}
}

func TestLibraryTooLargeIntegration(t *testing.T) {
	needQemuImg(t)
	tl := newTestLib(t)
	f, err := os.Open(tl.file(t, "disk.raw", rawData()))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := tl.lib.Stage(context.Background(), f, 1<<20-1)
	if !errors.Is(err, ErrTooLarge) || s != nil {
		t.Fatalf("Stage = %v, %v; want ErrTooLarge", s, err)
	}
	if got := dirNames(t, tl.images); len(got) != 0 {
		t.Errorf("images/ = %q, want empty", got)
	}
	if list, _ := tl.lib.List(context.Background()); len(list) != 0 {
		t.Errorf("db images = %+v", list)
	}
}

func TestLibraryConflictIntegration(t *testing.T) {
	needQemuImg(t)
	ctx := context.Background()
	tl := newTestLib(t)
	first, err := tl.lib.Commit(ctx, ImportRequest{Name: "img", Disk: tl.stage(t, tl.file(t, "a.raw", rawData()))})
	if err != nil {
		t.Fatal(err)
	}

	// Same name, same format: the existing file must survive untouched.
	other := bytes.Repeat([]byte{0xAB}, 1<<20)
	s := tl.stage(t, tl.file(t, "b.raw", other))
	if _, err := tl.lib.Commit(ctx, ImportRequest{Name: "img", Disk: s}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Commit duplicate: %v, want store.ErrConflict", err)
	}
	s.Discard()
	if got, _ := sha256File(t, first.Path); got != first.SHA256 {
		t.Errorf("existing image changed: sha256 %s, want %s", got, first.SHA256)
	}
	if got := dirNames(t, tl.images); !slices.Equal(got, []string{"img.raw"}) {
		t.Errorf("images/ = %q", got)
	}
	if row, err := tl.lib.Get(ctx, "img"); err != nil || row != first {
		t.Errorf("row = %+v, %v; want %+v", row, err, first)
	}
}

func TestLibraryGC(t *testing.T) {
	ctx := context.Background()
	tl := newTestLib(t)
	disks := filepath.Join(tl.pool.Path(), "disks")
	owned := filepath.Join(tl.images, "kept.qcow2")
	if err := tl.db.CreateImage(ctx, store.Image{Name: "kept", Format: "qcow2", Path: owned}); err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{ // path → survives GC
		owned:                                     true,
		filepath.Join(tl.images, ".staging-42"):   false, // upload cut by a crash
		filepath.Join(tl.images, "orphan.qcow2"):  false, // crash inside Commit or Delete
		filepath.Join(tl.images, "orphan.initrd"): false,
		filepath.Join(tl.images, "README"):        true, // not a name the library uses
		filepath.Join(disks, "vm-root.qcow2.tmp"): false,
		filepath.Join(disks, "vm-root.qcow2"):     true,
	}
	for f := range files {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := tl.lib.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for f, keep := range files {
		if _, err := os.Stat(f); keep != (err == nil) {
			t.Errorf("%s: exists=%v, want %v", f, err == nil, keep)
		}
		if !keep {
			want = append(want, f)
		}
	}
	slices.Sort(removed)
	slices.Sort(want)
	if !slices.Equal(removed, want) {
		t.Errorf("GC removed %q, want %q", removed, want)
	}
}
