package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/limiquantix/limiquantix/storage"
	"github.com/limiquantix/limiquantix/vmm"
)

// fakeSource is vmm as the metrics see it.
type fakeSource struct {
	host  vmm.Host
	vms   []vmm.VM
	stats map[string]vmm.Stats
}

func (f *fakeSource) List() []vmm.VM                 { return f.vms }
func (f *fakeSource) AllStats() map[string]vmm.Stats { return f.stats }
func (f *fakeSource) Host() vmm.Host                 { return f.host }

func (f *fakeSource) Stats(name string) (vmm.Stats, error) {
	for _, vm := range f.vms {
		if vm.Name != name {
			continue
		}
		if !vm.State.Active() {
			return vmm.Stats{}, fmt.Errorf("%w: vm %q is %s", vmm.ErrConflict, name, vm.State)
		}
		return f.stats[name], nil
	}
	return vmm.Stats{}, fmt.Errorf("%w: vm %q", vmm.ErrNotFound, name)
}

type fakePool struct {
	name string
	cap  storage.Capacity
	err  error
}

func (p fakePool) Name() string                        { return p.name }
func (p fakePool) Capacity() (storage.Capacity, error) { return p.cap, p.err }

var sampledAt = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// twoVMs is a running VM with a sample and a stopped one.
func twoVMs() *fakeSource {
	return &fakeSource{
		host: vmm.Host{CPUs: 8, MemoryBytes: 16 << 30},
		vms: []vmm.VM{
			{Spec: vmm.Spec{UUID: "u-web", Name: "web", Image: "debian", CPUs: 2, MemoryMiB: 1024}, State: vmm.StateRunning},
			{Spec: vmm.Spec{UUID: "u-db", Name: "db", Image: "alpine", CPUs: 1, MemoryMiB: 512}, State: vmm.StateStopped},
		},
		stats: map[string]vmm.Stats{"web": {
			SampledAt: sampledAt, CPUSeconds: 12.5, RSSBytes: 300 << 20,
			Disks: []vmm.DiskStats{{Device: "vda", ReadBytes: 1000, WrittenBytes: 2000, ReadOps: 10, WriteOps: 20}},
			NICs:  []vmm.NICStats{{Interface: "tap0", ReceiveBytes: 500, TransmitBytes: 600}},
		}},
	}
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func scrape(t testing.TB, h http.Handler) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.Bytes()
}

// series renders one sample as name{k="v",...} with sorted labels.
func series(name string, m *dto.Metric) string {
	var l []string
	for _, p := range m.GetLabel() {
		l = append(l, fmt.Sprintf("%s=%q", p.GetName(), p.GetValue()))
	}
	sort.Strings(l)
	return name + "{" + strings.Join(l, ",") + "}"
}

func TestMetricsScrape(t *testing.T) {
	pools := []capacityPool{fakePool{name: "default", cap: storage.Capacity{Total: 100 << 30, Used: 40 << 30, Free: 60 << 30}},
		fakePool{name: "broken", err: errors.New("statfs: gone")}}
	body := scrape(t, newMetricsHandler(twoVMs(), pools, "host1", discardLog()))
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("scrape does not parse: %v\n%s", err, body)
	}
	got := map[string]float64{}
	types := map[string]dto.MetricType{}
	for name, mf := range families {
		types[name] = mf.GetType()
		for _, m := range mf.GetMetric() {
			v := m.GetGauge().GetValue()
			if mf.GetType() == dto.MetricType_COUNTER {
				v = m.GetCounter().GetValue()
			}
			got[series(name, m)] = v
		}
	}
	tests := []struct {
		series string
		typ    dto.MetricType
		want   float64
	}{
		{`limiquantix_vms{state="running"}`, dto.MetricType_GAUGE, 1},
		{`limiquantix_vms{state="stopped"}`, dto.MetricType_GAUGE, 1},
		{`limiquantix_vms{state="paused"}`, dto.MetricType_GAUGE, 0},
		{`limiquantix_vm_info{host="host1",image="debian",uuid="u-web",vm="web"}`, dto.MetricType_GAUGE, 1},
		{`limiquantix_vm_info{host="host1",image="alpine",uuid="u-db",vm="db"}`, dto.MetricType_GAUGE, 1},
		{`limiquantix_vm_state{state="running",vm="web"}`, dto.MetricType_GAUGE, 1},
		{`limiquantix_vm_state{state="stopped",vm="db"}`, dto.MetricType_GAUGE, 1},
		{`limiquantix_vm_cpu_seconds_total{vm="web"}`, dto.MetricType_COUNTER, 12.5},
		{`limiquantix_vm_memory_rss_bytes{vm="web"}`, dto.MetricType_GAUGE, 300 << 20},
		{`limiquantix_vm_memory_configured_bytes{vm="web"}`, dto.MetricType_GAUGE, 1 << 30},
		{`limiquantix_vm_memory_configured_bytes{vm="db"}`, dto.MetricType_GAUGE, 512 << 20},
		{`limiquantix_vm_vcpus{vm="web"}`, dto.MetricType_GAUGE, 2},
		{`limiquantix_vm_disk_read_bytes_total{device="vda",vm="web"}`, dto.MetricType_COUNTER, 1000},
		{`limiquantix_vm_disk_written_bytes_total{device="vda",vm="web"}`, dto.MetricType_COUNTER, 2000},
		{`limiquantix_vm_disk_read_ops_total{device="vda",vm="web"}`, dto.MetricType_COUNTER, 10},
		{`limiquantix_vm_disk_write_ops_total{device="vda",vm="web"}`, dto.MetricType_COUNTER, 20},
		{`limiquantix_vm_network_receive_bytes_total{interface="tap0",vm="web"}`, dto.MetricType_COUNTER, 500},
		{`limiquantix_vm_network_transmit_bytes_total{interface="tap0",vm="web"}`, dto.MetricType_COUNTER, 600},
		{`limiquantix_host_memory_bytes{}`, dto.MetricType_GAUGE, 16 << 30},
		{`limiquantix_host_cpus{}`, dto.MetricType_GAUGE, 8},
		{`limiquantix_pool_capacity_bytes{pool="default"}`, dto.MetricType_GAUGE, 100 << 30},
		{`limiquantix_pool_free_bytes{pool="default"}`, dto.MetricType_GAUGE, 60 << 30},
	}
	for _, tt := range tests {
		v, ok := got[tt.series]
		name, _, _ := strings.Cut(tt.series, "{")
		switch {
		case !ok:
			t.Errorf("missing %s", tt.series)
		case v != tt.want:
			t.Errorf("%s = %v, want %v", tt.series, v, tt.want)
		case types[name] != tt.typ:
			t.Errorf("%s is a %v, want %v", name, types[name], tt.typ)
		}
	}
	// A stopped VM has no usage series; a pool that cannot be read is left out.
	for s := range got {
		if strings.Contains(s, `vm="db"`) && (strings.Contains(s, "cpu_seconds") || strings.Contains(s, "rss")) {
			t.Errorf("stopped VM has %s", s)
		}
		if strings.Contains(s, `pool="broken"`) {
			t.Errorf("unreadable pool has %s", s)
		}
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "process_cpu_seconds_total"} {
		if _, ok := families[name]; !ok {
			t.Errorf("lqd's own %s is missing", name)
		}
	}
}

// TestMetricsPromtool lints real scrapes through the server with promtool, when installed.
func TestMetricsPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (apt-get install prometheus)")
	}
	tests := []struct {
		name string
		src  func(f *rtFixture) metricsSource
	}{
		{"real manager", func(f *rtFixture) metricsSource { return f.vms }},
		{"fake VMs with samples", func(*rtFixture) metricsSource { return twoVMs() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newRTFixture(t)
			f.srv.rt.metrics = newMetricsHandler(tt.src(f), []capacityPool{fakePool{name: "default", cap: storage.Capacity{Total: 1 << 30, Free: 1 << 29}}}, "host1", discardLog())
			resp := f.do(t, "GET", "/metrics", nil)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
				t.Fatalf("GET /metrics: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			cmd := exec.Command(promtool, "check", "metrics")
			cmd.Stdin = bytes.NewReader(body)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("promtool check metrics: %v\n%s", err, out)
			}
		})
	}
}

func TestMetricsNeedToken(t *testing.T) {
	f := newRTFixture(t)
	resp, err := http.Get(f.ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	checkErrorResponse(t, resp, http.StatusUnauthorized, CodeUnauthorized)
}

func TestVMStats(t *testing.T) {
	f := newRTFixture(t)
	f.srv.rt.stats = twoVMs()
	tests := []struct {
		name   string
		vm     string
		status int
		code   string
		want   VMStats
	}{
		{"running", "web", http.StatusOK, "", VMStats{VM: "web", SampledAt: &sampledAt, CPUSeconds: 12.5, RSSBytes: 300 << 20,
			Disks: []DiskStats{{Device: "vda", RdBytes: 1000, WrBytes: 2000, RdOps: 10, WrOps: 20}},
			NICs:  []NICStats{{Interface: "tap0", RxBytes: 500, TxBytes: 600}}}},
		{"stopped", "db", http.StatusConflict, CodeConflict, VMStats{}},
		{"unknown", "nope", http.StatusNotFound, CodeNotFound, VMStats{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.do(t, "GET", "/api/v1/vms/"+tt.vm+"/stats", nil)
			if tt.code != "" {
				checkErrorResponse(t, resp, tt.status, tt.code)
				return
			}
			defer resp.Body.Close()
			var got VMStats
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != tt.status {
				t.Fatalf("%d, %v", resp.StatusCode, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("stats\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
	t.Run("not sampled yet", func(t *testing.T) {
		got := toAPIStats("web", vmm.Stats{})
		b, _ := json.Marshal(got)
		if want := `{"vm":"web","cpu_seconds":0,"rss_bytes":0,"disks":[],"nics":[]}`; string(b) != want {
			t.Errorf("%s, want %s", b, want)
		}
	})
}

// manyVMs is n running VMs, each with two disks and a NIC sampled.
func manyVMs(n int) *fakeSource {
	src := &fakeSource{host: vmm.Host{CPUs: 64, MemoryBytes: 512 << 30}, stats: map[string]vmm.Stats{}}
	for i := range n {
		name := fmt.Sprintf("vm-%03d", i)
		src.vms = append(src.vms, vmm.VM{Spec: vmm.Spec{UUID: "u-" + name, Name: name, Image: "debian", CPUs: 2, MemoryMiB: 2048}, State: vmm.StateRunning})
		src.stats[name] = vmm.Stats{SampledAt: sampledAt, CPUSeconds: float64(i), RSSBytes: 1 << 30,
			Disks: []vmm.DiskStats{{Device: "cidata", ReadBytes: 1}, {Device: "vda", ReadBytes: int64(i) << 20}},
			NICs:  []vmm.NICStats{{Interface: "tap-" + name, ReceiveBytes: 1, TransmitBytes: 2}}}
	}
	return src
}

// BenchmarkMetricsScrape scrapes 100 sampled VMs: the whole /metrics handler (with lqd's
// Go and process collectors), and the VM collector alone.
func BenchmarkMetricsScrape(b *testing.B) {
	src, pools := manyVMs(100), []capacityPool{fakePool{name: "default"}}
	vmsOnly := prometheus.NewRegistry()
	vmsOnly.MustRegister(newVMCollector(src, pools, "host1", discardLog()))
	for _, bb := range []struct {
		name string
		h    http.Handler
	}{
		{"handler", newMetricsHandler(src, pools, "host1", discardLog())},
		{"vm-collector", promhttp.HandlerFor(vmsOnly, promhttp.HandlerOpts{})},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportMetric(float64(len(scrape(b, bb.h))), "bytes/scrape")
			b.ResetTimer()
			for range b.N {
				rec := httptest.NewRecorder()
				bb.h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			}
		})
	}
}
