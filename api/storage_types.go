package api

import "time"

// Wire types of the storage API: pools, volumes, VM disks, snapshots, clones, backups.

// Error codes of storage operations, besides the common ones.
const (
	CodeTimeout = "timeout"  // the guest or qemu did not finish in time (504)
	CodeNoSpace = "no_space" // a file system is full (507)
)

// StoragePool is a storage pool with its usage. Volumes are thin: Allocated (the sum of
// their sizes) may exceed Total.
type StoragePool struct {
	Name      string `json:"name"`
	Driver    string `json:"driver"` // "dir"
	Path      string `json:"path"`
	Default   bool   `json:"default"`
	Total     int64  `json:"total"`
	Used      int64  `json:"used"`
	Free      int64  `json:"free"`
	Volumes   int    `json:"volumes"`
	Allocated int64  `json:"allocated"`
	Error     string `json:"error,omitempty"`
}

// CreatePoolRequest is the body of POST /api/v1/pools: a directory pool.
type CreatePoolRequest struct {
	Name string `json:"name"`
	Path string `json:"path"` // absolute; made if missing
}

// Volume is a data volume: a qcow2 in a pool, attached to at most one VM.
type Volume struct {
	Name         string    `json:"name"`
	Pool         string    `json:"pool"`
	Path         string    `json:"path"`
	Format       string    `json:"format"`
	VirtualSize  int64     `json:"virtual_size"`
	ActualSize   int64     `json:"actual_size"`
	BackingChain []string  `json:"backing_chain,omitempty"` // nearest first
	Snapshots    []string  `json:"snapshots,omitempty"`     // internal snapshot tags
	AttachedTo   string    `json:"attached_to,omitempty"`   // the VM's name
	CreatedAt    time.Time `json:"created_at"`
	Error        string    `json:"error,omitempty"` // qemu-img could not read it
}

// CreateVolumeRequest is the body of POST /api/v1/volumes.
type CreateVolumeRequest struct {
	Name    string `json:"name"`
	Pool    string `json:"pool,omitempty"` // default: the default pool
	SizeGiB int64  `json:"size_gib"`
}

// ResizeVolumeRequest is the body of POST /api/v1/volumes/{volume}/resize. Volumes only
// grow; a running VM sees the new size at once.
type ResizeVolumeRequest struct {
	SizeGiB int64 `json:"size_gib"`
}

// AttachDiskRequest is the body of POST /api/v1/vms/{name}/disks.
type AttachDiskRequest struct {
	Volume string `json:"volume"`
}

// VMDisk is a volume attached to a VM.
type VMDisk struct {
	Volume string `json:"volume"`
	Path   string `json:"path"`
	Port   int    `json:"port"` // the pcie-root-port it sits on
	Serial string `json:"serial"`
}

// Snapshot is a VM snapshot.
type Snapshot struct {
	Name        string    `json:"name"`
	Memory      bool      `json:"memory"`
	Quiesced    bool      `json:"quiesced"`
	VMState     string    `json:"vm_state"` // when it was taken
	Machine     string    `json:"machine"`
	CPUModel    string    `json:"cpu_model"`
	QEMUVersion string    `json:"qemu_version"`
	CPUs        int       `json:"cpus"`
	MemoryMiB   int       `json:"memory_mib"`
	Disks       []string  `json:"disks,omitempty"` // attached volumes then
	CreatedAt   time.Time `json:"created_at"`
}

// CreateSnapshotRequest is the body of POST /api/v1/vms/{name}/snapshots.
type CreateSnapshotRequest struct {
	Name    string `json:"name"`
	Memory  bool   `json:"memory,omitempty"`  // RAM and device state too (running VM)
	Quiesce bool   `json:"quiesce,omitempty"` // freeze guest file systems (disk-only, agent)
}

// CloneVMRequest is the body of POST /api/v1/vms/{name}/clone.
type CloneVMRequest struct {
	Name   string `json:"name"`
	Linked bool   `json:"linked,omitempty"` // overlay on the (stopped) source's frozen disk
	Start  bool   `json:"start,omitempty"`
}

// ImageFromVMRequest is the body of POST /api/v1/images/from-vm.
type ImageFromVMRequest struct {
	Name string `json:"name"` // the new image
	VM   string `json:"vm"`   // a stopped VM
}

// BackupRequest is the body of POST /api/v1/vms/{name}/backup.
type BackupRequest struct {
	To string `json:"to"` // a new file inside one of lqd's --backup-dir directories
}

// Backup describes a finished backup.
type Backup struct {
	VM          string `json:"vm"`
	Path        string `json:"path"`
	Size        int64  `json:"size"`
	VirtualSize int64  `json:"virtual_size"`
	Live        bool   `json:"live"`
	Quiesced    bool   `json:"quiesced"`
	DurationMS  int64  `json:"duration_ms"`
}

// RestoreVMRequest is the body of POST /api/v1/vms/restore.
type RestoreVMRequest struct {
	Name  string `json:"name"`
	From  string `json:"from"`            // a backup inside a --backup-dir directory
	Image string `json:"image,omitempty"` // default: from the backup's metadata
	Start bool   `json:"start,omitempty"`
}
