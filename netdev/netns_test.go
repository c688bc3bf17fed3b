package netdev

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// Tests that touch the kernel run only as root, each in network namespaces of its own
// (named lqndXXXX) that t.Cleanup deletes; the test process's own namespace is never
// changed.

func requireRoot(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
}

// newNetns creates a network namespace with lo up and returns its name and path.
func newNetns(t *testing.T) (name, path string) {
	t.Helper()
	for range 10 {
		name = fmt.Sprintf("lqnd%04x", rand.IntN(1<<16))
		out, err := exec.Command("ip", "netns", "add", name).CombinedOutput()
		if err != nil {
			if strings.Contains(string(out), "exists") {
				continue
			}
			t.Fatalf("ip netns add %s: %v: %s", name, err, out)
		}
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v: %s", name, err, out)
			}
		})
		sh(t, "ip", "-n", name, "link", "set", "lo", "up")
		return name, "/run/netns/" + name
	}
	t.Fatal("no free netns name")
	return "", ""
}

// sh runs a command and fails the test if it fails.
func sh(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// ipLink is the part of `ip -j -d link show` the tests look at.
type ipLink struct {
	Ifindex  int      `json:"ifindex"`
	Ifname   string   `json:"ifname"`
	Flags    []string `json:"flags"`
	MTU      int      `json:"mtu"`
	Master   string   `json:"master"`
	Address  string   `json:"address"`
	AddrInfo []ipAddr `json:"addr_info"`
	LinkInfo struct {
		InfoKind string         `json:"info_kind"`
		InfoData map[string]any `json:"info_data"`
	} `json:"linkinfo"`
}

type ipAddr struct {
	Family    string `json:"family"`
	Local     string `json:"local"`
	Prefixlen int    `json:"prefixlen"`
}

// showLink returns what `ip` reports for dev in netns ns, or nil if there is no such link.
func showLink(t *testing.T, ns, dev string) *ipLink {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "-j", "-d", "link", "show", "dev", dev).Output()
	if err != nil {
		return nil
	}
	var links []ipLink
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		t.Fatalf("ip link show %s: %v: %s", dev, err, out)
	}
	addr := sh(t, "ip", "-n", ns, "-j", "addr", "show", "dev", dev)
	var withAddrs []ipLink
	if err := json.Unmarshal([]byte(addr), &withAddrs); err != nil || len(withAddrs) != 1 {
		t.Fatalf("ip addr show %s: %v: %s", dev, err, addr)
	}
	links[0].AddrInfo = withAddrs[0].AddrInfo
	return &links[0]
}

func (l *ipLink) up() bool {
	for _, f := range l.Flags {
		if f == "UP" {
			return true
		}
	}
	return false
}

func (l *ipLink) ipv4() []string {
	var out []string
	for _, a := range l.AddrInfo {
		if a.Family == "inet" {
			out = append(out, fmt.Sprintf("%s/%d", a.Local, a.Prefixlen))
		}
	}
	return out
}

// newLinks opens a Links on the namespace at path, closed at cleanup.
func newLinks(t *testing.T, path string) *Links {
	t.Helper()
	l, err := NewLinks(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// inOwnNetns reports whether the test process's own namespace has a link called name.
func inOwnNetns(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// lockedBuffer collects a child's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
