package firewall

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Test network namespaces: every test that touches the kernel builds its own, named
// lqfw<random><role>, and deletes them in t.Cleanup. Nothing runs in the host's namespace.

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, nftables)")
	}
	for _, tool := range []string{"ip", "nft", "iptables", "ebtables", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// netns is a test network namespace.
type netns struct {
	name string
	fd   int
}

func newNetns(t testing.TB, name string) *netns {
	t.Helper()
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open netns %s: %v", name, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	n := &netns{name: name, fd: fd}
	n.ip(t, "link", "set", "lo", "up")
	return n
}

func (n *netns) ip(t testing.TB, args ...string) string {
	t.Helper()
	return run(t, "ip", append([]string{"-n", n.name}, args...)...)
}

// exec runs a command inside the namespace.
func (n *netns) exec(name string, args ...string) ([]byte, error) {
	return exec.Command("ip", append([]string{"netns", "exec", n.name, name}, args...)...).CombinedOutput()
}

func (n *netns) mustExec(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := n.exec(name, args...)
	if err != nil {
		t.Fatalf("in %s: %s %s: %v\n%s", n.name, name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// do runs f on a fresh OS thread that joined the namespace; the thread is never unlocked,
// so the runtime discards it afterwards. Children f execs inherit the namespace.
func (n *netns) do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", n.name, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// topo is the test network: a host namespace with bridge br0 (10.77.0.1/24) and an uplink
// veth (10.88.0.1/24) to a remote namespace (10.88.0.2), and guests whose eth0 is the
// peer of a veth named like a tap (tapa, tapb, ...) enslaved to br0.
type topo struct {
	host, remote *netns
	guests       map[string]*guest
}

type guest struct {
	ns  *netns
	tap string
	mac net.HardwareAddr
	ip  string
}

func newTopo(t testing.TB, guests ...string) *topo {
	t.Helper()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	prefix := "lqfw" + hex.EncodeToString(b)
	tp := &topo{host: newNetns(t, prefix+"h"), remote: newNetns(t, prefix+"r"), guests: map[string]*guest{}}
	h := tp.host
	h.ip(t, "link", "add", "br0", "type", "bridge")
	h.ip(t, "addr", "add", "10.77.0.1/24", "dev", "br0")
	h.ip(t, "link", "set", "br0", "up")
	h.mustExec(t, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=1")
	for i, g := range guests {
		ns := newNetns(t, prefix+g)
		gu := &guest{ns: ns, tap: "tap" + g, ip: fmt.Sprintf("10.77.0.%d", 10+i)}
		gu.mac, _ = net.ParseMAC(fmt.Sprintf("02:00:00:00:00:%02x", 0x10+i))
		h.ip(t, "link", "add", gu.tap, "type", "veth", "peer", "name", "eth0", "netns", ns.name)
		h.ip(t, "link", "set", gu.tap, "master", "br0", "up")
		ns.ip(t, "link", "set", "eth0", "address", gu.mac.String())
		ns.ip(t, "addr", "add", gu.ip+"/24", "dev", "eth0")
		ns.ip(t, "link", "set", "eth0", "up")
		ns.ip(t, "route", "add", "default", "via", "10.77.0.1")
		tp.guests[g] = gu
	}
	h.ip(t, "link", "add", "uplink", "type", "veth", "peer", "name", "eth0", "netns", tp.remote.name)
	h.ip(t, "addr", "add", "10.88.0.1/24", "dev", "uplink")
	h.ip(t, "link", "set", "uplink", "up")
	tp.remote.ip(t, "addr", "add", "10.88.0.2/24", "dev", "eth0")
	tp.remote.ip(t, "link", "set", "eth0", "up")
	return tp
}

// server is a TCP echo server inside a namespace that logs its peers' addresses.
type server struct {
	ln    net.Listener
	mu    sync.Mutex
	peers []string
}

func (n *netns) listen(t testing.TB, addr string) *server {
	t.Helper()
	s := &server{}
	if err := n.do(func() (err error) {
		s.ln, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatalf("listen %s in %s: %v", addr, n.name, err)
	}
	t.Cleanup(func() { s.ln.Close() })
	go func() {
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.peers = append(s.peers, c.RemoteAddr().(*net.TCPAddr).IP.String())
			s.mu.Unlock()
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return s
}

func (s *server) lastPeer() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.peers) == 0 {
		return ""
	}
	return s.peers[len(s.peers)-1]
}

const blockedAfter = 400 * time.Millisecond

// dial connects from inside the namespace; a firewall drop shows as a timeout.
func (n *netns) dial(addr string) (net.Conn, error) {
	var c net.Conn
	err := n.do(func() (err error) {
		c, err = (&net.Dialer{Timeout: blockedAfter}).Dial("tcp4", addr)
		return err
	})
	return c, err
}

// canConnect reports whether a TCP connection from n to addr opens and echoes a line.
func (n *netns) canConnect(addr string) bool {
	c, err := n.dial(addr)
	if err != nil {
		return false
	}
	defer c.Close()
	return echoes(c)
}

func echoes(c net.Conn) bool {
	_ = c.SetDeadline(time.Now().Add(blockedAfter))
	if _, err := fmt.Fprintln(c, "ping"); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "ping\n"
}

// udpSink receives datagrams inside a namespace.
type udpSink struct {
	got chan struct{}
}

func (n *netns) listenUDP(t testing.TB, addr string) *udpSink {
	t.Helper()
	var c net.PacketConn
	if err := n.do(func() (err error) {
		c, err = net.ListenPacket("udp4", addr)
		return err
	}); err != nil {
		t.Fatalf("listen udp %s in %s: %v", addr, n.name, err)
	}
	t.Cleanup(func() { c.Close() })
	s := &udpSink{got: make(chan struct{}, 16)}
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := c.ReadFrom(buf); err != nil {
				return
			}
			s.got <- struct{}{}
		}
	}()
	return s
}

// received reports whether a datagram arrived (soon).
func (s *udpSink) received() bool {
	select {
	case <-s.got:
		return true
	case <-time.After(blockedAfter):
		return false
	}
}

// sendUDP sends one datagram from inside the namespace.
func (n *netns) sendUDP(t testing.TB, addr string) {
	t.Helper()
	if err := n.do(func() error {
		c, err := net.Dial("udp4", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("hello"))
		return err
	}); err != nil {
		t.Fatalf("send udp to %s from %s: %v", addr, n.name, err)
	}
}

// canPing reports whether one ICMP echo from n to ip gets a reply.
func (n *netns) canPing(ip string) bool {
	_, err := n.exec("ping", "-c1", "-W0.4", "-n", "-q", ip)
	return err == nil
}

// apply runs b.Apply on a thread inside the namespace.
func (n *netns) apply(ctx context.Context, b Backend, s State) error {
	return n.do(func() error { return b.Apply(ctx, s) })
}

func (n *netns) remove(ctx context.Context, b Backend) error {
	return n.do(func() error { return b.Remove(ctx) })
}
