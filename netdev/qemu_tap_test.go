package netdev

import (
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestQemuOpensTap checks that qemu attaches to the taps EnsureTap makes, with the
// -netdev options vmm uses, single- and multi-queue.
func TestQemuOpensTap(t *testing.T) {
	requireRoot(t, "qemu-system-x86_64")
	ns, path := newNetns(t)
	l := newLinks(t, path)
	if err := l.EnsureBridge("lqb-q", HostMAC("lqb-q"), netip.MustParsePrefix("10.20.0.1/24"), 0); err != nil {
		t.Fatal(err)
	}
	for _, queues := range []int{1, 2, 4} {
		t.Run(strconv.Itoa(queues), func(t *testing.T) {
			name := TapName("3f2a9c41-d0e4-4b6a-9c1e-2f0d5b7a8e11", queues)
			if err := l.EnsureTap(TapSpec{Name: name, Bridge: "lqb-q", MAC: HostMAC(name), Queues: queues}); err != nil {
				t.Fatal(err)
			}
			netdev := "tap,id=n0,ifname=" + name + ",script=no,downscript=no"
			if queues > 1 {
				netdev += ",queues=" + strconv.Itoa(queues) + ",vhost=off"
			}
			cmd := exec.Command("ip", "netns", "exec", ns, "qemu-system-x86_64",
				"-machine", "none", "-nodefaults", "-display", "none", "-S", "-monitor", "none",
				"-netdev", netdev)
			out := &lockedBuffer{}
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			defer func() {
				cmd.Process.Kill() // qemu itself: ip netns exec execs it
				<-exited
			}()
			eventually(t, 5*time.Second, func() error {
				select {
				case err := <-exited:
					exited <- err
					t.Fatalf("qemu exited: %v\n%s", err, out.String())
				default:
				}
				link := showLink(t, ns, name)
				if slices.Contains(link.Flags, "NO-CARRIER") {
					return fmt.Errorf("tap %s not attached yet: %v", name, link.Flags)
				}
				if queues > 1 && link.LinkInfo.InfoData["numqueues"] != float64(queues) {
					return fmt.Errorf("tap %s has %v queues attached, want %d", name, link.LinkInfo.InfoData["numqueues"], queues)
				}
				return nil
			})
		})
	}
}
