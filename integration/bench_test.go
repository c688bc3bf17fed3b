package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/limiquantix/limiquantix/api"
	"github.com/limiquantix/limiquantix/cloudinit"
	"github.com/limiquantix/limiquantix/integration/guest"
	"github.com/limiquantix/limiquantix/qmp"
	"github.com/limiquantix/limiquantix/vmm"
)

// BenchmarkStart measures, in one run and side by side, create+start → running through
// lqd against raw qemu started with the same argv (exec → QMP ready → cont), for one VM
// and for 20 at once, and lqd's RSS idle and with 20 VMs. Run with `make bench`.
func BenchmarkStart(b *testing.B) {
	ctx := context.Background()
	img, err := guest.Tiny(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		res := runStartBench(b, img)
		b.ReportMetric(res.lqdOne.Seconds()*1000, "lqd-1vm-ms")
		b.ReportMetric(res.rawOne.Seconds()*1000, "raw-1vm-ms")
		b.ReportMetric(res.lqdOne.Seconds()/res.rawOne.Seconds(), "ratio-1vm")
		b.ReportMetric(res.lqd20.Seconds()*1000, "lqd-20vm-ms")
		b.ReportMetric(res.raw20.Seconds()*1000, "raw-20vm-ms")
		b.ReportMetric(res.lqd20.Seconds()/res.raw20.Seconds(), "ratio-20vm")
		b.ReportMetric(float64(res.rssIdle)/(1<<20), "lqd-rss-idle-MiB")
		b.ReportMetric(float64(res.rss20)/(1<<20), "lqd-rss-20vm-MiB")
		fmt.Printf("\n%-28s %10s %10s %7s\n", "", "lqd", "raw qemu", "ratio")
		fmt.Printf("%-28s %10s %10s %7.2f\n", "create+start → running, 1", res.lqdOne.Round(time.Millisecond), res.rawOne.Round(time.Millisecond), res.lqdOne.Seconds()/res.rawOne.Seconds())
		fmt.Printf("%-28s %10s %10s %7.2f\n", "20 VMs concurrently", res.lqd20.Round(time.Millisecond), res.raw20.Round(time.Millisecond), res.lqd20.Seconds()/res.raw20.Seconds())
		fmt.Printf("%-28s %9.1fM %9.1fM (+%.1f MiB)\n", "lqd RSS idle / 20 VMs", float64(res.rssIdle)/(1<<20), float64(res.rss20)/(1<<20), float64(res.rss20-res.rssIdle)/(1<<20))
	}
}

type startBench struct {
	lqdOne, rawOne, lqd20, raw20 time.Duration
	rssIdle, rss20               int64
}

const benchMemMiB = 128

func runStartBench(b *testing.B, img guest.TinyImage) startBench {
	var res startBench
	ctx := context.Background()
	data, run := newDirs(b)
	root := filepath.Dir(data)
	d := startLQD(b, data, run)
	d.mustLQ("image", "import", "tiny", "--kernel", img.Kernel, "--initrd", img.Initrd, "--cmdline", "console=ttyS0")
	time.Sleep(time.Second)
	res.rssIdle = rss(d.cmd.Process.Pid)

	create := func(name string) {
		v, err := d.client.CreateVM(ctx, api.CreateVMRequest{Name: name, Image: "tiny", MemoryMiB: benchMemMiB, Start: true, NICs: []api.NICRequest{}})
		if err != nil || v.State != "running" {
			b.Errorf("create %s: %v %s", name, err, v.State)
		}
	}
	deleteAll := func() {
		vms, err := d.client.VMs(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for _, v := range vms {
			if err := d.client.DeleteVM(ctx, v.Name, true); err != nil {
				b.Fatal(err)
			}
		}
	}
	// Each side runs alone: guests booting under TCG would otherwise slow the other side.
	start := time.Now()
	create("one")
	res.lqdOne = time.Since(start)
	deleteAll()

	raw := prepareRaw(b, filepath.Join(root, "raw1"), img, 1)
	res.rawOne = launchRaw(b, raw)
	killQEMUUnder(filepath.Join(root, "raw1"))

	var wg sync.WaitGroup
	start = time.Now()
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) { defer wg.Done(); create(fmt.Sprintf("many-%d", i)) }(i)
	}
	wg.Wait()
	res.lqd20 = time.Since(start)
	res.rss20 = rss(d.cmd.Process.Pid)
	deleteAll()

	raw = prepareRaw(b, filepath.Join(root, "raw20"), img, 20)
	res.raw20 = launchRaw(b, raw)
	killQEMUUnder(filepath.Join(root, "raw20"))
	return res
}

// prepareRaw does beforehand what lqd does at create (overlay) and start (seed, argv), for
// n VMs, so that launchRaw times only what a start costs: exec → QMP ready → cont.
func prepareRaw(b *testing.B, root string, img guest.TinyImage, n int) [][]string {
	qemu, _ := exec.LookPath("qemu-system-x86_64")
	var argvs [][]string
	for i := 0; i < n; i++ {
		dir := filepath.Join(root, strconv.Itoa(i))
		os.MkdirAll(dir, 0o700)
		disk := filepath.Join(dir, "root.qcow2")
		if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", disk, "1G").CombinedOutput(); err != nil {
			b.Fatalf("qemu-img: %v %s", err, out)
		}
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		seed, _ := cloudinit.Render(cloudinit.Config{InstanceID: id, Hostname: "raw"})
		if err := cloudinit.WriteISO(seed, filepath.Join(dir, "seed.iso")); err != nil {
			b.Fatal(err)
		}
		argv, err := vmm.Argv(vmm.Host{QEMU: qemu, Accel: vmm.AccelTCG}, vmm.Plan{
			Spec:     vmm.Spec{UUID: id, Name: "raw" + strconv.Itoa(i), CPUs: 1, MemoryMiB: benchMemMiB},
			Boot:     vmm.Boot{Kernel: img.Kernel, Initrd: img.Initrd, Cmdline: "console=ttyS0"},
			RootDisk: disk, SeedISO: filepath.Join(dir, "seed.iso"), RunDir: dir, ConsoleLog: filepath.Join(dir, "console.log"),
		})
		if err != nil {
			b.Fatal(err)
		}
		argvs = append(argvs, argv)
	}
	return argvs
}

// launchRaw starts every argv at once and returns when all are running.
func launchRaw(b *testing.B, argvs [][]string) time.Duration {
	var wg sync.WaitGroup
	start := time.Now()
	for _, argv := range argvs {
		wg.Add(1)
		go func(argv []string) {
			defer wg.Done()
			if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
				b.Errorf("raw qemu: %v %s", err, out)
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			dir := filepath.Dir(argv[len(argv)-1]) // -pidfile <run-dir>/qemu.pid is last
			mon, err := qmp.Dial(ctx, filepath.Join(dir, vmm.QMPSocket))
			if err != nil {
				b.Error(err)
				return
			}
			defer mon.Close()
			if err := mon.Cont(ctx); err != nil {
				b.Error(err)
			}
		}(argv)
	}
	wg.Wait()
	return time.Since(start)
}

// rss returns a process's resident set in bytes.
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
