package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/limiquantix/limiquantix/store"
)

// MaxVolumeSize bounds one volume (64 TiB, as for VM disks).
const MaxVolumeSize = int64(64) << 40

// Volumes manages storage pools and the data volumes in them: records in the store, files
// in the pools. Whether a volume is attached (in use) is recorded in the store, which
// refuses to delete anything in use; attaching and detaching are package vmm's business.
type Volumes struct {
	db  *store.DB
	r   Runner
	def string // the default pool's name

	mu    sync.Mutex // guards pools; serializes pool creation and deletion
	pools map[string]Pool
}

// PoolStatus is a pool with its usage.
type PoolStatus struct {
	Name    string
	Driver  string
	Path    string
	Default bool
	Capacity
	Volumes   int   // how many volumes it holds
	Allocated int64 // the sum of their virtual sizes (thin: may exceed Total)
	Error     string
}

// VolumeStatus is a volume's record plus what qemu-img says about its file.
type VolumeStatus struct {
	store.Volume
	VirtualSize int64
	ActualSize  int64
	Chain       []string // backing files, nearest first
	Snapshots   []string // internal snapshot tags
	Error       string   // qemu-img could not read the file
}

// OpenVolumes returns the volume manager. def is the daemon's default pool; every other
// pool recorded in db is opened as a directory pool.
func OpenVolumes(ctx context.Context, db *store.DB, r Runner, def *DirPool) (*Volumes, error) {
	if err := db.EnsurePool(ctx, store.Pool{Name: def.Name(), Driver: DriverDir, Path: def.Path()}); err != nil {
		return nil, fmt.Errorf("storage: open volumes: %w", err)
	}
	rows, err := db.Pools(ctx)
	if err != nil {
		return nil, fmt.Errorf("storage: open volumes: %w", err)
	}
	v := &Volumes{db: db, r: r, def: def.Name(), pools: map[string]Pool{def.Name(): def}}
	for _, row := range rows {
		if row.Name == def.Name() {
			continue
		}
		v.pools[row.Name] = newVolumePool(row.Name, row.Path, r)
	}
	return v, nil
}

// newVolumePool is a directory pool that holds only volumes.
func newVolumePool(name, path string, r Runner) *DirPool {
	return &DirPool{name: name, path: path, images: filepath.Join(path, "images"), disks: filepath.Join(path, "disks"), r: r}
}

// DefaultPool names the pool volumes go to when none is given.
func (v *Volumes) DefaultPool() string { return v.def }

func (v *Volumes) pool(name string) (Pool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	p, ok := v.pools[name]
	if !ok {
		return nil, fmt.Errorf("storage: pool %q: %w", name, store.ErrNotFound)
	}
	return p, nil
}

// Pools lists the pools with their usage, by name.
func (v *Volumes) Pools(ctx context.Context) ([]PoolStatus, error) {
	v.mu.Lock()
	names := make([]string, 0, len(v.pools))
	for n := range v.pools {
		names = append(names, n)
	}
	v.mu.Unlock()
	sort.Strings(names)
	vols, err := v.db.Volumes(ctx, "")
	if err != nil {
		return nil, err
	}
	out := make([]PoolStatus, 0, len(names))
	for _, n := range names {
		st, err := v.status(n, vols)
		if err != nil {
			continue // deleted meanwhile
		}
		out = append(out, st)
	}
	return out, nil
}

// Pool returns one pool with its usage.
func (v *Volumes) Pool(ctx context.Context, name string) (PoolStatus, error) {
	vols, err := v.db.Volumes(ctx, name)
	if err != nil {
		return PoolStatus{}, err
	}
	return v.status(name, vols)
}

func (v *Volumes) status(name string, vols []store.Volume) (PoolStatus, error) {
	p, err := v.pool(name)
	if err != nil {
		return PoolStatus{}, err
	}
	st := PoolStatus{Name: name, Driver: p.Driver(), Path: p.Path(), Default: name == v.def}
	if st.Capacity, err = p.Capacity(); err != nil {
		st.Error = err.Error()
	}
	for _, vol := range vols {
		if vol.Pool == name {
			st.Volumes++
			st.Allocated += vol.Size
		}
	}
	return st, nil
}

// CreatePool adds a directory pool at path (absolute and clean), making the directory if
// needed. A path inside another pool, or containing one, is refused.
func (v *Volumes) CreatePool(ctx context.Context, name, path string) (PoolStatus, error) {
	fail := func(err error) (PoolStatus, error) {
		return PoolStatus{}, fmt.Errorf("storage: create pool %q: %w", name, err)
	}
	if !validName(name) {
		return fail(invalid("name %q: must match ^[a-z0-9][a-z0-9-]{0,62}$", name))
	}
	if path == "" || !filepath.IsAbs(path) || filepath.Clean(path) != path || path == "/" {
		return fail(invalid("path %q: want an absolute, clean directory path other than /", path))
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.pools[name]; ok {
		return fail(store.ErrConflict)
	}
	for n, p := range v.pools {
		if within(path, p.Path()) || within(p.Path(), path) {
			return fail(invalid("path %s overlaps pool %q at %s", path, n, p.Path()))
		}
	}
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		return fail(invalid("%s exists and is not a directory", path))
	}
	if err := os.MkdirAll(path, 0o750); err != nil {
		return fail(err)
	}
	if err := v.db.CreatePool(ctx, store.Pool{Name: name, Driver: DriverDir, Path: path}); err != nil {
		return fail(err)
	}
	p := newVolumePool(name, path, v.r)
	v.pools[name] = p
	st := PoolStatus{Name: name, Driver: DriverDir, Path: path}
	st.Capacity, _ = p.Capacity()
	return st, nil
}

// DeletePool forgets a pool that holds no volumes (ErrInUse otherwise); its directory stays.
func (v *Volumes) DeletePool(ctx context.Context, name string) error {
	if name == v.def {
		return fmt.Errorf("storage: delete pool %q: %w", name, invalid("the default pool cannot be deleted"))
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	p, ok := v.pools[name]
	if !ok {
		return fmt.Errorf("storage: pool %q: %w", name, store.ErrNotFound)
	}
	if err := v.db.DeletePool(ctx, name); err != nil {
		return fmt.Errorf("storage: delete pool %q: %w", name, err)
	}
	delete(v.pools, name)
	os.Remove(filepath.Join(p.Path(), volumesDir)) // only if empty
	return nil
}

// within reports whether path is dir or inside it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// Get returns a volume with qemu-img's facts about it.
func (v *Volumes) Get(ctx context.Context, name string) (VolumeStatus, error) {
	row, err := v.db.Volume(ctx, name)
	if err != nil {
		return VolumeStatus{}, fmt.Errorf("storage: %w", err)
	}
	return v.inspect(ctx, row), nil
}

// List returns the volumes, of one pool or (pool "") of all, by name.
func (v *Volumes) List(ctx context.Context, pool string) ([]VolumeStatus, error) {
	if pool != "" {
		if _, err := v.pool(pool); err != nil {
			return nil, err
		}
	}
	rows, err := v.db.Volumes(ctx, pool)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	out := make([]VolumeStatus, 0, len(rows))
	for _, row := range rows {
		out = append(out, v.inspect(ctx, row))
	}
	return out, nil
}

func (v *Volumes) inspect(ctx context.Context, row store.Volume) VolumeStatus {
	st := VolumeStatus{Volume: row, VirtualSize: row.Size}
	d, err := InspectDetails(ctx, v.r, row.Path)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	st.Format, st.VirtualSize, st.ActualSize, st.Chain = d.Format, d.VirtualSize, d.ActualSize, d.Chain
	for _, s := range d.Snapshots {
		st.Snapshots = append(st.Snapshots, s.Name)
	}
	return st
}

// Create makes an empty qcow2 volume of size bytes in pool ("" for the default). A volume
// bigger than the pool's free space is refused: thin provisioning lets volumes together
// exceed the pool, but one that could never be filled is a mistake. On any failure
// nothing is left: no file, no record.
func (v *Volumes) Create(ctx context.Context, name, pool string, size int64) (VolumeStatus, error) {
	if pool == "" {
		pool = v.def
	}
	fail := func(err error) (VolumeStatus, error) {
		return VolumeStatus{}, fmt.Errorf("storage: create volume %q: %w", name, err)
	}
	if !validName(name) {
		return fail(invalid("name %q: must match ^[a-z0-9][a-z0-9-]{0,62}$", name))
	}
	if size <= 0 || size > MaxVolumeSize {
		return fail(invalid("size %d bytes: must be between 1 byte and %d TiB", size, MaxVolumeSize>>40))
	}
	p, err := v.pool(pool)
	if err != nil {
		return fail(err)
	}
	c, err := p.Capacity()
	if err != nil {
		return fail(err)
	}
	if size > c.Free {
		return fail(invalid("%s is bigger than pool %q's free space (%s of %s)", humanBytes(size), pool, humanBytes(c.Free), humanBytes(c.Total)))
	}
	if _, err := v.db.Volume(ctx, name); err == nil {
		return fail(store.ErrConflict)
	} else if !errors.Is(err, store.ErrNotFound) {
		return fail(err)
	}
	path, err := p.CreateVolume(ctx, name, size)
	if err != nil {
		return fail(err)
	}
	row := store.Volume{Name: name, Pool: pool, Path: path, Format: "qcow2", Size: size}
	if err := v.db.CreateVolume(ctx, row); err != nil {
		p.RemoveVolume(name)
		return fail(err)
	}
	return v.Get(ctx, name)
}

// CheckResize validates growing a volume to size bytes: never smaller than it is, and the
// growth must fit in its pool's free space. It changes nothing; package vmm does the
// resize (live with block_resize when the volume's VM runs, else with qemu-img).
func (v *Volumes) CheckResize(ctx context.Context, name string, size int64) error {
	row, err := v.db.Volume(ctx, name)
	if err != nil {
		return fmt.Errorf("storage: resize volume %q: %w", name, err)
	}
	if size < row.Size {
		return fmt.Errorf("storage: resize volume %q: %w", name, invalid("%s is smaller than the volume (%s): shrinking loses data", humanBytes(size), humanBytes(row.Size)))
	}
	if size > MaxVolumeSize {
		return fmt.Errorf("storage: resize volume %q: %w", name, invalid("%s is more than %d TiB", humanBytes(size), MaxVolumeSize>>40))
	}
	p, err := v.pool(row.Pool)
	if err != nil {
		return err
	}
	c, err := p.Capacity()
	if err != nil {
		return err
	}
	if grow := size - row.Size; grow > c.Free {
		return fmt.Errorf("storage: resize volume %q: %w", name, invalid("growing by %s is more than pool %q's free space (%s)", humanBytes(grow), row.Pool, humanBytes(c.Free)))
	}
	return nil
}

// Delete removes a volume: its record first (refused, wrapping store.ErrInUse, while it is
// attached), then its file. A crash in between leaves a file that GC removes.
func (v *Volumes) Delete(ctx context.Context, name string) error {
	row, err := v.db.Volume(ctx, name)
	if err != nil {
		return fmt.Errorf("storage: delete volume %q: %w", name, err)
	}
	if err := v.db.DeleteVolume(ctx, name); err != nil {
		return fmt.Errorf("storage: delete volume %q: %w", name, err)
	}
	p, err := v.pool(row.Pool)
	if err != nil {
		return err
	}
	if err := p.RemoveVolume(name); err != nil {
		return fmt.Errorf("storage: delete volume %q: %w", name, err)
	}
	return nil
}

// GC removes volume files that no record names (a crash inside Create or Delete) and the
// temporary files of interrupted creations. Call it at daemon start.
func (v *Volumes) GC(ctx context.Context) ([]string, error) {
	rows, err := v.db.Volumes(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("storage: gc volumes: %w", err)
	}
	owned := map[string]bool{}
	for _, r := range rows {
		owned[r.Path] = true
	}
	v.mu.Lock()
	pools := make([]Pool, 0, len(v.pools))
	for _, p := range v.pools {
		pools = append(pools, p)
	}
	v.mu.Unlock()
	var removed []string
	var errs []error
	for _, p := range pools {
		names, err := p.VolumeFiles()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, n := range names {
			if path := p.VolumePath(n); !owned[path] {
				if err := p.RemoveVolume(n); err != nil {
					errs = append(errs, err)
					continue
				}
				removed = append(removed, path)
			}
		}
	}
	return removed, errors.Join(errs...)
}

// humanBytes renders a size for messages: 20 GiB, 512 MiB, 4096 B.
func humanBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d B", n)
}
