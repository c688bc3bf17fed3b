package firewall

import (
	"net"
	"net/netip"
)

// The vocabulary both back ends' plans are written in: chains of rules, each rule a list
// of matches and a verdict. Plans are plain data; render.go and nftexpr.go turn them into
// nft text and nftables expressions, xtplan.go into iptables and ebtables arguments.

// chainKind names what a chain does; with a subject (bridge, tap) it names the chain.
type chainKind int

const (
	kForward     chainKind = iota // base: inet forward / FORWARD
	kInput                        // base: inet input / INPUT
	kOutput                       // base: inet output / OUTPUT
	kPostrouting                  // base: inet nat postrouting / nat POSTROUTING
	kPrerouting                   // base: bridge prerouting / ebtables nat PREROUTING
	kBrForward                    // base: bridge forward at -100, sets marks (nft only)
	kBrPost                       // base: bridge postrouting / ebtables nat POSTROUTING
	kFrom                         // forward, entered from bridge subject
	kTo                           // forward, routed into bridge subject
	kHostIn                       // input from bridge subject to the host
	kHostOut                      // output from the host into bridge subject
	kNICIn                        // inbound rules of NIC subject (tap)
	kNICOut                       // outbound rules of NIC subject (tap)
	kSpoof                        // anti-spoofing of NIC subject (tap)
	kEgress                       // nft: outbound rules of all restricted NICs
	kInBridged                    // nft: inbound rules, destination NIC known by mark
	kInRouted                     // nft: inbound rules, destination NIC known by address
	kMark                         // nft: sets the mark of NIC subject (tap), from kBrForward
)

type chainRef struct {
	kind    chainKind
	subject string
}

func (r chainRef) base() bool { return r.kind <= kBrPost }

type chain struct {
	ref   chainRef
	rules []rule
}

type rule struct {
	match   []match
	verdict verdict
}

type matchKind int

const (
	mIIF       matchKind = iota // input interface name
	mOIF                        // output interface name
	mCTEstRel                   // ct state established,related
	mCTInvalid                  // ct state invalid
	mSrc                        // IPv4 source prefix
	mDst                        // IPv4 destination prefix
	mSrcGroup                   // IPv4 source in group's members
	mDstGroup                   // IPv4 destination in group's members
	mIPv4                       // any IPv4 packet
	mProto                      // layer 4 protocol (without ports)
	mSport                      // tcp/udp source port range
	mDport                      // tcp/udp destination port range
	mBridgedTo                  // bridged out of NIC port name (physdev; iptables only)
	mEtherSrc                   // Ethernet source address
	mEtherType                  // Ethernet type
	mARPSrcMAC                  // ARP sender hardware address
	mARPSrcIP                   // ARP sender protocol address
	mLookup                     // (concatenation of) sel in named set; nft only
)

// selector is a packet field a set lookup reads.
type selector int

const (
	selIIF       selector = iota // iifname
	selOIF                       // oifname
	selEtherSrc                  // ether saddr
	selARPSrcMAC                 // arp saddr ether
	selARPSrcIP                  // arp saddr ip
	selIPSrc                     // ip saddr
	selIPDst                     // ip daddr
	selMark                      // meta mark
)

type match struct {
	kind     matchKind
	neg      bool
	name     string // interface, group or tap
	prefix   netip.Prefix
	addr     netip.Addr
	mac      net.HardwareAddr
	proto    Proto
	from, to int
	etype    etherType
	sel      []selector // mLookup: the key, concatenated; name is the set
}

type etherType uint16

const (
	etherIPv4 etherType = 0x0800
	etherARP  etherType = 0x0806
	etherIPv6 etherType = 0x86dd
)

type verdictKind int

const (
	vAccept verdictKind = iota
	vDrop
	vReturn
	vJump
	vGoto
	vMasquerade
	vSetMark // meta mark set <mark>
	vMap     // the verdict that verdict map set holds for sel; nft only
)

type verdict struct {
	kind   verdictKind
	target chainRef
	mark   uint32     // vSetMark
	set    string     // vMap
	sel    []selector // vMap: the key, concatenated
}

// Match constructors, named after what they read like.
func iif(name string) match       { return match{kind: mIIF, name: name} }
func oif(name string) match       { return match{kind: mOIF, name: name} }
func ctEstRel() match             { return match{kind: mCTEstRel} }
func ctInvalid() match            { return match{kind: mCTInvalid} }
func src(p netip.Prefix) match    { return match{kind: mSrc, prefix: p} }
func dst(p netip.Prefix) match    { return match{kind: mDst, prefix: p} }
func srcIP(a netip.Addr) match    { return src(netip.PrefixFrom(a, 32)) }
func dstIP(a netip.Addr) match    { return dst(netip.PrefixFrom(a, 32)) }
func notSrcIP(a netip.Addr) match { m := srcIP(a); m.neg = true; return m }
func proto(p Proto) match         { return match{kind: mProto, proto: p} }
func sport(p Proto, port int) match {
	return match{kind: mSport, proto: p, from: port, to: port}
}
func dports(p Proto, from, to int) match {
	return match{kind: mDport, proto: p, from: from, to: to}
}
func bridgedTo(tap string) match { return match{kind: mBridgedTo, name: tap} }
func etherSrcNot(mac net.HardwareAddr) match {
	return match{kind: mEtherSrc, neg: true, mac: mac}
}
func etherIs(t etherType) match { return match{kind: mEtherType, etype: t} }
func etherIsNot(t etherType) match {
	m := etherIs(t)
	m.neg = true
	return m
}
func arpMACNot(mac net.HardwareAddr) match {
	return match{kind: mARPSrcMAC, neg: true, mac: mac}
}
func arpIP(a netip.Addr) match    { return match{kind: mARPSrcIP, addr: a} }
func arpIPNot(a netip.Addr) match { return match{kind: mARPSrcIP, addr: a, neg: true} }

// in matches when the selected fields are (or with neg, are not) an element of set.
func in(set string, sel ...selector) match { return match{kind: mLookup, name: set, sel: sel} }
func notIn(set string, sel ...selector) match {
	m := in(set, sel...)
	m.neg = true
	return m
}

func accept() verdict                    { return verdict{kind: vAccept} }
func drop() verdict                      { return verdict{kind: vDrop} }
func ret() verdict                       { return verdict{kind: vReturn} }
func jump(k chainKind, s string) verdict { return verdict{kind: vJump, target: chainRef{k, s}} }
func gotoChain(k chainKind, s string) verdict {
	return verdict{kind: vGoto, target: chainRef{k, s}}
}

// vmap is the verdict the verdict map set holds for the selected fields; none (the rule
// does nothing) when it holds no element for them.
func vmap(set string, sel ...selector) verdict { return verdict{kind: vMap, set: set, sel: sel} }

// r builds a rule: verdict first, so long match lists read last.
func r(v verdict, m ...match) rule { return rule{match: m, verdict: v} }

// Pieces both plans use.

var (
	anyIPv4   = netip.MustParseAddr("0.0.0.0")
	broadcast = netip.MustParseAddr("255.255.255.255")
)

// stateful opens every chain that sees a managed bridge's traffic.
func stateful() []rule {
	return []rule{r(accept(), ctEstRel()), r(drop(), ctInvalid())}
}

// natOut matches a NAT network's subnet leaving through its uplink (any interface when
// unset; the caller has already excluded managed bridges).
func natOut(n Network) []match {
	if n.Uplink != "" {
		return []match{oif(n.Uplink), src(n.Subnet)}
	}
	return []match{src(n.Subnet)}
}

// ruleMatch translates a group rule: the peer is the source for "in", the destination
// for "out".
func ruleMatch(rl Rule) []match {
	var m []match
	switch {
	case rl.Group != "" && rl.Direction == In:
		m = append(m, match{kind: mSrcGroup, name: rl.Group})
	case rl.Group != "":
		m = append(m, match{kind: mDstGroup, name: rl.Group})
	case rl.CIDR.IsValid() && rl.CIDR.Bits() > 0 && rl.Direction == In:
		m = append(m, src(rl.CIDR.Masked()))
	case rl.CIDR.IsValid() && rl.CIDR.Bits() > 0:
		m = append(m, dst(rl.CIDR.Masked()))
	case rl.Direction == In:
		// Inbound chains may see non-IPv4 packets (from bridge ports that are not NICs).
		m = append(m, match{kind: mIPv4})
	}
	from, to := rl.ports()
	switch {
	case from != 0:
		m = append(m, dports(rl.Proto, from, to))
	case rl.Proto != Any:
		m = append(m, proto(rl.Proto))
	}
	return m
}
