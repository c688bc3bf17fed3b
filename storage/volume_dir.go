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

// Volumes of a DirPool live in <path>/volumes/<name>.qcow2.
const (
	volumesDir   = "volumes"
	volumeSuffix = ".qcow2"
)

// Driver is "dir".
func (p *DirPool) Driver() string { return DriverDir }

func (p *DirPool) volumes() string { return filepath.Join(p.path, volumesDir) }

// VolumePath is where the named volume's qcow2 lives.
func (p *DirPool) VolumePath(name string) string {
	return filepath.Join(p.volumes(), name+volumeSuffix)
}

// CreateVolume makes an empty qcow2 of size bytes at VolumePath(name): under a temporary
// name first, then linked into place, so a crash never leaves a half-made volume and an
// existing one is never replaced (fs.ErrExist).
func (p *DirPool) CreateVolume(ctx context.Context, name string, size int64) (string, error) {
	if !validName(name) {
		return "", fmt.Errorf("storage: create volume: %w", invalid("bad volume name %q", name))
	}
	if size <= 0 {
		return "", fmt.Errorf("storage: create volume %s: %w", name, invalid("size %d is not positive", size))
	}
	if err := os.MkdirAll(p.volumes(), 0o700); err != nil {
		return "", fmt.Errorf("storage: create volume %s: %w", name, err)
	}
	path := p.VolumePath(name)
	if _, err := os.Lstat(path); err == nil {
		return "", fmt.Errorf("storage: create volume %s: %w", path, fs.ErrExist)
	}
	tmp := path + tmpSuffix
	os.Remove(tmp)
	if _, err := p.r.Run(ctx, "qemu-img", "create", "-q", "-f", "qcow2", tmp, strconv.FormatInt(size, 10)); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("storage: create volume %s: %w", path, noSpace(err))
	}
	if err := finishDisk(tmp, path); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("storage: create volume %s: %w", path, err)
	}
	return path, nil
}

// RemoveVolume deletes a volume's file; a missing one is fine.
func (p *DirPool) RemoveVolume(name string) error {
	if !validName(name) {
		return fmt.Errorf("storage: remove volume: %w", invalid("bad volume name %q", name))
	}
	path := p.VolumePath(name)
	var errs []error
	for _, f := range []string{path, path + tmpSuffix} {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("storage: remove volume %s: %w", f, err))
		}
	}
	if len(errs) == 0 {
		syncDir(p.volumes())
	}
	return errors.Join(errs...)
}

// VolumeFiles lists the names of the volumes in volumes/, and removes the temporary files
// of volumes whose creation a crash interrupted.
func (p *DirPool) VolumeFiles() ([]string, error) {
	ents, err := os.ReadDir(p.volumes())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("storage: list volumes in %s: %w", p.volumes(), err)
	}
	var names []string
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if strings.HasSuffix(e.Name(), volumeSuffix+tmpSuffix) {
			os.Remove(filepath.Join(p.volumes(), e.Name()))
			continue
		}
		if n, ok := strings.CutSuffix(e.Name(), volumeSuffix); ok && validName(n) {
			names = append(names, n)
		}
	}
	return names, nil
}
