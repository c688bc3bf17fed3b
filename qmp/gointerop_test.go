package qmp

import (
	"errors"
	"testing"
	"time"

	"github.com/digitalocean/go-qemu/qemu"
	"github.com/digitalocean/go-qemu/qmp/raw"
)

// TestGoQemuInterop drives Monitor through go-qemu's raw and qemu helpers.
func TestGoQemuInterop(t *testing.T) {
	checkNoLeaks(t)
	path := serveQMP(t, func(c *fakeConn) {
		for cmd, ok := c.read(); ok; cmd, ok = c.read() {
			switch cmd.Execute {
			case "query-status":
				c.event("RESUME", nil)
				c.reply(cmd, map[string]any{"status": "running", "running": true, "singlestep": false})
			case "query-version":
				c.reply(cmd, map[string]any{"qemu": map[string]int{"major": 9, "minor": 2, "micro": 1}, "package": ""})
			default:
				c.replyErr(cmd, "CommandNotFound", "The command "+cmd.Execute+" has not been found")
			}
		}
	})
	m := dial(t, path)

	st, err := raw.NewMonitor(m).QueryStatus()
	if err != nil {
		t.Fatalf("raw QueryStatus: %v", err)
	}
	if st.Status != raw.RunStateRunning || !st.Running {
		t.Errorf("raw QueryStatus = %+v", st)
	}

	d, err := qemu.NewDomain(m, "vm")
	if err != nil {
		t.Fatalf("NewDomain: %v", err)
	}
	events, stopEvents, err := d.Events()
	if err != nil {
		t.Fatalf("Domain.Events: %v", err)
	}
	if s, err := d.Status(); err != nil || s != qemu.StatusRunning {
		t.Errorf("Domain.Status = %v, %v; want running", s, err)
	}
	select {
	case ev := <-events:
		if ev.Event != "RESUME" {
			t.Errorf("domain event = %q, want RESUME", ev.Event)
		}
	case <-time.After(2 * time.Second):
		t.Error("no RESUME event through the domain")
	}
	stopEvents <- struct{}{}
	if v, err := d.Version(); err != nil || v != "9.2.1" {
		t.Errorf("Domain.Version = %q, %v", v, err)
	}
	var qerr *Error
	if _, err := d.Commands(); !errors.As(err, &qerr) || qerr.Class != "CommandNotFound" {
		t.Errorf("Domain.Commands err = %v, want CommandNotFound", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("Domain.Close: %v", err)
	}
	select {
	case <-m.Done():
	case <-time.After(2 * time.Second):
		t.Error("Domain.Close did not close the monitor")
	}
}
