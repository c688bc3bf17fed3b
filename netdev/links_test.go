package netdev

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestEnsureBridge(t *testing.T) {
	requireRoot(t)
	ns, path := newNetns(t)
	l := newLinks(t, path)
	const br = "lqb-test"
	mac := HostMAC("bridge/test")
	gw := netip.MustParsePrefix("10.20.0.1/24")

	check := func(t *testing.T) *ipLink {
		t.Helper()
		link := showLink(t, ns, br)
		if link == nil {
			t.Fatalf("bridge %s missing in %s", br, ns)
		}
		if link.LinkInfo.InfoKind != "bridge" || link.Address != mac.String() || link.MTU != 1400 || !link.up() {
			t.Errorf("bridge kind=%s mac=%s mtu=%d flags=%v; want bridge %s 1400 UP",
				link.LinkInfo.InfoKind, link.Address, link.MTU, link.Flags, mac)
		}
		if got := link.ipv4(); !slices.Equal(got, []string{"10.20.0.1/24"}) {
			t.Errorf("bridge addresses %v, want [10.20.0.1/24]", got)
		}
		d := link.LinkInfo.InfoData
		if d["stp_state"] != 0.0 || d["forward_delay"] != 0.0 {
			t.Errorf("stp_state=%v forward_delay=%v, want 0 0", d["stp_state"], d["forward_delay"])
		}
		return link
	}

	if err := l.EnsureBridge(br, mac, gw, 1400); err != nil {
		t.Fatal(err)
	}
	first := check(t)
	if inOwnNetns(br) {
		t.Fatalf("bridge %s appeared in the test's own netns", br)
	}
	if err := l.EnsureBridge(br, mac, gw, 1400); err != nil {
		t.Fatalf("second EnsureBridge: %v", err)
	}
	check(t)

	t.Run("repairs drift", func(t *testing.T) {
		sh(t, "ip", "-n", ns, "addr", "add", "10.99.0.1/16", "dev", br)
		sh(t, "ip", "-n", ns, "addr", "add", "10.20.0.9/24", "dev", br)
		sh(t, "ip", "-n", ns, "link", "set", br, "down", "address", "02:00:00:00:00:01", "mtu", "1500")
		sh(t, "ip", "-n", ns, "link", "set", br, "type", "bridge", "stp_state", "1", "forward_delay", "400")
		if err := l.EnsureBridge(br, mac, gw, 1400); err != nil {
			t.Fatal(err)
		}
		if link := check(t); link.Ifindex != first.Ifindex {
			t.Errorf("bridge was recreated: ifindex %d, was %d", link.Ifindex, first.Ifindex)
		}
	})

	t.Run("keeps its MAC when a lower one joins", func(t *testing.T) {
		sh(t, "ip", "-n", ns, "link", "add", "name", "lqvlow", "address", "02:00:00:00:00:01", "type", "veth", "peer", "name", "lqvlow1")
		sh(t, "ip", "-n", ns, "link", "set", "lqvlow", "master", br, "up")
		sh(t, "ip", "-n", ns, "link", "del", "lqvlow")
		check(t)
	})

	t.Run("name taken by another kind", func(t *testing.T) {
		sh(t, "ip", "-n", ns, "link", "add", "name", "lqb-veth", "type", "veth", "peer", "name", "lqb-veth1")
		if err := l.EnsureBridge("lqb-veth", mac, gw, 0); !errors.Is(err, ErrConflict) {
			t.Errorf("EnsureBridge over a veth = %v, want ErrConflict", err)
		}
		if err := l.DeleteBridge("lqb-veth"); !errors.Is(err, ErrConflict) {
			t.Errorf("DeleteBridge of a veth = %v, want ErrConflict", err)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		cases := map[string]error{
			"long name":        l.EnsureBridge("a-name-too-long-x", mac, gw, 0),
			"multicast mac":    l.EnsureBridge(br, []byte{1, 0, 0x5e, 0, 0, 1}, gw, 0),
			"network as gw":    l.EnsureBridge(br, mac, netip.MustParsePrefix("10.20.0.0/24"), 0),
			"ipv6 gw":          l.EnsureBridge(br, mac, netip.MustParsePrefix("fd00::1/64"), 0),
			"mtu out of range": l.EnsureBridge(br, mac, gw, 20),
		}
		for name, err := range cases {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: %v, want ErrInvalid", name, err)
			}
		}
	})

	if err := l.DeleteBridge(br); err != nil {
		t.Fatal(err)
	}
	if showLink(t, ns, br) != nil {
		t.Errorf("bridge %s still there after DeleteBridge", br)
	}
	if err := l.DeleteBridge(br); err != nil {
		t.Errorf("DeleteBridge of a missing bridge: %v", err)
	}
}

func TestEnsureTap(t *testing.T) {
	requireRoot(t)
	ns, path := newNetns(t)
	l := newLinks(t, path)
	const br, br2 = "lqb-a", "lqb-b"
	for _, name := range []string{br, br2} {
		if err := l.EnsureBridge(name, HostMAC(name), netip.MustParsePrefix("10.20.0.1/24"), 0); err != nil {
			t.Fatal(err)
		}
	}
	spec := TapSpec{
		Name:   TapName("3f2a9c41-d0e4-4b6a-9c1e-2f0d5b7a8e11", 0),
		Bridge: br,
		MAC:    HostMAC("vm/0"),
		Queues: 2,
		MTU:    1400,
	}

	check := func(t *testing.T, multiQueue bool) *ipLink {
		t.Helper()
		link := showLink(t, ns, spec.Name)
		if link == nil {
			t.Fatalf("tap %s missing in %s", spec.Name, ns)
		}
		d := link.LinkInfo.InfoData
		want := map[string]any{"type": "tap", "pi": false, "vnet_hdr": true, "multi_queue": multiQueue, "persist": true}
		if multiQueue { // ip shows attached queues for multi-queue taps only
			want["numqueues"] = 0.0
		}
		for k, v := range want {
			if d[k] != v {
				t.Errorf("tap %s = %v, want %v (all: %v)", k, d[k], v, d)
			}
		}
		if link.LinkInfo.InfoKind != "tun" || link.Master != br || link.Address != spec.MAC.String() || link.MTU != 1400 || !link.up() {
			t.Errorf("tap kind=%s master=%s mac=%s mtu=%d flags=%v; want tun on %s with %s, 1400, UP",
				link.LinkInfo.InfoKind, link.Master, link.Address, link.MTU, link.Flags, br, spec.MAC)
		}
		if user, ok := d["user"]; ok && user != "root" {
			t.Errorf("tap owner %v, want root", user)
		}
		return link
	}

	if err := l.EnsureTap(spec); err != nil {
		t.Fatal(err)
	}
	first := check(t, true)
	if inOwnNetns(spec.Name) {
		t.Fatalf("tap %s was created in the test's own netns", spec.Name)
	}

	t.Run("idempotent", func(t *testing.T) {
		if err := l.EnsureTap(spec); err != nil {
			t.Fatal(err)
		}
		if link := check(t, true); link.Ifindex != first.Ifindex {
			t.Errorf("tap was recreated: ifindex %d, was %d", link.Ifindex, first.Ifindex)
		}
	})

	t.Run("fixes master, MAC and state", func(t *testing.T) {
		sh(t, "ip", "-n", ns, "link", "set", spec.Name, "down", "master", br2, "address", "02:00:00:00:00:07")
		if err := l.EnsureTap(spec); err != nil {
			t.Fatal(err)
		}
		if link := check(t, true); link.Ifindex != first.Ifindex {
			t.Errorf("tap was recreated: ifindex %d, was %d", link.Ifindex, first.Ifindex)
		}
	})

	t.Run("queue change recreates an idle tap", func(t *testing.T) {
		single := spec
		single.Queues = 1
		if err := l.EnsureTap(single); err != nil {
			t.Fatal(err)
		}
		check(t, false)
	})

	t.Run("queue change refuses a tap in use", func(t *testing.T) {
		// Attach the way qemu does (single queue, the tap's current mode).
		var fd int
		err := inNetns(l.ns, func() error {
			var err error
			fd, err = attachTap(spec.Name, unix.IFF_TAP|unix.IFF_NO_PI|unix.IFF_VNET_HDR)
			return err
		})
		if err != nil {
			t.Fatalf("attach: %v", err)
		}
		defer unix.Close(fd)
		if link := showLink(t, ns, spec.Name); slices.Contains(link.Flags, "NO-CARRIER") {
			t.Fatalf("attached tap has no carrier: %v", link.Flags)
		}
		if err := l.EnsureTap(spec); !errors.Is(err, ErrConflict) {
			t.Errorf("EnsureTap changing queues of a tap in use = %v, want ErrConflict", err)
		}
		single := spec
		single.Queues = 1
		if err := l.EnsureTap(single); err != nil {
			t.Errorf("EnsureTap with matching queues on a tap in use: %v", err)
		}
	})

	t.Run("multi-queue tap takes two queues", func(t *testing.T) {
		if err := l.EnsureTap(spec); err != nil { // the single-queue fd is closed now
			t.Fatal(err)
		}
		check(t, true)
		var fds []int
		err := inNetns(l.ns, func() error {
			for range 2 {
				fd, err := attachTap(spec.Name, unix.IFF_TAP|unix.IFF_NO_PI|unix.IFF_VNET_HDR|unix.IFF_MULTI_QUEUE)
				if err != nil {
					return err
				}
				fds = append(fds, fd)
			}
			return nil
		})
		for _, fd := range fds {
			defer unix.Close(fd)
		}
		if err != nil {
			t.Fatalf("attach 2 queues: %v", err)
		}
		if d := showLink(t, ns, spec.Name).LinkInfo.InfoData; d["numqueues"] != 2.0 {
			t.Errorf("numqueues %v, want 2", d["numqueues"])
		}
		single := spec
		single.Queues = 1
		if err := l.EnsureTap(single); !errors.Is(err, ErrConflict) {
			t.Errorf("EnsureTap making a multi-queue tap in use single = %v, want ErrConflict", err)
		}
	})

	t.Run("Taps lists only lqd taps", func(t *testing.T) {
		other := TapSpec{Name: TapName("3f2a9c41-d0e4-4b6a-9c1e-2f0d5b7a8e11", 1), Bridge: br}
		if err := l.EnsureTap(other); err != nil {
			t.Fatal(err)
		}
		sh(t, "ip", "-n", ns, "tuntap", "add", "dev", "notours0", "mode", "tap")
		sh(t, "ip", "-n", ns, "tuntap", "add", "dev", "lqttun0", "mode", "tun")
		sh(t, "ip", "-n", ns, "link", "add", "name", "lqtveth", "type", "veth", "peer", "name", "lqtveth1")
		got, err := l.Taps(TapPrefix)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{spec.Name, other.Name}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("Taps(%q) = %v, want %v", TapPrefix, got, want)
		}
		if err := l.DeleteTap("lqtveth"); !errors.Is(err, ErrConflict) {
			t.Errorf("DeleteTap of a veth = %v, want ErrConflict", err)
		}
		if err := l.EnsureTap(TapSpec{Name: "lqtveth", Bridge: br}); !errors.Is(err, ErrConflict) {
			t.Errorf("EnsureTap over a veth = %v, want ErrConflict", err)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		cases := map[string]TapSpec{
			"no bridge":           {Name: "lqtx", Bridge: "lqb-missing"},
			"bridge not a bridge": {Name: "lqtx", Bridge: "lqtveth"},
			"long name":           {Name: "lqt0123456789abc", Bridge: br},
			"negative queues":     {Name: "lqtx", Bridge: br, Queues: -1},
			"multicast mac":       {Name: "lqtx", Bridge: br, MAC: []byte{1, 2, 3, 4, 5, 6}},
		}
		for name, s := range cases {
			if err := l.EnsureTap(s); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: %v, want ErrInvalid", name, err)
			}
		}
	})

	if err := l.DeleteTap(spec.Name); err != nil {
		t.Fatal(err)
	}
	if showLink(t, ns, spec.Name) != nil {
		t.Errorf("tap %s still there after DeleteTap", spec.Name)
	}
	if err := l.DeleteTap(spec.Name); err != nil {
		t.Errorf("DeleteTap of a missing tap: %v", err)
	}
}

// attachTap opens /dev/net/tun and attaches to the tap name with flags, as qemu does; run
// it inside the tap's namespace.
func attachTap(name string, flags uint16) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	var req struct {
		name  [unix.IFNAMSIZ]byte
		flags uint16
		_     [22]byte
	}
	copy(req.name[:], name)
	req.flags = flags
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETIFF, uintptr(unsafe.Pointer(&req))); errno != 0 {
		unix.Close(fd)
		return -1, fmt.Errorf("TUNSETIFF %s: %w", name, errno)
	}
	return fd, nil
}
