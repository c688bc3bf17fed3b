package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// Client calls of the storage API: pools, volumes, VM disks, snapshots, clones, backups.

// Pools lists the storage pools with their usage.
func (c *Client) Pools(ctx context.Context) ([]StoragePool, error) {
	var out []StoragePool
	err := c.do(ctx, http.MethodGet, "/api/v1/pools", nil, nil, &out)
	return out, err
}

// Pool gets one pool.
func (c *Client) Pool(ctx context.Context, name string) (StoragePool, error) {
	var out StoragePool
	err := c.do(ctx, http.MethodGet, "/api/v1/pools/"+url.PathEscape(name), nil, nil, &out)
	return out, err
}

// CreatePool adds a directory pool.
func (c *Client) CreatePool(ctx context.Context, req CreatePoolRequest) (StoragePool, error) {
	var out StoragePool
	err := c.do(ctx, http.MethodPost, "/api/v1/pools", nil, req, &out)
	return out, err
}

// DeletePool forgets an empty pool (its directory stays).
func (c *Client) DeletePool(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/pools/"+url.PathEscape(name), nil, nil, nil)
}

// Volumes lists the volumes of one pool, or of all when pool is "".
func (c *Client) Volumes(ctx context.Context, pool string) ([]Volume, error) {
	var q url.Values
	if pool != "" {
		q = url.Values{"pool": {pool}}
	}
	var out []Volume
	err := c.do(ctx, http.MethodGet, "/api/v1/volumes", q, nil, &out)
	return out, err
}

// Volume gets one volume.
func (c *Client) Volume(ctx context.Context, name string) (Volume, error) {
	var out Volume
	err := c.do(ctx, http.MethodGet, "/api/v1/volumes/"+url.PathEscape(name), nil, nil, &out)
	return out, err
}

// CreateVolume makes an empty volume.
func (c *Client) CreateVolume(ctx context.Context, req CreateVolumeRequest) (Volume, error) {
	var out Volume
	err := c.do(ctx, http.MethodPost, "/api/v1/volumes", nil, req, &out)
	return out, err
}

// ResizeVolume grows a volume, live if its VM runs.
func (c *Client) ResizeVolume(ctx context.Context, name string, sizeGiB int64) (Volume, error) {
	var out Volume
	err := c.do(ctx, http.MethodPost, "/api/v1/volumes/"+url.PathEscape(name)+"/resize", nil, ResizeVolumeRequest{SizeGiB: sizeGiB}, &out)
	return out, err
}

// DeleteVolume deletes a volume that is not attached.
func (c *Client) DeleteVolume(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/volumes/"+url.PathEscape(name), nil, nil, nil)
}

// AttachDisk attaches a volume to a VM (hotplug if it runs).
func (c *Client) AttachDisk(ctx context.Context, vm, volume string) (VM, error) {
	var out VM
	err := c.do(ctx, http.MethodPost, escapedVMPath(vm)+"/disks", nil, AttachDiskRequest{Volume: volume}, &out)
	return out, err
}

// DetachDisk detaches a volume from a VM; from a running VM it waits up to timeoutSeconds
// (0: lqd's default) for the guest to release it.
func (c *Client) DetachDisk(ctx context.Context, vm, volume string, timeoutSeconds int) (VM, error) {
	var q url.Values
	if timeoutSeconds > 0 {
		q = url.Values{"timeout_seconds": {strconv.Itoa(timeoutSeconds)}}
	}
	var out VM
	err := c.do(ctx, http.MethodDelete, escapedVMPath(vm)+"/disks/"+url.PathEscape(volume), q, nil, &out)
	return out, err
}

// Snapshots lists a VM's snapshots, oldest first.
func (c *Client) Snapshots(ctx context.Context, vm string) ([]Snapshot, error) {
	var out []Snapshot
	err := c.do(ctx, http.MethodGet, escapedVMPath(vm)+"/snapshots", nil, nil, &out)
	return out, err
}

// CreateSnapshot takes a snapshot of a VM.
func (c *Client) CreateSnapshot(ctx context.Context, vm string, req CreateSnapshotRequest) (Snapshot, error) {
	var out Snapshot
	err := c.do(ctx, http.MethodPost, escapedVMPath(vm)+"/snapshots", nil, req, &out)
	return out, err
}

// RevertSnapshot brings a VM back to a snapshot.
func (c *Client) RevertSnapshot(ctx context.Context, vm, snap string) (VM, error) {
	var out VM
	err := c.do(ctx, http.MethodPost, escapedVMPath(vm)+"/snapshots/"+url.PathEscape(snap)+"/revert", nil, nil, &out)
	return out, err
}

// DeleteSnapshot deletes a snapshot; the others stay.
func (c *Client) DeleteSnapshot(ctx context.Context, vm, snap string) error {
	return c.do(ctx, http.MethodDelete, escapedVMPath(vm)+"/snapshots/"+url.PathEscape(snap), nil, nil, nil)
}

// CloneVM copies a VM.
func (c *Client) CloneVM(ctx context.Context, vm string, req CloneVMRequest) (VM, error) {
	var out VM
	err := c.do(ctx, http.MethodPost, escapedVMPath(vm)+"/clone", nil, req, &out)
	return out, err
}

// ImageFromVM makes an image from a stopped VM's disk.
func (c *Client) ImageFromVM(ctx context.Context, req ImageFromVMRequest) (Image, error) {
	var out Image
	err := c.do(ctx, http.MethodPost, "/api/v1/images/from-vm", nil, req, &out)
	return out, err
}

// BackupVM writes a standalone copy of a VM's disk to a file in a backup directory.
func (c *Client) BackupVM(ctx context.Context, vm, to string) (Backup, error) {
	var out Backup
	err := c.do(ctx, http.MethodPost, escapedVMPath(vm)+"/backup", nil, BackupRequest{To: to}, &out)
	return out, err
}

// RestoreVM creates a VM from a backup.
func (c *Client) RestoreVM(ctx context.Context, req RestoreVMRequest) (VM, error) {
	var out VM
	err := c.do(ctx, http.MethodPost, "/api/v1/vms/restore", nil, req, &out)
	return out, err
}
