package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/limiquantix/limiquantix/vmm"
)

func toAPIVM(v vmm.VM, host string) VM {
	out := VM{
		UUID: v.UUID, Name: v.Name, Host: host, State: string(v.State), CPUs: v.CPUs, MemoryMiB: v.MemoryMiB,
		DiskGiB: v.DiskGiB, Image: v.Image, SSHKeys: v.SSHKeys, UserData: v.UserData,
		RestartPolicy: string(v.RestartPolicy), Autostart: v.Autostart, Accel: v.Accel, PID: v.PID,
		CreatedAt: v.CreatedAt, LastError: v.LastError,
	}
	if !v.StartedAt.IsZero() {
		t := v.StartedAt
		out.StartedAt = &t
		out.UptimeSeconds = int64(time.Since(t).Seconds())
	}
	for _, n := range v.NICs {
		an := NIC{Network: n.Network, MAC: n.MAC, IP: n.IP, Tap: n.Tap, SecurityGroups: n.SecurityGroups}
		if v.Guest != nil {
			for _, gi := range v.Guest.Interfaces {
				if strings.EqualFold(gi.HardwareAddress, n.MAC) {
					for _, a := range gi.IPAddresses {
						an.GuestIPs = append(an.GuestIPs, a.Address+"/"+strconv.Itoa(a.Prefix))
					}
				}
			}
		}
		out.NICs = append(out.NICs, an)
	}
	out.Disks = toAPIDisks(v.Disks)
	if g := v.Guest; g != nil {
		ag := &Guest{AgentVersion: g.AgentVersion, Hostname: g.Hostname, UpdatedAt: g.UpdatedAt,
			OS: &GuestOS{ID: g.OS.ID, Name: g.OS.Name, PrettyName: g.OS.PrettyName, Version: g.OS.Version,
				KernelRelease: g.OS.KernelRelease, Machine: g.OS.Machine}}
		for _, i := range g.Interfaces {
			gi := GuestInterface{Name: i.Name, MAC: i.HardwareAddress}
			for _, a := range i.IPAddresses {
				gi.IPs = append(gi.IPs, a.Address+"/"+strconv.Itoa(a.Prefix))
			}
			ag.Interfaces = append(ag.Interfaces, gi)
		}
		out.Guest = ag
	}
	return out
}

func (s *Server) listVMs(w http.ResponseWriter, r *http.Request) {
	vms := s.vms.List()
	writeList(w, vms, func(v vmm.VM) VM { return toAPIVM(v, s.hostname) })
}

func (s *Server) getVM(w http.ResponseWriter, r *http.Request) {
	v, err := s.vms.RefreshGuest(r.Context(), chi.URLParam(r, "name"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toAPIVM(v, s.hostname))
}

func (s *Server) createVM(w http.ResponseWriter, r *http.Request) {
	var req CreateVMRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		writeError(w, r, err)
		return
	}
	spec := vmm.Spec{Name: req.Name, Image: req.Image, CPUs: req.CPUs, MemoryMiB: req.MemoryMiB, DiskGiB: req.DiskGiB,
		SSHKeys: req.SSHKeys, UserData: req.UserData, RestartPolicy: vmm.RestartPolicy(req.RestartPolicy), Autostart: req.Autostart}
	if req.CPUs < 0 || req.MemoryMiB < 0 || req.DiskGiB < 0 {
		writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "cpus, memory_mib and disk_gib must not be negative"))
		return
	}
	var nics []vmm.NICRequest
	if req.NICs != nil {
		nics = make([]vmm.NICRequest, 0, len(req.NICs))
		for _, n := range req.NICs {
			nics = append(nics, vmm.NICRequest{Network: n.Network, IP: n.IP, SecurityGroups: n.SecurityGroups})
		}
	}
	v, err := s.vms.Create(r.Context(), spec, nics, req.Start)
	if err != nil {
		// A VM that was created but failed to start stays, stopped; the error says so.
		writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/vms/"+v.Name)
	writeJSON(w, http.StatusCreated, toAPIVM(v, s.hostname))
}

func (s *Server) updateVM(w http.ResponseWriter, r *http.Request) {
	var req UpdateVMRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		writeError(w, r, err)
		return
	}
	if req.DiskGiB != nil {
		writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "disk_gib cannot be changed yet: resize the volume instead (storage API)"))
		return
	}
	u := vmm.Update{CPUs: req.CPUs, MemoryMiB: req.MemoryMiB, SSHKeys: req.SSHKeys, UserData: req.UserData, Autostart: req.Autostart}
	if req.RestartPolicy != nil {
		p := vmm.RestartPolicy(*req.RestartPolicy)
		u.RestartPolicy = &p
	}
	v, err := s.vms.Update(r.Context(), chi.URLParam(r, "name"), u)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toAPIVM(v, s.hostname))
}

func (s *Server) deleteVM(w http.ResponseWriter, r *http.Request) {
	force := false
	switch r.URL.Query().Get("force") {
	case "", "false", "0":
	case "true", "1":
		force = true
	default:
		writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "force must be true or false"))
		return
	}
	if err := s.vms.Delete(r.Context(), chi.URLParam(r, "name"), force); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// maxShutdownTimeout bounds how long one request may wait for a guest.
const maxShutdownTimeout = 3600

func (s *Server) vmAction(w http.ResponseWriter, r *http.Request) {
	name, action := chi.URLParam(r, "name"), chi.URLParam(r, "action")
	var req ShutdownRequest
	if err := decodeJSON(w, r, &req, true); err != nil {
		writeError(w, r, err)
		return
	}
	if req.TimeoutSeconds < 0 || req.TimeoutSeconds > maxShutdownTimeout {
		writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "timeout_seconds must be between 0 and %d", maxShutdownTimeout))
		return
	}
	timeout := time.Duration(req.TimeoutSeconds) * time.Second
	// The operation outlives a client that hangs up: a half-done start or stop is worse
	// than a finished one nobody reads.
	ctx := r.Context()
	var v vmm.VM
	var err error
	switch vmm.Action(action) {
	case vmm.ActionStart:
		v, err = s.vms.Start(context.WithoutCancel(ctx), name)
	case vmm.ActionStop:
		v, err = s.vms.Stop(context.WithoutCancel(ctx), name)
	case vmm.ActionShutdown:
		v, err = s.vms.Shutdown(context.WithoutCancel(ctx), name, timeout)
	case vmm.ActionReboot:
		v, err = s.vms.Reboot(context.WithoutCancel(ctx), name, timeout)
	case vmm.ActionReset:
		v, err = s.vms.Reset(ctx, name)
	case vmm.ActionPause:
		v, err = s.vms.Pause(ctx, name)
	case vmm.ActionResume:
		v, err = s.vms.Resume(ctx, name)
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toAPIVM(v, s.hostname))
}

func (s *Server) consoleLog(w http.ResponseWriter, r *http.Request) {
	tail, err := queryInt(r, "tail", 0, 0, 1<<40)
	if err != nil {
		writeError(w, r, err)
		return
	}
	b, err := s.vms.ConsoleLog(chi.URLParam(r, "name"), tail)
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(b)
}

// maxExecTimeout bounds one exec request.
const maxExecTimeout = 3600

func (s *Server) exec(w http.ResponseWriter, r *http.Request) {
	var req ExecRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		writeError(w, r, err)
		return
	}
	if req.TimeoutSeconds < 0 || req.TimeoutSeconds > maxExecTimeout {
		writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "timeout_seconds must be between 0 and %d", maxExecTimeout))
		return
	}
	timeout := 60 * time.Second
	if req.TimeoutSeconds > 0 {
		timeout = time.Duration(req.TimeoutSeconds) * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	res, err := s.vms.Exec(ctx, chi.URLParam(r, "name"), req.Command, req.Input)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ExecResult{ExitCode: res.ExitCode, Signal: res.Signal, Stdout: res.Stdout, Stderr: res.Stderr})
}
