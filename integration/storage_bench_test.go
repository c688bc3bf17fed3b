package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/limiquantix/limiquantix/api"
	"github.com/limiquantix/limiquantix/integration/guest"
)

// BenchmarkStorage measures, in one run: a snapshot with memory and its revert for a 1 GiB
// Debian guest whose RAM is mostly filled; linked-clone time for a small and a big disk
// (it must not depend on the size); and a live backup (blockdev-backup) against
// `qemu-img convert` of the same disk (plus its fsync: a backup is durable when lqd
// answers), as ratios. Run with `make bench`.
func BenchmarkStorage(b *testing.B) {
	ctx := context.Background()
	deb, err := guest.Debian(ctx)
	if err != nil {
		b.Fatal(err)
	}
	tiny, err := guest.Tiny(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r := runStorageBench(b, deb, tiny)
		b.ReportMetric(ms(r.snapSave), "snap-save-ms")
		b.ReportMetric(ms(r.snapRevert), "snap-revert-ms")
		b.ReportMetric(ms(r.cloneSmall), "linked-clone-small-ms")
		b.ReportMetric(ms(r.cloneBig), "linked-clone-big-ms")
		b.ReportMetric(r.cloneBig.Seconds()/r.cloneSmall.Seconds(), "ratio-clone-big/small")
		b.ReportMetric(mibps(r.backupBytes, r.backup), "backup-MiB/s")
		b.ReportMetric(mibps(r.backupBytes, r.convert), "convert-MiB/s")
		b.ReportMetric(r.backup.Seconds()/r.convert.Seconds(), "ratio-backup/convert")
		b.ReportMetric(r.backupPaused.Seconds()/r.convert.Seconds(), "ratio-backup-paused/convert")
		fmt.Printf("\n%-44s %12s\n", "storage", "")
		fmt.Printf("%-44s %12s\n", "snapshot with memory, 1 GiB guest (save)", r.snapSave.Round(time.Millisecond))
		fmt.Printf("%-44s %12s\n", "revert to it", r.snapRevert.Round(time.Millisecond))
		fmt.Printf("%-44s %12s\n", "linked clone, 1 GiB disk, empty", r.cloneSmall.Round(time.Millisecond))
		fmt.Printf("%-44s %12s  (ratio %.2f)\n", fmt.Sprintf("linked clone, %d GiB disk, %d GiB data", benchBigDisk>>30, benchBigData>>30),
			r.cloneBig.Round(time.Millisecond), r.cloneBig.Seconds()/r.cloneSmall.Seconds())
		fmt.Printf("%-44s %12s  %7.1f MiB/s\n", "live backup (blockdev-backup)", r.backup.Round(time.Millisecond), mibps(r.backupBytes, r.backup))
		fmt.Printf("%-44s %12s  %7.1f MiB/s  (ratio %.2f)\n", "live backup, vCPUs paused", r.backupPaused.Round(time.Millisecond),
			mibps(r.backupBytes, r.backupPaused), r.backupPaused.Seconds()/r.convert.Seconds())
		fmt.Printf("%-44s %12s  %7.1f MiB/s  (ratio %.2f)\n", "qemu-img convert of the same disk + fsync", r.convert.Round(time.Millisecond),
			mibps(r.backupBytes, r.convert), r.backup.Seconds()/r.convert.Seconds())
	}
}

type storageBench struct {
	snapSave, snapRevert time.Duration
	cloneSmall, cloneBig time.Duration
	backup, convert      time.Duration
	backupPaused         time.Duration
	backupBytes          int64
}

const (
	benchBigDisk = int64(8) << 30
	benchBigData = int64(2) << 30
	benchClones  = 5
)

func ms(d time.Duration) float64             { return d.Seconds() * 1000 }
func mibps(n int64, d time.Duration) float64 { return float64(n) / (1 << 20) / d.Seconds() }

func runStorageBench(b *testing.B, deb guest.DebianImage, tiny guest.TinyImage) storageBench {
	var res storageBench
	ctx := context.Background()
	data, run := newDirs(b)
	root := filepath.Dir(data)
	backups := filepath.Join(root, "backups")
	b.Setenv("LQ_BACKUP_DIR", backups)
	d := startLQD(b, data, run)
	c := d.client
	d.mustLQ("image", "import", "debian-12", deb.Disk, "--kernel", deb.Kernel, "--initrd", deb.Initrd, "--cmdline", deb.Cmdline)
	d.mustLQ("image", "import", "tiny", "--kernel", tiny.Kernel, "--initrd", tiny.Initrd, "--cmdline", "console=ttyS0")

	// The Debian guest boots while the disks for the other measurements are prepared.
	d.mustLQ("vm", "create", "mem", "--image", "debian-12", "--memory", "1024", "--disk", "4", "--start")

	// Linked clones: constant in the disk's size.
	d.mustLQ("vm", "create", "small", "--image", "tiny", "--memory", "128")
	d.mustLQ("vm", "create", "big", "--image", "tiny", "--memory", "128", "--disk", fmt.Sprint(benchBigDisk>>30))
	fillDisk(b, d.rootDisk("big"), 90, benchBigData)
	clone := func(src string) time.Duration {
		var times []time.Duration
		for i := 0; i < benchClones; i++ {
			start := time.Now()
			if _, err := c.CloneVM(ctx, src, api.CloneVMRequest{Name: fmt.Sprintf("%s-c%d", src, i), Linked: true}); err != nil {
				b.Fatalf("linked clone of %s: %v", src, err)
			}
			times = append(times, time.Since(start))
		}
		slices.Sort(times)
		return times[len(times)/2]
	}
	res.cloneSmall, res.cloneBig = clone("small"), clone("big")

	// Live backup against qemu-img convert of the same disk, both warm in the page cache.
	d.mustLQ("vm", "create", "bk", "--image", "tiny", "--memory", "128", "--disk", fmt.Sprint(benchBigDisk>>30))
	disk := d.rootDisk("bk")
	fillDisk(b, disk, 91, benchBigData)
	res.backupBytes = benchBigData
	d.mustLQ("vm", "start", "bk")
	convert := func(i int) time.Duration {
		out := filepath.Join(root, fmt.Sprintf("convert-%d.qcow2", i))
		start := time.Now()
		if o, err := exec.Command("qemu-img", "convert", "-U", "-O", "qcow2", disk, out).CombinedOutput(); err != nil {
			b.Fatalf("qemu-img convert: %v %s", err, o)
		}
		// A backup is on disk when lqd answers (fsync before the rename): so is this copy.
		if o, err := exec.Command("sync", "-f", out).CombinedOutput(); err != nil {
			b.Fatalf("sync: %v %s", err, o)
		}
		dur := time.Since(start)
		os.Remove(out)
		return dur
	}
	backup := func(i int) time.Duration {
		to := filepath.Join(backups, fmt.Sprintf("bk-%d.qcow2", i))
		start := time.Now()
		if _, err := c.BackupVM(ctx, "bk", to); err != nil {
			b.Fatalf("backup: %v", err)
		}
		dur := time.Since(start)
		os.Remove(to)
		os.Remove(to + ".json")
		return dur
	}
	convert(0) // warm the cache
	var convs, backs, paused []time.Duration
	for i := 1; i <= 3; i++ {
		convs = append(convs, convert(i))
		backs = append(backs, backup(i))
	}
	// The same job with the vCPUs paused: what TCG's vCPU thread costs the job on this host.
	d.mustLQ("vm", "pause", "bk")
	for i := 4; i <= 5; i++ {
		paused = append(paused, backup(i))
	}
	res.convert, res.backup, res.backupPaused = slices.Min(convs), slices.Min(backs), slices.Min(paused)
	d.mustLQ("vm", "stop", "bk")

	// Snapshot with memory of a 1 GiB guest with most of its RAM in use.
	waitAgent(d, "mem")
	d.guestSh("mem", "mkdir -p /run/fill && mount -t tmpfs -o size=900m fill /run/fill && head -c 640M /dev/urandom > /run/fill/x")
	start := time.Now()
	if _, err := c.CreateSnapshot(ctx, "mem", api.CreateSnapshotRequest{Name: "bench", Memory: true}); err != nil {
		b.Fatalf("snapshot: %v", err)
	}
	res.snapSave = time.Since(start)
	d.guestSh("mem", "rm -f /run/fill/x")
	start = time.Now()
	if _, err := c.RevertSnapshot(ctx, "mem", "bench"); err != nil {
		b.Fatalf("revert: %v", err)
	}
	res.snapRevert = time.Since(start)
	if out := d.guestSh("mem", "ls /run/fill"); out != "x\n" {
		b.Fatalf("the reverted guest lacks its RAM contents: %q", out)
	}
	return res
}

// fillDisk writes n bytes of a pattern to a stopped VM's disk, 1 GiB per qemu-io write (its limit).
func fillDisk(b *testing.B, disk string, pattern int, n int64) {
	var cmds []string
	for off := int64(0); off < n; off += 1 << 30 {
		cmds = append(cmds, fmt.Sprintf("write -P %d %d %d", pattern, off, min(n-off, 1<<30)))
	}
	qemuIO(b, disk, cmds...)
}
