package netdev

import (
	"bytes"
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// File names inside DNSMasqConfig.StateDir.
const (
	dnsmasqConfFile  = "dnsmasq.conf"
	dnsmasqHostsFile = "dhcp-hosts" // dhcp-hostsfile: MAC,IP[,NAME] per line
	dnsmasqAddnFile  = "addn-hosts" // addn-hosts: /etc/hosts syntax
	dnsmasqLeaseFile = "dnsmasq.leases"
	dnsmasqPIDFile   = "dnsmasq.pid"
	dnsmasqLogFile   = "dnsmasq.log"
)

// DefaultLeaseTime is the DHCP lease time when DNSMasqConfig.LeaseTime is 0.
const DefaultLeaseTime = time.Hour

// DHCPHost is one static lease: the guest's MAC gets IP, and Name (a single DNS label,
// optional) resolves to IP both bare and under the network's domain.
type DHCPHost struct {
	MAC  net.HardwareAddr
	IP   netip.Addr
	Name string
}

// DNSMasqConfig is what one network's dnsmasq serves.
type DNSMasqConfig struct {
	Network   string        // lqd's network name; only used in comments and logs
	Bridge    string        // interface dnsmasq serves, e.g. BridgeName(Network)
	Gateway   netip.Addr    // the bridge's address: router, DNS server and listen address
	Subnet    netip.Prefix  // e.g. 10.20.0.0/24
	Domain    string        // e.g. "lq": VM names resolve as NAME and NAME.lq; "" for none
	Hosts     []DHCPHost    // the only clients that get a lease (IPAM's addresses)
	StateDir  string        // absolute, one per network: conf, hosts files, leases, pid, log
	LeaseTime time.Duration // 0 means DefaultLeaseTime; at least 2 minutes otherwise
	User      string        // user dnsmasq drops to; Ensure fills it in when "" (see DNSMasq.User)
}

// Validate checks everything RenderDNSMasq writes into dnsmasq's files, so no field can
// inject a line. Errors wrap ErrInvalid, or ErrConflict for a MAC, IP or name used twice.
func (c DNSMasqConfig) Validate() error {
	if c.Network == "" || !printable(c.Network) {
		return fmt.Errorf("dnsmasq: network name %q: %w", c.Network, ErrInvalid)
	}
	if err := validIfName(c.Bridge); err != nil {
		return fmt.Errorf("dnsmasq %s: bridge: %w", c.Network, err)
	}
	if err := (Pool{Subnet: c.Subnet, Gateway: c.Gateway}).Validate(); err != nil {
		return fmt.Errorf("dnsmasq %s: %w", c.Network, err)
	}
	if c.Domain != "" && !validDNSName(c.Domain) {
		return fmt.Errorf("dnsmasq %s: domain %q: %w", c.Network, c.Domain, ErrInvalid)
	}
	if !filepath.IsAbs(c.StateDir) || !safePath(c.StateDir) {
		return fmt.Errorf("dnsmasq %s: state dir %q: want an absolute path of [A-Za-z0-9/._+@-]: %w", c.Network, c.StateDir, ErrInvalid)
	}
	if c.LeaseTime != 0 && c.LeaseTime < 2*time.Minute {
		return fmt.Errorf("dnsmasq %s: lease time %v: dnsmasq's minimum is 2m: %w", c.Network, c.LeaseTime, ErrInvalid)
	}
	if c.User != "" && !validUserName(c.User) {
		return fmt.Errorf("dnsmasq %s: user %q: %w", c.Network, c.User, ErrInvalid)
	}
	macs, ips, names := map[string]bool{}, map[netip.Addr]bool{}, map[string]bool{}
	for _, h := range c.Hosts {
		if err := validUnicastMAC(h.MAC); err != nil {
			return fmt.Errorf("dnsmasq %s: host %s: %w", c.Network, h.IP, err)
		}
		ip := h.IP.Unmap()
		if !c.Subnet.Contains(ip) || ip == c.Gateway || ip == c.Subnet.Addr() || ip == broadcast(c.Subnet) {
			return fmt.Errorf("dnsmasq %s: host %s: address %v is not a host address of %v besides the gateway: %w",
				c.Network, h.MAC, h.IP, c.Subnet, ErrInvalid)
		}
		if h.Name != "" && (strings.Contains(h.Name, ".") || !validDNSName(h.Name)) {
			return fmt.Errorf("dnsmasq %s: host %s: name %q: want one DNS label: %w", c.Network, h.MAC, h.Name, ErrInvalid)
		}
		name := strings.ToLower(h.Name)
		switch {
		case macs[h.MAC.String()]:
			return fmt.Errorf("dnsmasq %s: MAC %s listed twice: %w", c.Network, h.MAC, ErrConflict)
		case ips[ip]:
			return fmt.Errorf("dnsmasq %s: address %s listed twice: %w", c.Network, ip, ErrConflict)
		case name != "" && names[name]:
			return fmt.Errorf("dnsmasq %s: name %q listed twice: %w", c.Network, h.Name, ErrConflict)
		}
		macs[h.MAC.String()], ips[ip], names[name] = true, true, true
	}
	return nil
}

// RenderDNSMasq returns the contents of dnsmasq.conf, of the dhcp-hostsfile and of the
// addn-hosts file for a valid config (see Validate). Hosts are sorted by address, so the
// output only changes when the set of hosts does.
//
// The conf serves DHCP only to the listed MACs (a "static" dhcp-range plus ignoring unknown
// clients) and DNS on the gateway address of the bridge only (bind-dynamic, which also
// copes with the address appearing after dnsmasq starts). It reads neither /etc/hosts nor
// /etc/dnsmasq.conf; upstream servers come from /etc/resolv.conf (dnsmasq's default) of the
// namespace it runs in, and only for names outside Domain.
func RenderDNSMasq(c DNSMasqConfig) (conf, hosts, addnHosts []byte) {
	path := func(name string) string { return filepath.Join(c.StateDir, name) }
	lease := c.LeaseTime
	if lease == 0 {
		lease = DefaultLeaseTime
	}
	start, _ := Pool{Subnet: c.Subnet, Gateway: c.Gateway}.DHCPRange()

	var b bytes.Buffer
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("# Generated by lqd for network %s; lqd rewrites this file.", c.Network)
	line("interface=%s", c.Bridge)
	line("except-interface=lo")
	line("bind-dynamic")
	line("listen-address=%s", c.Gateway)
	line("no-hosts")
	line("addn-hosts=%s", path(dnsmasqAddnFile))
	line("domain-needed")
	line("bogus-priv")
	if c.Domain != "" {
		line("domain=%s", c.Domain)
		line("local=/%s/", c.Domain)
	}
	line("dhcp-range=%s,static,%s,%d", start, netmask(c.Subnet), int64(lease/time.Second))
	line("dhcp-hostsfile=%s", path(dnsmasqHostsFile))
	line("dhcp-ignore=tag:!known")
	line("dhcp-authoritative")
	line("dhcp-option=option:router,%s", c.Gateway)
	line("dhcp-option=option:dns-server,%s", c.Gateway)
	line("dhcp-leasefile=%s", path(dnsmasqLeaseFile))
	line("pid-file=%s", path(dnsmasqPIDFile))
	line("log-facility=%s", path(dnsmasqLogFile))
	if c.User != "" {
		line("user=%s", c.User)
	}

	sorted := slices.Clone(c.Hosts)
	slices.SortFunc(sorted, func(a, b DHCPHost) int {
		return cmp.Or(a.IP.Compare(b.IP), cmp.Compare(a.MAC.String(), b.MAC.String()))
	})
	var h, a bytes.Buffer
	for _, host := range sorted {
		ip := host.IP.Unmap()
		if host.Name == "" {
			fmt.Fprintf(&h, "%s,%s\n", host.MAC, ip)
			continue
		}
		fmt.Fprintf(&h, "%s,%s,%s\n", host.MAC, ip, host.Name)
		if c.Domain != "" {
			fmt.Fprintf(&a, "%s %s.%s %s\n", ip, host.Name, c.Domain, host.Name)
		} else {
			fmt.Fprintf(&a, "%s %s\n", ip, host.Name)
		}
	}
	return b.Bytes(), h.Bytes(), a.Bytes()
}

// validDNSName accepts dot-separated labels of letters, digits and inner hyphens.
func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func validUserName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c == '_' || i > 0 && (c >= '0' && c <= '9' || c == '-')) {
			return false
		}
	}
	return len(s) > 0 && len(s) <= 32
}

func safePath(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("/._+@-", c) >= 0) {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	for _, r := range s {
		if !strconv.IsPrint(r) {
			return false
		}
	}
	return true
}
