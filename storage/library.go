package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/limiquantix/limiquantix/store"
)

// Library is the image library: metadata in the store, files in the pool's images/.
type Library struct {
	db   *store.DB
	pool *DirPool
	r    Runner
	mu   sync.Mutex // serializes Commit, Delete and GC over images/
}

// NewLibrary returns the library kept in db and pool.
func NewLibrary(db *store.DB, pool *DirPool, r Runner) *Library {
	return &Library{db: db, pool: pool, r: r}
}

// ImportRequest is an image to add from staged uploads.
type ImportRequest struct {
	Name    string
	Disk    *Staged
	Kernel  *Staged // optional, for direct kernel boot
	Initrd  *Staged // optional; needs Kernel
	Cmdline string  // optional; needs Kernel
	Format  string  // optional expected format: "", "qcow2" or "raw"
}

// placement is one staged file and the library name it gets.
type placement struct {
	what string
	s    *Staged
	dst  string
}

// Commit validates staged uploads and adds them to the library as images/<name>.<format>,
// images/<name>.vmlinuz and images/<name>.initrd (mode 0444) plus a store row. The disk
// must be qcow2 or raw per qemu-img (and req.Format when given), unencrypted, with no
// backing or external data file (either could point at any host file). Validation
// errors wrap ErrInvalid; a taken name wraps store.ErrConflict. On any failure nothing
// is left in images/ or the store; the staged files stay for the caller to Discard.
func (l *Library) Commit(ctx context.Context, req ImportRequest) (store.Image, error) {
	fail := func(err error) (store.Image, error) {
		return store.Image{}, fmt.Errorf("storage: import image %q: %w", req.Name, err)
	}
	if err := l.checkRequest(req); err != nil {
		return fail(err)
	}
	format, info, err := l.checkDisk(ctx, req)
	if err != nil {
		return fail(err)
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
		Format:      format,
		Path:        filepath.Join(l.pool.images, req.Name+"."+format),
		Size:        req.Disk.Size,
		VirtualSize: info.VirtualSize,
		SHA256:      req.Disk.SHA256,
		Cmdline:     req.Cmdline,
	}
	moves := []placement{{"disk", req.Disk, im.Path}}
	if req.Kernel != nil {
		im.Kernel = filepath.Join(l.pool.images, req.Name+".vmlinuz")
		moves = append(moves, placement{"kernel", req.Kernel, im.Kernel})
	}
	if req.Initrd != nil {
		im.Initrd = filepath.Join(l.pool.images, req.Name+".initrd")
		moves = append(moves, placement{"initrd", req.Initrd, im.Initrd})
	}

	var placed []string
	undo := func() {
		for _, p := range placed {
			os.Remove(p)
		}
		syncDir(l.pool.images)
	}
	for _, m := range moves {
		if err := place(m.s.Path, m.dst); err != nil {
			undo()
			return fail(fmt.Errorf("place %s: %w", m.what, err))
		}
		placed = append(placed, m.dst)
	}
	if err := syncDir(l.pool.images); err != nil {
		undo()
		return fail(err)
	}
	if err := l.db.CreateImage(ctx, im); err != nil {
		undo()
		return fail(err)
	}
	// The library owns the files now; drop the staging names.
	for _, m := range moves {
		os.Remove(m.s.Path)
		m.s.done = true
	}
	if got, err := l.db.Image(ctx, im.Name); err == nil {
		return got, nil
	}
	im.CreatedAt = time.Now().UTC()
	return im, nil
}

// place makes a staged file read-only and links it to dst, failing if dst exists.
func place(src, dst string) error {
	if err := os.Chmod(src, 0o444); err != nil {
		return err
	}
	return os.Link(src, dst)
}

// checkRequest validates everything but the disk's content.
func (l *Library) checkRequest(req ImportRequest) error {
	if !validName(req.Name) {
		return invalid("bad image name %q", req.Name)
	}
	switch req.Format {
	case "", "qcow2", "raw":
	default:
		return invalid("format %q: want qcow2 or raw", req.Format)
	}
	if req.Disk == nil {
		return invalid("no disk")
	}
	if req.Kernel == nil && req.Initrd != nil {
		return invalid("initrd without kernel")
	}
	if req.Kernel == nil && req.Cmdline != "" {
		return invalid("cmdline without kernel")
	}
	if err := checkCmdline(req.Cmdline); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, s := range []*Staged{req.Disk, req.Kernel, req.Initrd} {
		if s == nil {
			continue
		}
		if s.done {
			return invalid("upload %s was already committed or discarded", s.Path)
		}
		// Only files Stage made may be committed: never an arbitrary host path.
		if filepath.Dir(s.Path) != l.pool.images || !strings.HasPrefix(filepath.Base(s.Path), stagingPrefix) {
			return invalid("%s is not a staged upload", s.Path)
		}
		if seen[s.Path] {
			return invalid("upload %s given twice", s.Path)
		}
		seen[s.Path] = true
	}
	if req.Kernel != nil {
		if err := checkKernel(req.Kernel.Path); err != nil {
			return err
		}
	}
	if req.Initrd != nil && req.Initrd.Size == 0 {
		return invalid("empty initrd")
	}
	return nil
}

// inspectTimeout bounds qemu-img info on an untrusted upload: crafted images have made
// it spin (CVE-2015-5162); a sane image answers in milliseconds.
const inspectTimeout = 30 * time.Second

// checkDisk asks qemu-img what the staged disk is and refuses what the library must not hold.
func (l *Library) checkDisk(ctx context.Context, req ImportRequest) (string, Info, error) {
	ctx, cancel := context.WithTimeout(ctx, inspectTimeout)
	defer cancel()
	info, err := Inspect(ctx, l.r, req.Disk.Path)
	if err != nil {
		return "", Info{}, err
	}
	switch {
	case info.Format != "qcow2" && info.Format != "raw":
		return "", info, invalid("disk is %s: want qcow2 or raw", info.Format)
	case req.Format != "" && info.Format != req.Format:
		return "", info, invalid("disk is %s, not %s", info.Format, req.Format)
	case info.BackingFile != "":
		return "", info, invalid("disk has a backing file (%s)", info.BackingFile)
	case info.DataFile != "":
		return "", info, invalid("disk has an external data file (%s)", info.DataFile)
	case info.Encrypted:
		return "", info, invalid("disk is encrypted")
	case info.Corrupt:
		return "", info, invalid("qcow2 is marked corrupt")
	case info.VirtualSize <= 0:
		return "", info, invalid("disk is empty")
	}
	return info.Format, info, nil
}

// Get returns the named image.
func (l *Library) Get(ctx context.Context, name string) (store.Image, error) {
	im, err := l.db.Image(ctx, name)
	if err != nil {
		return store.Image{}, fmt.Errorf("storage: image %q: %w", name, err)
	}
	return im, nil
}

// List returns the library, sorted by name.
func (l *Library) List(ctx context.Context) ([]store.Image, error) {
	ims, err := l.db.Images(ctx)
	if err != nil {
		return nil, fmt.Errorf("storage: list images: %w", err)
	}
	return ims, nil
}

// Delete removes an image: first its store row (which fails, wrapping store.ErrInUse,
// while a VM uses it), then its files. A crash in between leaves files that GC removes.
func (l *Library) Delete(ctx context.Context, name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	im, err := l.db.Image(ctx, name)
	if err != nil {
		return fmt.Errorf("storage: delete image %q: %w", name, err)
	}
	if err := l.db.DeleteImage(ctx, name); err != nil {
		return fmt.Errorf("storage: delete image %q: %w", name, err)
	}
	var errs []error
	for _, p := range []string{im.Path, im.Kernel, im.Initrd} {
		if p == "" || filepath.Dir(p) != l.pool.images {
			continue // never remove a file the library does not own
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("storage: delete image %q: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// GC removes what crashes left behind: staged uploads, half-made disks (see
// DirPool.CleanStaging) and library files that no image row refers to (a crash inside
// Commit or Delete). Call it at daemon start, before serving. It returns the paths it
// removed.
func (l *Library) GC(ctx context.Context) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	removed, err := l.pool.CleanStaging()
	errs := []error{err}

	ims, err := l.db.Images(ctx)
	if err != nil {
		return removed, fmt.Errorf("storage: gc: %w", errors.Join(append(errs, err)...))
	}
	owned := map[string]bool{}
	for _, im := range ims {
		owned[im.Path], owned[im.Kernel], owned[im.Initrd] = true, true, true
	}
	ents, err := os.ReadDir(l.pool.images)
	if err != nil {
		return removed, fmt.Errorf("storage: gc: %w", errors.Join(append(errs, err)...))
	}
	for _, e := range ents {
		path := filepath.Join(l.pool.images, e.Name())
		if !e.Type().IsRegular() || owned[path] || !isLibraryFile(e.Name()) {
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("storage: gc %s: %w", path, err))
			continue
		}
		removed = append(removed, path)
	}
	return removed, errors.Join(errs...)
}

// isLibraryFile reports whether n is a name Commit gives files in images/.
func isLibraryFile(n string) bool {
	switch ext := filepath.Ext(n); ext {
	case ".qcow2", ".raw", ".vmlinuz", ".initrd":
		return validName(strings.TrimSuffix(n, ext))
	}
	return false
}
