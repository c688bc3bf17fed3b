package vmm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/limiquantix/limiquantix/qmp"
)

// DefaultShutdownTimeout is how long a graceful shutdown waits before forcing.
const DefaultShutdownTimeout = 60 * time.Second

// Start starts a stopped or crashed VM.
func (m *Manager) Start(ctx context.Context, name string) (VM, error) {
	return m.do(ctx, name, ActionStart, func(vm *machine) error { return vm.start(ctx) })
}

// Stop ends a VM's qemu at once, like pulling the plug. A graceful shutdown in progress
// (which holds the VM's operation lock while it waits for the guest) is told to force now,
// so a stop never waits out a shutdown's timeout.
func (m *Manager) Stop(ctx context.Context, name string) (VM, error) {
	vm, err := m.get(name)
	if err != nil {
		return VM{}, err
	}
	cut := false
	if r := vm.currentRun(); r != nil && vm.State() == StateStopping {
		r.forceNow()
		cut = true
	}
	v, err := m.do(ctx, name, ActionStop, func(vm *machine) error { return vm.forceStop(ctx) })
	if err != nil && cut && errors.Is(err, ErrConflict) && vm.State() == StateStopped {
		return vm.view(m.cfg.Host.Accel), nil // the shutdown we cut short stopped it
	}
	return v, err
}

// Shutdown asks the guest to power off (through the guest agent when it answers, else an
// ACPI power-button press) and stops it by force if it is still running after timeout.
func (m *Manager) Shutdown(ctx context.Context, name string, timeout time.Duration) (VM, error) {
	return m.do(ctx, name, ActionShutdown, func(vm *machine) error { return vm.shutdown(ctx, timeout) })
}

// Reboot restarts the guest gracefully: the guest agent reboots it in place; without an
// agent, the VM is shut down (ACPI, then force after timeout) and started again.
func (m *Manager) Reboot(ctx context.Context, name string, timeout time.Duration) (VM, error) {
	return m.do(ctx, name, ActionReboot, func(vm *machine) error {
		r := vm.currentRun()
		if a := vm.agentIfAlive(ctx, r); a != nil {
			if err := a.Shutdown(ctx, "reboot"); err == nil {
				m.bus.Publish(EventShutdown, vm.spec.Name, "reboot via guest agent")
				return nil
			}
		}
		if err := vm.shutdown(ctx, timeout); err != nil {
			return err
		}
		return vm.start(ctx)
	})
}

// Reset presses the reset button.
func (m *Manager) Reset(ctx context.Context, name string) (VM, error) {
	return m.do(ctx, name, ActionReset, func(vm *machine) error {
		r := vm.currentRun()
		if r == nil {
			return fmt.Errorf("%w: no qemu runs", ErrConflict)
		}
		return r.mon.SystemReset(ctx)
	})
}

// Pause stops the vCPUs; memory and devices stay as they are.
func (m *Manager) Pause(ctx context.Context, name string) (VM, error) {
	return m.do(ctx, name, ActionPause, func(vm *machine) error {
		r := vm.currentRun()
		if r == nil {
			return fmt.Errorf("%w: no qemu runs", ErrConflict)
		}
		mon := r.mon
		if err := mon.Stop(ctx); err != nil {
			return err
		}
		return vm.confirmState(ctx, mon, StatePaused)
	})
}

// Resume lets a paused VM's vCPUs run again.
func (m *Manager) Resume(ctx context.Context, name string) (VM, error) {
	return m.do(ctx, name, ActionResume, func(vm *machine) error {
		r := vm.currentRun()
		if r == nil {
			return fmt.Errorf("%w: no qemu runs", ErrConflict)
		}
		mon := r.mon
		if err := mon.Cont(ctx); err != nil {
			return err
		}
		return vm.confirmState(ctx, mon, StateRunning)
	})
}

// do runs one lifecycle action with the VM's operation lock held, after checking that the
// VM's state allows it.
func (m *Manager) do(ctx context.Context, name string, a Action, fn func(*machine) error) (VM, error) {
	vm, err := m.get(name)
	if err != nil {
		return VM{}, err
	}
	vm.op.Lock()
	defer vm.op.Unlock()
	if err := a.Check(vm.State()); err != nil {
		return VM{}, fmt.Errorf("vm %q: %w", name, err)
	}
	if err := fn(vm); err != nil {
		return vm.view(m.cfg.Host.Accel), fmt.Errorf("vm %q: %s: %w", name, a, err)
	}
	return vm.view(m.cfg.Host.Accel), nil
}

// shutdown is the graceful stop. Called with op held.
func (vm *machine) shutdown(ctx context.Context, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = DefaultShutdownTimeout
	}
	r := vm.currentRun()
	if r == nil {
		return nil
	}
	r.mu.Lock()
	r.expectExit = true
	r.mu.Unlock()
	how := "acpi"
	if a := vm.agentIfAlive(ctx, r); a != nil {
		if err := a.Shutdown(ctx, "powerdown"); err == nil {
			how = "guest-agent"
		}
	}
	if how == "acpi" {
		if err := r.mon.SystemPowerdown(ctx); err != nil {
			return err
		}
	}
	vm.m.bus.Publish(EventShutdown, vm.spec.Name, "via "+how)
	vm.setState(StateStopping, "")
	if vm.waitGraceful(ctx, r, timeout) {
		return nil
	}
	vm.m.bus.Publish(EventShutdown, vm.spec.Name, fmt.Sprintf("guest still running after %s or a stop was asked for; forcing", timeout))
	return vm.forceStop(ctx)
}

// confirmState asks qemu (query-status) what state it is in after a command, records
// that, and fails if it is not the one the command should have reached.
func (vm *machine) confirmState(ctx context.Context, mon *qmp.Monitor, want State) error {
	st, err := mon.QueryStatus(ctx)
	if err != nil {
		return err
	}
	got := stateFromQMP(st.Status)
	vm.setState(got, "")
	if got != want {
		return fmt.Errorf("qemu reports %q, not %s", st.Status, want)
	}
	return nil
}
