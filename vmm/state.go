package vmm

import "fmt"

// State is a VM's lifecycle state.
type State string

// States.
const (
	StateStopped   State = "stopped"
	StateStarting  State = "starting"
	StateRunning   State = "running"
	StatePaused    State = "paused"
	StateStopping  State = "stopping"
	StateCrashed   State = "crashed"
	StateMigrating State = "migrating"
)

// Active reports whether a qemu process exists (or is being made) in this state.
func (s State) Active() bool {
	switch s {
	case StateStarting, StateRunning, StatePaused, StateStopping, StateMigrating:
		return true
	}
	return false
}

// Action is a lifecycle operation a user asks for.
type Action string

// Actions.
const (
	ActionStart    Action = "start"
	ActionStop     Action = "stop"     // force
	ActionShutdown Action = "shutdown" // graceful, then force after a timeout
	ActionReboot   Action = "reboot"
	ActionReset    Action = "reset"
	ActionPause    Action = "pause"
	ActionResume   Action = "resume"
	ActionDelete   Action = "delete"
)

// allowed lists, per action, the states it may start from. The state machine lives here so
// one table answers "can I do X now?" for the API, the CLI and the UI alike.
var allowed = map[Action][]State{
	ActionStart:    {StateStopped, StateCrashed},
	ActionStop:     {StateStarting, StateRunning, StatePaused, StateStopping},
	ActionShutdown: {StateRunning, StatePaused},
	ActionReboot:   {StateRunning},
	ActionReset:    {StateRunning, StatePaused},
	ActionPause:    {StateRunning},
	ActionResume:   {StatePaused},
	ActionDelete:   {StateStopped, StateCrashed},
}

// Check returns nil if action may run in state s, else an error wrapping ErrConflict.
func (a Action) Check(s State) error {
	states, ok := allowed[a]
	if !ok {
		return fmt.Errorf("%w: unknown action %q", ErrInvalid, a)
	}
	for _, ok := range states {
		if ok == s {
			return nil
		}
	}
	return fmt.Errorf("%w: cannot %s a VM that is %s", ErrConflict, a, s)
}

// stateFromQMP maps query-status's status to our state.
func stateFromQMP(status string) State {
	switch status {
	case "running":
		return StateRunning
	case "paused", "suspended", "io-error", "watchdog", "guest-panicked", "internal-error", "debug", "restore-vm", "save-vm":
		return StatePaused
	case "prelaunch":
		return StateStarting
	case "shutdown":
		return StateStopping
	case "inmigrate", "postmigrate", "finish-migrate":
		return StateMigrating
	}
	return StatePaused
}
