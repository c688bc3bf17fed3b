package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/limiquantix/limiquantix/storage"
	"github.com/limiquantix/limiquantix/vmm"
)

// Storage events that belong to no VM.
const (
	eventPoolCreated   = "pool.created"
	eventPoolDeleted   = "pool.deleted"
	eventVolumeCreated = "volume.created"
	eventVolumeDeleted = "volume.deleted"
	eventVolumeResized = "volume.resized"
)

// storageRoutes registers pools, volumes, VM disks, snapshots, clones, backups and
// restores; inside the authenticated group.
func (s *Server) storageRoutes(r chi.Router) {
	r.Get("/pools", s.listPools)
	r.Post("/pools", s.createPool)
	r.Get("/pools/{pool}", s.getPool)
	r.Delete("/pools/{pool}", s.deletePool)
	r.Get("/volumes", s.listVolumes)
	r.Post("/volumes", s.createVolume)
	r.Get("/volumes/{volume}", s.getVolume)
	r.Delete("/volumes/{volume}", s.deleteVolume)
	r.Post("/volumes/{volume}/resize", s.resizeVolume)
	r.Post("/vms/{name}/disks", s.attachDisk)
	r.Delete("/vms/{name}/disks/{volume}", s.detachDisk)
	r.Get("/vms/{name}/snapshots", s.listSnapshots)
	r.Post("/vms/{name}/snapshots", s.createSnapshot)
	r.Post("/vms/{name}/snapshots/{snap}/revert", s.revertSnapshot)
	r.Delete("/vms/{name}/snapshots/{snap}", s.deleteSnapshot)
	r.Post("/vms/{name}/clone", s.cloneVM)
	r.Post("/vms/{name}/backup", s.backupVM)
	r.Post("/vms/restore", s.restoreVM)
	r.Post("/images/from-vm", s.imageFromVM)
}

// storageError gives the storage failures that classify does not know their status.
func storageError(err error) error {
	switch {
	case errors.Is(err, vmm.ErrTimeout):
		return errorf(http.StatusGatewayTimeout, CodeTimeout, "%s", err.Error())
	case errors.Is(err, vmm.ErrNoSpace), errors.Is(err, storage.ErrNoSpace):
		return errorf(http.StatusInsufficientStorage, CodeNoSpace, "%s", err.Error())
	}
	return err
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	writeError(w, r, storageError(err))
}

// volumesReady answers 503 when lqd runs without the volume manager.
func (s *Server) volumesReady(w http.ResponseWriter, r *http.Request) bool {
	if s.volumes == nil {
		writeError(w, r, errorf(http.StatusServiceUnavailable, CodeUnavailable, "storage pools are not configured on this host"))
		return false
	}
	return true
}

const gib = int64(1) << 30

func toAPIPool(p storage.PoolStatus) StoragePool {
	return StoragePool{Name: p.Name, Driver: p.Driver, Path: p.Path, Default: p.Default, Total: p.Total, Used: p.Used,
		Free: p.Free, Volumes: p.Volumes, Allocated: p.Allocated, Error: p.Error}
}

func toAPIVolume(v storage.VolumeStatus) Volume {
	return Volume{Name: v.Name, Pool: v.Pool, Path: v.Path, Format: v.Format, VirtualSize: v.VirtualSize, ActualSize: v.ActualSize,
		BackingChain: v.Chain, Snapshots: v.Snapshots, AttachedTo: v.VMName, CreatedAt: v.CreatedAt, Error: v.Error}
}

func toAPIDisks(ds []vmm.DiskAttachment) []VMDisk {
	var out []VMDisk
	for _, d := range ds {
		serial := d.Volume
		if len(serial) > 20 {
			serial = serial[:20]
		}
		out = append(out, VMDisk{Volume: d.Volume, Path: d.Path, Port: d.Port, Serial: serial})
	}
	return out
}

func (s *Server) listPools(w http.ResponseWriter, r *http.Request) {
	if !s.volumesReady(w, r) {
		return
	}
	ps, err := s.volumes.Pools(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeList(w, ps, toAPIPool)
}

func (s *Server) getPool(w http.ResponseWriter, r *http.Request) {
	if !s.volumesReady(w, r) {
		return
	}
	p, err := s.volumes.Pool(r.Context(), chi.URLParam(r, "pool"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toAPIPool(p))
}

func (s *Server) createPool(w http.ResponseWriter, r *http.Request) {
	if !s.volumesReady(w, r) {
		return
	}
	var req CreatePoolRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		writeError(w, r, err)
		return
	}
	p, err := s.volumes.CreatePool(r.Context(), req.Name, req.Path)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.vms.Bus().Publish(eventPoolCreated, "", p.Name+" at "+p.Path)
	w.Header().Set("Location", "/api/v1/pools/"+p.Name)
	writeJSON(w, http.StatusCreated, toAPIPool(p))
}

func (s *Server) deletePool(w http.ResponseWriter, r *http.Request) {
	if !s.volumesReady(w, r) {
		return
	}
	name := chi.URLParam(r, "pool")
	if err := s.volumes.DeletePool(r.Context(), name); err != nil {
		s.fail(w, r, err)
		return
	}
	s.vms.Bus().Publish(eventPoolDeleted, "", name)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listVolumes(w http.ResponseWriter, r *http.Request) {
	if !s.volumesReady(w, r) {
		return
	}
	vs, err := s.volumes.List(r.Context(), r.URL.Query().Get("pool"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeList(w, vs, toAPIVolume)
}

func (s *Server) getVolume(w http.ResponseWriter, r *http.Request) {
	if !s.volumesReady(w, r) {
		return
	}
	v, err := s.volumes.Get(r.Context(), chi.URLParam(r, "volume"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toAPIVolume(v))
}

func (s *Server) createVolume(w http.ResponseWriter, r *http.Request) {
	if !s.volumesReady(w, r) {
		return
	}
	var req CreateVolumeRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		writeError(w, r, err)
		return
	}
	if req.SizeGiB <= 0 || req.SizeGiB > storage.MaxVolumeSize/gib {
		writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "size_gib must be between 1 and %d", storage.MaxVolumeSize/gib))
		return
	}
	v, err := s.volumes.Create(context.WithoutCancel(r.Context()), req.Name, req.Pool, req.SizeGiB*gib)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.vms.Bus().Publish(eventVolumeCreated, "", v.Name+" in pool "+v.Pool)
	w.Header().Set("Location", "/api/v1/volumes/"+v.Name)
	writeJSON(w, http.StatusCreated, toAPIVolume(v))
}

func (s *Server) deleteVolume(w http.ResponseWriter, r *http.Request) {
	if !s.volumesReady(w, r) {
		return
	}
	name := chi.URLParam(r, "volume")
	if err := s.volumes.Delete(r.Context(), name); err != nil {
		s.fail(w, r, err)
		return
	}
	s.vms.Bus().Publish(eventVolumeDeleted, "", name)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) resizeVolume(w http.ResponseWriter, r *http.Request) {
	if !s.volumesReady(w, r) {
		return
	}
	var req ResizeVolumeRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		writeError(w, r, err)
		return
	}
	if req.SizeGiB <= 0 || req.SizeGiB > storage.MaxVolumeSize/gib {
		writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "size_gib must be between 1 and %d", storage.MaxVolumeSize/gib))
		return
	}
	name, size := chi.URLParam(r, "volume"), req.SizeGiB*gib
	ctx := context.WithoutCancel(r.Context())
	if err := s.volumes.CheckResize(ctx, name, size); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.vms.ResizeVolume(ctx, name, size); err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.volumes.Get(ctx, name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.vms.Bus().Publish(eventVolumeResized, "", name+" to "+strconv.FormatInt(req.SizeGiB, 10)+" GiB")
	writeJSON(w, http.StatusOK, toAPIVolume(v))
}

func (s *Server) attachDisk(w http.ResponseWriter, r *http.Request) {
	var req AttachDiskRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		writeError(w, r, err)
		return
	}
	if !vmm.ValidName(req.Volume) {
		writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "volume %q: not a valid volume name", req.Volume))
		return
	}
	v, err := s.vms.AttachDisk(context.WithoutCancel(r.Context()), chi.URLParam(r, "name"), req.Volume)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toAPIVM(v, s.hostname))
}

// maxUnplugTimeout bounds how long a detach waits for the guest.
const maxUnplugTimeout = 3600

func (s *Server) detachDisk(w http.ResponseWriter, r *http.Request) {
	secs, err := queryInt(r, "timeout_seconds", 0, 0, maxUnplugTimeout)
	if err != nil {
		writeError(w, r, err)
		return
	}
	v, err := s.vms.DetachDisk(context.WithoutCancel(r.Context()), chi.URLParam(r, "name"), chi.URLParam(r, "volume"), time.Duration(secs)*time.Second)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toAPIVM(v, s.hostname))
}

func toAPISnapshot(sn vmm.Snapshot) Snapshot {
	out := Snapshot{Name: sn.Name, Memory: sn.Memory, Quiesced: sn.Quiesced, VMState: string(sn.VMState), Machine: sn.Machine,
		CPUModel: sn.CPUModel, QEMUVersion: sn.QEMUVersion, CPUs: sn.Spec.CPUs, MemoryMiB: sn.Spec.MemoryMiB, CreatedAt: sn.CreatedAt}
	for _, d := range sn.Spec.Disks {
		out.Disks = append(out.Disks, d.Volume)
	}
	return out
}

func (s *Server) listSnapshots(w http.ResponseWriter, r *http.Request) {
	sns, err := s.vms.Snapshots(r.Context(), chi.URLParam(r, "name"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeList(w, sns, toAPISnapshot)
}

func (s *Server) createSnapshot(w http.ResponseWriter, r *http.Request) {
	var req CreateSnapshotRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		writeError(w, r, err)
		return
	}
	name := chi.URLParam(r, "name")
	sn, err := s.vms.CreateSnapshot(context.WithoutCancel(r.Context()), name, vmm.SnapshotRequest{Name: req.Name, Memory: req.Memory, Quiesce: req.Quiesce})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/vms/"+name+"/snapshots/"+sn.Name)
	writeJSON(w, http.StatusCreated, toAPISnapshot(sn))
}

func (s *Server) revertSnapshot(w http.ResponseWriter, r *http.Request) {
	v, err := s.vms.RevertSnapshot(context.WithoutCancel(r.Context()), chi.URLParam(r, "name"), chi.URLParam(r, "snap"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toAPIVM(v, s.hostname))
}

func (s *Server) deleteSnapshot(w http.ResponseWriter, r *http.Request) {
	if err := s.vms.DeleteSnapshot(context.WithoutCancel(r.Context()), chi.URLParam(r, "name"), chi.URLParam(r, "snap")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) cloneVM(w http.ResponseWriter, r *http.Request) {
	var req CloneVMRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		writeError(w, r, err)
		return
	}
	v, err := s.vms.Clone(context.WithoutCancel(r.Context()), chi.URLParam(r, "name"), vmm.CloneRequest{Name: req.Name, Linked: req.Linked, Start: req.Start})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/vms/"+v.Name)
	writeJSON(w, http.StatusCreated, toAPIVM(v, s.hostname))
}

func (s *Server) imageFromVM(w http.ResponseWriter, r *http.Request) {
	var req ImageFromVMRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		writeError(w, r, err)
		return
	}
	im, err := s.vms.ImageFromVM(context.WithoutCancel(r.Context()), req.Name, req.VM)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/images/"+im.Name)
	writeJSON(w, http.StatusCreated, toAPIImage(im))
}

func (s *Server) backupVM(w http.ResponseWriter, r *http.Request) {
	var req BackupRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		writeError(w, r, err)
		return
	}
	b, err := s.vms.Backup(context.WithoutCancel(r.Context()), chi.URLParam(r, "name"), req.To)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, Backup{VM: b.VM, Path: b.Path, Size: b.Size, VirtualSize: b.VirtualSize, Live: b.Live,
		Quiesced: b.Quiesced, DurationMS: b.Duration.Milliseconds()})
}

func (s *Server) restoreVM(w http.ResponseWriter, r *http.Request) {
	var req RestoreVMRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		writeError(w, r, err)
		return
	}
	v, err := s.vms.Restore(context.WithoutCancel(r.Context()), vmm.RestoreRequest{Name: req.Name, From: req.From, Image: req.Image, Start: req.Start})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/vms/"+v.Name)
	writeJSON(w, http.StatusCreated, toAPIVM(v, s.hostname))
}
