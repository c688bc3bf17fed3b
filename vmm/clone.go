package vmm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/limiquantix/limiquantix/store"
)

// CloneRequest asks for a copy of a VM.
type CloneRequest struct {
	Name   string // the new VM
	Linked bool   // an overlay on the source's frozen disk instead of a full copy
	Start  bool
}

// Clone makes a new VM with the source's settings and a copy of its root disk (attached
// volumes are not copied; the clone gets new NICs on the same networks).
//
// A full clone gets a standalone copy: with qemu-img from a stopped source, with a
// blockdev-backup job from a running one, which keeps running. The copy is made first and
// moved into place once the new VM exists.
//
// A linked clone copies nothing, so it takes the same time whatever the disk's size: the
// stopped source's disk becomes a read-only base image (named <source>-base-<id>, an
// overlay on the source's image), and both the source and the clone continue on overlays
// of their own on it. Internal snapshots would be stranded in the frozen base, so a source
// with snapshots is refused.
func (m *Manager) Clone(ctx context.Context, src string, req CloneRequest) (VM, error) {
	if !ValidName(req.Name) {
		return VM{}, invalid("name %q: must match ^[a-z0-9][a-z0-9-]{0,62}$", req.Name)
	}
	if _, err := m.get(req.Name); err == nil {
		return VM{}, fmt.Errorf("%w: vm %q already exists", ErrConflict, req.Name)
	}
	st := m.cfg.Storage
	if st.Tool == nil || st.Images == nil {
		return VM{}, fmt.Errorf("vmm: clone: no storage configured")
	}
	vm, unlock, err := m.lockVM(src)
	if err != nil {
		return VM{}, err
	}
	defer unlock()
	r, err := vm.live("clone")
	if err != nil {
		return VM{}, err
	}
	spec := vm.specCopy()
	clone := Spec{Name: req.Name, Image: spec.Image, CPUs: spec.CPUs, MemoryMiB: spec.MemoryMiB, DiskGiB: spec.DiskGiB,
		SSHKeys: spec.SSHKeys, UserData: spec.UserData, RestartPolicy: spec.RestartPolicy}
	nics := []NICRequest{}
	for _, n := range spec.NICs {
		nics = append(nics, NICRequest{Network: n.Network, SecurityGroups: n.SecurityGroups})
	}
	if req.Linked {
		if r != nil {
			return VM{}, fmt.Errorf("%w: a linked clone needs vm %q stopped: its disk becomes the read-only base both VMs share", ErrConflict, src)
		}
		snaps, err := m.cfg.DB.Snapshots(ctx, spec.UUID)
		if err != nil {
			return VM{}, err
		}
		if len(snaps) > 0 {
			return VM{}, fmt.Errorf("%w: vm %q has %d snapshot(s), which a linked clone would strand in its frozen base: delete them or make a full clone", ErrConflict, src, len(snaps))
		}
		base, err := m.freeze(ctx, vm, spec)
		if err != nil {
			return VM{}, err
		}
		clone.Image = base
		v, err := m.Create(ctx, clone, nics, req.Start)
		if err != nil {
			return v, err
		}
		m.bus.Publish(EventCloned, src, fmt.Sprintf("linked clone %s on base image %s", req.Name, base))
		return v, nil
	}

	b := make([]byte, 4)
	rand.Read(b)
	tmp := m.cfg.Disks.DiskPath("clone-"+hex.EncodeToString(b)) + ".tmp"
	root := m.cfg.Disks.DiskPath(spec.UUID)
	if r != nil {
		_, err = m.backupLive(ctx, vm, r, root, tmp)
	} else {
		err = st.Tool.Copy(ctx, root, tmp)
	}
	if err != nil {
		return VM{}, fmt.Errorf("vm %q: clone: %w", src, err)
	}
	defer os.Remove(tmp)
	v, err := m.Create(ctx, clone, nics, false)
	if err != nil {
		return VM{}, err
	}
	if err := os.Rename(tmp, m.cfg.Disks.DiskPath(v.UUID)); err != nil {
		m.Delete(context.WithoutCancel(ctx), v.Name, true)
		return VM{}, fmt.Errorf("vmm: clone %s: %w", req.Name, err)
	}
	m.bus.Publish(EventCloned, src, "full clone "+req.Name)
	if req.Start {
		if v, err = m.Start(ctx, req.Name); err != nil {
			return v, fmt.Errorf("vm %q was cloned but did not start: %w", req.Name, err)
		}
	}
	return m.Get(req.Name)
}

// freeze makes the stopped VM's root disk a new base image and moves the VM onto it.
func (m *Manager) freeze(ctx context.Context, vm *machine, spec Spec) (string, error) {
	parent, err := m.cfg.DB.Image(ctx, spec.Image)
	if err != nil {
		return "", storeErr(err)
	}
	b := make([]byte, 3)
	rand.Read(b)
	prefix := spec.Name
	if len(prefix) > 50 {
		prefix = prefix[:50]
	}
	name := prefix + "-base-" + hex.EncodeToString(b)
	moved := spec
	moved.Image = name
	raw, err := json.Marshal(moved)
	if err != nil {
		return "", err
	}
	old, err := json.Marshal(spec)
	if err != nil {
		return "", err
	}
	if _, err := m.cfg.Storage.Images.Freeze(ctx, name, m.cfg.Disks.DiskPath(spec.UUID), parent, spec.UUID, raw, old); err != nil {
		return "", fmt.Errorf("vm %q: linked clone: %w", spec.Name, storeErr(err))
	}
	vm.setSpec(moved)
	return name, nil
}

// ImageFromVM adds an image to the library made from a stopped VM's root disk: a
// standalone copy (its backing chain flattened) that boots like the VM's image.
func (m *Manager) ImageFromVM(ctx context.Context, image, name string) (store.Image, error) {
	if !ValidName(image) {
		return store.Image{}, invalid("image name %q: must match ^[a-z0-9][a-z0-9-]{0,62}$", image)
	}
	if m.cfg.Storage.Images == nil {
		return store.Image{}, fmt.Errorf("vmm: image from vm: no storage configured")
	}
	if _, err := m.cfg.DB.Image(ctx, image); err == nil {
		return store.Image{}, fmt.Errorf("%w: image %q already exists", ErrConflict, image)
	} else if !errors.Is(err, store.ErrNotFound) {
		return store.Image{}, err
	}
	vm, unlock, err := m.lockVM(name)
	if err != nil {
		return store.Image{}, err
	}
	defer unlock()
	if s := vm.State(); s != StateStopped && s != StateCrashed {
		return store.Image{}, fmt.Errorf("%w: an image is made from a stopped VM; vm %q is %s", ErrConflict, name, s)
	}
	spec := vm.specCopy()
	base, err := m.cfg.DB.Image(ctx, spec.Image)
	if err != nil {
		return store.Image{}, storeErr(err)
	}
	im, err := m.cfg.Storage.Images.FromDisk(ctx, image, m.cfg.Disks.DiskPath(spec.UUID), base)
	if err != nil {
		return store.Image{}, storeErr(err)
	}
	m.bus.Publish(EventImageFromVM, name, "image "+image)
	return im, nil
}
