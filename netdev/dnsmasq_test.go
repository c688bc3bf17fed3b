package netdev

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestDNSMasq runs a real dnsmasq on a bridge in one namespace and a DHCP/DNS client
// (busybox udhcpc and nslookup) in a "guest" namespace wired to the bridge by a veth.
func TestDNSMasq(t *testing.T) {
	requireRoot(t, "dnsmasq", "busybox")
	hostNS, hostPath := newNetns(t)
	guestNS, _ := newNetns(t)
	l := newLinks(t, hostPath)
	br := BridgeName("test")
	gw := netip.MustParseAddr("10.20.0.1")
	if err := l.EnsureBridge(br, HostMAC("bridge/test"), netip.PrefixFrom(gw, 24), 0); err != nil {
		t.Fatal(err)
	}
	sh(t, "ip", "-n", hostNS, "link", "add", "name", "lqvh0", "type", "veth", "peer", "name", "eth0", "netns", guestNS)
	sh(t, "ip", "-n", hostNS, "link", "set", "lqvh0", "master", br, "up")

	dir := stateDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	d := NewDNSMasq("", slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	d.Wrap = []string{"ip", "netns", "exec", hostNS}
	t.Cleanup(func() {
		if err := d.Stop(context.Background(), dir); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})

	mac1, mac2, mac3 := GuestMAC("vm1/0"), GuestMAC("vm2/0"), GuestMAC("vm3/0")
	cfg := DNSMasqConfig{
		Network: "test", Bridge: br, Gateway: gw, Subnet: netip.MustParsePrefix("10.20.0.0/24"),
		Domain: "lq", StateDir: dir,
		Hosts: []DHCPHost{{MAC: mac1, IP: netip.MustParseAddr("10.20.0.50"), Name: "vm1"}},
	}
	if err := d.Ensure(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	pid := dnsmasqPID(t, dir)
	if u, err := user.Lookup("dnsmasq"); err == nil {
		// The state dir is world-searchable, so dnsmasq drops to its own user.
		if got := procUID(t, pid); got != u.Uid {
			t.Errorf("dnsmasq runs as uid %s, want %s (dnsmasq)", got, u.Uid)
		}
	}

	// The guest with a known MAC gets exactly its IPAM address, router and DNS.
	setGuestMAC(t, guestNS, mac1)
	out, err := dhcp(guestNS)
	if err != nil {
		t.Fatalf("udhcpc: %v\n%s\n%s", err, out, dnsmasqLog(dir))
	}
	for _, want := range []string{"ip=10.20.0.50 ", "mask=24 ", "router=10.20.0.1 ", "dns=10.20.0.1 ", "domain=lq "} {
		if !strings.Contains(out, want) {
			t.Errorf("udhcpc output lacks %q:\n%s", want, out)
		}
	}
	sh(t, "ip", "-n", guestNS, "addr", "add", "10.20.0.50/24", "dev", "eth0")
	resolves(t, guestNS, "vm1", "10.20.0.50")
	resolves(t, guestNS, "vm1.lq", "10.20.0.50")

	t.Run("unchanged config is a no-op, also for a restarted lqd", func(t *testing.T) {
		stamp, _ := os.ReadFile(filepath.Join(dir, dnsmasqStampFile))
		fresh := NewDNSMasq("", nil) // a new lqd adopts the running dnsmasq
		fresh.Wrap = d.Wrap
		for _, sup := range []*DNSMasq{d, fresh} {
			if err := sup.Ensure(ctx, cfg); err != nil {
				t.Fatal(err)
			}
		}
		after, _ := os.ReadFile(filepath.Join(dir, dnsmasqStampFile))
		if got := dnsmasqPID(t, dir); got != pid || string(stamp) != string(after) {
			t.Errorf("pid %d -> %d, stamp %q -> %q; want no change", pid, got, stamp, after)
		}
	})

	t.Run("new host resolves after SIGHUP", func(t *testing.T) {
		cfg.Hosts = append(cfg.Hosts, DHCPHost{MAC: mac2, IP: netip.MustParseAddr("10.20.0.51"), Name: "vm2"})
		if err := d.Ensure(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		resolves(t, guestNS, "vm2.lq", "10.20.0.51")
		if got := dnsmasqPID(t, dir); got != pid {
			t.Errorf("dnsmasq restarted (pid %d -> %d); want a SIGHUP reload", pid, got)
		}
	})

	t.Run("unknown MAC gets no lease", func(t *testing.T) {
		setGuestMAC(t, guestNS, GuestMAC("stranger"))
		if out, err := dhcp(guestNS); err == nil {
			t.Errorf("udhcpc with an unknown MAC got a lease:\n%s", out)
		}
	})

	t.Run("address of a removed host goes to its new owner", func(t *testing.T) {
		// vm1 is gone and vm3 takes its address; vm1's lease would block that until it
		// expired, so Ensure restarts dnsmasq without it.
		cfg.Hosts = []DHCPHost{cfg.Hosts[1], {MAC: mac3, IP: netip.MustParseAddr("10.20.0.50"), Name: "vm3"}}
		if err := d.Ensure(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		if got := dnsmasqPID(t, dir); got == pid {
			t.Errorf("dnsmasq kept pid %d; want a restart that drops the stale lease", pid)
		}
		setGuestMAC(t, guestNS, mac3)
		out, err := dhcp(guestNS)
		if err != nil || !strings.Contains(out, "ip=10.20.0.50 ") {
			t.Fatalf("udhcpc as vm3: %v\n%s\n%s", err, out, dnsmasqLog(dir))
		}
		sh(t, "ip", "-n", guestNS, "addr", "add", "10.20.0.50/24", "dev", "eth0")
		resolves(t, guestNS, "vm3", "10.20.0.50")
	})

	t.Run("Supervise restarts a killed dnsmasq", func(t *testing.T) {
		before := dnsmasqPID(t, dir)
		sctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() {
			d.Supervise(sctx, 100*time.Millisecond, func() []DNSMasqConfig { return []DNSMasqConfig{cfg} })
		})
		defer func() { stop(); wg.Wait() }()
		if err := unix.Kill(before, unix.SIGKILL); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, func() error {
			pid, err := readPIDFile(filepath.Join(dir, dnsmasqPIDFile))
			if err != nil || pid == before || !trustedDNSMasq(pid, filepath.Join(dir, dnsmasqConfFile)) {
				return fmt.Errorf("no new dnsmasq yet (pid %d, %v)", pid, err)
			}
			return nil
		})
		if out, err := dhcp(guestNS); err != nil || !strings.Contains(out, "ip=10.20.0.50 ") {
			t.Fatalf("udhcpc after the restart: %v\n%s", err, out)
		}
		resolves(t, guestNS, "vm2", "10.20.0.51")
	})

	t.Run("conf change restarts", func(t *testing.T) {
		before := dnsmasqPID(t, dir)
		cfg.LeaseTime = 10 * time.Minute
		if err := d.Ensure(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		if got := dnsmasqPID(t, dir); got == before {
			t.Errorf("dnsmasq kept pid %d after a conf change", got)
		}
		out, err := dhcp(guestNS)
		if err != nil || !strings.Contains(out, "ip=10.20.0.50 ") {
			t.Fatalf("udhcpc after the restart: %v\n%s", err, out)
		}
		if !strings.Contains(out, "lease=600 ") {
			t.Errorf("lease time not 600 s:\n%s", out)
		}
	})

	t.Run("log is clean", func(t *testing.T) {
		log := dnsmasqLog(dir)
		for _, bad := range []string{"failed", "Permission denied", "cannot", "error"} {
			if strings.Contains(log, bad) {
				t.Errorf("dnsmasq logged %q:\n%s", bad, log)
			}
		}
	})

	t.Run("Stop", func(t *testing.T) {
		pid := dnsmasqPID(t, dir)
		if err := d.Stop(ctx, dir); err != nil {
			t.Fatal(err)
		}
		if trustedDNSMasq(pid, filepath.Join(dir, dnsmasqConfFile)) {
			t.Errorf("dnsmasq %d still runs after Stop", pid)
		}
		if err := d.Stop(ctx, dir); err != nil {
			t.Errorf("second Stop: %v", err)
		}
	})
}

// stateDir makes a world-searchable directory for dnsmasq's files, as a real state dir
// under /var/lib would be; t.TempDir's parents are private.
func stateDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "lqnd-dnsmasq-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "test") // Ensure creates it
}

func dnsmasqPID(t *testing.T, dir string) int {
	t.Helper()
	pid, err := readPIDFile(filepath.Join(dir, dnsmasqPIDFile))
	if err != nil || !trustedDNSMasq(pid, filepath.Join(dir, dnsmasqConfFile)) {
		t.Fatalf("no live dnsmasq (pid %d, %v)\n%s", pid, err, dnsmasqLog(dir))
	}
	return pid
}

func dnsmasqLog(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, dnsmasqLogFile))
	s, _ := os.ReadFile(filepath.Join(dir, dnsmasqStartLogFile))
	return "dnsmasq.log:\n" + string(b) + "start log:\n" + string(s)
}

func procUID(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			return strings.Fields(rest)[0]
		}
	}
	t.Fatalf("no Uid in /proc/%d/status", pid)
	return ""
}

func setGuestMAC(t *testing.T, ns string, mac net.HardwareAddr) {
	t.Helper()
	sh(t, "ip", "-n", ns, "addr", "flush", "dev", "eth0")
	sh(t, "ip", "-n", ns, "link", "set", "eth0", "down")
	sh(t, "ip", "-n", ns, "link", "set", "eth0", "address", mac.String(), "up")
}

// dhcp runs one DHCP exchange in the guest namespace and returns what the lease script
// printed; an error if no lease came within about 3 s.
func dhcp(ns string) (string, error) {
	script := filepath.Join(os.TempDir(), fmt.Sprintf("lqnd-udhcpc-%d.sh", os.Getpid()))
	const body = "#!/bin/sh\n" +
		"[ \"$1\" = bound ] && echo \"bound ip=$ip mask=$mask router=$router dns=$dns domain=$domain hostname=$hostname lease=$lease \"\n" +
		"exit 0\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		return "", err
	}
	defer os.Remove(script)
	// -f foreground, -q quit once bound, -n fail if no lease, 3 tries 1 s apart.
	out, err := exec.Command("ip", "netns", "exec", ns, "busybox", "udhcpc",
		"-i", "eth0", "-f", "-q", "-n", "-t", "3", "-T", "1", "-A", "1", "-s", script).CombinedOutput()
	return string(out), err
}

// resolves waits until name resolves to addr through the gateway's DNS in the guest.
func resolves(t *testing.T, ns, name, addr string) {
	t.Helper()
	eventually(t, 5*time.Second, func() error {
		out, err := exec.Command("ip", "netns", "exec", ns, "busybox", "nslookup", name, "10.20.0.1").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Address: "+addr) {
			return fmt.Errorf("nslookup %s: %v\n%s", name, err, out)
		}
		return nil
	})
}

func eventually(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
