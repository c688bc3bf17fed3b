package cloudinit

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Interface is one NIC as the guest should configure it.
type Interface struct {
	MAC     string       // matches the NIC; the guest may name it anything
	Address netip.Prefix // static address with the subnet's length, e.g. 10.20.0.5/24
	Gateway netip.Addr   // default route; zero for none
	DNS     []netip.Addr
	Search  []string
}

// NetworkConfig renders a network-config (version 2) that gives each interface, matched by
// MAC, its static address, default route and resolvers. Cloud images without DHCP come up
// with the same address that DHCP would hand out. Only the first interface with a gateway
// gets a default route. Pure; deterministic.
func NetworkConfig(ifs []Interface) ([]byte, error) {
	var b strings.Builder
	b.WriteString("version: 2\nethernets:\n")
	haveDefault := false
	for i, in := range ifs {
		mac, err := net.ParseMAC(in.MAC)
		if err != nil || len(mac) != 6 {
			return nil, &ValidationError{Field: fmt.Sprintf("nics[%d].mac", i), Reason: fmt.Sprintf("%q is not a MAC address", in.MAC), Err: ErrInvalid}
		}
		if !in.Address.IsValid() || !in.Address.Addr().Is4() {
			return nil, &ValidationError{Field: fmt.Sprintf("nics[%d].address", i), Reason: "not an IPv4 prefix", Err: ErrInvalid}
		}
		fmt.Fprintf(&b, "  nic%d:\n", i)
		fmt.Fprintf(&b, "    match:\n      macaddress: %q\n", mac.String())
		b.WriteString("    dhcp4: false\n")
		fmt.Fprintf(&b, "    addresses:\n      - %s\n", in.Address)
		if in.Gateway.IsValid() && !haveDefault {
			haveDefault = true
			// "to: default" is newer than Debian 12's cloud-init; 0.0.0.0/0 works everywhere.
			fmt.Fprintf(&b, "    routes:\n      - to: 0.0.0.0/0\n        via: %s\n", in.Gateway)
		}
		if len(in.DNS) > 0 || len(in.Search) > 0 {
			b.WriteString("    nameservers:\n")
			if len(in.DNS) > 0 {
				b.WriteString("      addresses:\n")
				for _, d := range in.DNS {
					fmt.Fprintf(&b, "        - %s\n", d)
				}
			}
			if len(in.Search) > 0 {
				b.WriteString("      search:\n")
				for _, s := range in.Search {
					fmt.Fprintf(&b, "        - %s\n", s)
				}
			}
		}
	}
	return []byte(b.String()), nil
}
