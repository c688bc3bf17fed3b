package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/limiquantix/limiquantix/store"
)

// FromDisk adds image name to the library from a VM's disk: a standalone qcow2 copy of it
// (its backing chain flattened, so the image stands alone), with the kernel, initrd and
// command line of the image the VM was made from (base), for direct kernel boot. The copy
// is staged like an upload and committed the same way: a failure leaves nothing.
func (l *Library) FromDisk(ctx context.Context, name, disk string, base store.Image) (store.Image, error) {
	fail := func(err error) (store.Image, error) {
		return store.Image{}, fmt.Errorf("storage: image %q from disk: %w", name, err)
	}
	if !validName(name) {
		return fail(invalid("name %q: must match ^[a-z0-9][a-z0-9-]{0,62}$", name))
	}
	if _, err := l.db.Image(ctx, name); err == nil {
		return fail(store.ErrConflict)
	} else if !errors.Is(err, store.ErrNotFound) {
		return fail(err)
	}
	staged, err := l.stageConvert(ctx, disk)
	if err != nil {
		return fail(err)
	}
	defer staged.Discard()
	req := ImportRequest{Name: name, Disk: staged, Format: "qcow2"}
	if base.Kernel != "" {
		if req.Kernel, err = l.stageLink(base.Kernel); err != nil {
			return fail(err)
		}
		defer req.Kernel.Discard()
		req.Cmdline = base.Cmdline
	}
	if base.Kernel != "" && base.Initrd != "" {
		if req.Initrd, err = l.stageLink(base.Initrd); err != nil {
			return fail(err)
		}
		defer req.Initrd.Discard()
	}
	return l.Commit(ctx, req)
}

// stageConvert writes a flattened qcow2 copy of disk into a staging file and checksums it.
func (l *Library) stageConvert(ctx context.Context, disk string) (*Staged, error) {
	f, err := os.CreateTemp(l.pool.images, stagingPrefix+"*")
	if err != nil {
		return nil, err
	}
	path := f.Name()
	f.Close()
	if _, err := l.r.Run(ctx, "qemu-img", "convert", "-U", "-O", "qcow2", disk, path); err != nil {
		os.Remove(path)
		return nil, noSpace(err)
	}
	s, err := checksum(path)
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	return s, nil
}

// stageLink stages a library file (a kernel or initrd) under a staging name by hard link:
// no copy, and the new image owns its own name for it.
func (l *Library) stageLink(src string) (*Staged, error) {
	for i := 0; ; i++ {
		path := filepath.Join(l.pool.images, stagingPrefix+"link-"+strconv.Itoa(os.Getpid())+"-"+strconv.Itoa(i))
		err := os.Link(src, path)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		st, err := os.Stat(path)
		if err != nil {
			os.Remove(path)
			return nil, err
		}
		return &Staged{Path: path, Size: st.Size()}, nil
	}
}

func checksum(path string) (*Staged, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, err
	}
	return &Staged{Path: path, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// Freeze turns a stopped VM's root disk into a read-only base image for linked clones:
// disk becomes image name (an overlay on parent, the VM's image) and the VM continues on a
// fresh overlay on it, with spec (oldSpec is its spec before, to undo). Nothing is copied,
// so it takes the same time for any disk size.
//
// The order makes a failure undo cleanly and keeps the crash windows to the two renames at
// the end: the new overlay is made first (unsafe mode: its backing file does not exist
// yet), then the records (the image, and the VM moved onto it) in one transaction, then the
// disk is renamed into the library and the overlay into its place.
func (l *Library) Freeze(ctx context.Context, name, disk string, parent store.Image, vmUUID string, spec, oldSpec []byte) (store.Image, error) {
	req := struct {
		Name, Disk    string
		Parent        store.Image
		VMUUID        string
		Spec, OldSpec []byte
	}{name, disk, parent, vmUUID, spec, oldSpec}
	fail := func(err error) (store.Image, error) {
		return store.Image{}, fmt.Errorf("storage: freeze %s as image %q: %w", req.Disk, req.Name, err)
	}
	if !validName(req.Name) {
		return fail(invalid("name %q: must match ^[a-z0-9][a-z0-9-]{0,62}$", req.Name))
	}
	info, err := Inspect(ctx, l.r, req.Disk)
	if err != nil {
		return fail(err)
	}
	if info.Format != "qcow2" {
		return fail(invalid("disk is %s, not qcow2", info.Format))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.db.Image(ctx, req.Name); err == nil {
		return fail(store.ErrConflict)
	} else if !errors.Is(err, store.ErrNotFound) {
		return fail(err)
	}
	im := store.Image{
		Name:        req.Name,
		Format:      "qcow2",
		Path:        filepath.Join(l.pool.images, req.Name+".qcow2"),
		Size:        info.ActualSize,
		VirtualSize: info.VirtualSize,
		Cmdline:     req.Parent.Cmdline,
	}
	if _, err := os.Lstat(im.Path); err == nil {
		return fail(fmt.Errorf("%s: %w", im.Path, fs.ErrExist))
	}
	var made []string
	undo := func() {
		for _, p := range made {
			os.Remove(p)
		}
	}
	for _, f := range []struct{ src, dst *string }{{&req.Parent.Kernel, &im.Kernel}, {&req.Parent.Initrd, &im.Initrd}} {
		if *f.src == "" {
			continue
		}
		dst := filepath.Join(l.pool.images, req.Name+filepath.Ext(*f.src))
		if err := os.Link(*f.src, dst); err != nil {
			undo()
			return fail(err)
		}
		made = append(made, dst)
		*f.dst = dst
	}
	top := req.Disk + tmpSuffix
	os.Remove(top)
	if _, err := l.r.Run(ctx, "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-F", "qcow2", "-b", im.Path,
		top, strconv.FormatInt(info.VirtualSize, 10)); err != nil {
		undo()
		os.Remove(top)
		return fail(noSpace(err))
	}
	made = append(made, top)
	if err := os.Chmod(top, 0o600); err != nil {
		undo()
		return fail(err)
	}
	if err := l.db.CreateDerivedImage(ctx, im, req.Parent.Name, req.VMUUID, req.Spec); err != nil {
		undo()
		return fail(err)
	}
	if err := os.Rename(req.Disk, im.Path); err != nil {
		if uerr := l.db.UndoDerivedImage(context.WithoutCancel(ctx), im.Name, req.Parent.Name, req.VMUUID, req.OldSpec); uerr != nil {
			err = errors.Join(err, uerr)
		}
		undo()
		return fail(err)
	}
	os.Chmod(im.Path, 0o444)
	if err := os.Rename(top, req.Disk); err != nil {
		// Put the disk back where the VM looks for it, and the VM back on its image.
		os.Rename(im.Path, req.Disk)
		if uerr := l.db.UndoDerivedImage(context.WithoutCancel(ctx), im.Name, req.Parent.Name, req.VMUUID, req.OldSpec); uerr != nil {
			err = errors.Join(err, uerr)
		}
		undo()
		return fail(err)
	}
	syncDir(l.pool.images)
	syncDir(filepath.Dir(req.Disk))
	return l.db.Image(ctx, im.Name)
}
