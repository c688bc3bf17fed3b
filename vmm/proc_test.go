package vmm

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestTrusted(t *testing.T) {
	if trusted(os.Getpid(), "x") {
		t.Error("the test binary is not a qemu")
	}
	if trusted(0, "x") || trusted(1, "x") || trusted(1<<30, "x") {
		t.Error("impossible pids trusted")
	}
	// A process whose argv[0] says qemu and that carries -uuid U is trusted for U only.
	fake := t.TempDir() + "/qemu-system-x86_64"
	cmd := exec.Command("/bin/bash", "-c", `exec -a "$0" /bin/sh -c "sleep 30; :" "$@"`, fake, "-uuid", "u-1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(3 * time.Second)
	for !trusted(cmd.Process.Pid, "u-1") {
		if time.Now().After(deadline) {
			raw, _ := os.ReadFile("/proc/" + itoa(cmd.Process.Pid) + "/cmdline")
			t.Fatalf("fake qemu not trusted; cmdline %q", raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if trusted(cmd.Process.Pid, "u-2") {
		t.Error("trusted for another uuid")
	}
	cmd.Process.Kill()
	go cmd.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := waitExit(ctx, cmd.Process.Pid); err != nil {
		t.Fatalf("waitExit: %v", err)
	}
}
