package vmm

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/limiquantix/limiquantix/qmp"
)

// TestLaunchRealQEMU checks that the argv the builder makes is one qemu accepts: it
// launches it detached, attaches QMP and lets it run. No guest is needed: SeaBIOS finds
// an empty disk and waits.
func TestLaunchRealQEMU(t *testing.T) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir, err := os.MkdirTemp("", "lqv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	disk := filepath.Join(dir, "root.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-f", "qcow2", disk, "64M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v: %s", err, out)
	}
	seed := filepath.Join(dir, "seed.iso")
	if err := os.WriteFile(seed, make([]byte, 64<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	p := Plan{
		Spec:     Spec{UUID: "6c1f0a55-3d2e-4f7a-9b1c-000000000001", Name: "launch", CPUs: 1, MemoryMiB: 128},
		RootDisk: disk, SeedISO: seed, RunDir: dir, ConsoleLog: filepath.Join(dir, "console.log"),
	}
	argv, err := Argv(Host{QEMU: qemu, Accel: AccelTCG}, p)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := launch(ctx, argv, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kill(context.Background(), pid, p.Spec.UUID) })
	if !trusted(pid, p.Spec.UUID) {
		t.Fatalf("launched pid %d not trusted", pid)
	}
	mon, err := qmp.Dial(ctx, filepath.Join(dir, QMPSocket))
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	st, err := mon.QueryStatus(ctx)
	if err != nil || st.Status != "prelaunch" {
		t.Fatalf("status before cont = %+v, %v; want prelaunch (-S)", st, err)
	}
	if err := mon.Cont(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := mon.QueryStatus(ctx); err != nil || st.Status != "running" {
		t.Fatalf("status after cont = %+v, %v", st, err)
	}
	for _, sock := range []string{QMPSocket, AgentSocket, SerialSocket, VNCSocket} {
		if _, err := os.Stat(filepath.Join(dir, sock)); err != nil {
			t.Errorf("socket %s: %v", sock, err)
		}
	}
	if err := mon.Quit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := waitExit(ctx, pid); err != nil {
		t.Fatal(err)
	}
}
