package storage

import (
	"context"
)

// Pool is a storage back end that holds data volumes. A volume is a qcow2 that qemu opens
// by path; DirPool is the directory driver (a local or NFS-mounted directory). Shared back
// ends plug in behind the same methods; see BACKENDS.md for the plan (Ceph RBD through
// qemu's own rbd driver).
type Pool interface {
	Name() string
	Driver() string
	Path() string
	// Capacity is the pool's usage in bytes (statfs for a directory).
	Capacity() (Capacity, error)
	// VolumePath is where the named volume lives: what qemu opens.
	VolumePath(name string) string
	// CreateVolume makes an empty qcow2 volume of size bytes, never replacing one, and
	// returns its path. A failure leaves nothing under the volume's name.
	CreateVolume(ctx context.Context, name string, size int64) (string, error)
	// RemoveVolume deletes a volume's file; a missing one is fine.
	RemoveVolume(name string) error
	// VolumeFiles lists the names of the volumes present, for garbage collection.
	VolumeFiles() ([]string, error)
}

// Pool drivers.
const DriverDir = "dir"

var _ Pool = (*DirPool)(nil)
