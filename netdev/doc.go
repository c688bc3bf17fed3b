// Package netdev owns host networking for VMs: bridges and taps (netlink), IPAM, DHCP/DNS
// through dnsmasq; security groups and NAT are in netdev/firewall.
//
// A managed network is a Linux bridge (BridgeName) with the gateway address of its Pool,
// and one dnsmasq (DNSMasq) bound to that bridge that hands out only the static leases lqd's
// IPAM assigned and answers DNS for the VMs' names. Each VM NIC is a persistent tap
// (TapName) enslaved to the bridge, which qemu opens by name.
//
// Links works on one network namespace, chosen when it is made. Taps are created from an
// OS thread locked into that namespace, because the tun driver creates the device in the
// namespace of the thread that opens /dev/net/tun, whatever netlink handle is used.
package netdev
