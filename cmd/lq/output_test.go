package main

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/limiquantix/limiquantix/api"
)

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{-5 * time.Second, "0s"},
		{45 * time.Second, "45s"},
		{59*time.Second + 999*time.Millisecond, "59s"},
		{60 * time.Second, "1m0s"},
		{3*time.Minute + 12*time.Second, "3m12s"},
		{59*time.Minute + 59*time.Second, "59m59s"},
		{time.Hour, "1h0m"},
		{2*time.Hour + 5*time.Minute + 30*time.Second, "2h5m"},
		{23*time.Hour + 59*time.Minute, "23h59m"},
		{24 * time.Hour, "1d0h"},
		{4*24*time.Hour + 3*time.Hour + 59*time.Minute, "4d3h"},
		{400 * 24 * time.Hour, "400d0h"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := formatDuration(tt.in); got != tt.want {
				t.Errorf("formatDuration(%v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestVMUptime(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	started := now.Add(-(2*time.Hour + 5*time.Minute))
	tests := []struct {
		name string
		vm   api.VM
		want string
	}{
		{"from uptime_seconds", api.VM{State: "running", UptimeSeconds: 192}, "3m12s"},
		{"from started_at", api.VM{State: "running", StartedAt: &started}, "2h5m"},
		{"stopped", api.VM{State: "stopped"}, ""},
		{"stopped with stale started_at", api.VM{State: "stopped", StartedAt: &started}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := vmUptime(tt.vm, now); got != tt.want {
				t.Errorf("vmUptime = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestGuestIPs(t *testing.T) {
	tests := []struct {
		name  string
		guest *api.Guest
		want  []string
	}{
		{"no agent", nil, nil},
		{"no interfaces", &api.Guest{}, nil},
		{
			name: "loopback left out, prefixes dropped",
			guest: &api.Guest{Interfaces: []api.GuestInterface{
				{Name: "lo", IPs: []string{"127.0.0.1/8", "::1/128"}},
				{Name: "eth0", IPs: []string{"10.0.0.5/24", "fe80::5054:ff:fe12:3456/64"}},
				{Name: "eth1", IPs: []string{"192.168.1.9/24", "127.0.1.1/8"}},
			}},
			want: []string{"10.0.0.5", "fe80::5054:ff:fe12:3456", "192.168.1.9"},
		},
		{
			name:  "bare addresses and junk",
			guest: &api.Guest{Interfaces: []api.GuestInterface{{Name: "eth0", IPs: []string{"10.1.1.1", "::1", "weird"}}}},
			want:  []string{"10.1.1.1", "weird"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := guestIPs(tt.guest); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("guestIPs = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0B"},
		{1023, "1023B"},
		{1536, "1.5KiB"},
		{20 << 30, "20.0GiB"},
		{3 << 40, "3.0TiB"},
	}
	for _, tt := range tests {
		if got := formatBytes(tt.in); got != tt.want {
			t.Errorf("formatBytes(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestWriteVMTable(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	vms := []api.VM{
		{Name: "web", State: "running", CPUs: 2, MemoryMiB: 2048, Image: "debian-12", UptimeSeconds: 4*86400 + 3*3600,
			Guest: &api.Guest{Interfaces: []api.GuestInterface{
				{Name: "lo", IPs: []string{"127.0.0.1/8"}},
				{Name: "eth0", IPs: []string{"10.0.0.5/24", "fd00::5/64"}},
			}}},
		{Name: "db", State: "stopped", CPUs: 1, MemoryMiB: 1024, Image: "alpine"},
	}
	want := "" +
		"NAME  STATE    CPUS  MEMORY   IMAGE      UPTIME  IPS\n" +
		"db    stopped  1     1024MiB  alpine     -       -\n" +
		"web   running  2     2048MiB  debian-12  4d3h    10.0.0.5,fd00::5\n"
	var buf bytes.Buffer
	if err := writeVMTable(&buf, vms, now); err != nil {
		t.Fatal(err)
	}
	if buf.String() != want {
		t.Errorf("table =\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestWriteVMDetails(t *testing.T) {
	created := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
	vm := api.VM{
		Name: "web", UUID: "u-1", Host: "h1", State: "crashed", LastError: "qemu exited: status 1",
		CPUs: 2, MemoryMiB: 1024, DiskGiB: 10, Image: "debian", RestartPolicy: "on-crash", CreatedAt: created,
		SSHKeys: []string{"ssh-ed25519 AAAA me@x"},
		Guest: &api.Guest{
			AgentVersion: "8.2",
			OS:           &api.GuestOS{PrettyName: "Debian GNU/Linux 12 (bookworm)", KernelRelease: "6.1.0"},
			Hostname:     "web",
			Interfaces:   []api.GuestInterface{{Name: "eth0", MAC: "52:54:00:12:34:56", IPs: []string{"10.0.0.5/24"}}},
		},
	}
	var buf bytes.Buffer
	if err := writeVMDetails(&buf, vm, created); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"name:                  web\n" +
		"uuid:                  u-1\n" +
		"host:                  h1\n" +
		"state:                 crashed\n" +
		"last_error:            qemu exited: status 1\n" +
		"cpus:                  2\n" +
		"memory:                1024MiB\n" +
		"disk:                  10GiB\n" +
		"image:                 debian\n" +
		"restart_policy:        on-crash\n" +
		"autostart:             false\n" +
		"created_at:            " + formatTime(created) + "\n" +
		"ssh_key:               ssh-ed25519 AAAA me@x\n" +
		"guest_agent:           8.2\n" +
		"guest_os:              Debian GNU/Linux 12 (bookworm)\n" +
		"guest_kernel:          6.1.0\n" +
		"guest_hostname:        web\n" +
		"guest_interface eth0:  52:54:00:12:34:56 10.0.0.5/24\n"
	if buf.String() != want {
		t.Errorf("output =\n%s\nwant\n%s", buf.String(), want)
	}
}
