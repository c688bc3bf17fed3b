package storage

import (
	"context"
	"fmt"
	"os"
	"strconv"
)

// BlankDiskSize is the disk that a kernel-only image gets: every VM has a root disk, so an
// image imported with just a kernel and initrd carries an empty qcow2 of this size.
const BlankDiskSize = 1 << 30

// StageBlank stages an empty qcow2 of size bytes, as if it had been uploaded.
func (l *Library) StageBlank(ctx context.Context, size int64) (*Staged, error) {
	f, err := os.CreateTemp(l.pool.images, stagingPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("storage: stage blank disk: %w", err)
	}
	path := f.Name()
	f.Close()
	if _, err := l.r.Run(ctx, "qemu-img", "create", "-q", "-f", "qcow2", path, strconv.FormatInt(size, 10)); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("storage: stage blank disk: %w", err)
	}
	src, err := os.Open(path)
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("storage: stage blank disk: %w", err)
	}
	defer src.Close()
	defer os.Remove(path)
	// Re-stage through Stage so size and checksum are computed the one way.
	return l.Stage(ctx, src, size+(64<<20))
}
