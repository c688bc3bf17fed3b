package vmm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	goqmp "github.com/digitalocean/go-qemu/qmp"
	"github.com/limiquantix/limiquantix/qmp"
	"github.com/limiquantix/limiquantix/store"
)

// ErrTimeout means qemu or the guest did not finish something in time (a guest that never
// releases a disk being unplugged).
var ErrTimeout = errors.New("timed out")

// ErrNoSpace means a file system ran out of space (a backup target, a pool).
var ErrNoSpace = errors.New("no space left on device")

// Events of storage operations (message: what happened).
const (
	EventDiskAttached = "vm.disk.attached"
	EventDiskDetached = "vm.disk.detached"
	EventDiskResized  = "vm.disk.resized"
	EventSnapshot     = "vm.snapshot" // created, reverted or deleted
	EventQuiesce      = "vm.quiesce"  // guest file systems frozen or thawed
	EventCloned       = "vm.cloned"
	EventBackup       = "vm.backup"
	EventRestored     = "vm.restored"
	EventImageFromVM  = "image.created-from-vm"
)

// DiskAttachment is a data volume attached to a VM: a virtio-blk device on its own root
// port, so it can be unplugged. Path is the volume's qcow2, resolved when it was attached.
type DiskAttachment struct {
	Volume string `json:"volume"`
	Path   string `json:"path"`
	Port   int    `json:"port"` // pcie-root-port index
}

// Storage wires vmm to package storage for volumes, snapshots, clones and backups.
type Storage struct {
	Tool   DiskTool
	Images ImageMaker
	// BackupDirs are the only directories backups are written to and restored from.
	BackupDirs []string
}

// DiskTool does qemu-img work on disks no qemu holds open; storage.Tool implements it.
// Snapshot's op is "create", "apply" or "delete".
type DiskTool interface {
	SnapshotTags(ctx context.Context, path string) ([]string, error)
	Snapshot(ctx context.Context, path, op, tag string) error
	Resize(ctx context.Context, path string, size int64) error
	VirtualSize(ctx context.Context, path string) (int64, error)
	// Standalone checks that path is a qcow2 with no backing file and returns its size.
	Standalone(ctx context.Context, path string) (int64, error)
	CreateQcow2(ctx context.Context, path string, size int64) error
	// Copy writes a standalone copy of src to dst, which must not exist, atomically.
	Copy(ctx context.Context, src, dst string) error
}

// ImageMaker adds images made from VM disks to the library; storage.Library implements it.
type ImageMaker interface {
	// FromDisk makes a standalone image from a copy of disk, booting like base.
	FromDisk(ctx context.Context, name, disk string, base store.Image) (store.Image, error)
	// Freeze makes disk the read-only base image name (an overlay on parent) and puts the
	// VM on a fresh overlay on it, recording spec (oldSpec undoes).
	Freeze(ctx context.Context, name, disk string, parent store.Image, vmUUID string, spec, oldSpec []byte) (store.Image, error)
}

// monitor is the part of *qmp.Monitor that storage operations use (a fake in tests).
type monitor interface {
	Execute(ctx context.Context, command string, args, out any) error
	Subscribe(buffer int) (<-chan goqmp.Event, func())
}

// Node and device names of attached volumes follow their root port, which is unique in a
// VM: the same names at boot (argv) and at hotplug, and after lqd restarts. qemu limits
// node names to 31 characters.
func diskNode(d DiskAttachment) string   { return fmt.Sprintf("disk-p%d", d.Port) }
func diskDevice(d DiskAttachment) string { return fmt.Sprintf("vdisk-p%d", d.Port) }

// diskSerial is what the guest sees as the disk's serial (/dev/disk/by-id/virtio-<serial>):
// the volume's name, cut to virtio-blk's 20 bytes.
func diskSerial(d DiskAttachment) string {
	if len(d.Volume) > 20 {
		return d.Volume[:20]
	}
	return d.Volume
}

// diskDeviceArgs are the device_add arguments of an attached volume; argv renders the same.
func diskDeviceArgs(d DiskAttachment) map[string]any {
	return map[string]any{
		"driver": "virtio-blk-pci",
		"id":     diskDevice(d),
		"drive":  diskNode(d),
		"bus":    fmt.Sprintf("rp%d", d.Port),
		"serial": diskSerial(d),
	}
}

// diskDeviceArg is diskDeviceArgs as a -device option.
func diskDeviceArg(d DiskAttachment) string {
	return fmt.Sprintf("virtio-blk-pci,id=%s,drive=%s,bus=rp%d,serial=%s", diskDevice(d), diskNode(d), d.Port, diskSerial(d))
}

// checkPorts makes sure every NIC and volume has a hotplug root port of its own.
func checkPorts(s Spec) error {
	used := map[int]string{}
	take := func(port int, what string) error {
		if port < FirstFreePort || port >= RootPorts {
			return fmt.Errorf("vmm: argv: %s: root port %d is not a free port (%d..%d)", what, port, FirstFreePort, RootPorts-1)
		}
		if other, ok := used[port]; ok {
			return fmt.Errorf("vmm: argv: %s: root port %d is taken by %s", what, port, other)
		}
		used[port] = what
		return nil
	}
	for i, n := range s.NICs {
		if err := take(n.Port, fmt.Sprintf("nic %d", i)); err != nil {
			return err
		}
	}
	for _, d := range s.Disks {
		if d.Path == "" || !ValidName(d.Volume) {
			return fmt.Errorf("vmm: argv: disk %q: no volume name or path", d.Volume)
		}
		if err := take(d.Port, "disk "+d.Volume); err != nil {
			return err
		}
	}
	return nil
}

// freePort returns the first hotplug root port that no NIC or disk of the VM uses.
func freePort(spec Spec) (int, error) {
	used := map[int]bool{}
	for _, n := range spec.NICs {
		used[n.Port] = true
	}
	for _, d := range spec.Disks {
		used[d.Port] = true
	}
	for p := FirstFreePort; p < RootPorts; p++ {
		if !used[p] {
			return p, nil
		}
	}
	return 0, fmt.Errorf("%w: vm %q has no free root port left (%d NICs and disks use all of %d..%d)",
		ErrConflict, spec.Name, len(used), FirstFreePort, RootPorts-1)
}

// writableDisk is a disk that snapshots and backups cover: the root disk and the volumes.
type writableDisk struct {
	node, path, volume string
}

func (m *Manager) writableDisks(spec Spec) []writableDisk {
	out := []writableDisk{{node: rootDiskNode, path: m.cfg.Disks.DiskPath(spec.UUID)}}
	for _, d := range spec.Disks {
		out = append(out, writableDisk{node: diskNode(d), path: d.Path, volume: d.Volume})
	}
	return out
}

func nodes(disks []writableDisk) []string {
	out := make([]string, 0, len(disks))
	for _, d := range disks {
		out = append(out, d.node)
	}
	return out
}

// lockVM returns a VM with its operation lock held; call unlock.
func (m *Manager) lockVM(name string) (*machine, func(), error) {
	vm, err := m.get(name)
	if err != nil {
		return nil, nil, err
	}
	vm.op.Lock()
	vm.mu.Lock()
	gone := vm.deleted
	vm.mu.Unlock()
	if gone {
		vm.op.Unlock()
		return nil, nil, fmt.Errorf("%w: vm %q", ErrNotFound, name)
	}
	return vm, vm.op.Unlock, nil
}

func (vm *machine) specCopy() Spec {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	s := vm.spec
	s.Disks = append([]DiskAttachment(nil), vm.spec.Disks...)
	s.NICs = append([]NIC(nil), vm.spec.NICs...)
	s.SSHKeys = append([]string(nil), vm.spec.SSHKeys...)
	return s
}

func (vm *machine) setSpec(s Spec) {
	vm.mu.Lock()
	vm.spec = s
	vm.mu.Unlock()
}

// live reports whether a qemu runs for the VM that hotplug can talk to; an error for the
// states in which the VM's devices cannot be changed at all.
func (vm *machine) live(what string) (*run, error) {
	switch s := vm.State(); s {
	case StateRunning, StatePaused:
		r := vm.currentRun()
		if r == nil {
			return nil, fmt.Errorf("%w: vm %q has no qemu", ErrConflict, vm.spec.Name)
		}
		return r, nil
	case StateStopped, StateCrashed:
		return nil, nil
	default:
		return nil, fmt.Errorf("%w: cannot %s while vm %q is %s", ErrConflict, what, vm.spec.Name, s)
	}
}

// storeErr maps a store error to vmm's sentinels for the API.
func storeErr(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	case errors.Is(err, store.ErrInUse):
		return fmt.Errorf("%w: %v", ErrInUse, err)
	case errors.Is(err, store.ErrConflict):
		return fmt.Errorf("%w: %v", ErrConflict, err)
	}
	return err
}

// AttachDisk attaches a volume to a VM: hotplugged into a running or paused VM
// (blockdev-add, then device_add of a virtio-blk-pci on a free root port), recorded for
// the next start of a stopped one. A volume attached anywhere already is ErrInUse.
func (m *Manager) AttachDisk(ctx context.Context, name, volume string) (VM, error) {
	vm, unlock, err := m.lockVM(name)
	if err != nil {
		return VM{}, err
	}
	defer unlock()
	r, err := vm.live("attach a disk")
	if err != nil {
		return VM{}, err
	}
	spec := vm.specCopy()
	for _, d := range spec.Disks {
		if d.Volume == volume {
			return VM{}, fmt.Errorf("%w: volume %q is already attached to vm %q", ErrConflict, volume, name)
		}
	}
	vol, err := m.cfg.DB.Volume(ctx, volume)
	if err != nil {
		return VM{}, storeErr(err)
	}
	if vol.VMUUID != "" {
		return VM{}, fmt.Errorf("%w: volume %q is attached to vm %q", ErrInUse, volume, vol.VMName)
	}
	port, err := freePort(spec)
	if err != nil {
		return VM{}, err
	}
	d := DiskAttachment{Volume: volume, Path: vol.Path, Port: port}
	spec.Disks = append(spec.Disks, d)
	raw, err := json.Marshal(spec)
	if err != nil {
		return VM{}, fmt.Errorf("vmm: attach %s: %w", volume, err)
	}
	if r != nil {
		if err := plugDisk(ctx, r.mon, d); err != nil {
			return VM{}, fmt.Errorf("vm %q: attach %s: %w", name, volume, err)
		}
	}
	if err := m.cfg.DB.AttachVolume(ctx, volume, spec.UUID, raw); err != nil {
		if r != nil {
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			unplugDisk(uctx, r.mon, d, 20*time.Second)
			cancel()
		}
		return VM{}, storeErr(err)
	}
	vm.setSpec(spec)
	how := "cold (at next start)"
	if r != nil {
		how = fmt.Sprintf("hotplugged on root port %d", port)
	}
	m.bus.Publish(EventDiskAttached, name, volume+": "+how)
	return vm.view(m.cfg.Host.Accel), nil
}

// DefaultUnplugTimeout is how long DetachDisk waits for the guest to release a disk.
const DefaultUnplugTimeout = 60 * time.Second

// DetachDisk detaches a volume from a VM. From a running VM it is unplugged: device_del,
// then the guest must release the device (DEVICE_DELETED) within timeout, else ErrTimeout
// and the volume stays attached (the request stays pending in the guest: retry to finish),
// then blockdev-del.
func (m *Manager) DetachDisk(ctx context.Context, name, volume string, timeout time.Duration) (VM, error) {
	if timeout <= 0 {
		timeout = DefaultUnplugTimeout
	}
	vm, unlock, err := m.lockVM(name)
	if err != nil {
		return VM{}, err
	}
	defer unlock()
	r, err := vm.live("detach a disk")
	if err != nil {
		return VM{}, err
	}
	spec := vm.specCopy()
	idx := -1
	for i, d := range spec.Disks {
		if d.Volume == volume {
			idx = i
		}
	}
	if idx < 0 {
		return VM{}, fmt.Errorf("%w: volume %q is not attached to vm %q", ErrNotFound, volume, name)
	}
	d := spec.Disks[idx]
	spec.Disks = append(spec.Disks[:idx:idx], spec.Disks[idx+1:]...)
	raw, err := json.Marshal(spec)
	if err != nil {
		return VM{}, fmt.Errorf("vmm: detach %s: %w", volume, err)
	}
	if r != nil {
		if err := unplugDisk(ctx, r.mon, d, timeout); err != nil {
			m.bus.Publish(EventError, name, "detach "+volume+": "+err.Error())
			return VM{}, fmt.Errorf("vm %q: detach %s: %w", name, volume, err)
		}
	}
	if err := m.cfg.DB.DetachVolume(ctx, volume, spec.UUID, raw); err != nil {
		return VM{}, storeErr(err)
	}
	vm.setSpec(spec)
	m.bus.Publish(EventDiskDetached, name, volume)
	return vm.view(m.cfg.Host.Accel), nil
}

// plugDisk hotplugs an attached volume; on failure nothing stays plugged.
func plugDisk(ctx context.Context, mon monitor, d DiskAttachment) error {
	if err := mon.Execute(ctx, "blockdev-add", json.RawMessage(blockdev(diskNode(d), "qcow2", d.Path, false)), nil); err != nil {
		return qmpErr("blockdev-add", err)
	}
	if err := mon.Execute(ctx, "device_add", diskDeviceArgs(d), nil); err != nil {
		mon.Execute(context.WithoutCancel(ctx), "blockdev-del", map[string]string{"node-name": diskNode(d)}, nil)
		return qmpErr("device_add", err)
	}
	return nil
}

// unplugDisk asks the guest to release a disk, waits for DEVICE_DELETED, and removes the
// block node. A device that is already gone (an earlier unplug the guest finished late)
// only needs its node removed, so a retry after a timeout completes the detach.
func unplugDisk(ctx context.Context, mon monitor, d DiskAttachment, timeout time.Duration) error {
	dev := diskDevice(d)
	if err := deviceDel(ctx, mon, dev, timeout); err != nil {
		if errors.Is(err, ErrTimeout) {
			return fmt.Errorf("%w: the guest did not release disk %s (device %s) within %s; the unplug request stays pending in the guest: retry the detach, or stop the VM and detach it then",
				ErrTimeout, d.Volume, dev, timeout)
		}
		return err
	}
	if err := mon.Execute(ctx, "blockdev-del", map[string]string{"node-name": diskNode(d)}, nil); err != nil {
		var qe *qmp.Error
		if !(errors.As(err, &qe) && strings.Contains(qe.Desc, "Failed to find node")) {
			return qmpErr("blockdev-del", err)
		}
	}
	return nil
}

// qmpErr wraps a QMP failure for the API: qemu refusing to lock an image means another
// process (a VM, qemu-img) holds it; a full file system and a taken snapshot name too have
// sentinels of their own.
func qmpErr(cmd string, err error) error {
	var qe *qmp.Error
	if errors.As(err, &qe) && strings.Contains(qe.Desc, "lock") {
		return fmt.Errorf("%w: %s: %s", ErrInUse, cmd, qe.Desc)
	}
	if errors.As(err, &qe) && strings.Contains(strings.ToLower(qe.Desc), "no space left") {
		return fmt.Errorf("%w: %s: %s", ErrNoSpace, cmd, qe.Desc)
	}
	if errors.As(err, &qe) && strings.Contains(qe.Desc, "already exists") {
		return fmt.Errorf("%w: %s: %s", ErrConflict, cmd, qe.Desc)
	}
	return err
}

// ResizeVolume grows a volume to size bytes (the caller has checked the pool's space):
// with block_resize while the VM it is attached to runs (the guest sees the new size at
// once), else with qemu-img.
func (m *Manager) ResizeVolume(ctx context.Context, volume string, size int64) error {
	vol, err := m.cfg.DB.Volume(ctx, volume)
	if err != nil {
		return storeErr(err)
	}
	if size < vol.Size {
		return invalid("volume %q: %d bytes is smaller than it is (%d): shrinking loses data", volume, size, vol.Size)
	}
	if m.cfg.Storage.Tool == nil {
		return fmt.Errorf("vmm: resize %s: no storage configured", volume)
	}
	resize := func() error { return m.cfg.Storage.Tool.Resize(ctx, vol.Path, size) }
	if vol.VMName != "" {
		vm, unlock, err := m.lockVM(vol.VMName)
		if err != nil {
			return err
		}
		defer unlock()
		r, err := vm.live("resize a disk")
		if err != nil {
			return err
		}
		if r != nil {
			for _, d := range vm.specCopy().Disks {
				if d.Volume == volume {
					resize = func() error {
						args := map[string]any{"node-name": diskNode(d), "size": size}
						return qmpErr("block_resize", r.mon.Execute(ctx, "block_resize", args, nil))
					}
				}
			}
		}
	}
	if err := resize(); err != nil {
		return fmt.Errorf("vmm: resize volume %q: %w", volume, err)
	}
	if err := m.cfg.DB.SetVolumeSize(ctx, volume, size); err != nil {
		return storeErr(err)
	}
	if vol.VMName != "" {
		m.bus.Publish(EventDiskResized, vol.VMName, fmt.Sprintf("%s: %d bytes", volume, size))
	}
	return nil
}
