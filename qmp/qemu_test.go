package qmp

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

// TestRealQEMU drives a real, empty qemu-system-x86_64 through its
// lifecycle. It is skipped when qemu is not installed.
func TestRealQEMU(t *testing.T) {
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not installed")
	}
	checkNoLeaks(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	sock := filepath.Join(t.TempDir(), "qmp.sock")
	cmd := exec.Command(bin, "-machine", "q35", "-accel", "tcg", "-nodefaults", "-display", "none",
		"-S", "-qmp", "unix:"+sock+",server=on,wait=off")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // by pid; harmless once qemu has quit
		<-exited
	})

	var m *Monitor
	for m == nil {
		m, err = Dial(ctx, sock)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("qemu's QMP socket never came up: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	defer m.Close()
	t.Logf("qemu %s", m.Version())
	events, unsubscribe := m.Subscribe(16)
	defer unsubscribe()

	wantStatus := func(want string, running bool) {
		t.Helper()
		st, err := m.QueryStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Status != want || st.Running != running {
			t.Fatalf("status = %+v, want %s (running %v)", st, want, running)
		}
	}
	wantEvent := func(name string) {
		t.Helper()
		for {
			select {
			case ev := <-events:
				if ev.Event == name {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no %s event", name)
			}
		}
	}

	wantStatus(StatePrelaunch, false)
	if err := m.Cont(ctx); err != nil {
		t.Fatal(err)
	}
	wantEvent("RESUME")
	wantStatus(StateRunning, true)
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	wantEvent("STOP")
	wantStatus(StatePaused, false)

	var qerr *Error
	if err := m.Execute(ctx, "no-such-command", nil, nil); !errors.As(err, &qerr) || qerr.Class != "CommandNotFound" {
		t.Errorf("unknown command: err = %v, want CommandNotFound", err)
	}
	var _ qmp.Monitor = m

	if err := m.Quit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.Done():
	case <-ctx.Done():
		t.Fatal("monitor not disconnected after quit")
	}
	select {
	case <-exited:
		exited <- nil // for the cleanup
	case <-ctx.Done():
		t.Fatal("qemu did not exit after quit")
	}
}
