package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/limiquantix/limiquantix/api"
)

// TestNetworking runs the same behaviour against both firewall back ends: tiny guests on a
// managed network get their IPAM address by DHCP, and VM↔VM, host↔VM and VM→outside
// traffic pass exactly as their security groups and NAT say, with real packets.
func TestNetworking(t *testing.T) {
	for _, fw := range []string{"nft", "iptables"} {
		t.Run(fw, func(t *testing.T) { testNetworking(t, fw) })
	}
}

// shell runs commands in a guest's serial shell and returns their output.
type shell struct {
	t   testing.TB
	con *serial
	n   int
}

// run types cmd, then an echo of a computed marker, and returns what came between.
func (s *shell) run(cmd string, timeout time.Duration) string {
	s.t.Helper()
	s.n++
	marker := fmt.Sprintf("END-%d", 7000+s.n)
	s.con.send(cmd)
	out, ok := s.con.expect(fmt.Sprintf("echo END-$((7000+%d))", s.n), marker, timeout)
	if !ok {
		s.t.Fatalf("guest shell: %q did not finish in %s; output: %q", cmd, timeout, out)
	}
	return out
}

// ok runs cmd and reports whether it exited 0.
func (s *shell) ok(cmd string, timeout time.Duration) bool {
	out := s.run(fmt.Sprintf("%s >/dev/null 2>&1 && echo RC-$((40+2)) || echo RC-$((50+1))", cmd), timeout)
	return strings.Contains(out, "RC-42")
}

func testNetworking(t *testing.T, fw string) {
	data, run := newDirs(t)
	d := startLQD(t, data, run, "--firewall", fw, "--default-network", "none", "--reconcile-interval", "2s")
	ns := d.ns
	importTiny(t, d)

	d.mustLQ("network", "create", "prod", "--subnet", "10.20.0.0/24", "--nat")
	d.mustLQ("sg", "create", "web")
	d.mustLQ("sg", "rule", "add", "web", "--in", "--proto", "tcp", "--port", "80", "--from", "0.0.0.0/0")
	d.mustLQ("sg", "rule", "add", "web", "--in", "--proto", "icmp", "--from-group", "web")
	for _, vm := range []struct{ name, nic string }{{"a", "prod,sg=web"}, {"b", "prod,sg=web"}, {"c", "prod"}} {
		d.mustLQ("vm", "create", vm.name, "--image", "tiny", "--memory", "256", "--nic", vm.nic, "--start")
	}
	ip := map[string]string{}
	sh := map[string]*shell{}
	for _, n := range []string{"a", "b", "c"} {
		v := d.waitState(n, "running", 60*time.Second)
		if len(v.NICs) != 1 || v.NICs[0].IP == "" {
			t.Fatalf("%s NICs: %+v", n, v.NICs)
		}
		ip[n] = v.NICs[0].IP
		// The tiny guest prints what udhcpc got: it must be the IPAM address.
		d.waitConsole(n, "LQ-TINY-DHCP eth0 "+ip[n], 1, 90*time.Second)
		sh[n] = &shell{t: t, con: dialSerial(t, d, v)}
		sh[n].con.waitShell(t, 60*time.Second)
	}
	sh["b"].run("mkdir -p /tmp/www && echo hello-from-b > /tmp/www/index.html && httpd -p 80 -h /tmp/www && httpd -p 8080 -h /tmp/www", 10*time.Second)
	sh["c"].run("mkdir -p /tmp/www && echo hello-from-c > /tmp/www/index.html && httpd -p 80 -h /tmp/www", 10*time.Second)
	// busybox wget crashes in the tiny guest; speak HTTP with nc.
	get := func(from, hostport string) bool {
		out := sh[from].run(`printf "GET / HTTP/1.0\r\n\r\n" | nc -w 3 `+hostport, 15*time.Second)
		return strings.Contains(out, "hello-from-")
	}
	ping := func(from, to string) bool { return sh[from].ok("ping -c 1 -W 2 "+ip[to], 15*time.Second) }
	hostGet := func(url string) bool {
		_, err := inNetns(ns, "curl", "-sf", "-m", "3", "-o", "/dev/null", url)
		return err == nil
	}
	hp := func(to string, port int) string { return fmt.Sprintf("%s %d", ip[to], port) }
	url := func(to string, port int) string { return fmt.Sprintf("http://%s:%d/", ip[to], port) }

	t.Run("groups-allow-only-their-rules", func(t *testing.T) {
		checks := []struct {
			what string
			got  bool
			want bool
		}{
			{"a→b tcp/80 (from anywhere)", get("a", hp("b", 80)), true},
			{"a→b tcp/8080 (no rule)", get("a", hp("b", 8080)), false},
			{"a→b icmp (from group web)", ping("a", "b"), true},
			{"c→b icmp (c not in web)", ping("c", "b"), false},
			{"c→b tcp/80", get("c", hp("b", 80)), true},
			{"b→c tcp/80 (c has no groups)", get("b", hp("c", 80)), false},
			{"b→c icmp", ping("b", "c"), false},
			{"host→b tcp/80", hostGet(url("b", 80)), true},
			{"host→b tcp/8080", hostGet(url("b", 8080)), false},
			{"host→c tcp/80", hostGet(url("c", 80)), false},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s: passed=%v, want %v", c.what, c.got, c.want)
			}
		}

	})

	t.Run("rule-changes-apply-live", func(t *testing.T) {
		// A long-lived connection a→b:9000, allowed by a rule added now, without restarts.
		out := d.mustLQ("sg", "rule", "add", "web", "--in", "--proto", "tcp", "--port", "9000", "--from-group", "web")
		rule9000 := strings.TrimSpace(out)
		sh["b"].run("nc -l -p 9000 > /tmp/recv &", 5*time.Second)
		sh["a"].run(fmt.Sprintf("(while true; do echo tick; sleep 1; done) | nc %s 9000 &", ip["b"]), 5*time.Second)
		lines := func() int {
			out := sh["b"].run("wc -l < /tmp/recv", 5*time.Second)
			var n int
			for _, f := range strings.Fields(out) {
				fmt.Sscan(f, &n)
			}
			return n
		}
		time.Sleep(3 * time.Second)
		before := lines()
		if before == 0 {
			t.Fatalf("the connection allowed by the new rule carries nothing")
		}
		// An unrelated rule: the established connection must survive the re-apply.
		d.mustLQ("sg", "rule", "add", "web", "--in", "--proto", "udp", "--port", "5353", "--from", "10.0.0.0/8")
		time.Sleep(3 * time.Second)
		if after := lines(); after <= before {
			t.Fatalf("established connection stalled after an unrelated rule: %d → %d lines", before, after)
		}
		// Opening 8080 and closing it again takes effect at once.
		out = d.mustLQ("sg", "rule", "add", "web", "--in", "--proto", "tcp", "--port", "8080", "--from", "0.0.0.0/0")
		if !get("a", hp("b", 8080)) {
			t.Fatalf("a→b:8080 still blocked after the rule was added")
		}
		d.mustLQ("sg", "rule", "remove", "web", strings.TrimSpace(out))
		if get("a", hp("b", 8080)) {
			t.Fatalf("a→b:8080 still open after the rule was removed")
		}
		d.mustLQ("sg", "rule", "remove", "web", rule9000)
	})

	t.Run("anti-spoofing", func(t *testing.T) {
		if !ping("a", "b") {
			t.Fatalf("baseline a→b ping fails")
		}
		// A different IP: nothing gets through.
		sh["a"].run(fmt.Sprintf("ip addr add 10.20.0.250/24 dev eth0 && ip addr del %s/24 dev eth0", ip["a"]), 5*time.Second)
		if ping("a", "b") || get("a", hp("b", 80)) {
			t.Errorf("a spoofing 10.20.0.250 got through")
		}
		sh["a"].run(fmt.Sprintf("ip addr add %s/24 dev eth0 && ip addr del 10.20.0.250/24 dev eth0 && ip route replace default via 10.20.0.1", ip["a"]), 5*time.Second)
		// A different MAC: nothing gets through either.
		v := d.vm("a")
		sh["a"].run("ip link set eth0 down && ip link set eth0 address 52:54:00:66:66:66 && ip link set eth0 up && ip route replace default via 10.20.0.1", 5*time.Second)
		if ping("a", "b") {
			t.Errorf("a with a spoofed MAC got through")
		}
		sh["a"].run("ip link set eth0 down && ip link set eth0 address "+v.NICs[0].MAC+" && ip link set eth0 up && ip route replace default via 10.20.0.1", 5*time.Second)
		waitFor(t, 20*time.Second, "a to reach b again with its own addresses", func() (bool, string) {
			return ping("a", "b"), "ping fails"
		})
	})

	t.Run("nat-to-remote", func(t *testing.T) {
		// A "remote" host behind the host's uplink, in a namespace of its own.
		remote := ns + "-r"
		newNetns(t, remote)
		runCmd(t, "ip", "-n", ns, "link", "add", "uplink0", "type", "veth", "peer", "name", "eth0", "netns", remote)
		runCmd(t, "ip", "-n", ns, "addr", "add", "198.51.100.1/24", "dev", "uplink0")
		runCmd(t, "ip", "-n", ns, "link", "set", "uplink0", "up")
		runCmd(t, "ip", "-n", remote, "addr", "add", "198.51.100.2/24", "dev", "eth0")
		runCmd(t, "ip", "-n", remote, "link", "set", "eth0", "up")
		peers := make(chan string, 4)
		ln := listenIn(t, remote, "198.51.100.2:7000")
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				b, _ := io.ReadAll(io.LimitReader(c, 64))
				peers <- c.RemoteAddr().(*net.TCPAddr).IP.String() + " " + strings.TrimSpace(string(b))
				c.Close()
			}
		}()
		sh["a"].run("echo nat-check | nc -w 3 198.51.100.2 7000", 15*time.Second)
		select {
		case p := <-peers:
			if p != "198.51.100.1 nat-check" {
				t.Fatalf("remote saw %q; want the host's uplink address 198.51.100.1, not the VM's %s", p, ip["a"])
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the remote host got no connection from the VM")
		}
	})

	t.Run("bad-input-changes-nothing", func(t *testing.T) {
		ruleset := func() string {
			out, err := inNetns(ns, "nft", "-s", "list", "ruleset") // -s: without counters
			if err != nil {
				t.Fatalf("nft list ruleset: %v %s", err, out)
			}
			return out
		}
		vmStates := func() string {
			var b strings.Builder
			vms, err := d.client.VMs(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range vms {
				fmt.Fprintf(&b, "%s %s %d %v\n", v.Name, v.State, v.PID, v.NICs)
			}
			return b.String()
		}
		before, vmsBefore := ruleset(), vmStates()
		// The server refuses these itself (lq checks them before sending, too).
		for _, r := range []api.SecurityRule{
			{Direction: "in", Proto: "tcp", PortFrom: 70000},
			{Direction: "in", Proto: "icmp", PortFrom: 22},
			{Direction: "in", Proto: "tcp", PortFrom: 90, PortTo: 80},
			{Direction: "sideways", Proto: "tcp"},
			{Direction: "in", Proto: "tcp", CIDR: "10.0.0.0/33"},
		} {
			_, err := d.client.AddRule(context.Background(), "web", r)
			if !isStatus(err, 400) {
				t.Errorf("rule %+v: %v; want HTTP 400", r, err)
			}
		}
		for _, c := range []struct {
			args []string
			code string
		}{
			{[]string{"network", "create", "overlap", "--subnet", "10.20.0.128/25"}, "conflict"},
			{[]string{"network", "create", "Bad_Name", "--subnet", "10.99.0.0/24"}, "invalid"},
			{[]string{"sg", "rule", "add", "web", "--in", "--proto", "tcp", "--port", "70000"}, "ports are 1 to 65535"},
			{[]string{"sg", "rule", "add", "web", "--in", "--proto", "tcp", "--port", "22", "--from-group", "nope"}, "not_found"},
			{[]string{"vm", "create", "x", "--image", "tiny", "--nic", "prod,sg=nope"}, "not_found"},
			{[]string{"vm", "create", "y", "--image", "tiny", "--nic", "nope"}, "not_found"},
			{[]string{"vm", "create", "z", "--image", "tiny", "--nic", "prod,ip=" + ip["b"]}, "conflict"},
			{[]string{"network", "delete", "prod"}, "in_use"},
			{[]string{"sg", "delete", "web"}, "in_use"},
		} {
			_, errOut, code := d.lq(c.args...)
			if code == 0 || !strings.Contains(errOut, c.code) {
				t.Errorf("lq %s: exit %d, stderr %q; want a %s error", strings.Join(c.args, " "), code, errOut, c.code)
			}
		}
		if after := ruleset(); after != before {
			t.Errorf("nft ruleset changed after refused requests:\n--- before\n%s\n--- after\n%s", before, after)
		}
		if after := vmStates(); after != vmsBefore {
			t.Errorf("VMs changed after refused requests:\n%s\n→\n%s", vmsBefore, after)
		}
	})

	t.Run("nic-hotplug", func(t *testing.T) {
		d := d.with(t)
		d.mustLQ("network", "create", "backend", "--subnet", "10.30.0.0/24")
		v := d.vm("a")
		var nv api.VM
		if err := json.Unmarshal([]byte(d.mustLQ("vm", "nic", "add", "a", "--network", "backend", "-o", "json")), &nv); err != nil {
			t.Fatal(err)
		}
		if len(nv.NICs) != 2 || nv.NICs[1].Network != "backend" || nv.PID != v.PID {
			t.Fatalf("after nic add: %+v (pid %d, was %d)", nv.NICs, nv.PID, v.PID)
		}
		// The guest sees a new PCIe device and asks DHCP for the IPAM address.
		waitFor(t, 30*time.Second, "eth1 in the guest", func() (bool, string) {
			return sh["a"].ok("ip link show eth1", 10*time.Second), "no eth1"
		})
		sh["a"].run("ip link set eth1 up && udhcpc -i eth1 -n -q -t 5 -s /etc/udhcpc/default.script", 30*time.Second)
		d.waitConsole("a", "LQ-TINY-DHCP eth1 "+nv.NICs[1].IP, 1, 30*time.Second)
		d.mustLQ("vm", "nic", "remove", "a", "1")
		if nv := d.vm("a"); len(nv.NICs) != 1 || nv.State != "running" {
			t.Fatalf("after nic remove: %+v %s", nv.NICs, nv.State)
		}
		if sh["a"].ok("ip link show eth1", 10*time.Second) {
			t.Fatalf("eth1 still in the guest after unplug")
		}
		if _, err := inNetns(ns, "ip", "-o", "link", "show", nv.NICs[1].Tap); err == nil {
			t.Fatalf("tap %s left after unplug", nv.NICs[1].Tap)
		}
		d.mustLQ("network", "delete", "backend")
	})

	t.Run("drift-is-repaired", func(t *testing.T) {
		d := d.with(t)
		// Someone flushes the whole ruleset: for a moment everything passes; lqd puts its
		// tables back within a reconcile interval and b:8080 is closed again.
		if _, err := inNetns(ns, "nft", "flush", "ruleset"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, "lqd's firewall to come back", func() (bool, string) {
			var out string
			var err error
			if fw == "nft" {
				out, err = inNetns(ns, "nft", "list", "table", "inet", "limiquantix")
			} else {
				out, err = inNetns(ns, "iptables", "-S", "LQ-FWD")
			}
			return err == nil && strings.Contains(out, "lqb-prod"), out
		})
		if get("a", hp("b", 8080)) {
			t.Errorf("a→b:8080 open after the ruleset was restored")
		}
		// Someone deletes b's tap: lqd replugs the NIC into the running qemu.
		v := d.vm("b")
		tap := v.NICs[0].Tap
		if _, err := inNetns(ns, "ip", "link", "del", tap); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 60*time.Second, "the NIC to be replugged", func() (bool, string) {
			return hasEvent(d.events("b"), "vm.nic.repaired", tap), "no vm.nic.repaired event"
		})
		if _, err := inNetns(ns, "ip", "link", "show", tap); err != nil {
			t.Fatalf("tap %s not recreated: %v", tap, err)
		}
		if nv := d.vm("b"); nv.PID != v.PID || nv.State != "running" {
			t.Fatalf("b restarted or stopped: pid %d→%d, %s", v.PID, nv.PID, nv.State)
		}
		// The guest sees its NIC come back and configures it again.
		waitFor(t, 30*time.Second, "eth0 back in b", func() (bool, string) {
			return sh["b"].ok("ip link show eth0", 10*time.Second), "no eth0"
		})
		sh["b"].run("ip link set eth0 up && udhcpc -i eth0 -n -q -t 5 -s /etc/udhcpc/default.script", 30*time.Second)
		waitFor(t, 30*time.Second, "a to reach b:80 again", func() (bool, string) {
			return get("a", hp("b", 80)), "blocked"
		})
	})

	t.Run("delete-removes-what-it-made", func(t *testing.T) {
		taps := func() string {
			out, _ := inNetns(ns, "ip", "-o", "link", "show", "type", "tun")
			return out
		}
		for _, n := range []string{"a", "b", "c"} {
			v := d.vm(n)
			d.mustLQ("vm", "delete", n, "--force")
			if strings.Contains(taps(), v.NICs[0].Tap) {
				t.Errorf("tap %s of %s left behind", v.NICs[0].Tap, n)
			}
		}
		d.mustLQ("sg", "delete", "web")
		d.mustLQ("network", "delete", "prod")
		out, _ := inNetns(ns, "ip", "-o", "link", "show")
		if strings.Contains(out, "lqb-prod") {
			t.Errorf("bridge left behind:\n%s", out)
		}
		if pids := dnsmasqPIDs(data); len(pids) != 0 {
			t.Errorf("dnsmasq left behind: %v", pids)
		}
		var nets []api.Network
		json.Unmarshal([]byte(d.mustLQ("network", "list", "-o", "json")), &nets)
		if len(nets) != 0 {
			t.Errorf("networks left: %+v", nets)
		}
	})
}

// listenIn opens a TCP listener inside a namespace (see dialIn).
func listenIn(t testing.TB, ns, addr string) net.Listener {
	t.Helper()
	type result struct {
		l   net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open(nsPath(ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{nil, err}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			ch <- result{nil, err}
			return
		}
		l, err := net.Listen("tcp", addr)
		ch <- result{l, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("listen in %s: %v", ns, r.err)
	}
	t.Cleanup(func() { r.l.Close() })
	return r.l
}

var dnsmasqConfRE = regexp.MustCompile(`--conf-file=(\S+)`)

// dnsmasqPIDs lists dnsmasq processes whose config lives under dir.
func dnsmasqPIDs(dir string) []string {
	out, _ := exec.Command("pgrep", "-a", "dnsmasq").Output()
	var pids []string
	for _, line := range strings.Split(string(out), "\n") {
		if m := dnsmasqConfRE.FindStringSubmatch(line); m != nil && strings.HasPrefix(m[1], dir) {
			pids = append(pids, strings.Fields(line)[0])
		}
	}
	return pids
}
