package firewall

import (
	"context"
	"errors"
	"net/netip"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"
)

const (
	testTable  = "lqtest"
	testPrefix = "LQT"
)

// backendCase is one back end under test: how to make it for a namespace and how to list
// what it owns there.
type backendCase struct {
	name string
	make func(ns *netns) Backend
	list func(t testing.TB, ns *netns) string
}

func backendCases() []backendCase {
	return []backendCase{
		{
			name: "nft",
			make: func(ns *netns) Backend {
				return &nftBackend{table: testTable, opts: []nftables.ConnOption{nftables.WithNetNSFd(ns.fd)}}
			},
			list: func(t testing.TB, ns *netns) string {
				var b strings.Builder
				for _, family := range []string{"inet", "bridge"} {
					if out, err := ns.exec("nft", "list", "table", family, testTable); err == nil {
						b.Write(out)
					} else if !strings.Contains(string(out), "No such file") {
						t.Fatalf("nft list table %s %s: %v\n%s", family, testTable, err, out)
					}
				}
				return b.String()
			},
		},
		{
			name: "iptables",
			make: func(*netns) Backend { return NewIPTables(testPrefix) },
			list: func(t testing.TB, ns *netns) string {
				var b strings.Builder
				for _, table := range []string{"filter", "nat"} {
					for _, l := range strings.Split(ns.mustExec(t, "iptables-save", "-t", table), "\n") {
						if strings.Contains(l, testPrefix+"-") {
							b.WriteString(l + "\n")
						}
					}
				}
				b.WriteString(ns.mustExec(t, "ebtables", "-t", "nat", "-L"))
				return b.String()
			},
		},
	}
}

// netState is the test network br0 with the topology's guests as NICs.
func (tp *topo) state(nat bool, groups []Group, nicGroups map[string][]string) State {
	s := State{
		Networks: []Network{{Bridge: "br0", Subnet: netip.MustParsePrefix("10.77.0.0/24"), Gateway: netip.MustParseAddr("10.77.0.1"), NAT: nat}},
		Groups:   groups,
	}
	names := make([]string, 0, len(tp.guests))
	for g := range tp.guests {
		names = append(names, g)
	}
	slices.Sort(names)
	for _, g := range names {
		gu := tp.guests[g]
		s.NICs = append(s.NICs, NIC{Tap: gu.tap, Bridge: "br0", MAC: gu.mac, IP: netip.MustParseAddr(gu.ip), Groups: nicGroups[g]})
	}
	return s
}

func tcpIn(port int, from string) Rule {
	r := Rule{Direction: In, Proto: TCP, PortFrom: port}
	if p, err := netip.ParsePrefix(from); err == nil {
		r.CIDR = p
	} else {
		r.Group = from
	}
	return r
}

func mustApply(t *testing.T, ns *netns, b Backend, s State) {
	t.Helper()
	if err := ns.apply(context.Background(), b, s); err != nil {
		t.Fatal(err)
	}
}

type check struct {
	what string
	got  bool
	want bool
}

func expect(t *testing.T, checks ...check) {
	t.Helper()
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
}

// TestBackends runs the same traffic scenarios against both back ends, each scenario in
// fresh namespaces.
func TestBackends(t *testing.T) {
	needRoot(t)
	scenarios := []struct {
		name string
		run  func(t *testing.T, bc backendCase)
	}{
		{"groups", testGroups},
		{"established-survives", testEstablished},
		{"anti-spoofing", testSpoofing},
		{"nat", testNAT},
		{"host-to-guest", testHostToGuest},
		{"idempotent-and-remove", testIdempotentRemove},
		{"bad-state-keeps-ruleset", testBadState},
		{"golden-states-list-as-planned", testListedAsPlanned},
	}
	for _, bc := range backendCases() {
		t.Run(bc.name, func(t *testing.T) {
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					t.Parallel()
					sc.run(t, bc)
				})
			}
		})
	}
	t.Cleanup(func() {
		// Everything happened in test namespaces: ours has nothing of the tests.
		if out, err := exec.Command("nft", "list", "tables").CombinedOutput(); err == nil && strings.Contains(string(out), testTable) {
			t.Errorf("table %s leaked into the test process's namespace:\n%s", testTable, out)
		}
		if out, err := exec.Command("iptables-save").CombinedOutput(); err == nil && strings.Contains(string(out), testPrefix+"-") {
			t.Errorf("chains %s-* leaked into the test process's namespace", testPrefix)
		}
	})
}

var webGroups = []Group{
	{Name: "web", Rules: []Rule{tcpIn(8080, "client"), {Direction: In, Proto: ICMP, Group: "client"}}},
	{Name: "client"},
}

func testGroups(t *testing.T, bc backendCase) {
	tp := newTopo(t, "a", "b", "c")
	a, b, c := tp.guests["a"], tp.guests["b"], tp.guests["c"]
	b.ns.listen(t, b.ip+":8080")
	b.ns.listen(t, b.ip+":9090")
	a.ns.listen(t, a.ip+":8080")
	// b also answers to c's address, and a sends c's traffic to b's MAC: only the port
	// the frame leaves by, not the destination address, may pick the rules.
	b.ns.ip(t, "addr", "add", c.ip+"/32", "dev", "eth0")
	misdirected := b.ns.listenUDP(t, c.ip+":9999")
	toC := c.ns.listenUDP(t, c.ip+":9999")
	a.ns.ip(t, "neigh", "replace", c.ip, "lladdr", b.mac.String(), "dev", "eth0", "nud", "permanent")
	a.ns.sendUDP(t, c.ip+":9999")
	expect(t,
		check{"before: b->a:8080", b.ns.canConnect(a.ip + ":8080"), true},
		check{"before: b ping a", b.ns.canPing(a.ip), true},
		check{"before: a->c's address at b's MAC", misdirected.received(), true})

	groups := append(slices.Clone(webGroups), Group{Name: "svc", Rules: []Rule{{Direction: In, Proto: UDP, PortFrom: 9999, Group: "client"}}})
	mustApply(t, tp.host, bc.make(tp.host), tp.state(false, groups, map[string][]string{"a": {"client"}, "b": {"web"}, "c": {"svc"}}))
	a.ns.sendUDP(t, c.ip+":9999")
	expect(t,
		check{"a->b:8080 (web allows client)", a.ns.canConnect(b.ip + ":8080"), true},
		check{"a->b:9090 (no rule)", a.ns.canConnect(b.ip + ":9090"), false},
		check{"c->b:8080 (c not in client)", c.ns.canConnect(b.ip + ":8080"), false},
		check{"b->a:8080 (a has no groups)", b.ns.canConnect(a.ip + ":8080"), false},
		check{"a ping b (icmp from client)", a.ns.canPing(b.ip), true},
		check{"c ping b", c.ns.canPing(b.ip), false},
		check{"b ping a", b.ns.canPing(a.ip), false},
		check{"a->c's address at b's MAC (svc rules must not apply at b)", misdirected.received(), false},
	)
	a.ns.ip(t, "neigh", "replace", c.ip, "lladdr", c.mac.String(), "dev", "eth0", "nud", "permanent")
	a.ns.sendUDP(t, c.ip+":9999")
	expect(t, check{"a->c:9999 udp (svc allows client)", toC.received(), true})
}

func testEstablished(t *testing.T, bc backendCase) {
	tp := newTopo(t, "a", "b")
	a, b := tp.guests["a"], tp.guests["b"]
	b.ns.listen(t, b.ip+":8080")
	be := bc.make(tp.host)
	members := map[string][]string{"a": {"client"}, "b": {"web"}}
	mustApply(t, tp.host, be, tp.state(false, webGroups, members))
	conn, err := a.ns.dial(b.ip + ":8080")
	if err != nil {
		t.Fatalf("a->b:8080: %v", err)
	}
	defer conn.Close()
	expect(t, check{"echo on new connection", echoes(conn), true})

	unrelated := Rule{Direction: In, Proto: UDP, PortFrom: 5353, CIDR: netip.MustParsePrefix("10.0.0.0/8")}
	more := []Group{{Name: "web", Rules: append(slices.Clone(webGroups[0].Rules), unrelated)}, {Name: "client"}}
	mustApply(t, tp.host, be, tp.state(false, more, members))
	expect(t, check{"echo after re-apply with a rule added", echoes(conn), true})

	fewer := []Group{{Name: "web", Rules: []Rule{unrelated}}, {Name: "client"}}
	mustApply(t, tp.host, be, tp.state(false, fewer, members))
	expect(t,
		check{"echo on the established connection after its rule went", echoes(conn), true},
		check{"new a->b:8080 after its rule went", a.ns.canConnect(b.ip + ":8080"), false},
	)
}

func testSpoofing(t *testing.T, bc backendCase) {
	tp := newTopo(t, "a", "b")
	a, b := tp.guests["a"], tp.guests["b"]
	b.ns.listen(t, b.ip+":8080")
	// Any source in the subnet may connect, so only anti-spoofing can stop a.
	groups := []Group{{Name: "web", Rules: []Rule{tcpIn(8080, "10.77.0.0/24"), {Direction: In, Proto: ICMP}}}}
	mustApply(t, tp.host, bc.make(tp.host), tp.state(false, groups, map[string][]string{"b": {"web"}}))
	expect(t, check{"a->b:8080 with its own address", a.ns.canConnect(b.ip + ":8080"), true})

	a.ns.ip(t, "addr", "del", a.ip+"/24", "dev", "eth0")
	a.ns.ip(t, "addr", "replace", "10.77.0.99/24", "dev", "eth0")
	// ARP claiming the new address never reaches b (else b would learn 10.77.0.99).
	expect(t, check{"a ping b, resolving b with a spoofed ARP sender", a.ns.canPing(b.ip), false})
	if out := b.ns.ip(t, "neigh", "show", "10.77.0.99"); strings.Contains(out, a.mac.String()) {
		t.Errorf("b learned the spoofed address from ARP: %s", out)
	}
	// Static neighbours on both sides (after the address change, which flushes them), so
	// ARP filtering is not what stops the IPv4 packets.
	a.ns.ip(t, "neigh", "replace", b.ip, "lladdr", b.mac.String(), "dev", "eth0", "nud", "permanent")
	b.ns.ip(t, "neigh", "replace", "10.77.0.99", "lladdr", a.mac.String(), "dev", "eth0", "nud", "permanent")
	expect(t,
		check{"a->b:8080 from a spoofed IP", a.ns.canConnect(b.ip + ":8080"), false},
		check{"a ping b from a spoofed IP", a.ns.canPing(b.ip), false},
	)
	a.ns.ip(t, "addr", "del", "10.77.0.99/24", "dev", "eth0")
	a.ns.ip(t, "addr", "add", a.ip+"/24", "dev", "eth0")
	expect(t, check{"a->b:8080 with its address back", a.ns.canConnect(b.ip + ":8080"), true})

	b.ns.ip(t, "neigh", "replace", a.ip, "lladdr", "02:00:00:00:00:99", "dev", "eth0", "nud", "permanent")
	a.ns.ip(t, "link", "set", "eth0", "address", "02:00:00:00:00:99")
	expect(t,
		check{"a->b:8080 from a spoofed MAC", a.ns.canConnect(b.ip + ":8080"), false},
		check{"a ping b from a spoofed MAC", a.ns.canPing(b.ip), false},
	)
}

func testNAT(t *testing.T, bc backendCase) {
	tp := newTopo(t, "a")
	a := tp.guests["a"]
	srv := tp.remote.listen(t, "10.88.0.2:8080")
	be := bc.make(tp.host)
	mustApply(t, tp.host, be, tp.state(false, nil, nil))
	expect(t, check{"a->remote from an isolated network", a.ns.canConnect("10.88.0.2:8080"), false})

	mustApply(t, tp.host, be, tp.state(true, nil, nil))
	expect(t,
		check{"a->remote through NAT", a.ns.canConnect("10.88.0.2:8080"), true},
		check{"a ping remote through NAT", a.ns.canPing("10.88.0.2"), true},
	)
	if got := srv.lastPeer(); got != "10.88.0.1" {
		t.Errorf("remote saw the connection from %q, want the host's uplink 10.88.0.1", got)
	}
}

func testHostToGuest(t *testing.T, bc backendCase) {
	tp := newTopo(t, "a", "b")
	a, b := tp.guests["a"], tp.guests["b"]
	b.ns.listen(t, b.ip+":2222")
	b.ns.listen(t, b.ip+":3333")
	a.ns.listen(t, a.ip+":2222")
	tp.host.listen(t, "10.77.0.1:53")
	tp.host.listen(t, "10.77.0.1:2222")
	groups := []Group{{Name: "ssh", Rules: []Rule{tcpIn(2222, "10.77.0.1/32")}}}
	mustApply(t, tp.host, bc.make(tp.host), tp.state(false, groups, map[string][]string{"b": {"ssh"}}))
	expect(t,
		check{"host->b:2222 (allowed from the gateway)", tp.host.canConnect(b.ip + ":2222"), true},
		check{"host->b:3333", tp.host.canConnect(b.ip + ":3333"), false},
		check{"host->a:2222 (a has no groups)", tp.host.canConnect(a.ip + ":2222"), false},
		check{"a->b:2222 (only the gateway may)", a.ns.canConnect(b.ip + ":2222"), false},
		check{"a->host:53 (DNS)", a.ns.canConnect("10.77.0.1:53"), true},
		check{"a ping host", a.ns.canPing("10.77.0.1"), true},
		check{"a->host:2222 (host protected)", a.ns.canConnect("10.77.0.1:2222"), false},
	)
}

func testIdempotentRemove(t *testing.T, bc backendCase) {
	tp := newTopo(t, "a", "b")
	h := tp.host
	be := bc.make(h)
	big := tp.state(true, webGroups, map[string][]string{"a": {"client"}, "b": {"web"}})
	small := tp.state(false, nil, nil)
	small.NICs = small.NICs[:1]

	mustApply(t, h, be, big)
	first := bc.list(t, h)
	mustApply(t, h, be, big)
	if again := bc.list(t, h); again != first {
		t.Errorf("re-applying the same state changed the ruleset:\n--- first\n%s\n--- again\n%s", first, again)
	}

	// Shrinking leaves no stale chain or set: same as a fresh apply of the small state.
	mustApply(t, h, be, small)
	shrunk := bc.list(t, h)
	if err := h.remove(context.Background(), be); err != nil {
		t.Fatal(err)
	}
	mustApply(t, h, be, small)
	if fresh := bc.list(t, h); !slices.Equal(normalizeNFT(shrunk), normalizeNFT(fresh)) {
		t.Errorf("after shrinking:\n%s\nfresh apply:\n%s", shrunk, fresh)
	}

	// Whatever shape our tables are in (an older version's hooks, set types, chains), Apply
	// makes them what the plan says.
	if bc.name == "nft" {
		if err := h.remove(context.Background(), be); err != nil {
			t.Fatal(err)
		}
		h.mustExec(t, "nft", "add table inet "+testTable+"; add set inet "+testTable+" nic-ips { type mark; }; "+
			"add chain inet "+testTable+" forward { type filter hook forward priority 10; }; "+
			"add chain inet "+testTable+" stale; add rule inet "+testTable+" stale drop; "+
			"add rule inet "+testTable+" forward meta mark @nic-ips jump stale; "+
			// A map of a chain that goes (deleting it needs the map gone first), a set
			// named like a map, and a base chain named like a regular one.
			"add table bridge "+testTable+"; add chain bridge "+testTable+" mark-gone; "+
			"add map bridge "+testTable+` old-marks { type ifname : verdict; elements = { "x" : jump mark-gone }; }; `+
			"add set bridge "+testTable+" tap-marks { type ifname; }; "+
			"add chain bridge "+testTable+" mark-tapa { type filter hook forward priority 0; }")
		mustApply(t, h, be, big)
		p, _ := buildNFTPlan(big)
		if got, want := normalizeNFT(bc.list(t, h)), normalizeNFT(renderNFT(p, testTable)); !slices.Equal(got, want) {
			t.Errorf("apply over an old table:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}

	h.mustExec(t, "nft", "add table inet foreign; add chain inet foreign c { type filter hook input priority 10; }; add rule inet foreign c tcp dport 1 accept")
	h.mustExec(t, "iptables", "-N", "FOREIGN")
	h.mustExec(t, "iptables", "-A", "FOREIGN", "-p", "tcp", "--dport", "1", "-j", "ACCEPT")
	for range 2 { // Remove twice: the second finds nothing to do
		if err := h.remove(context.Background(), be); err != nil {
			t.Fatalf("remove: %v", err)
		}
	}
	if left := bc.list(t, h); strings.Contains(left, testTable) || strings.Contains(left, testPrefix+"-") {
		t.Errorf("left after Remove:\n%s", left)
	}
	if out := h.mustExec(t, "nft", "list", "table", "inet", "foreign"); !strings.Contains(out, "tcp dport 1 accept") {
		t.Errorf("foreign table changed:\n%s", out)
	}
	if out := h.mustExec(t, "iptables", "-S", "FOREIGN"); !strings.Contains(out, "--dport 1 -j ACCEPT") {
		t.Errorf("foreign chain changed:\n%s", out)
	}
}

func testBadState(t *testing.T, bc backendCase) {
	tp := newTopo(t, "a", "b")
	h := tp.host
	be := bc.make(h)
	good := tp.state(false, webGroups, map[string][]string{"a": {"client"}, "b": {"web"}})
	mustApply(t, h, be, good)
	before := bc.list(t, h)

	bad := tp.state(false, []Group{{Name: "web", Rules: []Rule{{Direction: In, Proto: TCP, PortFrom: 70000}}}, {Name: "client"}}, map[string][]string{"b": {"web"}})
	err := h.apply(context.Background(), be, bad)
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("apply of a bad state: %v, want ErrInvalid", err)
	}
	if after := bc.list(t, h); after != before {
		t.Errorf("a rejected state changed the ruleset:\n%s", after)
	}

	nb, ok := be.(*nftBackend)
	if !ok {
		return
	}
	// A batch the kernel rejects half-way (a jump to a chain that does not exist) leaves
	// the previous ruleset in place.
	p, err := buildNFTPlan(good)
	if err != nil {
		t.Fatal(err)
	}
	last := &p.inet[len(p.inet)-1]
	last.rules = append(last.rules, r(jump(kFrom, "missing")))
	if err := h.do(func() error { return nb.applyPlan(context.Background(), p) }); err == nil {
		t.Error("a batch with a dangling jump was accepted")
	}
	if after := bc.list(t, h); after != before {
		t.Errorf("a failed batch changed the ruleset:\n%s", after)
	}
}

var elementsRE = regexp.MustCompile(`elements = \{([^}]*)\}`)

// normalizeNFT makes nft listings comparable: set elements sorted on one line, blank lines
// and indentation dropped, chains and sets in name order.
func normalizeNFT(s string) []string {
	s = elementsRE.ReplaceAllStringFunc(s, func(m string) string {
		inner := elementsRE.FindStringSubmatch(m)[1]
		var elems []string
		for _, e := range strings.Split(inner, ",") {
			elems = append(elems, strings.TrimSpace(e))
		}
		slices.Sort(elems)
		return "elements = { " + strings.Join(elems, ", ") + " }"
	})
	var blocks []string
	var cur []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		cur = append(cur, l)
		if l == "}" {
			blocks = append(blocks, strings.Join(cur, "\n"))
			cur = nil
		}
	}
	if len(blocks) == 0 { // iptables listings: compare as sorted lines
		blocks = cur
	}
	slices.Sort(blocks)
	return blocks
}

// testListedAsPlanned applies every valid golden state (interfaces named in rules need
// not exist) and checks the kernel lists what the plan says: for nft, Render's text; for
// iptables, the exact arguments Apply wrote (which lets re-applies skip unchanged chains).
func testListedAsPlanned(t *testing.T, bc backendCase) {
	tp := newTopo(t)
	h := tp.host
	be := bc.make(h)
	cases, _ := filepath.Glob("testdata/*.json")
	for _, path := range cases {
		if strings.HasPrefix(filepath.Base(path), "invalid-") {
			continue
		}
		s := loadState(t, path)
		mustApply(t, h, be, s)
		// Apply on top of other states; a fresh apply must look the same.
		if err := h.remove(context.Background(), be); err != nil {
			t.Fatal(err)
		}
		mustApply(t, h, be, s)
		switch b := be.(type) {
		case *nftBackend:
			p, err := buildNFTPlan(s)
			if err != nil {
				t.Fatal(err)
			}
			listed := bc.list(t, h)
			if got, want := normalizeNFT(listed), normalizeNFT(renderNFT(p, testTable)); !slices.Equal(got, want) {
				for i := range max(len(got), len(want)) {
					g, w := "", ""
					if i < len(got) {
						g = got[i]
					}
					if i < len(want) {
						w = want[i]
					}
					if g != w {
						t.Errorf("%s: nft lists\n%s\nRender says\n%s", path, g, w)
						break
					}
				}
			}
		case *xtBackend:
			p, err := buildNICPlan(s)
			if err != nil {
				t.Fatal(err)
			}
			err = h.do(func() error {
				x, err := b.open(context.Background())
				if err != nil {
					return err
				}
				for _, c := range xtPlan(p, testPrefix) {
					got, err := x.rules(c.tool, c.table, c.name)
					if err != nil {
						return err
					}
					want := make([]string, len(c.rules))
					for i, r := range c.rules {
						want[i] = strings.Join(r, " ")
					}
					if !slices.Equal(got, want) {
						t.Errorf("%s: %s %s lists\n%s\nwritten as\n%s", path, c.tool, c.name, strings.Join(got, "\n"), strings.Join(want, "\n"))
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}
