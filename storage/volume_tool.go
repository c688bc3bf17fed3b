package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrNoSpace wraps failures because a file system ran out of space.
var ErrNoSpace = errors.New("no space left on device")

// Tool does qemu-img work on disks that no qemu holds open: internal snapshots of stopped
// VMs, offline resizes, standalone copies. Package vmm uses it through a small interface.
type Tool struct {
	R Runner
}

// Snapshot operations of qemu-img snapshot.
const (
	SnapshotCreate = "create" // -c
	SnapshotApply  = "apply"  // -a: revert the disk to the snapshot
	SnapshotDelete = "delete" // -d
)

// SnapshotTags lists the internal snapshots of a qcow2 disk.
func (t Tool) SnapshotTags(ctx context.Context, path string) ([]string, error) {
	d, err := InspectDetails(ctx, t.R, path)
	if err != nil {
		return nil, err
	}
	tags := make([]string, 0, len(d.Snapshots))
	for _, s := range d.Snapshots {
		tags = append(tags, s.Name)
	}
	return tags, nil
}

// Snapshot creates, applies or deletes the internal snapshot tag of a qcow2 disk.
func (t Tool) Snapshot(ctx context.Context, path, op, tag string) error {
	flags := map[string]string{SnapshotCreate: "-c", SnapshotApply: "-a", SnapshotDelete: "-d"}
	flag, ok := flags[op]
	if !ok {
		return fmt.Errorf("storage: snapshot %s: %w", path, invalid("unknown operation %q", op))
	}
	if !validName(tag) {
		return fmt.Errorf("storage: snapshot %s: %w", path, invalid("bad snapshot name %q", tag))
	}
	if _, err := t.R.Run(ctx, "qemu-img", "snapshot", "-q", flag, tag, path); err != nil {
		return fmt.Errorf("storage: snapshot %s %s of %s: %w", op, tag, path, noSpace(err))
	}
	return nil
}

// Resize grows a qcow2 disk to size bytes; shrinking is refused (ErrInvalid).
func (t Tool) Resize(ctx context.Context, path string, size int64) error {
	info, err := Inspect(ctx, t.R, path)
	if err != nil {
		return err
	}
	if size < info.VirtualSize {
		return fmt.Errorf("storage: resize %s: %w", path, invalid("%d bytes is smaller than the disk (%d bytes): shrinking loses data", size, info.VirtualSize))
	}
	if size == info.VirtualSize {
		return nil
	}
	if _, err := t.R.Run(ctx, "qemu-img", "resize", "-q", "-f", "qcow2", path, strconv.FormatInt(size, 10)); err != nil {
		return fmt.Errorf("storage: resize %s: %w", path, noSpace(err))
	}
	return nil
}

// VirtualSize is the guest-visible size of a disk.
func (t Tool) VirtualSize(ctx context.Context, path string) (int64, error) {
	info, err := Inspect(ctx, t.R, path)
	if err != nil {
		return 0, err
	}
	return info.VirtualSize, nil
}

// Standalone checks that path is a qcow2 that stands on its own (no backing or external
// data file, not encrypted or corrupt), as a backup must be before it is restored, and
// returns its virtual size. Anything else is ErrInvalid.
func (t Tool) Standalone(ctx context.Context, path string) (int64, error) {
	info, err := Inspect(ctx, t.R, path)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	switch {
	case info.Format != "qcow2":
		return 0, invalid("%s is %s, not qcow2", path, info.Format)
	case info.BackingFile != "":
		return 0, invalid("%s has a backing file (%s): not a standalone copy", path, info.BackingFile)
	case info.DataFile != "":
		return 0, invalid("%s has an external data file", path)
	case info.Encrypted:
		return 0, invalid("%s is encrypted", path)
	case info.Corrupt:
		return 0, invalid("%s is marked corrupt", path)
	case info.VirtualSize <= 0:
		return 0, invalid("%s is empty", path)
	}
	return info.VirtualSize, nil
}

// CreateQcow2 creates an empty standalone qcow2 of size bytes at path, which must not exist.
func (t Tool) CreateQcow2(ctx context.Context, path string, size int64) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("storage: create %s: %w", path, fs.ErrExist)
	}
	if _, err := t.R.Run(ctx, "qemu-img", "create", "-q", "-f", "qcow2", path, strconv.FormatInt(size, 10)); err != nil {
		os.Remove(path)
		return fmt.Errorf("storage: create %s: %w", path, noSpace(err))
	}
	return nil
}

// Copy writes a standalone qcow2 copy of src (its whole backing chain flattened, internal
// snapshots left out) to dst, which must not exist. The copy is made under a temporary
// name next to dst and linked into place only once it is complete and on disk: a failure
// or a crash never leaves a partial file under dst.
func (t Tool) Copy(ctx context.Context, src, dst string) error {
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("storage: copy to %s: %w", dst, fs.ErrExist)
	}
	tmp := partialName(dst)
	os.Remove(tmp)
	if _, err := t.R.Run(ctx, "qemu-img", "convert", "-U", "-O", "qcow2", src, tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("storage: copy %s to %s: %w", src, dst, noSpace(err))
	}
	if err := finishDisk(tmp, dst); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("storage: copy %s to %s: %w", src, dst, noSpace(err))
	}
	return nil
}

// partialName is the temporary name a copy is written under before it gets its own:
// hidden, and ending in .tmp so the pool's CleanStaging (and lqd's backup-dir sweep, which
// uses the same convention) removes it after a crash.
func partialName(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".partial.tmp")
}

// noSpace marks an error caused by a full file system so callers can tell it apart.
func noSpace(err error) error {
	if err != nil && !errors.Is(err, ErrNoSpace) && strings.Contains(strings.ToLower(err.Error()), "no space left on device") {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}
