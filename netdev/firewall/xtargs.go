package firewall

import (
	"fmt"
	"strings"
)

// xtChain is one chain of the iptables back end, with its rules as arguments in the form
// `iptables -S` / `ebtables -L` print them back (so unchanged chains can be skipped).
type xtChain struct {
	tool  string // "iptables" or "ebtables"
	table string
	name  string
	from  string // built-in chain that jumps here; "" for chains reached from ours
	rules [][]string
}

// xtPlace says where a plan chain goes: iptables for layer 3, ebtables for layer 2, and
// which built-in chain jumps to it.
func xtPlace(k chainKind) (tool, table, from string) {
	switch k {
	case kForward:
		return "iptables", "filter", "FORWARD"
	case kInput:
		return "iptables", "filter", "INPUT"
	case kOutput:
		return "iptables", "filter", "OUTPUT"
	case kPostrouting:
		return "iptables", "nat", "POSTROUTING"
	case kPrerouting:
		return "ebtables", "nat", "PREROUTING"
	case kBrPost:
		return "ebtables", "nat", "POSTROUTING"
	case kSpoof:
		return "ebtables", "nat", ""
	}
	return "iptables", "filter", ""
}

// xtChainName names a chain of the iptables back end; it fits iptables' 28 characters
// for prefixes of up to 9 characters.
func xtChainName(prefix string, c chainRef) string {
	short := map[chainKind]string{
		kForward: "FWD", kInput: "IN", kOutput: "OUT", kPostrouting: "NAT", kPrerouting: "PRE",
		kBrPost: "POST", kFrom: "F-", kTo: "T-", kHostIn: "HI-", kHostOut: "HO-",
		kNICIn: "I-", kNICOut: "O-", kSpoof: "S-",
	}[c.kind]
	return prefix + "-" + short + c.subject
}

// xtPlan translates the plan for iptables and ebtables.
func xtPlan(p *nicPlan, prefix string) []xtChain {
	var out []xtChain
	for _, c := range p.chains() {
		tool, table, from := xtPlace(c.ref.kind)
		xc := xtChain{tool: tool, table: table, name: xtChainName(prefix, c.ref), from: from}
		for _, rl := range c.rules {
			if tool == "ebtables" {
				xc.rules = append(xc.rules, ebRule(rl, prefix))
				continue
			}
			xc.rules = append(xc.rules, iptRules(p, rl, prefix)...)
		}
		out = append(out, xc)
	}
	return out
}

// iptRules translates one rule; a group match expands to one rule per member address
// (none for an empty group).
func iptRules(p *nicPlan, rl rule, prefix string) [][]string {
	for i, m := range rl.match {
		if m.kind != mSrcGroup && m.kind != mDstGroup {
			continue
		}
		var out [][]string
		for _, a := range p.set(m.name).members {
			one := rule{match: append([]match{}, rl.match...), verdict: rl.verdict}
			one.match[i] = srcIP(a)
			if m.kind == mDstGroup {
				one.match[i] = dstIP(a)
			}
			out = append(out, iptRules(p, one, prefix)...)
		}
		return out
	}
	var a []string
	not := func(m match) {
		if m.neg {
			a = append(a, "!")
		}
	}
	// iptables -S prints addresses and interfaces first, then -p, then matches.
	for _, m := range rl.match {
		switch m.kind {
		case mSrc:
			not(m)
			a = append(a, "-s", m.prefix.String())
		case mDst:
			not(m)
			a = append(a, "-d", m.prefix.String())
		}
	}
	for _, m := range rl.match {
		switch m.kind {
		case mIIF:
			not(m)
			a = append(a, "-i", m.name)
		case mOIF:
			not(m)
			a = append(a, "-o", m.name)
		}
	}
	for _, m := range rl.match {
		if m.kind == mProto || m.kind == mSport || m.kind == mDport {
			a = append(a, "-p", string(m.proto))
			break
		}
	}
	var ports []string
	var portProto Proto
	for _, m := range rl.match {
		switch m.kind {
		case mCTEstRel:
			a = append(a, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED")
		case mCTInvalid:
			a = append(a, "-m", "conntrack", "--ctstate", "INVALID")
		case mBridgedTo:
			a = append(a, "-m", "physdev", "--physdev-out", m.name, "--physdev-is-bridged")
		case mSport:
			portProto = m.proto
			ports = append(ports, "--sport", portRange(m, ":"))
		case mDport:
			portProto = m.proto
			ports = append(ports, "--dport", portRange(m, ":"))
		}
	}
	if len(ports) > 0 {
		a = append(append(a, "-m", string(portProto)), ports...)
	}
	return [][]string{append(a, xtVerdict(rl.verdict, prefix)...)}
}

func portRange(m match, sep string) string {
	if m.from == m.to {
		return fmt.Sprint(m.from)
	}
	return fmt.Sprintf("%d%s%d", m.from, sep, m.to)
}

func xtVerdict(v verdict, prefix string) []string {
	switch v.kind {
	case vAccept:
		return []string{"-j", "ACCEPT"}
	case vDrop:
		return []string{"-j", "DROP"}
	case vReturn:
		return []string{"-j", "RETURN"}
	case vJump:
		return []string{"-j", xtChainName(prefix, v.target)}
	case vGoto:
		return []string{"-g", xtChainName(prefix, v.target)}
	case vMasquerade:
		return []string{"-j", "MASQUERADE"}
	}
	panic(fmt.Sprintf("firewall: verdict kind %d has no iptables form", v.kind))
}

// ebRule translates a layer 2 rule into ebtables arguments.
func ebRule(rl rule, prefix string) []string {
	var a []string
	neg := func(m match) []string {
		if m.neg {
			return []string{"!"}
		}
		return nil
	}
	var proto []string
	for _, m := range rl.match {
		switch m.kind {
		case mEtherType:
			proto = append(neg(m), map[etherType]string{etherIPv4: "IPv4", etherARP: "ARP", etherIPv6: "IPv6"}[m.etype])
		case mARPSrcMAC, mARPSrcIP:
			proto = []string{"ARP"}
		case mSrc, mDst, mSport, mDport:
			proto = []string{"IPv4"}
		}
	}
	if proto != nil {
		a = append(append(a, "-p"), proto...)
	}
	for _, m := range rl.match {
		switch m.kind {
		case mIIF:
			a = append(a, "-i")
			a = append(append(a, neg(m)...), m.name)
		case mOIF:
			a = append(a, "-o")
			a = append(append(a, neg(m)...), m.name)
		case mEtherSrc:
			a = append(a, "-s")
			a = append(append(a, neg(m)...), m.mac.String())
		}
	}
	var l4 []string
	for _, m := range rl.match {
		switch m.kind {
		case mSrc:
			a = append(a, "--ip-src")
			a = append(append(a, neg(m)...), prefixText(m.prefix))
		case mDst:
			a = append(a, "--ip-dst")
			a = append(append(a, neg(m)...), prefixText(m.prefix))
		case mARPSrcIP:
			a = append(a, "--arp-ip-src")
			a = append(append(a, neg(m)...), m.addr.String())
		case mARPSrcMAC:
			a = append(a, "--arp-mac-src")
			a = append(append(a, neg(m)...), m.mac.String())
		case mSport:
			l4 = append([]string{"--ip-proto", string(m.proto)}, append(l4, "--ip-sport", portRange(m, ":"))...)
		case mDport:
			if len(l4) == 0 {
				l4 = []string{"--ip-proto", string(m.proto)}
			}
			l4 = append(l4, "--ip-dport", portRange(m, ":"))
		case mIIF, mOIF, mEtherSrc, mEtherType:
		default:
			panic(fmt.Sprintf("firewall: match kind %d has no ebtables form", m.kind))
		}
	}
	a = append(a, l4...)
	switch rl.verdict.kind {
	case vJump:
		return append(a, "-j", xtChainName(prefix, rl.verdict.target))
	case vAccept, vDrop, vReturn:
		return append(a, xtVerdict(rl.verdict, prefix)...)
	}
	panic(fmt.Sprintf("firewall: verdict kind %d has no ebtables form", rl.verdict.kind))
}

// renderIPTables prints the iptables back end's chains for the golden tests.
func renderIPTables(p *nicPlan, prefix string) string {
	var b strings.Builder
	for _, c := range xtPlan(p, prefix) {
		fmt.Fprintf(&b, "%s -t %s -N %s", c.tool, c.table, c.name)
		if c.from != "" {
			fmt.Fprintf(&b, "  # from %s", c.from)
		}
		b.WriteString("\n")
		for _, r := range c.rules {
			fmt.Fprintf(&b, "-A %s %s\n", c.name, strings.Join(r, " "))
		}
	}
	return b.String()
}
