package vmm

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseCPUSeconds(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    float64
		wantErr bool
	}{
		{"qemu", "4242 (qemu-system-x86) S 1 4241 4241 0 -1 4194624 5000 0 0 0 250 75 0 0 20 0 5 0 100 1000 200 18446744073709551615", 3.25, false},
		{"spaces and parens in the name", "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 1000 0 0 0 20 0 1 0", 10, false},
		{"no name", "garbage", 0, true},
		{"short", "7 (x) R 1 2 3", 0, true},
		{"not a number", "7 (x) R 1 7 7 0 -1 0 0 0 0 0 a b 0 0", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseCPUSeconds([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseCPUSeconds = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseRSS(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr bool
	}{
		{"kB", "Name:\tqemu\nVmPeak:\t 9999 kB\nVmRSS:\t  123456 kB\nThreads:\t5\n", 123456 << 10, false},
		{"missing (kernel thread)", "Name:\tkthreadd\nThreads:\t1\n", 0, true},
		{"bad unit", "VmRSS:\t 12 MB\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRSS([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseRSS = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestBlockDevice(t *testing.T) {
	tests := []struct {
		name string
		in   qmpBlockStats
		want string
	}{
		{"legacy drive", qmpBlockStats{Device: "drive0", QDev: "/machine/peripheral/vda/virtio-backend"}, "drive0"},
		{"virtio-blk", qmpBlockStats{QDev: "/machine/peripheral/vda/virtio-backend", NodeName: "disk-root"}, "vda"},
		{"ide-cd", qmpBlockStats{QDev: "/machine/peripheral/cidata"}, "cidata"},
		{"anonymous device", qmpBlockStats{QDev: "/machine/unattached/device[3]"}, "/machine/unattached/device[3]"},
		{"node only", qmpBlockStats{NodeName: "disk-seed"}, "disk-seed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := blockDevice(tt.in); got != tt.want {
				t.Errorf("blockDevice = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTapNames(t *testing.T) {
	tests := []struct {
		name string
		nics []NIC
		want []string
	}{
		{"no nics", nil, nil},
		{"two", []NIC{{Network: "lan", Tap: "lq-aaaa"}, {Network: "dmz", Tap: "lq-bbbb"}}, []string{"lq-aaaa", "lq-bbbb"}},
		{"tap not assigned", []NIC{{Network: "lan"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tapNames(Spec{NICs: tt.nics}); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("tapNames = %v, want %v", got, tt.want)
			}
		})
	}
}

// fakeMonitor answers QMP commands from canned JSON replies; others fail.
type fakeMonitor map[string]string

func (f fakeMonitor) Execute(_ context.Context, command string, _, out any) error {
	reply, ok := f[command]
	if !ok {
		return errors.New("fake monitor: no reply for " + command)
	}
	return json.Unmarshal([]byte(reply), out)
}

const blockstatsReply = `[
 {"device": "", "node-name": "disk-root", "qdev": "/machine/peripheral/vda/virtio-backend",
  "stats": {"rd_bytes": 1048576, "wr_bytes": 4096, "rd_operations": 256, "wr_operations": 1, "flush_operations": 3}},
 {"device": "", "qdev": "/machine/peripheral/cidata",
  "stats": {"rd_bytes": 2048, "wr_bytes": 0, "rd_operations": 2, "wr_operations": 0}}
]`

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSamplerRefresh(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"proc/4242/stat":                   "4242 (qemu-system-x86) S 1 4241 4241 0 -1 4194624 5000 0 0 0 250 75 0 0 20 0 5 0",
		"proc/4242/status":                 "Name:\tqemu-system-x86\nVmRSS:\t 2048 kB\n",
		"net/tap-a/statistics/rx_bytes":    "100\n",
		"net/tap-a/statistics/tx_bytes":    "900\n",
		"net/tap-gone/statistics/rx_bytes": "1\n",
	})
	s := &sampler{pid: 4242, procDir: filepath.Join(root, "proc"), netDir: filepath.Join(root, "net"),
		mon: fakeMonitor{"query-blockstats": blockstatsReply}, taps: func() []string { return []string{"tap-a", "tap-gone", "tap-none"} }}
	before := time.Now()
	if err := s.refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := s.latest()
	if got.SampledAt.Before(before) {
		t.Errorf("SampledAt %v is before the refresh", got.SampledAt)
	}
	got.SampledAt = time.Time{}
	want := Stats{
		CPUSeconds: 3.25,
		RSSBytes:   2 << 20,
		Disks: []DiskStats{
			{Device: "cidata", ReadBytes: 2048, ReadOps: 2},
			{Device: "vda", ReadBytes: 1 << 20, WrittenBytes: 4096, ReadOps: 256, WriteOps: 1},
		},
		// The guest receives what the tap transmits.
		NICs: []NICStats{{Interface: "tap-a", ReceiveBytes: 900, TransmitBytes: 100}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sample:\n%+v\nwant\n%+v", got, want)
	}

	// A failing part keeps its last value; the error names it.
	s.mon = fakeMonitor{}
	os.Remove(filepath.Join(root, "proc/4242/status"))
	err := s.refresh(context.Background())
	if err == nil || !strings.Contains(err.Error(), "query-blockstats") || !strings.Contains(err.Error(), "status") {
		t.Errorf("refresh with failing parts: %v", err)
	}
	again := s.latest()
	if again.RSSBytes != want.RSSBytes || !reflect.DeepEqual(again.Disks, want.Disks) {
		t.Errorf("after failures: %+v; want the previous RSS and disks kept", again)
	}
}

// TestManagerStats checks the accessors the API reads: cached samples of running VMs only.
func TestManagerStats(t *testing.T) {
	m := newTestManager(t)
	t.Cleanup(func() { clear(m.vms) }) // fake runs have no monitor for Close to close
	sampled := Stats{SampledAt: time.Now(), CPUSeconds: 1.5}
	add := func(name string, s *sampler) {
		vm := newMachine(m, Spec{UUID: "u-" + name, Name: name}, StateRunning, time.Now())
		vm.run = &run{pid: 1, exited: make(chan struct{}), stats: s}
		m.vms[name] = vm
	}
	add("sampled", &sampler{last: sampled})
	add("fresh", &sampler{})
	m.vms["off"] = newMachine(m, Spec{UUID: "u-off", Name: "off"}, StateStopped, time.Now())

	all := m.AllStats()
	if len(all) != 1 || all["sampled"].CPUSeconds != 1.5 {
		t.Errorf("AllStats = %+v; want only the sampled VM", all)
	}
	if st, err := m.Stats("fresh"); err != nil || !st.SampledAt.IsZero() {
		t.Errorf("Stats(fresh) = %+v, %v; want a zero sample", st, err)
	}
	vnc, serial, err := m.ConsolePaths("sampled")
	if err != nil || vnc != filepath.Join(m.cfg.RunDir, "vms", "u-sampled", VNCSocket) || serial != filepath.Join(m.cfg.RunDir, "vms", "u-sampled", SerialSocket) {
		t.Errorf("ConsolePaths = %q, %q, %v", vnc, serial, err)
	}
}
