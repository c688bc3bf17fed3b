package netdev

import (
	"bytes"
	"errors"
	"flag"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func baseConfig() DNSMasqConfig {
	return DNSMasqConfig{
		Network:  "default",
		Bridge:   "lqb-default",
		Gateway:  netip.MustParseAddr("10.20.0.1"),
		Subnet:   netip.MustParsePrefix("10.20.0.0/24"),
		Domain:   "lq",
		StateDir: "/var/lib/limiquantix/networks/default",
		User:     "dnsmasq",
		Hosts: []DHCPHost{
			// Out of order on purpose: the files list hosts by address.
			{MAC: mustMAC("52:54:00:aa:bb:02"), IP: netip.MustParseAddr("10.20.0.10"), Name: "db"},
			{MAC: mustMAC("52:54:00:aa:bb:01"), IP: netip.MustParseAddr("10.20.0.2"), Name: "web"},
			{MAC: mustMAC("52:54:00:aa:bb:03"), IP: netip.MustParseAddr("10.20.0.3")},
		},
	}
}

// TestRenderDNSMasq compares the three files with testdata/dnsmasq/<case>/; run
// `go test ./netdev -run RenderDNSMasq -update` to rewrite them, then review the diff.
func TestRenderDNSMasq(t *testing.T) {
	noDomain := baseConfig()
	noDomain.Network, noDomain.Bridge, noDomain.Domain = "lab", "lqb-lab", ""
	noDomain.Subnet, noDomain.Gateway = netip.MustParsePrefix("172.30.0.0/16"), netip.MustParseAddr("172.30.255.254")
	noDomain.StateDir, noDomain.User, noDomain.LeaseTime = "/run/lq/lab", "root", 10*time.Minute
	noDomain.Hosts = noDomain.Hosts[:1]
	noDomain.Hosts[0].IP = netip.MustParseAddr("172.30.0.10")

	empty := baseConfig()
	empty.Hosts = nil

	tests := []struct {
		name string
		cfg  DNSMasqConfig
	}{
		// default lease time, three hosts, one without a name
		{"basic", baseConfig()},
		// no domain: names resolve bare only; /16 with the gateway at the top; 10 min leases
		{"nodomain", noDomain},
		// no VMs yet: dnsmasq still starts and serves nobody
		{"nohosts", empty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			conf, hosts, addn := RenderDNSMasq(tt.cfg)
			dir := filepath.Join("testdata", "dnsmasq", tt.name)
			for _, f := range []struct {
				name string
				got  []byte
			}{{dnsmasqConfFile, conf}, {dnsmasqHostsFile, hosts}, {dnsmasqAddnFile, addn}} {
				golden(t, filepath.Join(dir, f.name), f.got)
			}
			syntaxCheck(t, conf)
		})
	}
}

// syntaxCheck runs `dnsmasq --test` on a rendered conf when dnsmasq is installed.
func syntaxCheck(t *testing.T, conf []byte) {
	t.Helper()
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		t.Log("no dnsmasq on PATH: syntax not checked")
		return
	}
	path := filepath.Join(t.TempDir(), "dnsmasq.conf")
	if err := os.WriteFile(path, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "--test", "--conf-file="+path).CombinedOutput(); err != nil {
		t.Errorf("dnsmasq --test: %v\n%s", err, out)
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update to accept)\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

func TestDNSMasqConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *DNSMasqConfig)
		want   error // nil: valid
	}{
		{"valid", func(c *DNSMasqConfig) {}, nil},
		{"no user is fine", func(c *DNSMasqConfig) { c.User = "" }, nil},
		{"no network", func(c *DNSMasqConfig) { c.Network = "" }, ErrInvalid},
		{"newline in network", func(c *DNSMasqConfig) { c.Network = "a\nuser=root" }, ErrInvalid},
		{"bad bridge", func(c *DNSMasqConfig) { c.Bridge = "br0\nuser=root" }, ErrInvalid},
		{"long bridge", func(c *DNSMasqConfig) { c.Bridge = "a-very-long-bridge" }, ErrInvalid},
		{"gateway outside", func(c *DNSMasqConfig) { c.Gateway = netip.MustParseAddr("10.99.0.1") }, ErrInvalid},
		{"bad domain", func(c *DNSMasqConfig) { c.Domain = "lq/x" }, ErrInvalid},
		{"relative state dir", func(c *DNSMasqConfig) { c.StateDir = "state" }, ErrInvalid},
		{"space in state dir", func(c *DNSMasqConfig) { c.StateDir = "/var/lib/x y" }, ErrInvalid},
		{"short lease", func(c *DNSMasqConfig) { c.LeaseTime = time.Minute }, ErrInvalid},
		{"bad user", func(c *DNSMasqConfig) { c.User = "root\n" }, ErrInvalid},
		{"host outside", func(c *DNSMasqConfig) { c.Hosts[0].IP = netip.MustParseAddr("10.21.0.5") }, ErrInvalid},
		{"host on gateway", func(c *DNSMasqConfig) { c.Hosts[0].IP = c.Gateway }, ErrInvalid},
		{"host on broadcast", func(c *DNSMasqConfig) { c.Hosts[0].IP = netip.MustParseAddr("10.20.0.255") }, ErrInvalid},
		{"host multicast MAC", func(c *DNSMasqConfig) { c.Hosts[0].MAC = mustMAC("01:00:5e:00:00:01") }, ErrInvalid},
		{"host no MAC", func(c *DNSMasqConfig) { c.Hosts[0].MAC = nil }, ErrInvalid},
		{"host dotted name", func(c *DNSMasqConfig) { c.Hosts[0].Name = "db.lq" }, ErrInvalid},
		{"host name with comma", func(c *DNSMasqConfig) { c.Hosts[0].Name = "db,x" }, ErrInvalid},
		{"duplicate MAC", func(c *DNSMasqConfig) { c.Hosts[1].MAC = c.Hosts[0].MAC }, ErrConflict},
		{"duplicate IP", func(c *DNSMasqConfig) { c.Hosts[1].IP = c.Hosts[0].IP }, ErrConflict},
		{"duplicate name", func(c *DNSMasqConfig) { c.Hosts[1].Name = "DB" }, ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := baseConfig()
			tt.change(&c)
			err := c.Validate()
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Validate() = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestFilterLeases(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "leases")
	leases := "1700000000 52:54:00:aa:bb:01 10.20.0.2 web 01:52:54:00:aa:bb:01\n" +
		"1700000000 52:54:00:aa:bb:09 10.20.0.9 gone *\n" + // host removed
		"1700000000 52:54:00:aa:bb:02 10.20.0.7 db *\n" + // host moved to another address
		"duid 00:01:00:01:2c:5e:00:00:52:54:00:aa:bb:01\n"
	if err := os.WriteFile(path, []byte(leases), 0o644); err != nil {
		t.Fatal(err)
	}
	hosts := baseConfig().Hosts
	n, err := pruneLeases(path, hosts)
	if err != nil || n != 2 {
		t.Fatalf("pruneLeases = %d, %v; want 2 stale", n, err)
	}
	got, _ := os.ReadFile(path)
	want := "1700000000 52:54:00:aa:bb:01 10.20.0.2 web 01:52:54:00:aa:bb:01\n" +
		"duid 00:01:00:01:2c:5e:00:00:52:54:00:aa:bb:01\n"
	if string(got) != want {
		t.Errorf("pruned leases:\n%s\nwant:\n%s", got, want)
	}
	if n, err := staleLeases(path, hosts); n != 0 || err != nil {
		t.Errorf("staleLeases after prune = %d, %v", n, err)
	}
	if n, err := staleLeases(filepath.Join(dir, "missing"), hosts); n != 0 || err != nil {
		t.Errorf("staleLeases of a missing file = %d, %v", n, err)
	}
}

func TestUnsearchable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	top, err := os.MkdirTemp("", "lqnd-perm-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(top)
	dir := filepath.Join(top, "a", "b")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const uid, gid = 54321, 54321
	tests := []struct {
		name  string
		setup func() error
		want  string
	}{
		{"private top", func() error { return os.Chmod(top, 0o700) }, top},
		{"searchable", func() error { return os.Chmod(top, 0o711) }, ""},
		{"group only", func() error {
			if err := os.Chmod(filepath.Join(top, "a"), 0o750); err != nil {
				return err
			}
			return os.Chown(filepath.Join(top, "a"), 0, gid)
		}, ""},
		{"owner only", func() error {
			if err := os.Chmod(filepath.Join(top, "a"), 0o700); err != nil {
				return err
			}
			return os.Chown(filepath.Join(top, "a"), uid, 0)
		}, ""},
		{"missing", func() error { return os.RemoveAll(dir) }, dir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.setup(); err != nil {
				t.Fatal(err)
			}
			if got := unsearchable(dir, uid, gid); got != tt.want {
				t.Errorf("unsearchable = %q, want %q", got, tt.want)
			}
		})
	}
}
