package firewall

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// nftPlan is the nftables ruleset. Per-NIC facts live in sets and maps, so the rules a
// packet passes depend on the networks and the groups' rules, never on the number of NICs:
// a packet is matched by hash lookups. The one per-NIC chain, mark-<tap>, is reached
// through a verdict map. An Apply is a few hundred netlink messages.
type nftPlan struct {
	inetSets   []nftSet
	inet       []chain // base chains first
	bridgeSets []nftSet
	bridge     []chain
}

// setType is the type of one field of a set's key.
type setType int

const (
	tNone setType = iota // a set's data: it is no map
	tIPv4
	tMark
	tIfname
	tEther
	tVerdict // only as a map's data
)

// nftSet is a named set, or a map when data is set.
type nftSet struct {
	name  string
	key   []setType // concatenated
	data  setType   // tVerdict: a verdict map
	elems []setElem
}

// setElem is one element: its key fields, in key order, then a map's value.
type setElem []elemField

type elemField struct {
	ip      netip.Addr
	mark    uint32
	name    string
	mac     net.HardwareAddr
	verdict verdict
}

// Set and map names. Groups get group-<name> (member addresses) and marks-<name> (member
// marks), only where some rule needs them.
const (
	setNICIPs     = "nic-ips"        // inet: every NIC's address
	setNICMarks   = "nic-marks"      // inet: every NIC's mark
	setRestricted = "egress-limited" // inet: addresses of NICs whose groups have out rules
	setTaps       = "taps"           // bridge: every NIC's tap
	setTapMACs    = "tap-macs"       // bridge: tap . its NIC's MAC
	setTapIPs     = "tap-ips"        // bridge: tap . its NIC's address
	mapTapMarks   = "tap-marks"      // bridge: tap : jump to the chain setting its NIC's mark
)

func groupSet(g string) string { return "group-" + g }
func markSet(g string) string  { return "marks-" + g }

// buildNFTPlan compiles a State into the nft ruleset. It validates s first.
func buildNFTPlan(s State) (*nftPlan, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	p := &nftPlan{}
	marks := s.Marks()
	groups := map[string]Group{}
	for _, g := range s.Groups {
		groups[g.Name] = g
	}
	restricted := func(n NIC) bool {
		for _, g := range n.Groups {
			if slices.ContainsFunc(groups[g].Rules, func(rl Rule) bool { return rl.Direction == Out }) {
				return true
			}
		}
		return false
	}

	// Rules, by direction, over all groups.
	var ingressBridged, ingressRouted, egress []rule
	for _, n := range s.Networks {
		if n.Gateway.IsValid() {
			ingressRouted = append(ingressRouted, r(accept(), srcIP(n.Gateway), dst(n.Subnet), sport(UDP, 67), dports(UDP, 68, 68)))
		}
	}
	needIPs, needMarks := map[string]bool{}, map[string]bool{}
	for _, g := range s.Groups {
		for _, rl := range g.Rules {
			m := ruleMatch(rl)
			for _, x := range m {
				if x.kind == mSrcGroup || x.kind == mDstGroup {
					needIPs[x.name] = true
				}
			}
			m = groupsAsSets(m)
			if rl.Direction == Out {
				needIPs[g.Name] = true
				egress = append(egress, r(ret(), append([]match{in(groupSet(g.Name), selIPSrc)}, m...)...))
				continue
			}
			needIPs[g.Name], needMarks[g.Name] = true, true
			ingressBridged = append(ingressBridged, r(accept(), append([]match{in(markSet(g.Name), selMark)}, m...)...))
			// The destination lookup already makes the rule IPv4-only.
			m = slices.DeleteFunc(m, func(x match) bool { return x.kind == mIPv4 })
			ingressRouted = append(ingressRouted, r(accept(), append([]match{in(groupSet(g.Name), selIPDst)}, m...)...))
		}
	}
	ingressBridged = append(ingressBridged, r(drop()))
	ingressRouted = append(ingressRouted, r(drop()))
	egress = append(egress, r(drop()))

	// inet sets.
	ipOf := func(n NIC) elemField { return elemField{ip: n.IP} }
	markOf := func(n NIC) elemField { return elemField{mark: marks[n.Tap]} }
	p.inetSets = append(p.inetSets,
		nicSet(setNICIPs, []setType{tIPv4}, s.NICs, nil, ipOf),
		nicSet(setNICMarks, []setType{tMark}, s.NICs, nil, markOf))
	anyRestricted := slices.ContainsFunc(s.NICs, restricted)
	if anyRestricted {
		p.inetSets = append(p.inetSets, nicSet(setRestricted, []setType{tIPv4}, s.NICs, restricted, ipOf))
	}
	for _, g := range s.Groups {
		member := func(n NIC) bool { return slices.Contains(n.Groups, g.Name) }
		if needIPs[g.Name] {
			p.inetSets = append(p.inetSets, nicSet(groupSet(g.Name), []setType{tIPv4}, s.NICs, member, ipOf))
		}
		if needMarks[g.Name] {
			p.inetSets = append(p.inetSets, nicSet(markSet(g.Name), []setType{tMark}, s.NICs, member, markOf))
		}
	}

	// inet base chains: all "from" dispatches before all "to" ones, so traffic between two
	// managed bridges passes the source side first.
	fwd, input, output := chain{ref: chainRef{kind: kForward}}, chain{ref: chainRef{kind: kInput}}, chain{ref: chainRef{kind: kOutput}}
	post := chain{ref: chainRef{kind: kPostrouting}}
	for _, n := range s.Networks {
		fwd.rules = append(fwd.rules, r(gotoChain(kFrom, n.Bridge), iif(n.Bridge)))
		input.rules = append(input.rules, r(gotoChain(kHostIn, n.Bridge), iif(n.Bridge)))
		output.rules = append(output.rules, r(gotoChain(kHostOut, n.Bridge), oif(n.Bridge)))
		post.rules = append(post.rules, r(ret(), oif(n.Bridge)))
	}
	for _, n := range s.Networks {
		fwd.rules = append(fwd.rules, r(gotoChain(kTo, n.Bridge), oif(n.Bridge)))
	}
	for _, n := range s.Networks {
		if n.NAT {
			post.rules = append(post.rules, r(verdict{kind: vMasquerade}, natOut(n)...))
		}
	}
	p.inet = append(p.inet, fwd, input, output, post)

	for _, n := range s.Networks {
		from := chain{ref: chainRef{kFrom, n.Bridge}, rules: stateful()}
		if anyRestricted {
			from.rules = append(from.rules, r(jump(kEgress, ""), in(setRestricted, selIPSrc)))
		}
		from.rules = append(from.rules,
			r(gotoChain(kInBridged, ""), oif(n.Bridge), in(setNICMarks, selMark)),
			r(gotoChain(kInRouted, ""), oif(n.Bridge), in(setNICIPs, selIPDst)), // hairpin through the gateway
			r(accept(), oif(n.Bridge)))
		if n.NAT {
			for _, o := range s.Networks {
				if o.Bridge != n.Bridge {
					from.rules = append(from.rules, r(gotoChain(kTo, o.Bridge), oif(o.Bridge)))
				}
			}
			from.rules = append(from.rules, r(accept(), natOut(n)...))
		}
		from.rules = append(from.rules, r(drop()))

		to := chain{ref: chainRef{kTo, n.Bridge}, rules: stateful()}
		if n.NAT {
			to.rules = append(to.rules, r(gotoChain(kInRouted, ""), in(setNICIPs, selIPDst)))
		}
		to.rules = append(to.rules, r(drop()))

		hostOut := chain{ref: chainRef{kHostOut, n.Bridge}, rules: stateful()}
		hostOut.rules = append(hostOut.rules,
			r(gotoChain(kInRouted, ""), in(setNICIPs, selIPDst)),
			r(accept()))
		p.inet = append(p.inet, from, to, hostIn(n), hostOut)
	}
	if anyRestricted {
		p.inet = append(p.inet, chain{ref: chainRef{kind: kEgress}, rules: egress})
	}
	p.inet = append(p.inet,
		chain{ref: chainRef{kind: kInBridged}, rules: ingressBridged},
		chain{ref: chainRef{kind: kInRouted}, rules: ingressRouted})

	// Bridge table: anti-spoofing on frames from taps, marks on frames to taps, no IPv6.
	tapOf := func(n NIC) elemField { return elemField{name: n.Tap} }
	p.bridgeSets = []nftSet{
		nicSet(setTaps, []setType{tIfname}, s.NICs, nil, tapOf),
		nicSet(setTapMACs, []setType{tIfname, tEther}, s.NICs, nil, tapOf, func(n NIC) elemField { return elemField{mac: n.MAC} }),
		nicSet(setTapIPs, []setType{tIfname, tIPv4}, s.NICs, nil, tapOf, ipOf),
	}
	// Marks are set by one hash lookup per frame: a verdict map from the tap to a chain of
	// one rule per NIC. (A data map, meta mark set oifname map { tap : mark }, would do
	// without the chains, but google/nftables cannot record its values' byte order, so nft
	// would list every mark byte-swapped.)
	tapMarks := nicSet(mapTapMarks, []setType{tIfname}, s.NICs, nil, tapOf,
		func(n NIC) elemField { return elemField{verdict: jump(kMark, n.Tap)} })
	tapMarks.data = tVerdict
	p.bridgeSets = append(p.bridgeSets, tapMarks)
	p.bridge = []chain{
		{ref: chainRef{kind: kPrerouting}, rules: []rule{
			r(accept(), notIn(setTaps, selIIF)),
			r(drop(), notIn(setTapMACs, selIIF, selEtherSrc)),
			r(drop(), notIn(setTapMACs, selIIF, selARPSrcMAC)),
			r(accept(), arpIP(anyIPv4)), // RFC 5227 probe
			r(drop(), notIn(setTapIPs, selIIF, selARPSrcIP)),
			r(accept(), etherIs(etherARP)),
			r(accept(), srcIP(anyIPv4), dstIP(broadcast), sport(UDP, 68), dports(UDP, 67, 67)), // DHCP discovery
			r(drop(), notIn(setTapIPs, selIIF, selIPSrc)),
			r(accept(), etherIs(etherIPv4)),
			r(drop()),
		}},
		{ref: chainRef{kind: kBrForward}, rules: []rule{r(vmap(mapTapMarks, selOIF))}},
		{ref: chainRef{kind: kBrPost}, rules: []rule{r(drop(), in(setTaps, selOIF), etherIs(etherIPv6))}},
	}
	for _, n := range s.NICs {
		p.bridge = append(p.bridge, chain{ref: chainRef{kMark, n.Tap}, rules: []rule{r(verdict{kind: vSetMark, mark: marks[n.Tap]})}})
	}
	return p, nil
}

// hostIn guards the host against a managed bridge: DHCP, and DNS and ICMP to the gateway.
func hostIn(n Network) chain {
	c := chain{ref: chainRef{kHostIn, n.Bridge}, rules: stateful()}
	c.rules = append(c.rules, r(accept(), sport(UDP, 68), dports(UDP, 67, 67)))
	if g := n.Gateway; g.IsValid() {
		c.rules = append(c.rules,
			r(accept(), dstIP(g), dports(UDP, 53, 53)),
			r(accept(), dstIP(g), dports(TCP, 53, 53)),
			r(accept(), dstIP(g), proto(ICMP)))
	}
	c.rules = append(c.rules, r(drop()))
	return c
}

// groupsAsSets turns group peer matches into lookups in the groups' address sets.
func groupsAsSets(m []match) []match {
	out := slices.Clone(m)
	for i, x := range out {
		switch x.kind {
		case mSrcGroup:
			out[i] = in(groupSet(x.name), selIPSrc)
		case mDstGroup:
			out[i] = in(groupSet(x.name), selIPDst)
		}
	}
	return out
}

// nicSet builds a set over the NICs that pass keep (all when nil): each element is the
// fields, in order.
func nicSet(name string, key []setType, nics []NIC, keep func(NIC) bool, fields ...func(NIC) elemField) nftSet {
	s := nftSet{name: name, key: key}
	for _, n := range nics {
		if keep != nil && !keep(n) {
			continue
		}
		e := make(setElem, len(fields))
		for i, f := range fields {
			e[i] = f(n)
		}
		s.elems = append(s.elems, e)
	}
	return s
}

func (f elemField) text(t setType) string {
	switch t {
	case tIPv4:
		return f.ip.String()
	case tMark:
		return fmt.Sprintf("0x%08x", f.mark)
	case tIfname:
		return fmt.Sprintf("%q", f.name)
	case tEther:
		return f.mac.String()
	case tVerdict:
		return renderVerdict(f.verdict)
	}
	panic(fmt.Sprintf("firewall: unknown set type %d", t))
}

// elemTexts renders the elements as nft prints them, sorted.
func (s nftSet) elemTexts() []string {
	out := make([]string, len(s.elems))
	for i, e := range s.elems {
		parts := make([]string, len(s.key))
		for j, t := range s.key {
			parts[j] = e[j].text(t)
		}
		out[i] = strings.Join(parts, " . ")
		if s.data != tNone {
			out[i] += " : " + e[len(s.key)].text(s.data)
		}
	}
	slices.SortFunc(out, cmp.Compare)
	return out
}
