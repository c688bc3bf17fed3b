package api

import (
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/limiquantix/limiquantix/storage"
	"github.com/limiquantix/limiquantix/vmm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics: GET /metrics (bearer token, like the rest) in the Prometheus text format, from
// a registry of lqd's own (never the global one): Go and process collectors for lqd itself
// and a collector of VM, host and pool metrics. The VM collector reads cached state only
// (the samples vmm's per-VM samplers keep), so a scrape costs no QMP call however many
// VMs run. GET /api/v1/vms/{name}/stats gives one VM's numbers as JSON.

const metricsPrefix = "limiquantix_"

// metricsSource is what the metrics read from vmm: cached state only.
type metricsSource interface {
	List() []vmm.VM
	AllStats() map[string]vmm.Stats
	Host() vmm.Host
}

// statsSource gives one VM's latest sample.
type statsSource interface {
	Stats(name string) (vmm.Stats, error)
}

// capacityPool is a storage pool as the metrics see it.
type capacityPool interface {
	Name() string
	Capacity() (storage.Capacity, error)
}

// newMetricsHandler returns the /metrics handler over a fresh registry.
func newMetricsHandler(src metricsSource, pools []capacityPool, hostname string, log *slog.Logger) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newVMCollector(src, pools, hostname, log),
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// serveMetrics is GET /metrics.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	s.rt.metrics.ServeHTTP(w, r)
}

// vmCollector turns vmm's cached state into metrics at scrape time.
type vmCollector struct {
	src      metricsSource
	pools    []capacityPool
	hostname string
	log      *slog.Logger

	vms, info, state, cpu, rss, memory, vcpus                *prometheus.Desc
	diskRead, diskWritten, diskReadOps, diskWriteOps, rx, tx *prometheus.Desc
	hostMemory, hostCPUs, poolCapacity, poolFree             *prometheus.Desc
}

func newVMCollector(src metricsSource, pools []capacityPool, hostname string, log *slog.Logger) *vmCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(metricsPrefix+name, help, labels, nil)
	}
	return &vmCollector{
		src: src, pools: pools, hostname: hostname, log: log,
		vms:          d("vms", "Number of VMs on this host, by state.", "state"),
		info:         d("vm_info", "A VM on this host (always 1), with its identity as labels.", "vm", "uuid", "image", "host"),
		state:        d("vm_state", "A VM's current lifecycle state (always 1).", "vm", "state"),
		cpu:          d("vm_cpu_seconds_total", "CPU time of the VM's qemu process (vCPUs and device emulation) since it started.", "vm"),
		rss:          d("vm_memory_rss_bytes", "Resident memory of the VM's qemu process.", "vm"),
		memory:       d("vm_memory_configured_bytes", "Memory the VM is configured with.", "vm"),
		vcpus:        d("vm_vcpus", "vCPUs the VM is configured with.", "vm"),
		diskRead:     d("vm_disk_read_bytes_total", "Bytes read by the VM from a block device since its qemu started.", "vm", "device"),
		diskWritten:  d("vm_disk_written_bytes_total", "Bytes written by the VM to a block device since its qemu started.", "vm", "device"),
		diskReadOps:  d("vm_disk_read_ops_total", "Read operations of the VM on a block device since its qemu started.", "vm", "device"),
		diskWriteOps: d("vm_disk_write_ops_total", "Write operations of the VM on a block device since its qemu started.", "vm", "device"),
		rx:           d("vm_network_receive_bytes_total", "Bytes the VM received on a NIC (what its tap transmitted).", "vm", "interface"),
		tx:           d("vm_network_transmit_bytes_total", "Bytes the VM sent on a NIC (what its tap received).", "vm", "interface"),
		hostMemory:   d("host_memory_bytes", "Physical memory of the host."),
		hostCPUs:     d("host_cpus", "Logical CPUs of the host."),
		poolCapacity: d("pool_capacity_bytes", "Size of the file system that holds a storage pool.", "pool"),
		poolFree:     d("pool_free_bytes", "Free space available to a storage pool.", "pool"),
	}
}

// Describe implements prometheus.Collector.
func (c *vmCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.vms, c.info, c.state, c.cpu, c.rss, c.memory, c.vcpus,
		c.diskRead, c.diskWritten, c.diskReadOps, c.diskWriteOps, c.rx, c.tx,
		c.hostMemory, c.hostCPUs, c.poolCapacity, c.poolFree} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *vmCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	h := c.src.Host()
	gauge(c.hostMemory, float64(h.MemoryBytes))
	gauge(c.hostCPUs, float64(h.CPUs))

	vms := c.src.List()
	stats := c.src.AllStats()
	count := map[vmm.State]int{}
	for _, vm := range vms {
		count[vm.State]++
		gauge(c.info, 1, vm.Name, vm.UUID, vm.Image, c.hostname)
		gauge(c.state, 1, vm.Name, string(vm.State))
		gauge(c.memory, float64(int64(vm.MemoryMiB)<<20), vm.Name)
		gauge(c.vcpus, float64(vm.CPUs), vm.Name)
		st, ok := stats[vm.Name]
		if !ok {
			continue
		}
		counter(c.cpu, st.CPUSeconds, vm.Name)
		gauge(c.rss, float64(st.RSSBytes), vm.Name)
		for _, d := range st.Disks {
			counter(c.diskRead, float64(d.ReadBytes), vm.Name, d.Device)
			counter(c.diskWritten, float64(d.WrittenBytes), vm.Name, d.Device)
			counter(c.diskReadOps, float64(d.ReadOps), vm.Name, d.Device)
			counter(c.diskWriteOps, float64(d.WriteOps), vm.Name, d.Device)
		}
		for _, n := range st.NICs {
			counter(c.rx, float64(n.ReceiveBytes), vm.Name, n.Interface)
			counter(c.tx, float64(n.TransmitBytes), vm.Name, n.Interface)
		}
	}
	// Every state, zeros included, so that a state's series does not vanish when it empties.
	for _, s := range [...]vmm.State{vmm.StateStopped, vmm.StateStarting, vmm.StateRunning, vmm.StatePaused,
		vmm.StateStopping, vmm.StateCrashed, vmm.StateMigrating} {
		gauge(c.vms, float64(count[s]), string(s))
	}
	for _, p := range c.pools {
		capacity, err := p.Capacity()
		if err != nil {
			c.log.Warn("metrics: pool capacity", "pool", p.Name(), "err", err)
			continue
		}
		gauge(c.poolCapacity, float64(capacity.Total), p.Name())
		gauge(c.poolFree, float64(capacity.Free), p.Name())
	}
}

// vmStats is GET /api/v1/vms/{name}/stats.
func (s *Server) vmStats(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	st, err := s.rt.stats.Stats(name)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toAPIStats(name, st))
}

func toAPIStats(name string, st vmm.Stats) VMStats {
	out := VMStats{VM: name, CPUSeconds: st.CPUSeconds, RSSBytes: st.RSSBytes, Disks: []DiskStats{}, NICs: []NICStats{}}
	if !st.SampledAt.IsZero() {
		t := st.SampledAt.UTC()
		out.SampledAt = &t
	}
	for _, d := range st.Disks {
		out.Disks = append(out.Disks, DiskStats{Device: d.Device, RdBytes: d.ReadBytes, WrBytes: d.WrittenBytes, RdOps: d.ReadOps, WrOps: d.WriteOps})
	}
	for _, n := range st.NICs {
		out.NICs = append(out.NICs, NICStats{Interface: n.Interface, RxBytes: n.ReceiveBytes, TxBytes: n.TransmitBytes})
	}
	return out
}
