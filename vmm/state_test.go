package vmm

import (
	"errors"
	"testing"
)

func TestActionCheck(t *testing.T) {
	tests := []struct {
		action Action
		state  State
		ok     bool
	}{
		{ActionStart, StateStopped, true},
		{ActionStart, StateCrashed, true},
		{ActionStart, StateRunning, false},
		{ActionStop, StateRunning, true},
		{ActionStop, StateStopped, false},
		{ActionShutdown, StatePaused, true},
		{ActionPause, StatePaused, false},
		{ActionResume, StatePaused, true},
		{ActionResume, StateRunning, false},
		{ActionDelete, StateRunning, false},
		{ActionDelete, StateCrashed, true},
		{ActionReboot, StatePaused, false},
	}
	for _, tt := range tests {
		err := tt.action.Check(tt.state)
		if (err == nil) != tt.ok {
			t.Errorf("%s from %s: err = %v, want ok=%v", tt.action, tt.state, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrConflict) {
			t.Errorf("%s from %s: err %v does not wrap ErrConflict", tt.action, tt.state, err)
		}
	}
	if err := Action("explode").Check(StateRunning); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown action: %v", err)
	}
}

func TestStateFromQMP(t *testing.T) {
	for in, want := range map[string]State{
		"running": StateRunning, "paused": StatePaused, "prelaunch": StateStarting,
		"shutdown": StateStopping, "inmigrate": StateMigrating, "guest-panicked": StatePaused,
	} {
		if got := stateFromQMP(in); got != want {
			t.Errorf("stateFromQMP(%q) = %s, want %s", in, got, want)
		}
	}
}
