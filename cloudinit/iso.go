package cloudinit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/kdomanski/iso9660"
)

// VolumeID is the ISO 9660 volume identifier by which cloud-init's NoCloud
// datasource finds the seed.
const VolumeID = "cidata"

// WriteISO writes s to path as a NoCloud seed ISO: volume id "cidata", files
// meta-data, user-data, vendor-data and, if present, network-config, all in
// the root directory. The image is written to path+".tmp" with mode 0600,
// synced and renamed over path, so a reader sees either the old or the new
// seed, never a partial one.
//
// The image is plain ISO 9660 (no Rock Ridge, no Joliet). Its file
// identifiers are "meta-data;1" and so on: '-' is a valid d-character, and
// Linux's isofs (default map=normal) strips ";1" and shows lower-case
// "meta-data", which is the name cloud-init opens after mounting.
func WriteISO(s Seed, path string) (err error) {
	if len(s.MetaData) == 0 || len(s.UserData) == 0 {
		return fmt.Errorf("cloudinit: write seed iso %s: meta-data and user-data are required", path)
	}
	type file struct {
		name string
		data []byte
	}
	files := []file{
		{"meta-data", s.MetaData},
		{"user-data", s.UserData},
		{"vendor-data", s.VendorData},
	}
	if s.NetworkConfig != nil {
		files = append(files, file{"network-config", s.NetworkConfig})
	}

	w, err := iso9660.NewWriter()
	if err != nil {
		return fmt.Errorf("cloudinit: write seed iso %s: new writer: %w", path, err)
	}
	defer func() {
		if cerr := w.Cleanup(); cerr != nil && err == nil {
			err = fmt.Errorf("cloudinit: write seed iso %s: clean up staging dir: %w", path, cerr)
		}
	}()
	for _, f := range files {
		if err := w.AddFile(bytes.NewReader(f.data), f.name); err != nil {
			return fmt.Errorf("cloudinit: write seed iso %s: add %s: %w", path, f.name, err)
		}
	}
	if err := writeAtomic(path, func(out io.Writer) error { return w.WriteTo(out, VolumeID) }); err != nil {
		return fmt.Errorf("cloudinit: write seed iso: %w", err)
	}
	return nil
}

// writeAtomic writes path+".tmp" (mode 0600) with write, syncs it and renames
// it over path. On failure the temporary file is removed.
func writeAtomic(path string, write func(io.Writer) error) (err error) {
	tmp := path + ".tmp"
	// A stale tmp from a crash may have another mode; O_EXCL after removal
	// guarantees 0600.
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale %s: %w", tmp, err)
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close() // may already be closed; the first error matters
			os.Remove(tmp)
		}
	}()
	if err := write(f); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	return os.Rename(tmp, path)
}
