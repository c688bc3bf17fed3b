package vmm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// bootMarker lives in the run dir, which the host clears at boot: its absence means this
// is lqd's first start since the host booted, when autostart VMs are started.
const bootMarker = "lqd.booted"

// Reconcile rebuilds the manager's view from the database and the processes that are really
// there. A recorded pid is trusted only if /proc says it is a qemu started for that VM's
// uuid; such a qemu is reattached and keeps running untouched. A VM whose qemu died while
// lqd was down is marked crashed and its restart policy applies. qemu processes left from
// VMs that no longer exist are ended. On the host's first start, autostart VMs start.
func (m *Manager) Reconcile(ctx context.Context) error {
	rows, err := m.cfg.DB.VMs(ctx)
	if err != nil {
		return fmt.Errorf("vmm: reconcile: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(m.cfg.RunDir, "vms"), 0o700); err != nil {
		return fmt.Errorf("vmm: reconcile: %w", err)
	}
	known := map[string]bool{}
	var autostart []*machine
	for _, row := range rows {
		known[row.UUID] = true
		var spec Spec
		if err := json.Unmarshal(row.Spec, &spec); err != nil {
			m.log.Error("reconcile: unreadable spec; skipping", "vm", row.Name, "err", err)
			continue
		}
		spec.UUID, spec.Name = row.UUID, row.Name
		vm := newMachine(m, spec, State(row.State), row.CreatedAt)
		m.mu.Lock()
		m.vms[spec.Name] = vm
		m.mu.Unlock()

		pid := row.PID
		if p, err := readPIDFile(filepath.Join(m.vmRunDir(row.UUID), PIDFile)); err == nil {
			pid = p
		}
		if trusted(pid, row.UUID) {
			actx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := vm.attach(actx, pid, row.StartedAt)
			cancel()
			if err == nil {
				m.log.Info("reattached", "vm", spec.Name, "pid", pid, "state", vm.State())
				continue
			}
			m.log.Error("reattach failed; killing qemu", "vm", spec.Name, "pid", pid, "err", err)
			kill(ctx, pid, row.UUID)
		}
		os.RemoveAll(m.vmRunDir(row.UUID))
		switch st := State(row.State); {
		case st == StateStopping:
			vm.setState(StateStopped, "")
		case st.Active():
			vm.setState(StateCrashed, "qemu exited while lqd was not running")
			m.bus.Publish(EventCrashed, spec.Name, "qemu exited while lqd was not running")
			if spec.RestartPolicy == RestartOnCrash || spec.RestartPolicy == RestartAlways {
				vm.scheduleRestart("found crashed at lqd start; restart policy " + string(spec.RestartPolicy))
			}
		}
		if spec.Autostart && !vm.State().Active() {
			autostart = append(autostart, vm)
		}
	}
	m.reapOrphans(ctx, known)
	marker := filepath.Join(m.cfg.RunDir, bootMarker)
	if _, err := os.Stat(marker); errors.Is(err, os.ErrNotExist) {
		for _, vm := range autostart {
			m.startAsync(vm, "autostart")
		}
		if err := os.WriteFile(marker, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
			return fmt.Errorf("vmm: reconcile: %w", err)
		}
	}
	return nil
}

// reapOrphans ends qemu processes and removes run dirs of VMs the database does not know
// (a crash in the middle of a delete).
func (m *Manager) reapOrphans(ctx context.Context, known map[string]bool) {
	entries, err := os.ReadDir(filepath.Join(m.cfg.RunDir, "vms"))
	if err != nil {
		return
	}
	for _, e := range entries {
		if known[e.Name()] {
			continue
		}
		dir := filepath.Join(m.cfg.RunDir, "vms", e.Name())
		if pid, err := readPIDFile(filepath.Join(dir, PIDFile)); err == nil && trusted(pid, e.Name()) {
			m.log.Warn("killing qemu of a VM that no longer exists", "uuid", e.Name(), "pid", pid)
			kill(ctx, pid, e.Name())
		}
		os.RemoveAll(dir)
	}
}

func (m *Manager) startAsync(vm *machine, why string) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		vm.op.Lock()
		defer vm.op.Unlock()
		if ActionStart.Check(vm.State()) != nil {
			return
		}
		ctx, cancel := context.WithTimeout(m.ctx, 2*time.Minute)
		defer cancel()
		m.log.Info("starting", "vm", vm.spec.Name, "why", why)
		if err := vm.start(ctx); err != nil {
			m.log.Error("start failed", "vm", vm.spec.Name, "why", why, "err", err)
		}
	}()
}
