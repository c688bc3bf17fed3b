package qmp

import (
	"context"
	"errors"
)

// Run states reported by QueryStatus (QAPI RunState); not exhaustive.
const (
	StateDebug         = "debug"
	StateInMigrate     = "inmigrate"
	StateInternalError = "internal-error"
	StateIOError       = "io-error"
	StatePaused        = "paused"
	StatePostMigrate   = "postmigrate"
	StatePrelaunch     = "prelaunch"
	StateFinishMigrate = "finish-migrate"
	StateRestoreVM     = "restore-vm"
	StateRunning       = "running"
	StateSaveVM        = "save-vm"
	StateShutdown      = "shutdown"
	StateSuspended     = "suspended"
	StateWatchdog      = "watchdog"
	StateGuestPanicked = "guest-panicked"
	StateColo          = "colo"
)

// Status is the reply of query-status.
type Status struct {
	Status  string `json:"status"` // one of the State constants
	Running bool   `json:"running"`
}

// QueryStatus reports the VM's run state.
func (m *Monitor) QueryStatus(ctx context.Context) (Status, error) {
	var s Status
	err := m.Execute(ctx, "query-status", nil, &s)
	return s, err
}

// Cont resumes (or, after -S, starts) guest CPUs.
func (m *Monitor) Cont(ctx context.Context) error { return m.Execute(ctx, "cont", nil, nil) }

// Stop pauses guest CPUs.
func (m *Monitor) Stop(ctx context.Context) error { return m.Execute(ctx, "stop", nil, nil) }

// SystemPowerdown presses the ACPI power button.
func (m *Monitor) SystemPowerdown(ctx context.Context) error {
	return m.Execute(ctx, "system_powerdown", nil, nil)
}

// SystemReset resets the machine, like the reset button.
func (m *Monitor) SystemReset(ctx context.Context) error {
	return m.Execute(ctx, "system_reset", nil, nil)
}

// Quit makes qemu exit. qemu may close the socket before its reply
// arrives, so losing the connection after the command was sent counts as
// success.
func (m *Monitor) Quit(ctx context.Context) error {
	sent, err := m.execute(ctx, "quit", nil, nil)
	if sent && errors.Is(err, ErrDisconnected) {
		return nil
	}
	return err
}
