package firewall

import (
	"fmt"
	"net/netip"
	"strings"
)

// DefaultTable is the name of lqd's nftables tables (one inet, one bridge).
const DefaultTable = "limiquantix"

// Render returns the ruleset NewNFT(DefaultTable) applies for s, as `nft list table inet`
// followed by `nft list table bridge` print it, except that set elements are sorted and
// on one line.
func Render(s State) (string, error) {
	p, err := buildNFTPlan(s)
	if err != nil {
		return "", err
	}
	return renderNFT(p, DefaultTable), nil
}

type family int

const (
	familyInet family = iota
	familyBridge
)

func renderNFT(p *nftPlan, table string) string {
	var b strings.Builder
	renderTable(&b, "inet", table, p.inetSets, p.inet, familyInet)
	renderTable(&b, "bridge", table, p.bridgeSets, p.bridge, familyBridge)
	return b.String()
}

func renderTable(b *strings.Builder, fam, table string, sets []nftSet, chains []chain, f family) {
	var blocks []string
	for _, s := range sets {
		blocks = append(blocks, renderSet(s))
	}
	for _, c := range chains {
		blocks = append(blocks, renderChain(c, f))
	}
	fmt.Fprintf(b, "table %s %s {\n%s}\n", fam, table, strings.Join(blocks, "\n"))
}

var setTypeNames = map[setType]string{
	tIPv4: "ipv4_addr", tMark: "mark", tIfname: "ifname", tEther: "ether_addr", tVerdict: "verdict",
}

func renderSet(s nftSet) string {
	var b strings.Builder
	key := make([]string, len(s.key))
	for i, t := range s.key {
		key[i] = setTypeNames[t]
	}
	typ, kind := strings.Join(key, " . "), "set"
	if s.data != tNone {
		typ, kind = typ+" : "+setTypeNames[s.data], "map"
	}
	fmt.Fprintf(&b, "\t%s %s {\n\t\ttype %s\n", kind, s.name, typ)
	if len(s.elems) > 0 {
		fmt.Fprintf(&b, "\t\telements = { %s }\n", strings.Join(s.elemTexts(), ", "))
	}
	b.WriteString("\t}\n")
	return b.String()
}

// nftChainName names a chain in lqd's nft tables.
func nftChainName(c chainRef) string {
	switch c.kind {
	case kForward, kBrForward:
		return "forward"
	case kInput:
		return "input"
	case kOutput:
		return "output"
	case kPostrouting, kBrPost:
		return "postrouting"
	case kPrerouting:
		return "prerouting"
	case kEgress:
		return "egress"
	case kInBridged:
		return "ingress-bridged"
	case kInRouted:
		return "ingress-routed"
	}
	prefix := map[chainKind]string{
		kFrom: "from-", kTo: "to-", kHostIn: "host-in-", kHostOut: "host-out-",
		kNICIn: "nic-in-", kNICOut: "nic-out-", kSpoof: "spoof-", kMark: "mark-",
	}[c.kind]
	return prefix + c.subject
}

// baseChain is the hook of a base chain.
type baseChain struct {
	typ      string // filter, nat
	hook     string // as nft spells it
	priority int32
}

func nftBase(k chainKind) baseChain {
	switch k {
	case kForward:
		return baseChain{"filter", "forward", 0}
	case kInput:
		return baseChain{"filter", "input", 0}
	case kOutput:
		return baseChain{"filter", "output", 0}
	case kPostrouting:
		return baseChain{"nat", "postrouting", 100}
	case kPrerouting:
		return baseChain{"filter", "prerouting", -200}
	case kBrForward:
		// Before br_netfilter (0), which runs the inet forward hook for bridged IPv4.
		return baseChain{"filter", "forward", -100}
	case kBrPost:
		return baseChain{"filter", "postrouting", -200}
	}
	panic(fmt.Sprintf("firewall: chain kind %d is not a base chain", k))
}

// priorityName spells a priority as nft prints it.
func priorityName(f family, b baseChain) string {
	switch {
	case f == familyInet && b.priority == 0, f == familyBridge && b.priority == -200:
		return "filter"
	case f == familyInet && b.priority == 100 && b.typ == "nat":
		return "srcnat"
	}
	return fmt.Sprint(b.priority)
}

func renderChain(c chain, f family) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\tchain %s {\n", nftChainName(c.ref))
	if c.ref.base() {
		bc := nftBase(c.ref.kind)
		fmt.Fprintf(&b, "\t\ttype %s hook %s priority %s; policy accept;\n", bc.typ, bc.hook, priorityName(f, bc))
	}
	for _, rl := range c.rules {
		fmt.Fprintf(&b, "\t\t%s\n", renderRule(rl))
	}
	b.WriteString("\t}\n")
	return b.String()
}

func renderRule(rl rule) string {
	parts := make([]string, 0, len(rl.match)+1)
	for _, m := range rl.match {
		parts = append(parts, renderMatch(m))
	}
	return strings.Join(append(parts, renderVerdict(rl.verdict)), " ")
}

var selectorText = map[selector]string{
	selIIF: "iifname", selOIF: "oifname", selEtherSrc: "ether saddr", selARPSrcMAC: "arp saddr ether",
	selARPSrcIP: "arp saddr ip", selIPSrc: "ip saddr", selIPDst: "ip daddr", selMark: "meta mark",
}

func selectorsText(sel []selector) string {
	out := make([]string, len(sel))
	for i, s := range sel {
		out[i] = selectorText[s]
	}
	return strings.Join(out, " . ")
}

func renderMatch(m match) string {
	op := " "
	if m.neg {
		op = " != "
	}
	switch m.kind {
	case mIIF:
		return fmt.Sprintf("iifname%s%q", op, m.name)
	case mOIF:
		return fmt.Sprintf("oifname%s%q", op, m.name)
	case mCTEstRel:
		return "ct state established,related"
	case mCTInvalid:
		return "ct state invalid"
	case mSrc:
		return "ip saddr" + op + prefixText(m.prefix)
	case mDst:
		return "ip daddr" + op + prefixText(m.prefix)
	case mIPv4:
		return "meta nfproto ipv4"
	case mProto:
		return "meta l4proto " + string(m.proto)
	case mSport, mDport:
		dir := "dport"
		if m.kind == mSport {
			dir = "sport"
		}
		return fmt.Sprintf("%s %s %s", m.proto, dir, portRange(m, "-"))
	case mEtherType:
		return "ether type" + op + map[etherType]string{etherIPv4: "ip", etherARP: "arp", etherIPv6: "ip6"}[m.etype]
	case mARPSrcIP:
		return "arp saddr ip" + op + m.addr.String()
	case mLookup:
		return selectorsText(m.sel) + op + "@" + m.name
	}
	panic(fmt.Sprintf("firewall: match kind %d has no nft form", m.kind))
}

func prefixText(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

func renderVerdict(v verdict) string {
	switch v.kind {
	case vAccept:
		return "accept"
	case vDrop:
		return "drop"
	case vReturn:
		return "return"
	case vJump:
		return "jump " + nftChainName(v.target)
	case vGoto:
		return "goto " + nftChainName(v.target)
	case vSetMark:
		return fmt.Sprintf("meta mark set 0x%08x", v.mark)
	case vMap:
		return selectorsText(v.sel) + " vmap @" + v.set
	case vMasquerade:
		return "masquerade"
	}
	panic(fmt.Sprintf("firewall: verdict kind %d has no nft form", v.kind))
}
