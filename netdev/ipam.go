package netdev

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Pool is the IPv4 address plan of one network: its subnet, the gateway address that sits
// on the bridge, and ranges lqd must never hand out (say, a router or a static host on the
// segment). Pool is pure data; the store persists which addresses are in use.
type Pool struct {
	Subnet   netip.Prefix   // network address and length, e.g. 10.20.0.0/24
	Gateway  netip.Addr     // inside Subnet, e.g. 10.20.0.1
	Reserved []netip.Prefix // never allocated automatically; a single address is a /32
}

// Validate checks that the pool is IPv4, between /8 and /30, given by its network address,
// and that the gateway is a host address inside it. Errors wrap ErrInvalid.
func (p Pool) Validate() error {
	s := p.Subnet
	switch {
	case !s.IsValid():
		return fmt.Errorf("ipam: subnet %v: %w", s, ErrInvalid)
	case !s.Addr().Is4():
		return fmt.Errorf("ipam: subnet %v: only IPv4 is supported: %w", s, ErrInvalid)
	case s.Bits() < 8 || s.Bits() > 30:
		return fmt.Errorf("ipam: subnet %v: prefix length must be /8 to /30: %w", s, ErrInvalid)
	case s != s.Masked():
		return fmt.Errorf("ipam: subnet %v: not a network address (want %v): %w", s, s.Masked(), ErrInvalid)
	}
	gw := p.Gateway
	switch {
	case !gw.IsValid() || !gw.Is4():
		return fmt.Errorf("ipam: gateway %v: not an IPv4 address: %w", gw, ErrInvalid)
	case !s.Contains(gw):
		return fmt.Errorf("ipam: gateway %v: outside %v: %w", gw, s, ErrInvalid)
	case gw == s.Addr() || gw == broadcast(s):
		return fmt.Errorf("ipam: gateway %v: network or broadcast address of %v: %w", gw, s, ErrInvalid)
	}
	for _, r := range p.Reserved {
		if !r.IsValid() || !r.Addr().Is4() {
			return fmt.Errorf("ipam: reserved range %v: not an IPv4 prefix: %w", r, ErrInvalid)
		}
	}
	return nil
}

// Allocate picks an address for a NIC. used holds the addresses already assigned (plain
// IPv4 keys, as netip.ParseAddr returns them). With a zero want it returns the lowest free
// host address, skipping the network and broadcast addresses, the gateway and Reserved;
// with the usual .1 gateway the first address handed out is .2. ErrExhausted when none is
// left.
//
// A valid want is returned as is if it is free: an address outside the subnet or the
// network/broadcast address wraps ErrInvalid; the gateway, a reserved or a used address
// wraps ErrConflict.
func (p Pool) Allocate(used map[netip.Addr]bool, want netip.Addr) (netip.Addr, error) {
	if err := p.Validate(); err != nil {
		return netip.Addr{}, err
	}
	if want.IsValid() {
		want = want.Unmap()
		switch {
		case !want.Is4() || !p.Subnet.Contains(want):
			return netip.Addr{}, fmt.Errorf("ipam: %v: outside %v: %w", want, p.Subnet, ErrInvalid)
		case want == p.Subnet.Addr() || want == broadcast(p.Subnet):
			return netip.Addr{}, fmt.Errorf("ipam: %v: network or broadcast address of %v: %w", want, p.Subnet, ErrInvalid)
		case want == p.Gateway:
			return netip.Addr{}, fmt.Errorf("ipam: %v: is the gateway: %w", want, ErrConflict)
		case used[want]:
			return netip.Addr{}, fmt.Errorf("ipam: %v: already in use: %w", want, ErrConflict)
		}
		if r, ok := p.reserved(want); ok {
			return netip.Addr{}, fmt.Errorf("ipam: %v: reserved (%v): %w", want, r, ErrConflict)
		}
		return want, nil
	}
	first, last := p.DHCPRange()
	for u, end := toU32(first), toU32(last); u <= end; u++ {
		a := fromU32(u)
		if r, ok := p.reserved(a); ok {
			// Jump over the whole reserved range rather than testing each address.
			u = toU32(broadcast(r.Masked()))
			if u >= end {
				break
			}
			continue
		}
		if a == p.Gateway || used[a] {
			continue
		}
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("ipam: %v: %w", p.Subnet, ErrExhausted)
}

// DHCPRange returns the first and last host addresses of the subnet (network+1 and
// broadcast-1), the span dnsmasq's static dhcp-range covers. Zero addresses for an invalid
// pool.
func (p Pool) DHCPRange() (start, end netip.Addr) {
	if p.Validate() != nil {
		return netip.Addr{}, netip.Addr{}
	}
	return p.Subnet.Addr().Next(), broadcast(p.Subnet).Prev()
}

// Overlaps reports whether two prefixes share any address; prefixes of different families
// or invalid ones never overlap.
func Overlaps(a, b netip.Prefix) bool {
	if !a.IsValid() || !b.IsValid() {
		return false
	}
	return a.Masked().Overlaps(b.Masked())
}

// reserved returns the reserved prefix that holds a, if any.
func (p Pool) reserved(a netip.Addr) (netip.Prefix, bool) {
	for _, r := range p.Reserved {
		if r.Contains(a) {
			return r, true
		}
	}
	return netip.Prefix{}, false
}

// broadcast returns the last address of an IPv4 prefix.
func broadcast(p netip.Prefix) netip.Addr {
	host := uint32(1)<<(32-p.Bits()) - 1 // a shift by 32 gives 0, so /0 works too
	return fromU32(toU32(p.Masked().Addr()) | host)
}

// netmask returns the dotted netmask of an IPv4 prefix, e.g. 255.255.255.0 for a /24.
func netmask(p netip.Prefix) netip.Addr {
	return fromU32(^uint32(0) << (32 - p.Bits()))
}

func toU32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func fromU32(u uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], u)
	return netip.AddrFrom4(b)
}
