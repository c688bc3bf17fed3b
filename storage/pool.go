package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// DirPool is a storage pool that is a local directory: <path>/images holds the image
// library's read-only bases, <path>/disks holds VM disks.
type DirPool struct {
	name   string
	path   string
	images string
	disks  string
	r      Runner
}

// Capacity is a pool's file-system usage in bytes.
type Capacity struct {
	Total, Used, Free int64
}

// OpenDirPool opens the directory pool at path, creating path (0750), images/ (0750) and
// disks/ (0700) when missing.
func OpenDirPool(name, path string, r Runner) (*DirPool, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("storage: open pool %s: %w", name, err)
	}
	p := &DirPool{
		name:   name,
		path:   abs,
		images: filepath.Join(abs, "images"),
		disks:  filepath.Join(abs, "disks"),
		r:      r,
	}
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{p.path, 0o750}, {p.images, 0o750}, {p.disks, 0o700}} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return nil, fmt.Errorf("storage: open pool %s: %w", name, err)
		}
	}
	return p, nil
}

// Name is the pool's name.
func (p *DirPool) Name() string { return p.name }

// Path is the pool's absolute directory.
func (p *DirPool) Path() string { return p.path }

// ImagesDir is where the image library's files live.
func (p *DirPool) ImagesDir() string { return p.images }

// Capacity reports the usage of the file system that holds the pool. Free is what an
// unprivileged writer may still use.
func (p *DirPool) Capacity() (Capacity, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(p.path, &st); err != nil {
		return Capacity{}, fmt.Errorf("storage: statfs %s: %w", p.path, err)
	}
	bs := st.Frsize
	if bs == 0 {
		bs = st.Bsize
	}
	return Capacity{
		Total: int64(st.Blocks) * bs,
		Used:  int64(st.Blocks-st.Bfree) * bs,
		Free:  int64(st.Bavail) * bs,
	}, nil
}

const (
	rootDiskSuffix = "-root.qcow2"
	tmpSuffix      = ".tmp"
	stagingPrefix  = ".staging-"
)

// Disks lists the ids of the VM disks in disks/ (as CreateOverlay names them), sorted,
// so the daemon can find disks no VM owns.
func (p *DirPool) Disks() ([]string, error) {
	ents, err := os.ReadDir(p.disks)
	if err != nil {
		return nil, fmt.Errorf("storage: list disks in %s: %w", p.disks, err)
	}
	var ids []string
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), rootDiskSuffix)
		if ok && e.Type().IsRegular() && validID(id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// CleanStaging removes what an interrupted operation left behind: images/.staging-*
// (uploads) and disks/*.tmp (overlays being created). Call it at daemon start, before
// anything can be staging. It returns the paths it removed.
func (p *DirPool) CleanStaging() ([]string, error) {
	var removed []string
	var errs []error
	sweep := func(dir string, match func(string) bool) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("storage: clean %s: %w", dir, err))
			return
		}
		for _, e := range ents {
			if !e.Type().IsRegular() || !match(e.Name()) {
				continue
			}
			path := filepath.Join(dir, e.Name())
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("storage: clean %s: %w", path, err))
				continue
			}
			removed = append(removed, path)
		}
	}
	sweep(p.images, func(n string) bool { return strings.HasPrefix(n, stagingPrefix) })
	sweep(p.disks, func(n string) bool { return strings.HasSuffix(n, tmpSuffix) })
	return removed, errors.Join(errs...)
}

// syncDir makes renames and links in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
