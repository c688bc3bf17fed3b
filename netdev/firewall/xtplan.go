package firewall

import (
	"net/netip"
	"slices"
)

// nicPlan is the ruleset with one inbound (and, when restricted, one outbound) chain per
// NIC, as iptables needs it: without sets, group membership is spelled out per address.
type nicPlan struct {
	sets   []ipSet // one per group: the addresses of its member NICs
	filter []chain // IPv4 filtering: base chains forward, input, output, then the rest
	nat    []chain // postrouting masquerade
	l2     []chain // bridge level: prerouting, postrouting, spoof-*
}

type ipSet struct {
	group   string
	members []netip.Addr // sorted
}

// buildNICPlan compiles a State into the per-NIC plan. It validates s first.
func buildNICPlan(s State) (*nicPlan, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	p := &nicPlan{}
	groups := map[string]Group{}
	for _, g := range s.Groups {
		groups[g.Name] = g
	}
	for _, g := range s.Groups {
		set := ipSet{group: g.Name}
		for _, n := range s.NICs {
			if slices.Contains(n.Groups, g.Name) {
				set.members = append(set.members, n.IP)
			}
		}
		slices.SortFunc(set.members, func(a, b netip.Addr) int { return a.Compare(b) })
		p.sets = append(p.sets, set)
	}
	nicsOn := func(bridge string) []NIC {
		var out []NIC
		for _, n := range s.NICs {
			if n.Bridge == bridge {
				out = append(out, n)
			}
		}
		return out
	}

	// Base chains dispatch by bridge; all "from" rules come before all "to" rules, so
	// traffic between two managed bridges passes the source side first.
	fwd, in, out := chain{ref: chainRef{kind: kForward}}, chain{ref: chainRef{kind: kInput}}, chain{ref: chainRef{kind: kOutput}}
	post := chain{ref: chainRef{kind: kPostrouting}}
	for _, n := range s.Networks {
		fwd.rules = append(fwd.rules, r(gotoChain(kFrom, n.Bridge), iif(n.Bridge)))
		in.rules = append(in.rules, r(gotoChain(kHostIn, n.Bridge), iif(n.Bridge)))
		out.rules = append(out.rules, r(gotoChain(kHostOut, n.Bridge), oif(n.Bridge)))
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
	p.filter = append(p.filter, fwd, in, out)
	p.nat = append(p.nat, post)

	for _, n := range s.Networks {
		nics := nicsOn(n.Bridge)
		from := chain{ref: chainRef{kFrom, n.Bridge}, rules: stateful()}
		for _, c := range nics {
			if hasOut(c, groups) {
				from.rules = append(from.rules, r(jump(kNICOut, c.Tap), srcIP(c.IP)))
			}
		}
		for _, c := range nics {
			from.rules = append(from.rules, r(gotoChain(kNICIn, c.Tap), oif(n.Bridge), bridgedTo(c.Tap)))
		}
		for _, c := range nics {
			from.rules = append(from.rules, r(gotoChain(kNICIn, c.Tap), oif(n.Bridge), dstIP(c.IP)))
		}
		from.rules = append(from.rules, r(accept(), oif(n.Bridge)))
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
			for _, c := range nics {
				to.rules = append(to.rules, r(gotoChain(kNICIn, c.Tap), dstIP(c.IP)))
			}
		}
		to.rules = append(to.rules, r(drop()))

		hostIn := chain{ref: chainRef{kHostIn, n.Bridge}, rules: stateful()}
		hostIn.rules = append(hostIn.rules, r(accept(), sport(UDP, 68), dports(UDP, 67, 67)))
		if g := n.Gateway; g.IsValid() {
			hostIn.rules = append(hostIn.rules,
				r(accept(), dstIP(g), dports(UDP, 53, 53)),
				r(accept(), dstIP(g), dports(TCP, 53, 53)),
				r(accept(), dstIP(g), proto(ICMP)))
		}
		hostIn.rules = append(hostIn.rules, r(drop()))

		hostOut := chain{ref: chainRef{kHostOut, n.Bridge}, rules: stateful()}
		for _, c := range nics {
			hostOut.rules = append(hostOut.rules, r(gotoChain(kNICIn, c.Tap), dstIP(c.IP)))
		}
		hostOut.rules = append(hostOut.rules, r(accept()))
		p.filter = append(p.filter, from, to, hostIn, hostOut)
	}

	nets := map[string]Network{}
	for _, n := range s.Networks {
		nets[n.Bridge] = n
	}
	for _, c := range s.NICs {
		nicIn := chain{ref: chainRef{kNICIn, c.Tap}}
		if g := nets[c.Bridge].Gateway; g.IsValid() {
			nicIn.rules = append(nicIn.rules, r(accept(), srcIP(g), sport(UDP, 67), dports(UDP, 68, 68)))
		}
		for _, rl := range rulesOf(c, groups, In) {
			nicIn.rules = append(nicIn.rules, r(accept(), ruleMatch(rl)...))
		}
		nicIn.rules = append(nicIn.rules, r(drop()))
		p.filter = append(p.filter, nicIn)
		if hasOut(c, groups) {
			nicOut := chain{ref: chainRef{kNICOut, c.Tap}}
			for _, rl := range rulesOf(c, groups, Out) {
				nicOut.rules = append(nicOut.rules, r(ret(), ruleMatch(rl)...))
			}
			nicOut.rules = append(nicOut.rules, r(drop()))
			p.filter = append(p.filter, nicOut)
		}
	}

	// ebtables has no sets: PREROUTING looks for the frame's tap rule by rule. Only IPv6
	// frames (dropped) look through POSTROUTING's list; the rest leave at its first rule.
	pre := chain{ref: chainRef{kind: kPrerouting}}
	brPost := chain{ref: chainRef{kind: kBrPost}, rules: []rule{r(ret(), etherIsNot(etherIPv6))}}
	var spoofs []chain
	for _, c := range s.NICs {
		pre.rules = append(pre.rules, r(jump(kSpoof, c.Tap), iif(c.Tap)))
		brPost.rules = append(brPost.rules, r(drop(), oif(c.Tap), etherIs(etherIPv6)))
		spoofs = append(spoofs, chain{ref: chainRef{kSpoof, c.Tap}, rules: []rule{
			r(drop(), etherSrcNot(c.MAC)),
			r(drop(), arpMACNot(c.MAC)),
			r(ret(), arpIP(anyIPv4)),
			r(drop(), arpIPNot(c.IP)),
			r(ret(), etherIs(etherARP)),
			r(ret(), srcIP(anyIPv4), dstIP(broadcast), sport(UDP, 68), dports(UDP, 67, 67)),
			r(drop(), notSrcIP(c.IP)),
			r(ret(), etherIs(etherIPv4)),
			r(drop()),
		}})
	}
	p.l2 = append(append(p.l2, pre, brPost), spoofs...)
	return p, nil
}

// rulesOf returns the rules of direction dir from the NIC's groups, in group order.
func rulesOf(c NIC, groups map[string]Group, dir string) []Rule {
	var out []Rule
	for _, g := range c.Groups {
		for _, rl := range groups[g].Rules {
			if rl.Direction == dir {
				out = append(out, rl)
			}
		}
	}
	return out
}

func hasOut(c NIC, groups map[string]Group) bool { return len(rulesOf(c, groups, Out)) > 0 }

// chains returns all chains of the plan, for lookups.
func (p *nicPlan) chains() []chain {
	return slices.Concat(p.filter, p.nat, p.l2)
}

func (p *nicPlan) set(group string) ipSet {
	for _, s := range p.sets {
		if s.group == group {
			return s
		}
	}
	return ipSet{group: group}
}
