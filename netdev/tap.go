package netdev

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TapSpec describes the host side of one VM NIC.
type TapSpec struct {
	Name   string           // e.g. TapName(vm, i); at most 15 characters
	Bridge string           // the bridge the tap joins; must exist
	MAC    net.HardwareAddr // host-side MAC (HostMAC), not the guest's; nil keeps the kernel's
	Queues int              // queue pairs qemu will open; >1 makes a multi-queue tap
	MTU    int              // 0 leaves the default
}

// tapFlags are the TUNSETIFF flags lqd creates taps with. qemu re-sets NO_PI and VNET_HDR
// when it attaches; only IFF_MULTI_QUEUE must match what qemu asks for (queues>1), or the
// attach fails with EINVAL. IFF_ONE_QUEUE is ignored by kernels since 3.8 and left out.
func tapFlags(queues int) netlink.TuntapFlag {
	f := netlink.TUNTAP_NO_PI | netlink.TUNTAP_VNET_HDR
	if queues > 1 {
		f |= netlink.TUNTAP_MULTI_QUEUE
	}
	return f
}

// EnsureTap makes a persistent, root-owned tap for qemu to open by name (-netdev
// tap,ifname=NAME,script=no,downscript=no[,queues=N]), enslaved to t.Bridge, with t.MAC and
// t.MTU, and up. An existing tap is kept when its multi-queue flag matches t.Queues, and
// its MAC, MTU and master are fixed in place; a mismatched one is recreated unless a
// process holds it open (ErrConflict), since deleting it would cut a running guest off.
//
// The tap is created from a thread inside the Links' namespace: the tun driver puts the
// device in the namespace of whoever opens /dev/net/tun, not the netlink handle's.
func (l *Links) EnsureTap(t TapSpec) error {
	if err := validIfName(t.Name); err != nil {
		return fmt.Errorf("netdev: tap: %w", err)
	}
	if err := validIfName(t.Bridge); err != nil {
		return fmt.Errorf("netdev: tap %s: bridge: %w", t.Name, err)
	}
	if t.MAC != nil {
		if err := validUnicastMAC(t.MAC); err != nil {
			return fmt.Errorf("netdev: tap %s: %w", t.Name, err)
		}
	}
	if t.Queues < 0 {
		return fmt.Errorf("netdev: tap %s: queues %d: %w", t.Name, t.Queues, ErrInvalid)
	}
	if err := validMTU(t.MTU); err != nil {
		return fmt.Errorf("netdev: tap %s: %w", t.Name, err)
	}

	br, err := l.link(t.Bridge)
	switch {
	case err != nil:
		return fmt.Errorf("netdev: tap %s: bridge %s: %w", t.Name, t.Bridge, err)
	case br == nil:
		return fmt.Errorf("netdev: tap %s: bridge %s does not exist: %w", t.Name, t.Bridge, ErrInvalid)
	case br.Type() != "bridge":
		return fmt.Errorf("netdev: tap %s: %s is a %s link, not a bridge: %w", t.Name, t.Bridge, br.Type(), ErrInvalid)
	}

	link, err := l.link(t.Name)
	if err != nil {
		return fmt.Errorf("netdev: tap %s: %w", t.Name, err)
	}
	if link != nil {
		keep, err := l.keepTap(link, t.Queues)
		if err != nil {
			return fmt.Errorf("netdev: tap %s: %w", t.Name, err)
		}
		if !keep {
			if err := l.h.LinkDel(link); err != nil {
				return fmt.Errorf("netdev: tap %s: delete to recreate: %w", t.Name, err)
			}
			link = nil
		}
	}
	if link == nil {
		if link, err = l.createTap(t.Name, tapFlags(t.Queues)); err != nil {
			return fmt.Errorf("netdev: tap %s: %w", t.Name, err)
		}
	}

	attrs := link.Attrs()
	if t.MAC != nil && !bytes.Equal(attrs.HardwareAddr, t.MAC) {
		if err := l.h.LinkSetHardwareAddr(link, t.MAC); err != nil {
			return fmt.Errorf("netdev: tap %s: set mac %s: %w", t.Name, t.MAC, err)
		}
	}
	if t.MTU != 0 && attrs.MTU != t.MTU {
		if err := l.h.LinkSetMTU(link, t.MTU); err != nil {
			return fmt.Errorf("netdev: tap %s: set mtu %d: %w", t.Name, t.MTU, err)
		}
	}
	if attrs.MasterIndex != br.Attrs().Index {
		if err := l.h.LinkSetMasterByIndex(link, br.Attrs().Index); err != nil {
			return fmt.Errorf("netdev: tap %s: enslave to %s: %w", t.Name, t.Bridge, err)
		}
	}
	if attrs.Flags&net.FlagUp == 0 {
		if err := l.h.LinkSetUp(link); err != nil {
			return fmt.Errorf("netdev: tap %s: set up: %w", t.Name, err)
		}
	}
	return nil
}

// keepTap reports whether an existing link can serve as the tap: it must be a tap, and it
// is kept if persistent with the right multi-queue flag. One to be replaced that a process
// holds open is an error: deleting it would cut a running guest off.
func (l *Links) keepTap(link netlink.Link, queues int) (bool, error) {
	tap, ok := link.(*netlink.Tuntap)
	if !ok || tap.Mode != netlink.TUNTAP_MODE_TAP {
		return false, fmt.Errorf("name taken by a %s link that is not a tap: %w", link.Type(), ErrConflict)
	}
	wantMQ := queues > 1
	hasMQ := tap.Flags&netlink.TUNTAP_MULTI_QUEUE != 0
	if wantMQ == hasMQ && !tap.NonPersist {
		return true, nil
	}
	busy, err := l.tapInUse(tap)
	if err != nil {
		return false, err
	}
	if busy {
		return false, fmt.Errorf("has multi_queue=%v persist=%v, want multi_queue=%v persist=true, but a process holds it open: %w",
			hasMQ, !tap.NonPersist, wantMQ, ErrConflict)
	}
	return false, nil
}

// tapInUse reports whether a process has the tap open. The kernel reports attached queues
// (IFLA_TUN_NUM_QUEUES) only for multi-queue taps; a single-queue tap is probed by
// attaching to it, which fails with EBUSY if someone else has.
func (l *Links) tapInUse(tap *netlink.Tuntap) (bool, error) {
	if tap.Flags&netlink.TUNTAP_MULTI_QUEUE != 0 {
		return tap.Queues > 0, nil
	}
	busy := false
	err := inNetns(l.ns, func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("probe: %w", err)
		}
		defer unix.Close(fd)
		ifr, err := unix.NewIfreq(tap.Name)
		if err != nil {
			return fmt.Errorf("probe: %w", err)
		}
		ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
		err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
		busy = errors.Is(err, unix.EBUSY)
		if err != nil && !busy {
			return fmt.Errorf("probe: TUNSETIFF: %w", err)
		}
		return nil
	})
	return busy, err
}

// createTap creates a persistent tap, root-owned, from a thread in the Links' namespace.
func (l *Links) createTap(name string, flags netlink.TuntapFlag) (netlink.Link, error) {
	tap := &netlink.Tuntap{
		LinkAttrs: netlink.LinkAttrs{Name: name},
		Mode:      netlink.TUNTAP_MODE_TAP,
		Flags:     flags,
		// Queues 0: the library opens one queue to create the device, makes it persistent
		// and closes it again, leaving the tap unattached for qemu. Owner and Group 0: root.
	}
	if err := inNetns(l.ns, func() error { return l.h.LinkAdd(tap) }); err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	link, err := l.h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("created but not found: %w", err)
	}
	return link, nil
}

// DeleteTap removes the tap called name. No such link is success; a link of another kind
// under that name wraps ErrConflict. A tap deleted under a running qemu stops that NIC.
func (l *Links) DeleteTap(name string) error {
	if err := validIfName(name); err != nil {
		return fmt.Errorf("netdev: delete tap: %w", err)
	}
	link, err := l.link(name)
	if err != nil {
		return fmt.Errorf("netdev: delete tap %s: %w", name, err)
	}
	if link == nil {
		return nil
	}
	if tap, ok := link.(*netlink.Tuntap); !ok || tap.Mode != netlink.TUNTAP_MODE_TAP {
		return fmt.Errorf("netdev: delete tap %s: it is a %s link, not a tap: %w", name, link.Type(), ErrConflict)
	}
	if err := l.h.LinkDel(link); err != nil {
		return fmt.Errorf("netdev: delete tap %s: %w", name, err)
	}
	return nil
}

// Taps lists, sorted, the taps whose names start with prefix (e.g. TapPrefix), so a
// reconcile can delete the ones no NIC needs any more.
func (l *Links) Taps(prefix string) ([]string, error) {
	links, err := retryDump(l.h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("netdev: list taps: %w", err)
	}
	var names []string
	for _, link := range links {
		tap, ok := link.(*netlink.Tuntap)
		if ok && tap.Mode == netlink.TUNTAP_MODE_TAP && strings.HasPrefix(tap.Name, prefix) {
			names = append(names, tap.Name)
		}
	}
	slices.Sort(names)
	return names, nil
}
