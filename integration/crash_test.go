package integration

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCrashRecovery kills lqd while guests run and checks that nothing was lost or
// restarted; then kills a qemu and checks the restart policy.
func TestCrashRecovery(t *testing.T) {
	t0 := t
	data, run := newDirs(t)
	cur := startLQD(t, data, run)
	d := cur
	importTiny(t, d)
	d.mustLQ("vm", "create", "c1", "--image", "tiny", "--memory", "256", "--restart-policy", "on-crash", "--start")
	d.mustLQ("vm", "create", "c2", "--image", "tiny", "--memory", "256", "--start")
	for _, n := range []string{"c1", "c2"} {
		d.waitState(n, "running", 60*time.Second)
		d.waitConsole(n, tinyBooted, 1, 90*time.Second)
	}
	pid1, pid2 := d.vm("c1").PID, d.vm("c2").PID

	t.Run("lqd-kill9-keeps-guests", func(t *testing.T) {
		d := cur.with(t)
		d.kill9()
		// The guests do not notice: their qemu processes are not lqd's children.
		time.Sleep(time.Second)
		for _, pid := range []int{pid1, pid2} {
			if syscall.Kill(pid, 0) != nil {
				t.Fatalf("qemu %d died with lqd", pid)
			}
		}
		cur = startLQD(t0, data, run)
		d = cur.with(t)
		for n, pid := range map[string]int{"c1": pid1, "c2": pid2} {
			v := d.vm(n)
			if v.State != "running" || v.PID != pid {
				t.Fatalf("%s after lqd restart: state %s pid %d (was %d)", n, v.State, v.PID, pid)
			}
			// Nothing was restarted: one boot each.
			if c := strings.Count(d.consoleLog(n), tinyBooted); c != 1 {
				t.Fatalf("%s booted %d times", n, c)
			}
		}
		// Still controllable through the reattached QMP connection.
		d.mustLQ("vm", "pause", "c2")
		if v := d.vm("c2"); v.State != "paused" {
			t.Fatalf("pause after reattach: %s", v.State)
		}
		d.mustLQ("vm", "resume", "c2")
		con := dialSerial(t, d, d.vm("c1"))
		if out, ok := con.expect("echo alive-$((2*21))", "alive-42", 20*time.Second); !ok {
			t.Fatalf("c1 serial after reattach: %q", out)
		}
	})

	t.Run("qemu-kill9-restart-policy", func(t *testing.T) {
		d := cur.with(t)
		syscall.Kill(pid1, syscall.SIGKILL)
		waitFor(t, 30*time.Second, "c1 crash to be recorded", func() (bool, string) {
			return hasEvent(d.events("c1"), "vm.crashed", ""), "no vm.crashed event"
		})
		v := d.waitState("c1", "running", 60*time.Second)
		if v.PID == pid1 || v.PID == 0 {
			t.Fatalf("c1 not restarted with a new qemu: pid %d", v.PID)
		}
		if !hasEvent(d.events("c1"), "vm.restart", "on-crash") {
			t.Fatalf("no restart event: %+v", d.events("c1"))
		}
		d.waitConsole("c1", tinyBooted, 2, 90*time.Second)

		// c2's policy is never: it stays crashed.
		syscall.Kill(pid2, syscall.SIGKILL)
		d.waitState("c2", "crashed", 30*time.Second)
		time.Sleep(3 * time.Second)
		if v := d.vm("c2"); v.State != "crashed" || v.PID != 0 {
			t.Fatalf("c2 with policy never: %+v", v)
		}
	})

	t.Run("qemu-dies-while-lqd-down", func(t *testing.T) {
		d := cur.with(t)
		pid := d.vm("c1").PID
		d.kill9()
		syscall.Kill(pid, syscall.SIGKILL)
		time.Sleep(500 * time.Millisecond)
		cur = startLQD(t0, data, run)
		d = cur.with(t)
		waitFor(t, 30*time.Second, "c1 found crashed", func() (bool, string) {
			return hasEvent(d.events("c1"), "vm.crashed", "while lqd was not running"), "no event"
		})
		v := d.waitState("c1", "running", 60*time.Second)
		if v.PID == pid {
			t.Fatalf("c1 not restarted")
		}
	})

	t.Run("policy-always-restarts-after-guest-poweroff", func(t *testing.T) {
		d := cur.with(t)
		d.mustLQ("vm", "set", "c1", "--restart-policy", "always")
		v := d.vm("c1")
		con := dialSerial(t, d, v)
		// c1 was just restarted: wait for its shell before asking it to power off.
		con.waitShell(t, 90*time.Second)
		con.send("poweroff")
		waitFor(t, 60*time.Second, "c1 to come back with a new qemu", func() (bool, string) {
			nv := d.vm("c1")
			return nv.State == "running" && nv.PID != 0 && nv.PID != v.PID, nv.State
		})
		if !hasEvent(d.events("c1"), "vm.restart", "powered off") {
			t.Fatalf("no restart event for the guest's poweroff")
		}
	})

	t.Run("autostart-at-host-boot", func(t *testing.T) {
		d := cur.with(t)
		// c2 is crashed (policy never). Mark it autostart, then simulate a host reboot:
		// lqd down, the run dir (tmpfs in real life) emptied.
		d.mustLQ("vm", "set", "c2", "--autostart")
		d.kill9()
		os.Remove(filepath.Join(run, "lqd.booted"))
		cur = startLQD(t0, data, run)
		d = cur.with(t)
		d.waitState("c2", "running", 60*time.Second)
		// A plain lqd restart (marker present) starts nothing that is stopped.
		d.mustLQ("vm", "stop", "c2")
		d.kill9()
		cur = startLQD(t0, data, run)
		d = cur.with(t)
		time.Sleep(2 * time.Second)
		if v := d.vm("c2"); v.State != "stopped" {
			t.Fatalf("autostart on a plain lqd restart: %s", v.State)
		}
	})

	t.Run("cleanup", func(t *testing.T) {
		d := cur.with(t)
		for _, n := range []string{"c1", "c2"} {
			v := d.vm(n)
			d.mustLQ("vm", "delete", n, "--force")
			if pids := qemuPIDs(v.UUID); len(pids) != 0 {
				t.Errorf("%s: qemu left: %v", n, pids)
			}
		}
	})
}
