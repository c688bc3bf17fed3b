package firewall

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
)

// ErrInvalid is wrapped by every error Validate returns.
var ErrInvalid = errors.New("invalid firewall state")

// Proto is a rule's protocol.
type Proto string

// Protocols a Rule can name.
const (
	TCP  Proto = "tcp"
	UDP  Proto = "udp"
	ICMP Proto = "icmp"
	Any  Proto = "any"
)

// Rule directions.
const (
	In  = "in"  // to the NIC
	Out = "out" // from the NIC
)

// Rule allows one kind of traffic to ("in") or from ("out") the NICs of a group.
// The peer is CIDR, or the addresses of the NICs in Group, or any IPv4 address when both
// are empty. Ports are destination ports; 0 means any, PortTo 0 means PortFrom alone.
type Rule struct {
	Direction string
	Proto     Proto
	PortFrom  int
	PortTo    int
	CIDR      netip.Prefix
	Group     string
}

// Group is a security group: a named set of rules.
type Group struct {
	Name  string
	Rules []Rule
}

// NIC is a VM network interface: a tap on a managed bridge.
// Mark identifies the NIC in packet marks; 0 lets the firewall pick one (see Marks).
type NIC struct {
	Tap    string
	Bridge string
	MAC    net.HardwareAddr
	IP     netip.Addr
	Groups []string
	Mark   uint32
}

// Network is a managed bridge with its IPv4 subnet. Gateway is the host's address on the
// bridge (it serves DHCP and DNS); NAT masquerades the subnet out of Uplink, or out of any
// interface but a managed bridge when Uplink is empty.
type Network struct {
	Bridge  string
	Subnet  netip.Prefix
	Gateway netip.Addr
	NAT     bool
	Uplink  string
}

// State is everything the firewall enforces; Apply replaces the previous State wholesale.
type State struct {
	Networks []Network
	Groups   []Group
	NICs     []NIC
}

// Backend applies a State to the kernel.
type Backend interface {
	// Apply replaces whatever this back end applied before with s.
	Apply(ctx context.Context, s State) error
	// Remove deletes every table, chain and jump this back end owns.
	Remove(ctx context.Context) error
	// Name names the back end ("nft", "iptables").
	Name() string
}

var (
	groupNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	ifNameRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$`)
)

// Validate checks s and returns every problem found, each wrapping ErrInvalid.
func (s State) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...)))
	}

	nets := map[string]Network{}
	for i, n := range s.Networks {
		where := fmt.Sprintf("network %d (%s)", i, n.Bridge)
		if !ifNameRE.MatchString(n.Bridge) {
			bad("%s: bridge name %q is not a valid interface name", where, n.Bridge)
		}
		if _, dup := nets[n.Bridge]; dup {
			bad("%s: bridge %q listed twice", where, n.Bridge)
		}
		switch {
		case !n.Subnet.IsValid() || !n.Subnet.Addr().Is4():
			bad("%s: subnet %v is not an IPv4 prefix", where, n.Subnet)
		case n.Subnet != n.Subnet.Masked():
			bad("%s: subnet %v has host bits set (want %v)", where, n.Subnet, n.Subnet.Masked())
		case n.Gateway.IsValid() && !n.Subnet.Contains(n.Gateway):
			bad("%s: gateway %v is outside subnet %v", where, n.Gateway, n.Subnet)
		}
		if n.Uplink != "" && (!ifNameRE.MatchString(n.Uplink) || n.Uplink == n.Bridge) {
			bad("%s: uplink %q is not a valid interface other than the bridge", where, n.Uplink)
		}
		if n.Uplink != "" && !n.NAT {
			bad("%s: uplink %q set without NAT", where, n.Uplink)
		}
		for _, o := range s.Networks[:i] {
			if o.Subnet.IsValid() && n.Subnet.IsValid() && o.Subnet.Overlaps(n.Subnet) {
				bad("%s: subnet %v overlaps %v of bridge %s", where, n.Subnet, o.Subnet, o.Bridge)
			}
		}
		nets[n.Bridge] = n
	}

	groups := map[string]bool{}
	for _, g := range s.Groups {
		if !groupNameRE.MatchString(g.Name) {
			bad("group %q: name must be 1-64 of [A-Za-z0-9_.-], starting alphanumeric", g.Name)
		}
		if groups[g.Name] {
			bad("group %q: defined twice", g.Name)
		}
		groups[g.Name] = true
	}
	for _, g := range s.Groups {
		for i, r := range g.Rules {
			for _, p := range r.problems(groups) {
				bad("group %q rule %d: %s", g.Name, i, p)
			}
		}
	}

	taps, ips, marks := map[string]bool{}, map[netip.Addr]string{}, map[uint32]string{}
	for i, n := range s.NICs {
		where := fmt.Sprintf("nic %d (%s)", i, n.Tap)
		if !ifNameRE.MatchString(n.Tap) {
			bad("%s: tap name %q is not a valid interface name", where, n.Tap)
		}
		if taps[n.Tap] {
			bad("%s: tap %q listed twice", where, n.Tap)
		}
		taps[n.Tap] = true
		if _, isNet := nets[n.Tap]; isNet {
			bad("%s: tap %q is also a bridge", where, n.Tap)
		}
		nw, ok := nets[n.Bridge]
		if !ok {
			bad("%s: bridge %q is not a network", where, n.Bridge)
		}
		if len(n.MAC) != 6 || n.MAC[0]&1 != 0 || string(n.MAC) == "\x00\x00\x00\x00\x00\x00" {
			bad("%s: MAC %q is not a unicast Ethernet address", where, n.MAC.String())
		}
		switch {
		case !n.IP.IsValid() || !n.IP.Is4():
			bad("%s: IP %v is not an IPv4 address", where, n.IP)
		case ok && nw.Subnet.IsValid() && !nw.Subnet.Contains(n.IP):
			bad("%s: IP %v is outside subnet %v of %s", where, n.IP, nw.Subnet, n.Bridge)
		case ok && n.IP == nw.Gateway:
			bad("%s: IP %v is the gateway of %s", where, n.IP, n.Bridge)
		case ips[n.IP] != "":
			bad("%s: IP %v already belongs to %s", where, n.IP, ips[n.IP])
		default:
			ips[n.IP] = n.Tap
		}
		seen := map[string]bool{}
		for _, g := range n.Groups {
			if !groups[g] {
				bad("%s: group %q does not exist", where, g)
			}
			if seen[g] {
				bad("%s: group %q listed twice", where, g)
			}
			seen[g] = true
		}
		if n.Mark != 0 {
			if other, dup := marks[n.Mark]; dup {
				bad("%s: mark %#x already belongs to %s", where, n.Mark, other)
			}
			marks[n.Mark] = n.Tap
		}
	}
	return errors.Join(errs...)
}

// problems lists what is wrong with r, given the defined group names.
func (r Rule) problems(groups map[string]bool) []string {
	var out []string
	if r.Direction != In && r.Direction != Out {
		out = append(out, fmt.Sprintf("direction %q is neither %q nor %q", r.Direction, In, Out))
	}
	switch r.Proto {
	case TCP, UDP:
	case ICMP, Any:
		if r.PortFrom != 0 || r.PortTo != 0 {
			out = append(out, fmt.Sprintf("ports need tcp or udp, not %s", r.Proto))
		}
	default:
		out = append(out, fmt.Sprintf("protocol %q is not one of tcp, udp, icmp, any", r.Proto))
	}
	for _, p := range []int{r.PortFrom, r.PortTo} {
		if p < 0 || p > 65535 {
			out = append(out, fmt.Sprintf("port %d out of range 1..65535", p))
		}
	}
	if r.PortFrom == 0 && r.PortTo != 0 {
		out = append(out, fmt.Sprintf("port range end %d without a start", r.PortTo))
	}
	if r.PortTo != 0 && r.PortFrom > r.PortTo {
		out = append(out, fmt.Sprintf("port range %d-%d runs backwards", r.PortFrom, r.PortTo))
	}
	if r.CIDR.IsValid() && r.Group != "" {
		out = append(out, "both CIDR and group given")
	}
	if r.CIDR.IsValid() && !r.CIDR.Addr().Is4() {
		out = append(out, fmt.Sprintf("CIDR %v is not IPv4", r.CIDR))
	}
	if r.Group != "" && !groups[r.Group] {
		out = append(out, fmt.Sprintf("group %q does not exist", r.Group))
	}
	return out
}

// Marks returns the packet mark of each NIC by tap: its Mark, or for NICs with Mark 0 the
// smallest values from 1 up that no NIC claims, in NIC order. Call on a valid State.
func (s State) Marks() map[string]uint32 {
	used := map[uint32]bool{}
	for _, n := range s.NICs {
		if n.Mark != 0 {
			used[n.Mark] = true
		}
	}
	out := make(map[string]uint32, len(s.NICs))
	next := uint32(1)
	for _, n := range s.NICs {
		m := n.Mark
		if m == 0 {
			for used[next] {
				next++
			}
			m = next
			used[m] = true
		}
		out[n.Tap] = m
	}
	return out
}

// ports returns the rule's destination port range; (0, 0) means any.
func (r Rule) ports() (from, to int) {
	if r.PortTo == 0 {
		return r.PortFrom, r.PortFrom
	}
	return r.PortFrom, r.PortTo
}
