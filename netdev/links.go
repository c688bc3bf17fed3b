package netdev

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Links creates and removes lqd's bridges and taps in one network namespace. Its methods
// are safe for concurrent use as far as the kernel is concerned, but concurrent Ensure
// calls for the same name race; callers serialize per network or NIC.
type Links struct {
	h  *netlink.Handle
	ns netns.NsHandle
}

// NewLinks binds a Links to the network namespace at nsPath (e.g. /run/netns/NAME or
// /proc/PID/ns/net), or to the caller's namespace when nsPath is "". Close releases it.
func NewLinks(nsPath string) (*Links, error) {
	var (
		ns  netns.NsHandle
		err error
	)
	if nsPath == "" {
		ns, err = currentNetns()
	} else {
		ns, err = netns.GetFromPath(nsPath)
	}
	if err != nil {
		return nil, fmt.Errorf("netdev: open netns %q: %w", nsPath, err)
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("netdev: netlink handle in netns %q: %w", nsPath, err)
	}
	return &Links{h: h, ns: ns}, nil
}

// Close releases the netlink socket and the namespace handle.
func (l *Links) Close() error {
	l.h.Close()
	return l.ns.Close()
}

// link returns the link called name, or nil if there is none.
func (l *Links) link(name string) (netlink.Link, error) {
	link, err := l.h.LinkByName(name)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return nil, nil
	}
	return link, err
}

// retryDump repeats a netlink dump that the kernel interrupted because the table changed
// under it (netlink.ErrDumpInterrupted), which happens now and then on a busy host.
func retryDump[T any](f func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for range 5 {
		v, err = f()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}

// Bridges lists the bridges whose names start with prefix.
func (l *Links) Bridges(prefix string) ([]string, error) {
	links, err := retryDump(l.h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("netdev: list links: %w", err)
	}
	var out []string
	for _, lk := range links {
		if lk.Type() == "bridge" && strings.HasPrefix(lk.Attrs().Name, prefix) {
			out = append(out, lk.Attrs().Name)
		}
	}
	return out, nil
}

// hostAddrs returns every IPv4 address on the namespace's interfaces, by interface name.
func (l *Links) hostAddrs() (map[string][]netip.Prefix, error) {
	links, err := retryDump(l.h.LinkList)
	if err != nil {
		return nil, err
	}
	out := map[string][]netip.Prefix{}
	for _, lk := range links {
		addrs, err := l.h.AddrList(lk, netlink.FAMILY_V4)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if p, ok := addrPrefix(a); ok && !p.Addr().IsLoopback() {
				out[lk.Attrs().Name] = append(out[lk.Attrs().Name], p)
			}
		}
	}
	return out, nil
}
