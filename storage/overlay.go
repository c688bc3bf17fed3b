package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/limiquantix/limiquantix/store"
)

// DiskPath is where CreateOverlay puts the root disk of the VM with this id.
func (p *DirPool) DiskPath(id string) string {
	return filepath.Join(p.disks, id+rootDiskSuffix)
}

// CreateOverlay creates the root disk of VM id: a qcow2 overlay backed by base, of
// sizeBytes (0: the base's virtual size; smaller than that is ErrInvalid). It is made
// at DiskPath(id)+".tmp" and then linked into place, so a crash never leaves a
// half-made disk under the final name. An existing disk is never overwritten: that is
// an error wrapping fs.ErrExist.
func (p *DirPool) CreateOverlay(ctx context.Context, base store.Image, id string, sizeBytes int64) (string, error) {
	if !validID(id) {
		return "", fmt.Errorf("storage: create disk: %w", invalid("bad disk id %q", id))
	}
	path := p.DiskPath(id)
	fail := func(err error) (string, error) {
		return "", fmt.Errorf("storage: create disk %s: %w", path, err)
	}
	if sizeBytes < 0 {
		return fail(invalid("negative size %d", sizeBytes))
	}
	if base.Format != "qcow2" && base.Format != "raw" {
		return fail(invalid("image %q has unsupported format %q", base.Name, base.Format))
	}
	// A relative backing path would be resolved against disks/, and a "proto:" one
	// would be read as a protocol spec.
	if !filepath.IsAbs(base.Path) {
		return fail(invalid("image %q path %q is not absolute", base.Name, base.Path))
	}
	if _, err := os.Lstat(path); err == nil {
		return fail(fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fail(err)
	}

	info, err := Inspect(ctx, p.r, base.Path)
	if err != nil {
		return fail(err)
	}
	if info.Format != base.Format {
		return fail(fmt.Errorf("image %q is recorded as %s but qemu-img says %s", base.Name, base.Format, info.Format))
	}
	if sizeBytes == 0 {
		sizeBytes = info.VirtualSize
	}
	if sizeBytes < info.VirtualSize {
		return fail(invalid("size %d is smaller than image %q (%d bytes)", sizeBytes, base.Name, info.VirtualSize))
	}

	tmp := path + tmpSuffix
	// A leftover from a crash is garbage by construction; qemu-img would truncate it anyway.
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fail(err)
	}
	if _, err := p.r.Run(ctx, "qemu-img", "create", "-f", "qcow2", "-F", base.Format, "-b", base.Path,
		tmp, strconv.FormatInt(sizeBytes, 10)); err != nil {
		os.Remove(tmp)
		return fail(fmt.Errorf("qemu-img create: %w", err))
	}
	if err := finishDisk(tmp, path); err != nil {
		os.Remove(tmp)
		return fail(err)
	}
	return path, nil
}

// finishDisk makes tmp private and durable, then gives it its final name without ever
// replacing an existing file (link fails with EEXIST where rename would overwrite).
func finishDisk(tmp, path string) error {
	f, err := os.OpenFile(tmp, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Chmod(0o600)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil {
		return err
	}
	if err := os.Remove(tmp); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// RemoveDisk deletes the root disk of VM id; a missing disk is not an error.
func (p *DirPool) RemoveDisk(id string) error {
	if !validID(id) {
		return fmt.Errorf("storage: remove disk: %w", invalid("bad disk id %q", id))
	}
	path := p.DiskPath(id)
	var errs []error
	for _, f := range []string{path, path + tmpSuffix} {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("storage: remove disk %s: %w", f, err))
		}
	}
	return errors.Join(errs...)
}
