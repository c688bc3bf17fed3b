package storage

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/limiquantix/limiquantix/store"
)

func TestCreateOverlay(t *testing.T) {
	const (
		id     = "6f1c2a9e-0b7d-4c1e-9a43-2f5d8e7c1b00"
		qcow2  = "/pool/images/debian.qcow2"
		raw    = "/pool/images/alpine.raw"
		gib    = int64(1) << 30
		infoQ  = "qemu-img info -U --output=json " + qcow2 // 2 GiB qcow2
		infoR  = "qemu-img info -U --output=json " + raw   // 64 MiB raw
		infoQR = "qemu-img info -U --output=json /pool/images/liar.qcow2"
	)
	debian := store.Image{Name: "debian", Format: "qcow2", Path: qcow2}
	alpine := store.Image{Name: "alpine", Format: "raw", Path: raw}
	tests := []struct {
		name     string
		base     store.Image
		id       string
		size     int64
		existing bool  // a disk is already at DiskPath(id)
		failRun  error // qemu-img create fails
		want     []string
		wantErr  error // nil: success; else errors.Is target (or errAny)
	}{
		{
			name: "size 0 is the base's virtual size", base: debian, id: id, size: 0,
			want: []string{infoQ,
				"qemu-img create -f qcow2 -F qcow2 -b " + qcow2 + " DISKS/" + id + "-root.qcow2.tmp 2147483648"},
		},
		{
			name: "bigger than the base", base: debian, id: id, size: 10 * gib,
			want: []string{infoQ,
				"qemu-img create -f qcow2 -F qcow2 -b " + qcow2 + " DISKS/" + id + "-root.qcow2.tmp 10737418240"},
		},
		{
			name: "same size as the base", base: debian, id: id, size: 2 * gib,
			want: []string{infoQ,
				"qemu-img create -f qcow2 -F qcow2 -b " + qcow2 + " DISKS/" + id + "-root.qcow2.tmp 2147483648"},
		},
		{
			name: "raw base", base: alpine, id: "vm1", size: gib,
			want: []string{infoR,
				"qemu-img create -f qcow2 -F raw -b " + raw + " DISKS/vm1-root.qcow2.tmp 1073741824"},
		},
		{
			name: "smaller than the base is refused", base: debian, id: id, size: gib,
			want: []string{infoQ}, wantErr: ErrInvalid,
		},
		{
			name: "negative size", base: debian, id: id, size: -1, wantErr: ErrInvalid,
		},
		{
			name: "existing disk is never overwritten", base: debian, id: id, existing: true,
			wantErr: fs.ErrExist,
		},
		{
			name: "id that is a path", base: debian, id: "../images/debian", wantErr: ErrInvalid,
		},
		{
			name: "relative base path", base: store.Image{Name: "x", Format: "qcow2", Path: "json:{}"}, id: id,
			wantErr: ErrInvalid,
		},
		{
			name: "unsupported base format", base: store.Image{Name: "x", Format: "vmdk", Path: "/pool/images/x.vmdk"}, id: id,
			wantErr: ErrInvalid,
		},
		{
			name: "base format differs from what qemu-img says",
			base: store.Image{Name: "liar", Format: "qcow2", Path: "/pool/images/liar.qcow2"}, id: id,
			want: []string{infoQR}, wantErr: errAny,
		},
		{
			name: "qemu-img create fails", base: debian, id: id, failRun: errors.New("exit status 1"),
			want: []string{infoQ,
				"qemu-img create -f qcow2 -F qcow2 -b " + qcow2 + " DISKS/" + id + "-root.qcow2.tmp 2147483648"},
			wantErr: errAny,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &fakeRunner{t: t,
				out: map[string]string{
					infoQ:  readTestdata(t, "info-qcow2.json"),
					infoR:  readTestdata(t, "info-raw.json"),
					infoQR: readTestdata(t, "info-raw.json"),
				},
				fail: map[string]error{},
			}
			p, err := OpenDirPool("default", t.TempDir(), r)
			if err != nil {
				t.Fatal(err)
			}
			disks := filepath.Join(p.Path(), "disks")
			for i, w := range tt.want {
				tt.want[i] = strings.ReplaceAll(w, "DISKS", disks)
			}
			if tt.failRun != nil {
				r.fail[tt.want[len(tt.want)-1]] = tt.failRun
			}
			if tt.existing {
				if err := os.WriteFile(p.DiskPath(tt.id), []byte("guest data"), 0o600); err != nil {
					t.Fatal(err)
				}
			}

			path, err := p.CreateOverlay(context.Background(), tt.base, tt.id, tt.size)

			if !slices.Equal(r.calls, tt.want) {
				t.Errorf("commands:\n got %q\nwant %q", r.calls, tt.want)
			}
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("CreateOverlay: %v", err)
			case tt.wantErr == errAny && err == nil, tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("CreateOverlay err = %v, want %v", err, tt.wantErr)
			}
			if err == nil {
				if path != p.DiskPath(tt.id) {
					t.Errorf("path = %q, want %q", path, p.DiskPath(tt.id))
				}
				st, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if st.Mode().Perm() != 0o600 {
					t.Errorf("disk mode = %v, want 0600", st.Mode().Perm())
				}
			}
			if tt.existing {
				if b, _ := os.ReadFile(p.DiskPath(tt.id)); string(b) != "guest data" {
					t.Errorf("existing disk was changed: %q", b)
				}
			}
			wantFiles := []string(nil)
			if err == nil || tt.existing {
				wantFiles = []string{filepath.Base(p.DiskPath(tt.id))}
			}
			if got := dirNames(t, disks); !slices.Equal(got, wantFiles) {
				t.Errorf("disks/ = %q, want %q (no .tmp left behind)", got, wantFiles)
			}
		})
	}
}

// errAny in a table means "some error", when no sentinel applies.
var errAny = errors.New("any error")

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
