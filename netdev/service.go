package netdev

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/limiquantix/limiquantix/netdev/firewall"
	"github.com/limiquantix/limiquantix/store"
)

// ErrNotFound: a network or security group that a request names does not exist.
var ErrNotFound = errors.New("not found")

// ErrInUse: a network or group cannot be deleted while something uses it.
var ErrInUse = errors.New("in use")

// Service runs the host's managed networks. The database says what should exist; the
// service makes bridges, dnsmasq and the firewall match it, after every change and
// periodically (someone flushing the ruleset or deleting a bridge is repaired).
type Service struct {
	db       *store.DB
	links    *Links
	dns      *DNSMasq
	fw       firewall.Backend
	stateDir string
	domain   string
	log      *slog.Logger

	mu sync.Mutex // one change at a time: allocation and apply see a consistent database
}

// ServiceConfig wires a Service.
type ServiceConfig struct {
	DB       *store.DB
	Links    *Links
	DNSMasq  *DNSMasq
	Firewall firewall.Backend
	StateDir string // <data-dir>/networks: one directory per network for dnsmasq
	Domain   string // DNS domain for VM names, e.g. "lq"
	Log      *slog.Logger
}

// NewService returns a Service; call Reconcile before use.
func NewService(c ServiceConfig) *Service {
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return &Service{db: c.DB, links: c.Links, dns: c.DNSMasq, fw: c.Firewall, stateDir: c.StateDir, domain: c.Domain, log: c.Log}
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// NetworkSpec asks for a managed network.
type NetworkSpec struct {
	Name    string
	Subnet  netip.Prefix
	Gateway netip.Addr // zero: the subnet's first address
	NAT     bool
}

// Network is a managed network as callers see it.
type Network struct {
	store.Network
	NICs int
}

// CreateNetwork validates and records a network, then makes its bridge, dnsmasq and
// firewall rules. On any failure nothing of it is left.
func (s *Service) CreateNetwork(ctx context.Context, spec NetworkSpec) (Network, error) {
	if !nameRE.MatchString(spec.Name) {
		return Network{}, invalid("network name %q: must match ^[a-z0-9][a-z0-9-]{0,62}$", spec.Name)
	}
	if !spec.Subnet.IsValid() {
		return Network{}, invalid("network %q: a subnet is required (e.g. 10.20.0.0/24)", spec.Name)
	}
	if !spec.Gateway.IsValid() {
		spec.Gateway = spec.Subnet.Masked().Addr().Next()
	}
	pool := Pool{Subnet: spec.Subnet, Gateway: spec.Gateway}
	if err := pool.Validate(); err != nil {
		return Network{}, fmt.Errorf("network %q: %w", spec.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	nets, err := s.db.Networks(ctx)
	if err != nil {
		return Network{}, err
	}
	for _, n := range nets {
		if n.Name == spec.Name {
			return Network{}, fmt.Errorf("%w: network %q already exists", ErrConflict, spec.Name)
		}
		if p, err := netip.ParsePrefix(n.Subnet); err == nil && Overlaps(p, spec.Subnet) {
			return Network{}, fmt.Errorf("%w: subnet %s overlaps network %q (%s)", ErrConflict, spec.Subnet, n.Name, n.Subnet)
		}
	}
	if err := s.overlapsHostRoutes(spec.Subnet); err != nil {
		return Network{}, err
	}
	n := store.Network{Name: spec.Name, Bridge: BridgeName(spec.Name), Subnet: spec.Subnet.String(),
		Gateway: spec.Gateway.String(), NAT: spec.NAT, MAC: HostMAC("bridge:" + spec.Name).String()}
	if err := s.db.CreateNetwork(ctx, n); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return Network{}, fmt.Errorf("%w: network %q already exists", ErrConflict, spec.Name)
		}
		return Network{}, err
	}
	err = s.ensureNetwork(ctx, n)
	if err == nil {
		err = s.applyLocked(ctx)
	}
	if err != nil {
		bg := context.WithoutCancel(ctx)
		s.teardown(bg, n)
		s.db.DeleteNetwork(bg, n.Name)
		s.applyLocked(bg)
		return Network{}, fmt.Errorf("network %q: %w", spec.Name, err)
	}
	return Network{Network: n}, nil
}

// overlapsHostRoutes refuses a subnet that the host already reaches through an interface
// lqd does not own: bridging it would cut the host off from that network.
func (s *Service) overlapsHostRoutes(p netip.Prefix) error {
	addrs, err := s.links.hostAddrs()
	if err != nil {
		return nil // best effort: the database check already ran
	}
	for ifname, pfxs := range addrs {
		if strings.HasPrefix(ifname, BridgePrefix) {
			continue
		}
		for _, pfx := range pfxs {
			if Overlaps(pfx.Masked(), p) {
				return fmt.Errorf("%w: subnet %s overlaps %s on host interface %s", ErrConflict, p, pfx, ifname)
			}
		}
	}
	return nil
}

// DeleteNetwork removes a network that no NIC uses, with its bridge, dnsmasq and rules.
func (s *Service) DeleteNetwork(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	nets, err := s.db.Networks(ctx)
	if err != nil {
		return err
	}
	var n *store.Network
	for i := range nets {
		if nets[i].Name == name {
			n = &nets[i]
		}
	}
	if n == nil {
		return fmt.Errorf("%w: network %q", ErrNotFound, name)
	}
	if err := s.db.DeleteNetwork(ctx, name); err != nil {
		if errors.Is(err, store.ErrInUse) {
			return fmt.Errorf("%w: network %q has NICs; delete or move their VMs first", ErrInUse, name)
		}
		return err
	}
	s.teardown(ctx, *n)
	return s.applyLocked(ctx)
}

// Networks lists the managed networks with how many NICs each has.
func (s *Service) Networks(ctx context.Context) ([]Network, error) {
	nets, err := s.db.Networks(ctx)
	if err != nil {
		return nil, err
	}
	nics, err := s.db.NICs(ctx)
	if err != nil {
		return nil, err
	}
	count := map[string]int{}
	for _, n := range nics {
		count[n.Network]++
	}
	out := make([]Network, 0, len(nets))
	for _, n := range nets {
		out = append(out, Network{Network: n, NICs: count[n.Name]})
	}
	return out, nil
}

// DefaultNetwork is the network VMs join when they ask for none: "default" if it exists.
func (s *Service) DefaultNetwork(ctx context.Context) string {
	nets, err := s.db.Networks(ctx)
	if err != nil {
		return ""
	}
	for _, n := range nets {
		if n.Name == "default" {
			return n.Name
		}
	}
	return ""
}

// EnsureDefault creates the "default" NAT network on subnet if the host has no networks at
// all (first start). An empty subnet disables it.
func (s *Service) EnsureDefault(ctx context.Context, subnet string) error {
	if subnet == "" || subnet == "none" {
		return nil
	}
	nets, err := s.db.Networks(ctx)
	if err != nil || len(nets) > 0 {
		return err
	}
	p, err := netip.ParsePrefix(subnet)
	if err != nil {
		return invalid("default network subnet %q: %v", subnet, err)
	}
	_, err = s.CreateNetwork(ctx, NetworkSpec{Name: "default", Subnet: p, NAT: true})
	return err
}

// RuleSpec is a security-group rule as a user writes it.
type RuleSpec struct {
	Direction   string // in (default) | out
	Proto       string // tcp | udp | icmp | any
	PortFrom    int
	PortTo      int
	CIDR        string
	RemoteGroup string
}

// CreateGroup records an empty security group (everything inbound denied for its NICs).
func (s *Service) CreateGroup(ctx context.Context, name string) error {
	if !nameRE.MatchString(name) {
		return invalid("security group name %q: must match ^[a-z0-9][a-z0-9-]{0,62}$", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.db.CreateSecurityGroup(ctx, name); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("%w: security group %q already exists", ErrConflict, name)
		}
		return err
	}
	return nil
}

// DeleteGroup removes a group that no NIC and no other group's rule uses.
func (s *Service) DeleteGroup(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.db.DeleteSecurityGroup(ctx, name); err != nil {
		switch {
		case errors.Is(err, store.ErrInUse):
			return fmt.Errorf("%w: security group %q is used by NICs or by other groups' rules", ErrInUse, name)
		case errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("%w: security group %q", ErrNotFound, name)
		}
		return err
	}
	return s.applyLocked(ctx)
}

// Groups lists the security groups with their rules.
func (s *Service) Groups(ctx context.Context) ([]store.SecurityGroup, error) {
	return s.db.SecurityGroups(ctx)
}

// AddRule adds a rule to a group and applies it to every NIC in the group at once. If the
// firewall refuses the new ruleset, the rule is taken back and the old ruleset stays.
func (s *Service) AddRule(ctx context.Context, group string, r RuleSpec) (store.Rule, error) {
	rule, err := checkRule(group, r)
	if err != nil {
		return store.Rule{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	groups, err := s.db.SecurityGroups(ctx)
	if err != nil {
		return store.Rule{}, err
	}
	found, remoteFound := false, rule.RemoteGroup == ""
	for _, g := range groups {
		found = found || g.Name == group
		remoteFound = remoteFound || g.Name == rule.RemoteGroup
	}
	if !found {
		return store.Rule{}, fmt.Errorf("%w: security group %q", ErrNotFound, group)
	}
	if !remoteFound {
		return store.Rule{}, fmt.Errorf("%w: security group %q (the rule's --from-group)", ErrNotFound, rule.RemoteGroup)
	}
	if err := s.db.AddRule(ctx, rule); err != nil {
		return store.Rule{}, err
	}
	if err := s.applyLocked(ctx); err != nil {
		s.db.DeleteRule(context.WithoutCancel(ctx), group, rule.ID)
		return store.Rule{}, err
	}
	return rule, nil
}

// ReplaceRules sets a group's whole rule set and applies it; on failure the old set stays.
func (s *Service) ReplaceRules(ctx context.Context, group string, specs []RuleSpec) ([]store.Rule, error) {
	rules := make([]store.Rule, 0, len(specs))
	for i, sp := range specs {
		r, err := checkRule(group, sp)
		if err != nil {
			return nil, fmt.Errorf("rule %d: %w", i+1, err)
		}
		rules = append(rules, r)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	groups, err := s.db.SecurityGroups(ctx)
	if err != nil {
		return nil, err
	}
	var old *store.SecurityGroup
	for i := range groups {
		if groups[i].Name == group {
			old = &groups[i]
		}
	}
	if old == nil {
		return nil, fmt.Errorf("%w: security group %q", ErrNotFound, group)
	}
	if err := s.db.ReplaceRules(ctx, group, rules); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%w: %v", ErrNotFound, err)
		}
		return nil, err
	}
	if err := s.applyLocked(ctx); err != nil {
		s.db.ReplaceRules(context.WithoutCancel(ctx), group, old.Rules)
		return nil, err
	}
	return rules, nil
}

// DeleteRule removes a rule and applies the change.
func (s *Service) DeleteRule(ctx context.Context, group, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.db.DeleteRule(ctx, group, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: rule %s in security group %q", ErrNotFound, id, group)
		}
		return err
	}
	return s.applyLocked(ctx)
}

func checkRule(group string, r RuleSpec) (store.Rule, error) {
	rule := store.Rule{Group: group, Direction: r.Direction, Proto: r.Proto, PortFrom: r.PortFrom, PortTo: r.PortTo, RemoteGroup: r.RemoteGroup}
	if rule.Direction == "" {
		rule.Direction = firewall.In
	}
	if rule.Direction != firewall.In && rule.Direction != firewall.Out {
		return rule, invalid("direction %q: must be in or out", r.Direction)
	}
	switch firewall.Proto(rule.Proto) {
	case firewall.TCP, firewall.UDP:
		if rule.PortFrom != 0 || rule.PortTo != 0 {
			if rule.PortTo == 0 {
				rule.PortTo = rule.PortFrom
			}
			if rule.PortFrom < 1 || rule.PortFrom > 65535 || rule.PortTo < 1 || rule.PortTo > 65535 {
				return rule, invalid("port %d-%d: ports are 1 to 65535", r.PortFrom, r.PortTo)
			}
			if rule.PortFrom > rule.PortTo {
				return rule, invalid("port range %d-%d: the first port is above the last", r.PortFrom, r.PortTo)
			}
		}
	case firewall.ICMP, firewall.Any:
		if rule.PortFrom != 0 || rule.PortTo != 0 {
			return rule, invalid("ports apply to tcp and udp only, not %s", rule.Proto)
		}
	default:
		return rule, invalid("protocol %q: must be tcp, udp, icmp or any", r.Proto)
	}
	switch {
	case r.CIDR != "" && r.RemoteGroup != "":
		return rule, invalid("a rule takes a CIDR or a group, not both")
	case r.CIDR != "":
		p, err := netip.ParsePrefix(r.CIDR)
		if err != nil || !p.Addr().Is4() {
			return rule, invalid("cidr %q: want an IPv4 prefix such as 10.0.0.0/8", r.CIDR)
		}
		rule.CIDR = p.Masked().String()
	case r.RemoteGroup == "":
		rule.CIDR = "0.0.0.0/0"
	}
	id := make([]byte, 4)
	rand.Read(id)
	rule.ID = hex.EncodeToString(id)
	return rule, nil
}

// NICRequest asks for a NIC on a network.
type NICRequest struct {
	Network string
	IP      string
	Groups  []string
}

// NIC is an allocated NIC.
type NIC struct {
	Index     int
	Network   string
	MAC       string
	IP        string
	Tap       string
	Groups    []string
	PrefixLen int    // the network's prefix length
	Gateway   string // the network's gateway, also its DNS server
	Domain    string // DNS search domain
}

// AllocateNICs assigns MACs, addresses and taps to a VM's NICs and records them in one
// transaction, then updates DHCP and the firewall. All or nothing.
func (s *Service) AllocateNICs(ctx context.Context, vmUUID, vmName string, first int, reqs []NICRequest) ([]NIC, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	nets, err := s.db.Networks(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]store.Network{}
	for _, n := range nets {
		byName[n.Name] = n
	}
	existing, err := s.db.NICs(ctx)
	if err != nil {
		return nil, err
	}
	groups, err := s.db.SecurityGroups(ctx)
	if err != nil {
		return nil, err
	}
	haveGroup := map[string]bool{}
	for _, g := range groups {
		haveGroup[g.Name] = true
	}
	used := map[string]map[netip.Addr]bool{}
	macs := map[string]bool{}
	for _, n := range existing {
		if used[n.Network] == nil {
			used[n.Network] = map[netip.Addr]bool{}
		}
		if a, err := netip.ParseAddr(n.IP); err == nil {
			used[n.Network][a] = true
		}
		macs[strings.ToLower(n.MAC)] = true
	}
	var rows []store.NIC
	var out []NIC
	for j, r := range reqs {
		i := first + j
		net, ok := byName[r.Network]
		if !ok {
			return nil, fmt.Errorf("%w: network %q", ErrNotFound, r.Network)
		}
		for _, g := range r.Groups {
			if !haveGroup[g] {
				return nil, fmt.Errorf("%w: security group %q", ErrNotFound, g)
			}
		}
		subnet, _ := netip.ParsePrefix(net.Subnet)
		gw, _ := netip.ParseAddr(net.Gateway)
		var want netip.Addr
		if r.IP != "" {
			if want, err = netip.ParseAddr(r.IP); err != nil {
				return nil, invalid("nic %d: ip %q: %v", i, r.IP, err)
			}
		}
		if used[net.Name] == nil {
			used[net.Name] = map[netip.Addr]bool{}
		}
		ip, err := Pool{Subnet: subnet, Gateway: gw}.Allocate(used[net.Name], want)
		if err != nil {
			return nil, fmt.Errorf("nic %d on %q: %w", i, net.Name, err)
		}
		used[net.Name][ip] = true
		mac := GuestMAC(fmt.Sprintf("%s/%d", vmUUID, i))
		for n := 1; macs[strings.ToLower(mac.String())]; n++ {
			mac = GuestMAC(fmt.Sprintf("%s/%d/%d", vmUUID, i, n))
		}
		macs[strings.ToLower(mac.String())] = true
		nic := NIC{Index: i, Network: net.Name, MAC: mac.String(), IP: ip.String(), Tap: TapName(vmUUID, i), Groups: r.Groups,
			PrefixLen: subnet.Bits(), Gateway: gw.String(), Domain: s.domain}
		out = append(out, nic)
		rows = append(rows, store.NIC{Tap: nic.Tap, VMUUID: vmUUID, Index: i, Network: nic.Network, MAC: nic.MAC, IP: nic.IP, Groups: nic.Groups})
	}
	if err := s.db.AddNICs(ctx, rows); err != nil {
		switch {
		case errors.Is(err, store.ErrConflict):
			return nil, fmt.Errorf("%w: %v", ErrConflict, err)
		case errors.Is(err, store.ErrNotFound):
			return nil, fmt.Errorf("%w: %v", ErrNotFound, err)
		}
		return nil, err
	}
	if err := s.refreshLocked(ctx); err != nil {
		// Take back exactly the rows this call added: the VM's other NICs stay.
		bg := context.WithoutCancel(ctx)
		for _, r := range rows {
			s.db.DeleteNIC(bg, r.Tap)
		}
		s.refreshLocked(bg)
		return nil, err
	}
	_ = vmName // names reach dnsmasq through the database join
	return out, nil
}

// ReleaseNICs forgets a VM's NICs and updates DHCP and the firewall.
func (s *Service) ReleaseNICs(ctx context.Context, vmUUID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.db.DeleteNICs(ctx, vmUUID); err != nil {
		return err
	}
	return s.refreshLocked(ctx)
}

// ReleaseNIC forgets one NIC (a hot-unplugged one) and updates DHCP and the firewall.
func (s *Service) ReleaseNIC(ctx context.Context, tap string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.db.DeleteNIC(ctx, tap); err != nil {
		return err
	}
	return s.refreshLocked(ctx)
}

// PlugNIC creates a NIC's tap on its network's bridge.
func (s *Service) PlugNIC(ctx context.Context, tap, network string, queues int) error {
	nets, err := s.db.Networks(ctx)
	if err != nil {
		return err
	}
	for _, n := range nets {
		if n.Name == network {
			return s.links.EnsureTap(TapSpec{Name: tap, Bridge: n.Bridge, MAC: HostMAC("tap:" + tap), Queues: queues})
		}
	}
	return fmt.Errorf("%w: network %q", ErrNotFound, network)
}

// UnplugNIC removes a tap.
func (s *Service) UnplugNIC(ctx context.Context, tap string) error { return s.links.DeleteTap(tap) }

// Reconcile makes the host match the database: bridge netfilter on, every network's bridge
// and dnsmasq, no bridge or tap of lqd's that the database does not know (taps of VMs that
// are not running, given by active, go too), and the whole firewall ruleset.
func (s *Service) Reconcile(ctx context.Context, active func() map[string]bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := firewall.EnableBridgeNetfilter(ctx); err != nil {
		return fmt.Errorf("netdev: %w", err)
	}
	nets, err := s.db.Networks(ctx)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	var errs []error
	for _, n := range nets {
		known[n.Bridge] = true
		if err := s.ensureNetwork(ctx, n); err != nil {
			errs = append(errs, err)
		}
	}
	// dnsmasq of networks the database no longer has (a crash in the middle of a delete).
	if dirs, err := os.ReadDir(s.stateDir); err == nil {
		names := map[string]bool{}
		for _, n := range nets {
			names[n.Name] = true
		}
		for _, e := range dirs {
			if e.IsDir() && !names[e.Name()] {
				dir := filepath.Join(s.stateDir, e.Name())
				s.log.Info("stopping dnsmasq of a deleted network", "dir", dir)
				if err := s.dns.Stop(ctx, dir); err == nil {
					os.RemoveAll(dir)
				}
			}
		}
	}
	if bridges, err := s.links.Bridges(BridgePrefix); err == nil {
		for _, b := range bridges {
			if !known[b] {
				s.log.Info("removing bridge of a deleted network", "bridge", b)
				s.links.DeleteBridge(b)
			}
		}
	}
	// The list of taps in use is taken after the taps on the host: a VM that starts in
	// between has made its taps after the listing (so they are not in it) or is already
	// counted as active.
	if taps, err := s.links.Taps(TapPrefix); err == nil && active != nil {
		inUse := active()
		for _, t := range taps {
			if !inUse[t] {
				s.log.Info("removing tap of a VM that is not running", "tap", t)
				s.links.DeleteTap(t)
			}
		}
	}
	if err := s.applyLocked(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ensureNetwork makes a network's bridge and its dnsmasq with the current leases.
func (s *Service) ensureNetwork(ctx context.Context, n store.Network) error {
	subnet, err := netip.ParsePrefix(n.Subnet)
	if err != nil {
		return fmt.Errorf("network %q: subnet %q: %w", n.Name, n.Subnet, err)
	}
	gw, err := netip.ParseAddr(n.Gateway)
	if err != nil {
		return fmt.Errorf("network %q: gateway %q: %w", n.Name, n.Gateway, err)
	}
	mac, err := net.ParseMAC(n.MAC)
	if err != nil {
		return fmt.Errorf("network %q: mac %q: %w", n.Name, n.MAC, err)
	}
	if err := s.links.EnsureBridge(n.Bridge, mac, netip.PrefixFrom(gw, subnet.Bits()), 0); err != nil {
		return fmt.Errorf("network %q: %w", n.Name, err)
	}
	if n.NAT {
		// NAT routes the subnet out through the host: IPv4 forwarding must be on (in lqd's
		// network namespace; the firewall decides what may pass).
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644); err != nil {
			return fmt.Errorf("network %q: enable ip forwarding: %w", n.Name, err)
		}
	}
	cfg, err := s.dnsConfig(ctx, n, subnet, gw)
	if err != nil {
		return err
	}
	if err := s.dns.Ensure(ctx, cfg); err != nil {
		return fmt.Errorf("network %q: dhcp: %w", n.Name, err)
	}
	return nil
}

func (s *Service) dnsConfig(ctx context.Context, n store.Network, subnet netip.Prefix, gw netip.Addr) (DNSMasqConfig, error) {
	nics, err := s.db.NICs(ctx)
	if err != nil {
		return DNSMasqConfig{}, err
	}
	var hosts []DHCPHost
	for _, nic := range nics {
		if nic.Network != n.Name {
			continue
		}
		mac, err1 := net.ParseMAC(nic.MAC)
		ip, err2 := netip.ParseAddr(nic.IP)
		if err1 != nil || err2 != nil {
			continue
		}
		name := nic.VMName
		if nic.Index > 0 {
			name = fmt.Sprintf("%s-%d", nic.VMName, nic.Index)
		}
		hosts = append(hosts, DHCPHost{MAC: mac, IP: ip, Name: name})
	}
	dir := filepath.Join(s.stateDir, n.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return DNSMasqConfig{}, err
	}
	return DNSMasqConfig{Network: n.Name, Bridge: n.Bridge, Gateway: gw, Subnet: subnet, Domain: s.domain, Hosts: hosts, StateDir: dir}, nil
}

// teardown removes a network's dnsmasq and bridge (its NICs are gone already).
func (s *Service) teardown(ctx context.Context, n store.Network) {
	dir := filepath.Join(s.stateDir, n.Name)
	if err := s.dns.Stop(ctx, dir); err != nil {
		s.log.Warn("stop dnsmasq", "network", n.Name, "err", err)
	}
	os.RemoveAll(dir)
	if err := s.links.DeleteBridge(n.Bridge); err != nil {
		s.log.Warn("delete bridge", "network", n.Name, "err", err)
	}
}

// refreshLocked updates every network's dnsmasq leases and the firewall after NICs changed.
func (s *Service) refreshLocked(ctx context.Context) error {
	nets, err := s.db.Networks(ctx)
	if err != nil {
		return err
	}
	for _, n := range nets {
		subnet, _ := netip.ParsePrefix(n.Subnet)
		gw, _ := netip.ParseAddr(n.Gateway)
		cfg, err := s.dnsConfig(ctx, n, subnet, gw)
		if err != nil {
			return err
		}
		if err := s.dns.Ensure(ctx, cfg); err != nil {
			return fmt.Errorf("network %q: dhcp: %w", n.Name, err)
		}
	}
	return s.applyLocked(ctx)
}

// State is the firewall's desired state, computed from the database.
func (s *Service) State(ctx context.Context) (firewall.State, error) {
	var st firewall.State
	nets, err := s.db.Networks(ctx)
	if err != nil {
		return st, err
	}
	bridge := map[string]string{}
	for _, n := range nets {
		subnet, err1 := netip.ParsePrefix(n.Subnet)
		gw, err2 := netip.ParseAddr(n.Gateway)
		if err1 != nil || err2 != nil {
			return st, fmt.Errorf("network %q: bad subnet or gateway in the database", n.Name)
		}
		bridge[n.Name] = n.Bridge
		st.Networks = append(st.Networks, firewall.Network{Bridge: n.Bridge, Subnet: subnet, Gateway: gw, NAT: n.NAT})
	}
	groups, err := s.db.SecurityGroups(ctx)
	if err != nil {
		return st, err
	}
	for _, g := range groups {
		fg := firewall.Group{Name: g.Name}
		for _, r := range g.Rules {
			fr := firewall.Rule{Direction: r.Direction, Proto: firewall.Proto(r.Proto), PortFrom: r.PortFrom, PortTo: r.PortTo, Group: r.RemoteGroup}
			if r.CIDR != "" {
				fr.CIDR, _ = netip.ParsePrefix(r.CIDR)
			}
			fg.Rules = append(fg.Rules, fr)
		}
		st.Groups = append(st.Groups, fg)
	}
	nics, err := s.db.NICs(ctx)
	if err != nil {
		return st, err
	}
	for _, n := range nics {
		mac, _ := net.ParseMAC(n.MAC)
		ip, _ := netip.ParseAddr(n.IP)
		st.NICs = append(st.NICs, firewall.NIC{Tap: n.Tap, Bridge: bridge[n.Network], MAC: mac, IP: ip, Groups: n.Groups})
	}
	return st, nil
}

func (s *Service) applyLocked(ctx context.Context) error {
	st, err := s.State(ctx)
	if err != nil {
		return err
	}
	if err := s.fw.Apply(ctx, st); err != nil {
		return fmt.Errorf("firewall (%s): %w", s.fw.Name(), err)
	}
	return nil
}
