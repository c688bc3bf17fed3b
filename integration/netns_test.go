package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Every lqd under test runs in a network namespace of its own, so its bridges, taps,
// dnsmasq and nftables table never touch the host's network. The test reaches the API
// with sockets made inside that namespace, and runs lq there with `ip netns exec`.

// nsName is the namespace of the test host rooted at root (a temp dir).
func nsName(root string) string { return "lq-" + strings.TrimPrefix(filepath.Base(root), "lqi") }

func nsPath(name string) string { return "/run/netns/" + name }

// newNetns makes a namespace with loopback up and removes it when the test ends.
func newNetns(t testing.TB, name string) {
	t.Helper()
	runCmd(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	runCmd(t, "ip", "-n", name, "link", "set", "lo", "up")
}

func runCmd(t testing.TB, argv ...string) string {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// inNetns runs argv inside the namespace and returns its combined output and error.
func inNetns(ns string, argv ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// dialIn opens a connection from inside a namespace: a socket belongs to the namespace of
// the thread that made it. The thread is locked and never unlocked, so it dies with its
// changed namespace instead of going back to the scheduler's pool.
func dialIn(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open(nsPath(ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{nil, fmt.Errorf("open netns %s: %w", ns, err)}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			ch <- result{nil, fmt.Errorf("setns %s: %w", ns, err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// httpClientIn is an HTTP client whose connections start inside the namespace.
func httpClientIn(ns string) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialIn(ctx, ns, network, addr)
		},
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{Transport: tr}
}
