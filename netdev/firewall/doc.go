// Package firewall owns lqd's security groups, anti-spoofing and NAT for managed networks.
//
// The desired state (State: networks, groups, NICs) is compiled by pure functions into
// plain-data plans, which two back ends apply: NewNFT (google/nftables: one inet and one
// bridge table owned by lqd, rewritten in one netlink batch) and NewIPTables (go-iptables
// plus ebtables: own chains jumped to from the built-in ones). Render prints the nft plan
// as `nft list table` would; golden tests check it, and the netns tests check that the
// kernel lists exactly that after Apply.
//
// # The nft ruleset
//
// Everything per NIC lives in sets (nic-ips, nic-marks, group-<g> with the members'
// addresses, marks-<g> with their marks; taps, tap-macs, tap-ips in the bridge table), so
// rules grow with networks and group rules, not with NICs; a packet is matched by hash
// lookups. The only per-NIC rules set the packet marks (see below): one chain per NIC,
// mark-<tap>, reached through the verdict map tap-marks (oifname vmap @tap-marks), so
// each frame pays one lookup however many NICs there are. Inbound rules live in two
// chains: ingress-bridged (destination NIC known by its mark) and ingress-routed (known by
// its address: routed, hairpinned or from the host); outbound rules in egress.
//
// Without nf_conntrack_bridge, bridged IPv4 reaches the inet hooks only through
// br_netfilter (net.bridge.bridge-nf-call-iptables=1; Apply refuses to run without it)
// and only under the bridge's name, not the tap's; bridge-family chains see taps but
// cannot use ct. So a bridge forward chain at priority -100 (before br_netfilter's 0)
// marks each frame with the mark of the tap it leaves by, and the inet forward chain
// matches that mark together with ct state. The source NIC is known by its IPv4 source
// address, which anti-spoofing (bridge prerouting, keyed by tap) makes trustworthy. The
// same ruleset works where nf_conntrack_bridge exists; Detect reports it, nothing needs it.
// The iptables back end uses physdev matches instead of marks, and one chain per NIC
// (iptables has no sets: group members are spelled out per address). Its rule lists grow
// with the NICs: every frame from a bridge port passes ebtables PREROUTING's list of taps
// until its own; the forward, to-bridge and host-out chains pick a NIC rule by rule, but
// only for a connection's first packet (established ones are accepted first); only IPv6
// frames pass the list of taps in ebtables POSTROUTING.
//
// # Semantics
//
//   - Stateful: traffic of a managed bridge (bridged, routed or to/from the host) accepts
//     ct state established,related first and drops ct state invalid.
//   - Inbound to a NIC is denied unless one of the NIC's groups has a matching "in" rule
//     (protocol, destination port range, source CIDR or source group = the IPv4 addresses
//     of the NICs in that group). A rule with neither CIDR nor Group matches any IPv4
//     source. Besides its rules, a NIC always accepts DHCP replies from its gateway
//     (udp 67 -> 68). A NIC with no groups therefore receives only replies and DHCP.
//   - Outbound from a NIC is allowed by default (AWS/OpenStack default egress). If any of
//     its groups has an "out" rule, only traffic matching one of the NIC's "out" rules
//     (destination CIDR or group, protocol, destination ports) leaves it. Egress rules do
//     not apply to traffic to the host, which has its own fixed policy below.
//   - Traffic from a NIC to the host (input via the bridge) accepts DHCP (udp 68 -> 67),
//     and DNS (udp/tcp 53) and ICMP to the gateway address; everything else from a managed
//     bridge to the host is dropped, to protect the host.
//   - Traffic from the host to a NIC (output via the bridge, e.g. ssh from the host)
//     passes the NIC's inbound rules with the host's address as source. Host traffic to
//     other addresses on the bridge (broadcasts: DHCP offers) is accepted.
//   - Anti-spoofing, per NIC tap: frames must carry the NIC's MAC; ARP must carry its MAC
//     and its IPv4 address (or 0.0.0.0, for RFC 5227 probes); IPv4 must come from its
//     address, except DHCP discovery (0.0.0.0:68 -> 255.255.255.255:67). IPv6 and other
//     ether types are not supported yet: dropped from and to NIC taps.
//   - NAT networks masquerade their subnet leaving through any interface other than a
//     managed bridge (or only through Uplink, when set), and forward the subnet out;
//     replies come back as established. Traffic routed between two managed bridges is not
//     masqueraded: it is subject to the source NIC's egress and the destination NIC's
//     ingress rules. A network without NAT is isolated: nothing is routed into or out of
//     it; its NICs reach each other (per rules) and the host.
//   - Traffic routed back into the bridge it came from (hairpin through the gateway) is
//     checked against the destination NIC's inbound rules by destination address, so the
//     gateway is no way around them.
//
// Limits: source groups match by IPv4 address, so a bridge port that is not a managed NIC
// (a physical NIC enslaved to the bridge) could claim a group member's address. Packet
// marks are set only on frames bridged to NIC taps, after routing, so they do not steer
// policy routing; a mark set by other software on such frames is overwritten, and a
// foreign mark equal to a NIC's on a frame bridged to another port would apply that NIC's
// inbound rules to it. The iptables back end is not atomic (see NewIPTables).
package firewall
