package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/limiquantix/limiquantix/api"
	"github.com/limiquantix/limiquantix/integration/guest"
)

const tinyBooted = "LQ-TINY-BOOTED"

// importTiny imports the tiny guest (kernel + initrd, no disk) through the CLI.
func importTiny(t *testing.T, d *daemon) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	img, err := guest.Tiny(ctx)
	if err != nil {
		t.Fatalf("tiny guest: %v", err)
	}
	d.mustLQ("image", "import", "tiny", "--kernel", img.Kernel, "--initrd", img.Initrd, "--cmdline", "console=ttyS0")
}

// TestTinyLifecycle drives one tiny guest through every lifecycle operation with the CLI.
func TestTinyLifecycle(t *testing.T) {
	data, run := newDirs(t)
	d := startLQD(t, data, run)
	importTiny(t, d)

	d.mustLQ("vm", "create", "t1", "--image", "tiny", "--memory", "256", "--start")
	v := d.waitState("t1", "running", 60*time.Second)
	d.waitConsole("t1", tinyBooted, 1, 90*time.Second)
	con := dialSerial(t, d, v)
	con.waitShell(t, 60*time.Second)

	t.Run("list", func(t *testing.T) {
		d := d.with(t)
		out := d.mustLQ("vm", "list")
		if !strings.Contains(out, "t1") || !strings.Contains(out, "running") || !strings.Contains(out, "tiny") {
			t.Fatalf("vm list:\n%s", out)
		}
		var vms []api.VM
		if err := json.Unmarshal([]byte(d.mustLQ("vm", "list", "-o", "json")), &vms); err != nil || len(vms) != 1 {
			t.Fatalf("vm list -o json: %v %+v", err, vms)
		}
		if vms[0].PID == 0 || vms[0].Accel != "tcg" || vms[0].StartedAt == nil {
			t.Fatalf("runtime facts missing: %+v", vms[0])
		}
	})

	t.Run("console-log", func(t *testing.T) {
		d := d.with(t)
		out := d.mustLQ("vm", "console-log", "t1")
		for _, want := range []string{"Linux version", tinyBooted} {
			if !strings.Contains(out, want) {
				t.Errorf("console-log lacks %q", want)
			}
		}
	})

	t.Run("serial-shell", func(t *testing.T) {
		if out, ok := con.expect("echo lq-$((6*7))", "lq-42", 20*time.Second); !ok {
			t.Fatalf("serial shell did not answer: %q", out)
		}
	})

	t.Run("lq-vm-console", func(t *testing.T) {
		// The CLI's serial console: type a command, see the answer, detach with Ctrl+].
		cmd := exec.Command("ip", "netns", "exec", d.ns, bin.lq, "vm", "console", "t1")
		cmd.Env = append(os.Environ(), "LQ_DATA_DIR="+d.dataDir)
		stdin, _ := cmd.StdinPipe()
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		stdin.Write([]byte("echo con-$((40+2))\n"))
		waitFor(t, 20*time.Second, "the console to answer", func() (bool, string) {
			return strings.Contains(out.String(), "con-42"), out.String()
		})
		stdin.Write([]byte{0x1d})
		errc := make(chan error, 1)
		go func() { errc <- cmd.Wait() }()
		select {
		case err := <-errc:
			if err != nil {
				t.Fatalf("lq vm console: %v\n%s", err, out.String())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("lq vm console did not detach on Ctrl+]")
		}
	})

	t.Run("pause-resume", func(t *testing.T) {
		d := d.with(t)
		d.mustLQ("vm", "pause", "t1")
		// lqd reports the state qemu gives in query-status after the command.
		if v := d.vm("t1"); v.State != "paused" {
			t.Fatalf("after pause: %s", v.State)
		}
		// A paused guest runs nothing: the shell does not answer.
		if out, ok := con.expect("echo frozen-$((1+1))", "frozen-2", 3*time.Second); ok {
			t.Fatalf("paused guest answered: %q", out)
		}
		d.mustLQ("vm", "resume", "t1")
		if v := d.vm("t1"); v.State != "running" {
			t.Fatalf("after resume: %s", v.State)
		}
		if out, ok := con.expect("", "frozen-2", 20*time.Second); !ok {
			t.Fatalf("resumed guest did not run the queued command: %q", out)
		}
	})

	t.Run("running-vm-bad-input", func(t *testing.T) {
		d := d.with(t)
		before := treeFiles(t, data)
		_, errOut, code := d.lq("vm", "delete", "t1")
		if code == 0 || !strings.Contains(errOut, "conflict") {
			t.Fatalf("deleting a running VM without --force: exit %d, %s", code, errOut)
		}
		_, errOut, code = d.lq("vm", "start", "t1")
		if code == 0 || !strings.Contains(errOut, "conflict") {
			t.Fatalf("starting a running VM: exit %d, %s", code, errOut)
		}
		_, errOut, code = d.lq("vm", "set", "t1", "--cpus", "2")
		if code == 0 || !strings.Contains(errOut, "conflict") {
			t.Fatalf("changing cpus of a running VM: exit %d, %s", code, errOut)
		}
		if v := d.vm("t1"); v.State != "running" || v.CPUs != 1 {
			t.Fatalf("VM changed: %+v", v)
		}
		sameFiles(t, before, treeFiles(t, data))
	})

	t.Run("reset", func(t *testing.T) {
		d := d.with(t)
		pid := d.vm("t1").PID
		d.mustLQ("vm", "reset", "t1")
		d.waitConsole("t1", tinyBooted, 2, 90*time.Second)
		if v := d.vm("t1"); v.PID != pid || v.State != "running" {
			t.Fatalf("reset changed the process or state: pid %d→%d, %s", pid, v.PID, v.State)
		}
	})

	t.Run("reboot", func(t *testing.T) {
		d := d.with(t)
		// No guest agent in the tiny guest: ACPI power-off, then a fresh qemu.
		pid := d.vm("t1").PID
		d.mustLQ("vm", "reboot", "t1", "--timeout", "60")
		v := d.waitState("t1", "running", 60*time.Second)
		if v.PID == pid {
			t.Fatalf("reboot without an agent should start a new qemu; pid still %d", pid)
		}
		d.waitConsole("t1", tinyBooted, 3, 90*time.Second)
		if hasEvent(d.events("t1"), "vm.shutdown", "forcing") {
			t.Fatalf("reboot had to force: the guest ignored ACPI")
		}
	})

	t.Run("graceful-shutdown", func(t *testing.T) {
		d := d.with(t)
		mark := lastEventID(d.events("t1"))
		d.mustLQ("vm", "shutdown", "t1", "--timeout", "60")
		if v := d.vm("t1"); v.State != "stopped" {
			t.Fatalf("after shutdown: %s", v.State)
		}
		evs := eventsAfter(d.events("t1"), mark)
		if !hasEvent(evs, "vm.shutdown", "via acpi") || hasEvent(evs, "vm.shutdown", "forcing") {
			t.Fatalf("shutdown was not a clean ACPI power-off: %+v", evs)
		}
		if pids := qemuPIDs(v.UUID); len(pids) != 0 {
			t.Fatalf("qemu still running after shutdown: %v", pids)
		}
	})

	t.Run("force-stop", func(t *testing.T) {
		d := d.with(t)
		d.mustLQ("vm", "start", "t1")
		d.waitConsole("t1", tinyBooted, 4, 90*time.Second)
		d.mustLQ("vm", "stop", "t1")
		if v := d.vm("t1"); v.State != "stopped" || v.PID != 0 {
			t.Fatalf("after stop: %+v", v)
		}
		if pids := qemuPIDs(v.UUID); len(pids) != 0 {
			t.Fatalf("qemu still running after stop: %v", pids)
		}
	})

	t.Run("stop-cuts-a-hung-shutdown-short", func(t *testing.T) {
		d := d.with(t)
		// A VM with no OS ignores the ACPI power button: its graceful shutdown would wait
		// out the whole timeout. A stop during that wait must not.
		blank := filepath.Join(filepath.Dir(data), "blank.qcow2")
		if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", blank, "64M").CombinedOutput(); err != nil {
			t.Fatalf("qemu-img: %v %s", err, out)
		}
		d.mustLQ("image", "import", "blank", blank)
		d.mustLQ("vm", "create", "nos", "--image", "blank", "--memory", "128", "--no-nic", "--start")
		shut := make(chan error, 1)
		go func() {
			_, errOut, code := d.lq("vm", "shutdown", "nos", "--timeout", "600")
			if code != 0 {
				shut <- fmt.Errorf("exit %d: %s", code, errOut)
				return
			}
			shut <- nil
		}()
		d.waitState("nos", "stopping", 30*time.Second)
		start := time.Now()
		d.mustLQ("vm", "stop", "nos")
		if took := time.Since(start); took > 30*time.Second {
			t.Fatalf("stop waited %s behind the shutdown", took)
		}
		select {
		case err := <-shut:
			if err != nil {
				t.Fatalf("the cut-short shutdown: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("the shutdown request did not return after the stop")
		}
		if v := d.vm("nos"); v.State != "stopped" {
			t.Fatalf("after stop: %s", v.State)
		}
		d.mustLQ("vm", "delete", "nos")
		d.mustLQ("image", "delete", "blank")
	})

	t.Run("delete-leaves-nothing", func(t *testing.T) {
		d := d.with(t)
		d.mustLQ("vm", "start", "t1")
		d.waitState("t1", "running", 60*time.Second)
		d.mustLQ("vm", "delete", "t1", "--force")
		if _, err := d.client.VM(context.Background(), "t1"); !isStatus(err, http.StatusNotFound) {
			t.Fatalf("VM still there: %v", err)
		}
		for _, p := range []string{
			filepath.Join(data, "vms", v.UUID),
			filepath.Join(run, "vms", v.UUID),
			filepath.Join(data, "pools", "default", "disks", v.UUID+"-root.qcow2"),
		} {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Errorf("%s left behind (%v)", p, err)
			}
		}
		if pids := qemuPIDs(v.UUID); len(pids) != 0 {
			t.Errorf("qemu left behind: %v", pids)
		}
		// The image is free again.
		d.mustLQ("image", "delete", "tiny")
		for f := range treeFiles(t, filepath.Join(data, "pools")) {
			t.Errorf("file left in the pool: %s", f)
		}
	})
}

func isStatus(err error, status int) bool {
	var ae *api.APIError
	if err == nil {
		return false
	}
	if e, ok := err.(*api.APIError); ok {
		ae = e
	}
	return ae != nil && ae.Status == status
}

// sameFiles fails if files appeared, vanished or changed size, ignoring the database
// (its WAL grows with every read) and console logs (a running guest writes them).
func sameFiles(t *testing.T, before, after map[string]int64) {
	t.Helper()
	skip := func(p string) bool {
		return strings.HasPrefix(filepath.Base(p), "lq.db") || filepath.Base(p) == "console.log"
	}
	for p, sz := range before {
		if skip(p) {
			continue
		}
		if asz, ok := after[p]; !ok {
			t.Errorf("file vanished: %s", p)
		} else if asz != sz {
			t.Errorf("file changed size: %s %d → %d", p, sz, asz)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok && !skip(p) {
			t.Errorf("file appeared: %s", p)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func lastEventID(evs []api.Event) int64 {
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].ID
}

// eventsAfter keeps the events newer than id: what one step of a test caused.
func eventsAfter(evs []api.Event, id int64) []api.Event {
	var out []api.Event
	for _, e := range evs {
		if e.ID > id {
			out = append(out, e)
		}
	}
	return out
}
