package vmm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Resource counters of running VMs. A sampler per run refreshes them every StatsInterval
// (CPU time and RSS of the qemu process from /proc, block I/O through query-blockstats,
// NIC bytes from the taps' sysfs counters), so readers (metrics scrapes, the UI's charts)
// get cached numbers and never cost a QMP round trip. Counters start from zero with each
// qemu process.

// StatsInterval is how often a running VM's counters are sampled.
const StatsInterval = 10 * time.Second

// userHZ is the unit of utime and stime in /proc/PID/stat (USER_HZ, 100 on Linux's ABI).
const userHZ = 100

// Stats is one sample of a running VM's counters.
type Stats struct {
	SampledAt  time.Time // zero until the first sample
	CPUSeconds float64   // user+system time of the qemu process (vCPUs and device emulation)
	RSSBytes   int64     // resident memory of the qemu process
	Disks      []DiskStats
	NICs       []NICStats
}

// DiskStats are one block device's counters since the qemu process started.
type DiskStats struct {
	Device       string // the qemu device id, e.g. vda
	ReadBytes    int64
	WrittenBytes int64
	ReadOps      int64
	WriteOps     int64
}

// NICStats are one NIC's byte counters, as the guest sees them: what the guest receives is
// what the host's tap transmits.
type NICStats struct {
	Interface     string // the host-side tap
	ReceiveBytes  int64
	TransmitBytes int64
}

// tapNames lists the host-side taps of a VM's NICs, whose counters the sampler reads.
func tapNames(s Spec) []string {
	var taps []string
	for _, n := range s.NICs {
		if n.Tap != "" {
			taps = append(taps, n.Tap)
		}
	}
	return taps
}

// executor is the part of a QMP monitor the sampler uses.
type executor interface {
	Execute(ctx context.Context, command string, args, out any) error
}

// sampler keeps the latest Stats of one run.
type sampler struct {
	pid     int
	procDir string // /proc
	netDir  string // /sys/class/net
	mon     executor
	taps    func() []string

	mu   sync.Mutex
	last Stats
}

func (s *sampler) latest() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// refresh takes a sample. A part that fails keeps its previous value: counters must not
// drop to zero because one QMP call timed out.
func (s *sampler) refresh(ctx context.Context) error {
	prev := s.latest()
	next := prev
	var errs []string
	if cpu, err := readCPUSeconds(filepath.Join(s.procDir, strconv.Itoa(s.pid), "stat")); err == nil {
		next.CPUSeconds = cpu
	} else {
		errs = append(errs, err.Error())
	}
	if rss, err := readRSS(filepath.Join(s.procDir, strconv.Itoa(s.pid), "status")); err == nil {
		next.RSSBytes = rss
	} else {
		errs = append(errs, err.Error())
	}
	if disks, err := blockStats(ctx, s.mon); err == nil {
		next.Disks = disks
	} else {
		errs = append(errs, err.Error())
	}
	var taps []string
	if s.taps != nil {
		taps = s.taps()
	}
	next.NICs = readTaps(s.netDir, taps)
	next.SampledAt = time.Now()
	s.mu.Lock()
	s.last = next
	s.mu.Unlock()
	if len(errs) > 0 {
		return fmt.Errorf("vmm: stats of pid %d: %s", s.pid, strings.Join(errs, "; "))
	}
	return nil
}

// loop samples at once, then every interval until ctx ends.
func (s *sampler) loop(ctx context.Context, interval time.Duration, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		sctx, cancel := context.WithTimeout(ctx, min(interval, 5*time.Second))
		err := s.refresh(sctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// readCPUSeconds returns utime+stime from a /proc/PID/stat file.
func readCPUSeconds(path string) (float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parseCPUSeconds(b)
}

func parseCPUSeconds(b []byte) (float64, error) {
	// The command name (field 2) may hold spaces and parentheses: fields start after the
	// last ')'. After it come field 3 (state) onwards; utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(f))
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("stat: bad utime %q or stime %q", f[11], f[12])
	}
	return float64(utime+stime) / userHZ, nil
}

// readRSS returns VmRSS from a /proc/PID/status file, in bytes.
func readRSS(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parseRSS(b)
}

func parseRSS(b []byte) (int64, error) {
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("status: VmRSS %q: want <n> kB", strings.TrimSpace(rest))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("status: VmRSS %q: %w", f[0], err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("status: no VmRSS line")
}

// qmpBlockStats is one entry of query-blockstats' reply (the fields the sampler uses).
type qmpBlockStats struct {
	Device   string `json:"device"`
	NodeName string `json:"node-name"`
	QDev     string `json:"qdev"`
	Stats    struct {
		RdBytes int64 `json:"rd_bytes"`
		WrBytes int64 `json:"wr_bytes"`
		RdOps   int64 `json:"rd_operations"`
		WrOps   int64 `json:"wr_operations"`
	} `json:"stats"`
}

// blockStats asks qemu for its block devices' counters, by device id, sorted.
func blockStats(ctx context.Context, mon executor) ([]DiskStats, error) {
	if mon == nil {
		return nil, fmt.Errorf("query-blockstats: no monitor")
	}
	var reply []qmpBlockStats
	if err := mon.Execute(ctx, "query-blockstats", nil, &reply); err != nil {
		return nil, err
	}
	out := make([]DiskStats, 0, len(reply))
	for _, b := range reply {
		out = append(out, DiskStats{Device: blockDevice(b), ReadBytes: b.Stats.RdBytes, WrittenBytes: b.Stats.WrBytes,
			ReadOps: b.Stats.RdOps, WriteOps: b.Stats.WrOps})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Device < out[j].Device })
	return out, nil
}

// blockDevice names a block backend by its device: with -blockdev, "device" is empty and
// "qdev" is the device's QOM path, /machine/peripheral/<id>[/virtio-backend].
func blockDevice(b qmpBlockStats) string {
	if b.Device != "" {
		return b.Device
	}
	if rest, ok := strings.CutPrefix(b.QDev, "/machine/peripheral/"); ok {
		id, _, _ := strings.Cut(rest, "/")
		return id
	}
	if b.QDev != "" {
		return b.QDev
	}
	return b.NodeName
}

// readTaps reads each tap's sysfs byte counters, swapped to the guest's point of view. A
// tap that cannot be read (being created or removed) is left out.
func readTaps(netDir string, taps []string) []NICStats {
	var out []NICStats
	for _, tap := range taps {
		rx, err1 := readCounter(filepath.Join(netDir, tap, "statistics", "rx_bytes"))
		tx, err2 := readCounter(filepath.Join(netDir, tap, "statistics", "tx_bytes"))
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, NICStats{Interface: tap, ReceiveBytes: tx, TransmitBytes: rx})
	}
	return out
}

func readCounter(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// startSampler gives a run its stats sampler, which lasts as long as the run.
func (vm *machine) startSampler(r *run) {
	m := vm.m
	s := &sampler{pid: r.pid, procDir: "/proc", netDir: "/sys/class/net", mon: r.mon, taps: func() []string {
		vm.mu.Lock()
		defer vm.mu.Unlock()
		return tapNames(vm.spec)
	}}
	r.mu.Lock()
	r.stats = s
	r.mu.Unlock()
	vm.mu.Lock()
	name := vm.spec.Name
	vm.mu.Unlock()
	ctx, cancel := untilClosed(m.ctx, r.exited)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer cancel()
		s.loop(ctx, StatsInterval, func(err error) { m.log.Debug("stats", "vm", name, "err", err) })
	}()
}

func (r *run) sampler() *sampler {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Stats returns the latest sample of a running VM's counters (SampledAt is zero until the
// first sample); ErrConflict when its qemu does not run.
func (m *Manager) Stats(name string) (Stats, error) {
	vm, err := m.get(name)
	if err != nil {
		return Stats{}, err
	}
	r := vm.currentRun()
	if r == nil {
		return Stats{}, fmt.Errorf("%w: vm %q is %s: no stats", ErrConflict, name, vm.State())
	}
	s := r.sampler()
	if s == nil {
		return Stats{}, nil
	}
	return s.latest(), nil
}

// AllStats returns the latest sample of every VM whose qemu runs and has been sampled, by
// name. It reads cached values only.
func (m *Manager) AllStats() map[string]Stats {
	m.mu.Lock()
	all := make(map[string]*machine, len(m.vms))
	for name, vm := range m.vms {
		all[name] = vm
	}
	m.mu.Unlock()
	out := make(map[string]Stats, len(all))
	for name, vm := range all {
		r := vm.currentRun()
		if r == nil {
			continue
		}
		if s := r.sampler(); s != nil {
			if st := s.latest(); !st.SampledAt.IsZero() {
				out[name] = st
			}
		}
	}
	return out
}
