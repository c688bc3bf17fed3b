package netdev

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// EnsureBridge makes the bridge called name exist with MAC mac, the gateway address gw
// (e.g. 10.20.0.1/24) as its only IPv4 address, STP off, forward delay 0, MTU mtu (0
// leaves it alone) and up. It is idempotent and repairs drift: a wrong MAC, MTU or stray
// IPv4 address is corrected in place, without recreating the bridge or detaching ports.
//
// The MAC is set explicitly because a bridge left to itself takes its lowest port's MAC and
// changes it as taps come and go, which breaks guests' ARP caches for the gateway.
// A name held by a link that is not a bridge wraps ErrConflict.
func (l *Links) EnsureBridge(name string, mac net.HardwareAddr, gw netip.Prefix, mtu int) error {
	if err := validIfName(name); err != nil {
		return fmt.Errorf("netdev: bridge: %w", err)
	}
	if err := validUnicastMAC(mac); err != nil {
		return fmt.Errorf("netdev: bridge %s: %w", name, err)
	}
	if err := (Pool{Subnet: gw.Masked(), Gateway: gw.Addr()}).Validate(); err != nil {
		return fmt.Errorf("netdev: bridge %s: gateway %v: %w", name, gw, err)
	}
	if err := validMTU(mtu); err != nil {
		return fmt.Errorf("netdev: bridge %s: %w", name, err)
	}

	link, err := l.link(name)
	if err != nil {
		return fmt.Errorf("netdev: bridge %s: %w", name, err)
	}
	if link == nil {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, HardwareAddr: mac, MTU: mtu}}
		if err := l.h.LinkAdd(br); err != nil {
			return fmt.Errorf("netdev: create bridge %s: %w", name, err)
		}
		if link, err = l.h.LinkByName(name); err != nil {
			return fmt.Errorf("netdev: bridge %s: %w", name, err)
		}
	}
	if link.Type() != "bridge" {
		return fmt.Errorf("netdev: bridge %s: name taken by a %s link: %w", name, link.Type(), ErrConflict)
	}
	attrs := link.Attrs()
	if !bytes.Equal(attrs.HardwareAddr, mac) {
		if err := l.h.LinkSetHardwareAddr(link, mac); err != nil {
			return fmt.Errorf("netdev: bridge %s: set mac %s: %w", name, mac, err)
		}
	}
	if mtu != 0 && attrs.MTU != mtu {
		if err := l.h.LinkSetMTU(link, mtu); err != nil {
			return fmt.Errorf("netdev: bridge %s: set mtu %d: %w", name, mtu, err)
		}
	}
	if err := l.bridgeNoSTP(attrs.Index); err != nil {
		return fmt.Errorf("netdev: bridge %s: %w", name, err)
	}
	if err := l.syncAddr(link, gw); err != nil {
		return fmt.Errorf("netdev: bridge %s: %w", name, err)
	}
	if attrs.Flags&net.FlagUp == 0 {
		if err := l.h.LinkSetUp(link); err != nil {
			return fmt.Errorf("netdev: bridge %s: set up: %w", name, err)
		}
	}
	return nil
}

// DeleteBridge removes the bridge called name; its ports are released, not deleted. No
// such link is success; a link of another kind under that name wraps ErrConflict.
func (l *Links) DeleteBridge(name string) error {
	if err := validIfName(name); err != nil {
		return fmt.Errorf("netdev: delete bridge: %w", err)
	}
	link, err := l.link(name)
	if err != nil {
		return fmt.Errorf("netdev: delete bridge %s: %w", name, err)
	}
	if link == nil {
		return nil
	}
	if link.Type() != "bridge" {
		return fmt.Errorf("netdev: delete bridge %s: it is a %s link: %w", name, link.Type(), ErrConflict)
	}
	if err := l.h.LinkDel(link); err != nil {
		return fmt.Errorf("netdev: delete bridge %s: %w", name, err)
	}
	return nil
}

// syncAddr leaves gw as the link's only IPv4 address. IPv6 (link-local) is left alone.
func (l *Links) syncAddr(link netlink.Link, gw netip.Prefix) error {
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return l.h.AddrList(link, netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	have := false
	for _, a := range addrs {
		p, ok := addrPrefix(a)
		if ok && p == gw {
			have = true
			continue
		}
		if err := l.h.AddrDel(link, &a); err != nil {
			return fmt.Errorf("remove stale address %s: %w", a.IPNet, err)
		}
	}
	if have {
		return nil
	}
	want := &netlink.Addr{IPNet: &net.IPNet{IP: gw.Addr().AsSlice(), Mask: net.CIDRMask(gw.Bits(), 32)}}
	if err := l.h.AddrAdd(link, want); err != nil {
		return fmt.Errorf("add address %s: %w", gw, err)
	}
	return nil
}

// bridgeNoSTP turns STP off and the forward delay to 0, so a new port forwards at once.
// The netlink library has no fields for these, so this is a bare RTM_NEWLINK; it is sent
// from a thread in the namespace because a bare request opens its own socket. STP goes
// off first, in its own message: the kernel applies the forward delay before the STP
// state and refuses a delay under 2 s while STP is on.
func (l *Links) bridgeNoSTP(index int) error {
	return inNetns(l.ns, func() error {
		for _, a := range []struct {
			typ  int
			name string
		}{{nl.IFLA_BR_STP_STATE, "stp_state"}, {nl.IFLA_BR_FORWARD_DELAY, "forward_delay"}} {
			req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
			msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
			msg.Index = int32(index)
			req.AddData(msg)
			info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
			info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("bridge"))
			data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
			data.AddRtAttr(a.typ, nl.Uint32Attr(0))
			req.AddData(info)
			if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
				return fmt.Errorf("set %s 0: %w", a.name, err)
			}
		}
		return nil
	})
}

func addrPrefix(a netlink.Addr) (netip.Prefix, bool) {
	if a.IPNet == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := a.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones), true
}

func validUnicastMAC(mac net.HardwareAddr) error {
	if len(mac) != 6 || mac[0]&1 != 0 || bytes.Equal(mac, make(net.HardwareAddr, 6)) {
		return fmt.Errorf("mac %q: want a non-zero unicast Ethernet address: %w", mac.String(), ErrInvalid)
	}
	return nil
}

func validMTU(mtu int) error {
	if mtu != 0 && (mtu < 68 || mtu > 65535) {
		return fmt.Errorf("mtu %d: want 68 to 65535 (or 0 for the default): %w", mtu, ErrInvalid)
	}
	return nil
}
