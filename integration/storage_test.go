package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/limiquantix/limiquantix/api"
	"github.com/limiquantix/limiquantix/integration/guest"
)

// TestStorage exercises pools, volumes, hotplug, snapshots, clones, backups and restores
// through lq against one lqd. Booting Debian under TCG is what costs, so it boots two: d1
// for everything that needs a real guest and its agent, and d2, restored from d1's backup,
// which also receives the volume d1 wrote. The tiny guest (no agent, no disk use) and
// qemu-io on stopped VMs' disks cover the rest.
func TestStorage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	deb, err := guest.Debian(ctx)
	if err != nil {
		t.Fatalf("debian guest: %v", err)
	}
	tiny, err := guest.Tiny(ctx)
	if err != nil {
		t.Fatalf("tiny guest: %v", err)
	}
	data, run := newDirs(t)
	root := filepath.Dir(data)
	backups := filepath.Join(root, "backups")
	// A small tmpfs holds a pool and a backup directory that fill up quickly.
	small := filepath.Join(root, "small")
	mountTmpfs(t, small, "48m")
	smallPool, smallBackups := filepath.Join(small, "pool"), filepath.Join(small, "backups")
	t.Setenv("LQ_BACKUP_DIR", backups+","+smallBackups)
	d := startLQD(t, data, run)
	d.mustLQ("image", "import", "debian-12", deb.Disk, "--kernel", deb.Kernel, "--initrd", deb.Initrd, "--cmdline", deb.Cmdline)
	d.mustLQ("image", "import", "tiny", "--kernel", tiny.Kernel, "--initrd", tiny.Initrd, "--cmdline", "console=ttyS0")

	// d1 boots while the tests that need no guest run.
	d.mustLQ("vm", "create", "d1", "--image", "debian-12", "--memory", "768", "--disk", "4", "--start")

	t.Run("pools-and-volumes", func(t *testing.T) {
		d := d.with(t)
		var pools []api.StoragePool
		d.lqJSON(&pools, "pool", "list")
		if len(pools) != 1 || pools[0].Name != "default" || !pools[0].Default || pools[0].Total <= 0 || pools[0].Free <= 0 {
			t.Fatalf("pools = %+v", pools)
		}
		d.mustLQ("pool", "create", "small", "--path", smallPool)
		before := treeFiles(t, small)
		d.lqFails("HTTP 400", "bigger than pool", "volume", "create", "huge", "--size", "1", "--pool", "small")
		if after := treeFiles(t, small); !sameTree(before, after) {
			t.Fatalf("a refused volume left files: %v", after)
		}
		d.mustLQ("volume", "create", "data1", "--size", "2")
		var v api.Volume
		d.lqJSON(&v, "volume", "show", "data1")
		if v.Format != "qcow2" || v.VirtualSize != 2<<30 || v.Pool != "default" || v.AttachedTo != "" {
			t.Fatalf("volume = %+v", v)
		}
		d.lqFails("HTTP 400", "shrinking", "volume", "resize", "data1", "--size", "1")
		d.lqJSON(&v, "volume", "show", "data1")
		if v.VirtualSize != 2<<30 {
			t.Fatalf("a refused shrink changed the volume: %+v", v)
		}
		d.lqJSON(&pools, "pool", "list")
		if len(pools) != 2 || pools[0].Volumes != 1 || pools[0].Allocated != 2<<30 {
			t.Fatalf("pools = %+v", pools)
		}
	})

	t.Run("stopped-snapshots", func(t *testing.T) {
		d := d.with(t)
		d.mustLQ("vm", "create", "ts", "--image", "tiny", "--memory", "128")
		disk := d.rootDisk("ts")
		d.lqFails("HTTP 409", "needs a running VM", "vm", "snapshot", "create", "ts", "m", "--memory")
		for i, s := range []string{"s1", "s2", "s3"} {
			qemuIO(t, disk, fmt.Sprintf("write -P %d 0 1M", 0x61+i))
			d.mustLQ("vm", "snapshot", "create", "ts", s)
		}
		// Deleting the middle snapshot keeps the others, each with its own data.
		d.mustLQ("vm", "snapshot", "delete", "ts", "s2")
		var sns []api.Snapshot
		d.lqJSON(&sns, "vm", "snapshot", "list", "ts")
		if names := snapshotNames(sns); !slices.Equal(names, []string{"s1", "s3"}) {
			t.Fatalf("snapshots after deleting s2: %v", names)
		}
		if tags := qemuImgSnapshots(t, disk); !slices.Equal(tags, []string{"s1", "s3"}) {
			t.Fatalf("qemu-img snapshot -l: %v", tags)
		}
		d.mustLQ("vm", "snapshot", "revert", "ts", "s1")
		qemuIO(t, disk, "read -P 97 0 1M")
		d.mustLQ("vm", "snapshot", "revert", "ts", "s3")
		qemuIO(t, disk, "read -P 99 0 1M")
		if sns[0].Machine == "" || sns[0].CPUModel == "" || sns[0].MemoryMiB != 128 || sns[0].VMState != "stopped" {
			t.Fatalf("snapshot metadata: %+v", sns[0])
		}
		// Revert restores the spec too.
		d.mustLQ("vm", "set", "ts", "--memory", "192")
		d.mustLQ("vm", "snapshot", "revert", "ts", "s1")
		if v := d.vm("ts"); v.MemoryMiB != 128 {
			t.Fatalf("memory after revert = %d, want the snapshot's 128", v.MemoryMiB)
		}
	})

	t.Run("clones-and-images", func(t *testing.T) {
		d := d.with(t)
		d.mustLQ("vm", "create", "src", "--image", "tiny", "--memory", "128")
		srcDisk := d.rootDisk("src")
		qemuIO(t, srcDisk, "write -P 112 0 2M") // 'p'

		d.mustLQ("vm", "clone", "src", "full1")
		full := d.rootDisk("full1")
		if chain := backingChain(t, full); len(chain) != 0 {
			t.Fatalf("a full clone has a backing chain: %v", chain)
		}
		qemuIO(t, full, "read -P 112 0 2M")

		start := time.Now()
		d.mustLQ("vm", "clone", "src", "link1", "--linked")
		t.Logf("linked clone through lq: %s", time.Since(start).Round(time.Millisecond))
		link := d.rootDisk("link1")
		chain := backingChain(t, link)
		if len(chain) < 2 || !strings.Contains(filepath.Base(chain[0]), "src-base-") {
			t.Fatalf("linked clone chain: %v", chain)
		}
		qemuIO(t, link, "read -P 112 0 2M")
		// The source goes on writing to an overlay of its own: the clone does not see it.
		if c := backingChain(t, srcDisk); len(c) == 0 || c[0] != chain[0] {
			t.Fatalf("the source is not on the shared base: %v", c)
		}
		qemuIO(t, srcDisk, "write -P 113 0 2M")
		qemuIO(t, link, "read -P 112 0 2M")
		base := strings.TrimSuffix(filepath.Base(chain[0]), ".qcow2")
		d.lqFails("HTTP 409", "in_use", "image", "delete", base)
		d.lqFails("HTTP 409", "in_use", "image", "delete", "tiny")

		d.mustLQ("vm", "start", "link1")
		d.waitConsole("link1", "LQ-TINY-BOOTED", 1, 120*time.Second)
		d.lqFails("HTTP 409", "stopped", "vm", "clone", "link1", "link2", "--linked")
		d.lqFails("HTTP 409", "stopped", "image", "create-from-vm", "nope", "link1")
		d.mustLQ("vm", "stop", "link1")

		d.mustLQ("image", "create-from-vm", "golden", "src")
		d.mustLQ("vm", "create", "fromgolden", "--image", "golden", "--memory", "128")
		qemuIO(t, d.rootDisk("fromgolden"), "read -P 113 0 2M")
	})

	t.Run("debian-agent", func(t *testing.T) {
		waitAgent(d.with(t), "d1")
	})

	t.Run("hotplug", func(t *testing.T) {
		d := d.with(t)
		d.mustLQ("vm", "disk", "attach", "d1", "data1")
		dev := "/dev/disk/by-id/virtio-data1"
		waitFor(t, 60*time.Second, "the guest to see data1", func() (bool, string) {
			out, _, _ := d.lq("vm", "exec", "d1", "--", "lsblk", "-ndo", "NAME,SERIAL,SIZE")
			return strings.Contains(out, "data1"), "lsblk:\n" + out
		})
		d.guestSh("d1", "mkfs.ext4 -q "+dev+" && mkdir -p /mnt/data && mount "+dev+" /mnt/data && echo written-on-d1 > /mnt/data/proof && umount /mnt/data && sync")
		var v api.Volume
		d.lqJSON(&v, "volume", "show", "data1")
		if v.AttachedTo != "d1" {
			t.Fatalf("attached_to = %q", v.AttachedTo)
		}
		// In use: neither attached elsewhere nor deleted; nothing changes.
		d.mustLQ("vm", "create", "other", "--image", "tiny", "--memory", "128")
		d.lqFails("HTTP 409", "in_use", "vm", "disk", "attach", "other", "data1")
		d.lqFails("HTTP 409", "in_use", "volume", "delete", "data1")
		if v := d.vm("other"); len(v.Disks) != 0 {
			t.Fatalf("a refused attach left a disk: %+v", v.Disks)
		}
		// A live resize reaches the guest at once.
		d.mustLQ("volume", "resize", "data1", "--size", "3")
		waitFor(t, 30*time.Second, "the guest to see 3 GiB", func() (bool, string) {
			out, _, _ := d.lq("vm", "exec", "d1", "--", "blockdev", "--getsize64", dev)
			return strings.TrimSpace(out) == strconv.FormatInt(3<<30, 10), out
		})
		d.mustLQ("vm", "disk", "detach", "d1", "data1")
		out := d.guestSh("d1", "lsblk -ndo SERIAL")
		if strings.Contains(out, "data1") {
			t.Fatalf("the guest still has data1 after detach:\n%s", out)
		}
		if v := d.vm("d1"); len(v.Disks) != 0 || v.State != "running" {
			t.Fatalf("after detach: %+v", v)
		}
	})

	t.Run("snapshot-with-memory", func(t *testing.T) {
		d := d.with(t)
		pid := strings.TrimSpace(d.guestSh("d1", "echo before > /root/state; sync; setsid sleep 100000 >/dev/null 2>&1 </dev/null & echo $!"))
		if _, err := strconv.Atoi(pid); err != nil {
			t.Fatalf("sleep pid %q", pid)
		}
		start := time.Now()
		d.mustLQ("vm", "snapshot", "create", "d1", "mem1", "--memory")
		t.Logf("snapshot with memory (768 MiB guest): %s", time.Since(start).Round(time.Millisecond))
		d.guestSh("d1", "kill "+pid+"; echo after > /root/state; sync")
		if got := d.guestSh("d1", "cat /root/state; kill -0 "+pid+" 2>/dev/null && echo alive || echo gone"); got != "after\ngone\n" {
			t.Fatalf("before the revert: %q", got)
		}
		start = time.Now()
		d.mustLQ("vm", "snapshot", "revert", "d1", "mem1")
		t.Logf("revert with memory: %s", time.Since(start).Round(time.Millisecond))
		if v := d.vm("d1"); v.State != "running" {
			t.Fatalf("after revert: %s %s", v.State, v.LastError)
		}
		var got string
		waitFor(t, 60*time.Second, "the reverted guest's agent", func() (bool, string) {
			out, errOut, code := d.lq("vm", "exec", "d1", "--", "sh", "-c", "cat /root/state; kill -0 "+pid+" 2>/dev/null && echo alive || echo gone")
			got = out
			return code == 0, errOut
		})
		if got != "before\nalive\n" {
			t.Fatalf("after the revert: %q, want the old file and the sleep alive again", got)
		}
		var sns []api.Snapshot
		d.lqJSON(&sns, "vm", "snapshot", "list", "d1")
		if len(sns) != 1 || !sns[0].Memory || !strings.HasPrefix(sns[0].Machine, "pc-q35-") || sns[0].VMState != "running" {
			t.Fatalf("snapshots: %+v", sns)
		}
	})

	t.Run("snapshot-quiesced", func(t *testing.T) {
		d := d.with(t)
		evs := len(d.events("d1"))
		d.mustLQ("vm", "snapshot", "create", "d1", "q1", "--quiesce")
		froze, thawed := quiesceEvents(d.events("d1")[evs:])
		if froze < 1 || thawed != froze {
			t.Fatalf("fsfreeze froze %d, thaw thawed %d: %+v", froze, thawed, d.events("d1")[evs:])
		}
		d.guestSh("d1", "echo thawed > /root/after-q1 && sync")

		// A failure between freeze and thaw: a volume that already carries a snapshot by the
		// same name makes the (atomic) snapshot fail after the freeze. The guest is thawed.
		d.mustLQ("volume", "create", "qdup", "--size", "1")
		var v api.Volume
		d.lqJSON(&v, "volume", "show", "qdup")
		if out, err := exec.Command("qemu-img", "snapshot", "-c", "q2", v.Path).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img snapshot: %v %s", err, out)
		}
		d.mustLQ("vm", "disk", "attach", "d1", "qdup")
		evs = len(d.events("d1"))
		d.lqFails("HTTP 409", "already exists", "vm", "snapshot", "create", "d1", "q2", "--quiesce")
		froze, thawed = quiesceEvents(d.events("d1")[evs:])
		if froze < 1 || thawed != froze {
			t.Fatalf("after a failed snapshot: froze %d, thawed %d", froze, thawed)
		}
		out, errOut, code := d.lq("vm", "exec", "d1", "--timeout", "30", "--", "sh", "-c", "echo still-writable > /root/after-q2 && sync && cat /root/after-q2")
		if code != 0 || out != "still-writable\n" {
			t.Fatalf("the guest is not writable after the failed snapshot: %d %q %s", code, out, errOut)
		}
		var sns []api.Snapshot
		d.lqJSON(&sns, "vm", "snapshot", "list", "d1")
		if names := snapshotNames(sns); !slices.Equal(names, []string{"mem1", "q1"}) {
			t.Fatalf("snapshots: %v", names)
		}
		d.mustLQ("vm", "disk", "detach", "d1", "qdup")
		// A disk-only snapshot is reverted offline: refused while the VM runs.
		d.lqFails("HTTP 409", "stop", "vm", "snapshot", "revert", "d1", "q1")
	})

	t.Run("backup-and-restore", func(t *testing.T) {
		d := d.with(t)
		d.guestSh("d1", "echo restore-proof > /root/marker && sync")
		// Bad targets: outside the allowed directories, and a disk that fills up.
		outside := filepath.Join(root, "elsewhere.qcow2")
		d.lqFails("HTTP 400", "not inside an allowed backup directory", "vm", "backup", "d1", "--to", outside)
		if _, err := os.Stat(outside); err == nil {
			t.Fatal("a refused backup left a file")
		}
		d.lqFails("HTTP 507", "no_space", "vm", "backup", "d1", "--to", filepath.Join(smallBackups, "d1.qcow2"))
		if files := treeFiles(t, smallBackups); len(files) != 0 {
			t.Fatalf("a failed backup left files: %v", files)
		}
		if v := d.vm("d1"); v.State != "running" {
			t.Fatalf("d1 after a failed backup: %s", v.State)
		}

		target := filepath.Join(backups, "d1-2026-11-26.qcow2")
		var b api.Backup
		d.lqJSON(&b, "vm", "backup", "d1", "--to", target)
		if !b.Live || !b.Quiesced || b.VirtualSize != 4<<30 || b.Size <= 0 {
			t.Fatalf("backup = %+v", b)
		}
		if v := d.vm("d1"); v.State != "running" {
			t.Fatalf("d1 after its backup: %s", v.State)
		}
		if chain := backingChain(t, target); len(chain) != 0 {
			t.Fatalf("the backup is not standalone: %v", chain)
		}
		d.lqFails("HTTP 409", "already exists", "vm", "backup", "d1", "--to", target)
		d.lqFails("HTTP 400", "not inside an allowed backup directory", "vm", "restore", "x", "--from", "/etc/passwd")

		d.mustLQ("vm", "restore", "d2", "--from", target, "--start")
		waitAgent(d, "d2")
		if got := d.guestSh("d2", "cat /root/marker"); got != "restore-proof\n" {
			t.Fatalf("restored guest's marker: %q", got)
		}
		// The volume d1 wrote, attached live to another VM: the file is there.
		d.mustLQ("vm", "disk", "attach", "d2", "data1")
		dev := "/dev/disk/by-id/virtio-data1"
		waitFor(t, 60*time.Second, "d2 to see data1", func() (bool, string) {
			_, _, code := d.lq("vm", "exec", "d2", "--", "test", "-b", dev)
			return code == 0, ""
		})
		if got := d.guestSh("d2", "mkdir -p /mnt/data && mount "+dev+" /mnt/data && cat /mnt/data/proof; umount /mnt/data"); got != "written-on-d1\n" {
			t.Fatalf("the file on data1 in d2: %q", got)
		}
	})

	t.Run("detach-timeout", func(t *testing.T) {
		d := d.with(t)
		// A paused guest cannot release a disk: the detach times out with a clear error and
		// the disk stays attached; once the guest runs again, a retry finishes it.
		d.mustLQ("vm", "pause", "d2")
		d.lqFails("HTTP 504", "did not release", "vm", "disk", "detach", "d2", "data1", "--timeout", "3")
		if v := d.vm("d2"); len(v.Disks) != 1 {
			t.Fatalf("after a timed-out detach: %+v", v.Disks)
		}
		d.mustLQ("vm", "resume", "d2")
		waitFor(t, 120*time.Second, "a retried detach", func() (bool, string) {
			_, errOut, code := d.lq("vm", "disk", "detach", "d2", "data1", "--timeout", "20")
			return code == 0, errOut
		})
		var v api.Volume
		d.lqJSON(&v, "volume", "show", "data1")
		if v.AttachedTo != "" {
			t.Fatalf("data1 still attached to %q", v.AttachedTo)
		}
		d.mustLQ("volume", "delete", "data1")
	})
}

// mountTmpfs mounts a tmpfs of size at dir for the test.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "lqtest", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
}

// lqJSON runs lq with -o json and decodes its output into v.
func (d *daemon) lqJSON(v any, args ...string) {
	d.t.Helper()
	out := d.mustLQ(append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		d.t.Fatalf("lq %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// lqFails runs lq and fails the test unless it exits 1 with both parts in its message.
func (d *daemon) lqFails(status, part string, args ...string) {
	d.t.Helper()
	out, errOut, code := d.lq(args...)
	if code != 1 || !strings.Contains(errOut, status) || !strings.Contains(errOut, part) {
		d.t.Fatalf("lq %s: exit %d, stderr %q; want exit 1 with %q and %q\nstdout: %s", strings.Join(args, " "), code, errOut, status, part, out)
	}
}

// guestSh runs a shell command in a VM through its agent and returns its stdout.
func (d *daemon) guestSh(vm, script string) string {
	d.t.Helper()
	return d.mustLQ("vm", "exec", vm, "--timeout", "300", "--", "sh", "-c", script)
}

// rootDisk is a VM's root disk file.
func (d *daemon) rootDisk(vm string) string {
	d.t.Helper()
	return filepath.Join(d.dataDir, "pools", "default", "disks", d.vm(vm).UUID+"-root.qcow2")
}

// waitAgent waits until a Debian VM's guest agent reports its OS.
func waitAgent(d *daemon, vm string) {
	d.t.Helper()
	waitFor(d.t, 300*time.Second, vm+"'s guest agent", func() (bool, string) {
		v, err := d.client.VM(context.Background(), vm)
		if err != nil {
			return false, err.Error()
		}
		if v.Guest == nil || v.Guest.OS == nil {
			tail := d.consoleLog(vm)
			if len(tail) > 300 {
				tail = tail[len(tail)-300:]
			}
			return false, "no agent yet; console tail:\n" + tail
		}
		return true, ""
	})
}

// qemuIO runs qemu-io on a stopped VM's disk; a read with -P fails on other data.
func qemuIO(t testing.TB, disk string, cmds ...string) {
	t.Helper()
	args := []string{"-f", "qcow2"}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	out, err := exec.Command("qemu-io", append(args, disk)...).CombinedOutput()
	if err != nil || strings.Contains(string(out), "failed") {
		t.Fatalf("qemu-io %v %s: %v\n%s", cmds, disk, err, out)
	}
}

// backingChain is the backing files of a disk, nearest first.
func backingChain(t testing.TB, disk string) []string {
	t.Helper()
	out, err := exec.Command("qemu-img", "info", "-U", "--backing-chain", "--output=json", disk).Output()
	if err != nil {
		t.Fatalf("qemu-img info %s: %v", disk, err)
	}
	var chain []struct {
		Filename string `json:"filename"`
	}
	if err := json.Unmarshal(out, &chain); err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, c := range chain[1:] {
		files = append(files, c.Filename)
	}
	return files
}

// qemuImgSnapshots lists a disk's internal snapshots as qemu-img sees them.
func qemuImgSnapshots(t testing.TB, disk string) []string {
	t.Helper()
	out, err := exec.Command("qemu-img", "info", "-U", "--output=json", disk).Output()
	if err != nil {
		t.Fatalf("qemu-img info %s: %v", disk, err)
	}
	var info struct {
		Snapshots []struct {
			Name string `json:"name"`
		} `json:"snapshots"`
	}
	json.Unmarshal(out, &info)
	var names []string
	for _, s := range info.Snapshots {
		names = append(names, s.Name)
	}
	return names
}

func snapshotNames(sns []api.Snapshot) []string {
	var out []string
	for _, s := range sns {
		out = append(out, s.Name)
	}
	return out
}

// quiesceEvents sums what the agent answered to fsfreeze and fsthaw, from vm.quiesce events.
func quiesceEvents(evs []api.Event) (froze, thawed int) {
	for _, e := range evs {
		if e.Type != "vm.quiesce" {
			continue
		}
		var n int
		if _, err := fmt.Sscanf(e.Message, "froze %d", &n); err == nil {
			froze += n
		}
		if _, err := fmt.Sscanf(e.Message, "thawed %d", &n); err == nil {
			thawed += n
		}
	}
	return froze, thawed
}

func sameTree(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
