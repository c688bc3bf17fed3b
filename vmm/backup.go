package vmm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/limiquantix/limiquantix/qmp"
)

// BackupResult describes a finished backup.
type BackupResult struct {
	VM          string
	Path        string
	Size        int64 // bytes of the file
	VirtualSize int64
	Live        bool // taken while the VM ran (a block job), else with qemu-img
	Quiesced    bool // guest file systems were frozen while the job started
	Duration    time.Duration
}

// backupMeta is the sidecar <backup>.json: what a restore needs besides the disk.
type backupMeta struct {
	Format    int       `json:"format"` // 1
	VM        string    `json:"vm"`
	Image     string    `json:"image"`
	Spec      Spec      `json:"spec"`
	Quiesced  bool      `json:"quiesced"`
	CreatedAt time.Time `json:"created_at"`
}

// metaPath is the sidecar of a backup.
func metaPath(backup string) string { return backup + ".json" }

// partialName is the temporary name a backup is written under until it is complete:
// hidden, and swept from backup directories at lqd's start (CleanBackupDirs).
func partialName(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+partialSuffix)
}

const partialSuffix = ".partial.tmp"

// allowedPath resolves a backup path and checks that it lies inside one of the allowed
// backup directories (symlinks resolved, so none leads out). With mustExist the file must
// exist (a restore), else it must not (a backup never overwrites).
func (m *Manager) allowedPath(p string, mustExist bool) (string, error) {
	if p == "" || !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return "", invalid("backup path %q: want an absolute, clean file path", p)
	}
	base := filepath.Base(p)
	if strings.HasPrefix(base, ".") || strings.HasSuffix(base, ".json") {
		return "", invalid("backup path %q: names starting with a dot or ending in .json are lqd's own", p)
	}
	dirs := m.cfg.Storage.BackupDirs
	if len(dirs) == 0 {
		return "", invalid("this host allows no backup directory (lqd --backup-dir)")
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(p))
	if err != nil {
		return "", invalid("backup directory %s: %v", filepath.Dir(p), errors.Unwrap(err))
	}
	full := filepath.Join(dir, base)
	if mustExist {
		if full, err = filepath.EvalSymlinks(full); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("%w: backup %s does not exist", ErrNotFound, p)
			}
			return "", invalid("backup %s: %v", p, err)
		}
	} else if _, err := os.Lstat(full); err == nil {
		return "", fmt.Errorf("%w: %s already exists; backups never overwrite", ErrConflict, p)
	}
	for _, a := range dirs {
		ra, err := filepath.EvalSymlinks(a)
		if err != nil {
			ra = a
		}
		if rel, err := filepath.Rel(ra, filepath.Dir(full)); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return full, nil
		}
	}
	return "", invalid("%s is not inside an allowed backup directory (%s)", p, strings.Join(dirs, ", "))
}

// CleanBackupDirs removes the partial backups a crash left in the backup directories, and
// makes those that do not exist. Call it at lqd's start.
func (m *Manager) CleanBackupDirs() ([]string, error) {
	var removed []string
	var errs []error
	for _, d := range m.cfg.Storage.BackupDirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			errs = append(errs, fmt.Errorf("vmm: backup dir %s: %w", d, err))
			continue
		}
		ents, err := os.ReadDir(d)
		if err != nil {
			errs = append(errs, fmt.Errorf("vmm: backup dir %s: %w", d, err))
			continue
		}
		for _, e := range ents {
			if e.Type().IsRegular() && strings.HasPrefix(e.Name(), ".") && strings.HasSuffix(e.Name(), partialSuffix) {
				p := filepath.Join(d, e.Name())
				if err := os.Remove(p); err == nil {
					removed = append(removed, p)
				}
			}
		}
	}
	return removed, errors.Join(errs...)
}

// Backup writes a standalone qcow2 copy of a VM's root disk to path, inside an allowed
// backup directory, plus a <path>.json that a restore reads. A running VM keeps running:
// a blockdev-backup job copies the disk as it was when the job started (with the guest's
// file systems frozen for that instant when its agent answers). A stopped VM's disk is
// copied with qemu-img. The copy is written under a temporary name and renamed only once
// complete: a failure (a full disk, say) leaves nothing that looks like a backup.
func (m *Manager) Backup(ctx context.Context, name, path string) (BackupResult, error) {
	dst, err := m.allowedPath(path, false)
	if err != nil {
		return BackupResult{}, err
	}
	if _, err := os.Lstat(metaPath(dst)); err == nil {
		return BackupResult{}, fmt.Errorf("%w: %s already exists", ErrConflict, metaPath(dst))
	}
	tool := m.cfg.Storage.Tool
	if tool == nil {
		return BackupResult{}, fmt.Errorf("vmm: backup: no storage configured")
	}
	vm, unlock, err := m.lockVM(name)
	if err != nil {
		return BackupResult{}, err
	}
	defer unlock()
	r, err := vm.live("back up")
	if err != nil {
		return BackupResult{}, err
	}
	spec := vm.specCopy()
	root := m.cfg.Disks.DiskPath(spec.UUID)
	res := BackupResult{VM: name, Path: dst, Live: r != nil}
	start := time.Now()
	if r != nil {
		res.Quiesced, err = m.backupLive(ctx, vm, r, root, dst)
	} else {
		err = tool.Copy(ctx, root, dst)
	}
	if err == nil {
		err = writeMeta(metaPath(dst), backupMeta{Format: 1, VM: name, Image: spec.Image, Spec: spec, Quiesced: res.Quiesced, CreatedAt: time.Now().UTC()})
		if err != nil {
			os.Remove(dst)
		}
	}
	if err != nil {
		if strings.Contains(strings.ToLower(err.Error()), "no space left") && !errors.Is(err, ErrNoSpace) {
			err = fmt.Errorf("%w: %w", ErrNoSpace, err)
		}
		m.bus.Publish(EventError, name, "backup to "+dst+": "+err.Error())
		return BackupResult{}, fmt.Errorf("vm %q: backup to %s: %w", name, dst, err)
	}
	res.Duration = time.Since(start)
	if st, err := os.Stat(dst); err == nil {
		res.Size = st.Size()
	}
	res.VirtualSize, _ = tool.VirtualSize(ctx, dst)
	how := "offline"
	if res.Live {
		how = "live"
		if res.Quiesced {
			how += ", quiesced"
		}
	}
	m.bus.Publish(EventBackup, name, fmt.Sprintf("%s (%s, %d bytes, %s)", dst, how, res.Size, res.Duration.Round(time.Millisecond)))
	return res, nil
}

// backupLive copies a running VM's root disk to dst with a blockdev-backup job into a
// target node added for the purpose.
func (m *Manager) backupLive(ctx context.Context, vm *machine, r *run, src, dst string) (froze bool, err error) {
	tool := m.cfg.Storage.Tool
	tmp := partialName(dst)
	os.Remove(tmp)
	size, err := tool.VirtualSize(ctx, src)
	if err != nil {
		return false, err
	}
	if err := tool.CreateQcow2(ctx, tmp, size); err != nil {
		return false, err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	b := make([]byte, 4)
	rand.Read(b)
	node := "lq-backup-" + hex.EncodeToString(b)
	if err := r.mon.Execute(ctx, "blockdev-add", map[string]any{
		"node-name": node, "driver": "qcow2",
		"file": map[string]any{"driver": "file", "filename": tmp},
	}, nil); err != nil {
		return false, qmpErr("blockdev-add", err)
	}
	added := true
	defer func() {
		if added {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			r.mon.Execute(dctx, "blockdev-del", map[string]string{"node-name": node}, nil)
			cancel()
		}
	}()
	id := jobID("backup")
	startJob := func() error { return startBackupJob(ctx, r.mon, id, node) }
	if a := vm.knownAgent(ctx, r); a != nil && vm.State() == StateRunning {
		froze = true
		err = quiesced(ctx, a, func(msg string) { m.bus.Publish(EventQuiesce, vm.spec.Name, msg) }, startJob)
	} else {
		err = startJob()
	}
	if err != nil {
		return false, err
	}
	jobStart := time.Now()
	if err := waitJob(ctx, r.mon, id, nil); err != nil {
		return false, err
	}
	m.log.Debug("backup job done", "vm", vm.spec.Name, "job", id, "dur", time.Since(jobStart))
	added = false
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	err = r.mon.Execute(dctx, "blockdev-del", map[string]string{"node-name": node}, nil)
	cancel()
	if err != nil {
		return false, fmt.Errorf("blockdev-del %s: %w", node, err)
	}
	syncStart := time.Now()
	if err := finishFile(tmp, dst); err != nil {
		return false, err
	}
	m.log.Debug("backup synced", "vm", vm.spec.Name, "path", dst, "dur", time.Since(syncStart))
	return froze, nil
}

// startBackupJob starts a full blockdev-backup of the root disk into target. It asks for
// copy offloading (copy_file_range; qemu falls back to reads and writes where the kernel
// cannot), which keeps a live backup near the speed of qemu-img convert. x-perf is an
// unstable qemu option: a qemu that refuses it gets the job without it.
func startBackupJob(ctx context.Context, mon monitor, id, target string) error {
	args := map[string]any{"job-id": id, "device": rootDiskNode, "target": target, "sync": "full", "auto-dismiss": false,
		"x-perf": map[string]any{"use-copy-range": true}}
	err := mon.Execute(ctx, "blockdev-backup", args, nil)
	var qe *qmp.Error
	if errors.As(err, &qe) && strings.Contains(qe.Desc, "x-perf") {
		delete(args, "x-perf")
		err = mon.Execute(ctx, "blockdev-backup", args, nil)
	}
	return qmpErr("blockdev-backup", err)
}

// finishFile makes tmp durable and gives it its final name, never replacing a file there.
func finishFile(tmp, dst string) error {
	f, err := os.OpenFile(tmp, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp, dst); err != nil {
		return err
	}
	os.Remove(tmp)
	if d, err := os.Open(filepath.Dir(dst)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// writeMeta writes a backup's sidecar under a temporary name, then renames it.
func writeMeta(path string, meta backupMeta) error {
	b, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return err
	}
	tmp := partialName(path)
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := finishFile(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// readMeta reads a backup's sidecar; a missing one is (nil, nil).
func readMeta(path string) (*backupMeta, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var meta backupMeta
	if err := json.NewDecoder(io.LimitReader(f, 1<<20)).Decode(&meta); err != nil {
		return nil, invalid("backup metadata %s: %v", path, err)
	}
	return &meta, nil
}

// RestoreRequest makes a new VM from a backup.
type RestoreRequest struct {
	Name  string // the new VM
	From  string // a backup inside an allowed backup directory
	Image string // the image the VM boots like; default: the backed-up VM's (from the sidecar)
	Start bool
}

// Restore creates a new VM whose root disk is a copy of a backup. Its settings (CPUs,
// memory, keys, user-data, networks) come from the backup's sidecar; the image (for its
// kernel, when it boots one directly) from the request or the sidecar. The copy is made
// before the VM is created, then moved into place: a failure leaves no VM and no disk.
func (m *Manager) Restore(ctx context.Context, req RestoreRequest) (VM, error) {
	if !ValidName(req.Name) {
		return VM{}, invalid("name %q: must match ^[a-z0-9][a-z0-9-]{0,62}$", req.Name)
	}
	if _, err := m.get(req.Name); err == nil {
		return VM{}, fmt.Errorf("%w: vm %q already exists", ErrConflict, req.Name)
	}
	from, err := m.allowedPath(req.From, true)
	if err != nil {
		return VM{}, err
	}
	tool := m.cfg.Storage.Tool
	if tool == nil {
		return VM{}, fmt.Errorf("vmm: restore: no storage configured")
	}
	size, err := tool.Standalone(ctx, from)
	if err != nil {
		return VM{}, fmt.Errorf("%w: restore from %s: %v", ErrInvalid, req.From, err)
	}
	meta, err := readMeta(metaPath(from))
	if err != nil {
		return VM{}, err
	}
	spec := Spec{Name: req.Name, Image: req.Image}
	nics := []NICRequest{}
	if meta != nil {
		s := meta.Spec
		spec.CPUs, spec.MemoryMiB, spec.SSHKeys, spec.UserData, spec.RestartPolicy = s.CPUs, s.MemoryMiB, s.SSHKeys, s.UserData, s.RestartPolicy
		if spec.Image == "" {
			spec.Image = meta.Image
		}
		for _, n := range s.NICs {
			nics = append(nics, NICRequest{Network: n.Network, SecurityGroups: n.SecurityGroups})
		}
	} else {
		nics = nil // the host's default network, as for a new VM
	}
	if spec.Image == "" {
		return VM{}, invalid("backup %s has no metadata (%s): say which image the VM boots like", req.From, filepath.Base(metaPath(from)))
	}
	spec.DiskGiB = int((size + gib - 1) / gib)
	b := make([]byte, 4)
	rand.Read(b)
	tmp := m.cfg.Disks.DiskPath("restore-"+hex.EncodeToString(b)) + ".tmp"
	if err := tool.Copy(ctx, from, tmp); err != nil {
		return VM{}, fmt.Errorf("vmm: restore %s from %s: %w", req.Name, req.From, err)
	}
	defer os.Remove(tmp)
	v, err := m.Create(ctx, spec, nics, false)
	if err != nil {
		return VM{}, err
	}
	if err := os.Rename(tmp, m.cfg.Disks.DiskPath(v.UUID)); err != nil {
		m.Delete(context.WithoutCancel(ctx), v.Name, true)
		return VM{}, fmt.Errorf("vmm: restore %s: %w", req.Name, err)
	}
	m.bus.Publish(EventRestored, req.Name, "from "+from)
	if req.Start {
		if v, err = m.Start(ctx, req.Name); err != nil {
			return v, fmt.Errorf("vm %q was restored but did not start: %w", req.Name, err)
		}
	}
	return m.Get(req.Name)
}

// knownAgent returns the guest agent if it has answered before (the poller found guest
// facts) and answers now; a guest that never had one costs no probe.
func (vm *machine) knownAgent(ctx context.Context, r *run) *qmp.Agent {
	vm.mu.Lock()
	known := vm.guest != nil
	vm.mu.Unlock()
	if !known {
		return nil
	}
	return vm.agentIfAlive(ctx, r)
}
