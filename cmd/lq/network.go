package main

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/limiquantix/limiquantix/api"
	"github.com/spf13/cobra"
)

func newNetworkCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "network",
		Aliases: []string{"net"},
		Short:   "Manage networks (bridges with a subnet, DHCP/DNS and optional NAT)",
		Args:    groupArgs,
		RunE:    groupRun,
	}
	cmd.AddCommand(
		newNetworkCreateCmd(a),
		newNetworkListCmd(a),
		newNetworkShowCmd(a),
		newNetworkDeleteCmd(a),
	)
	return cmd
}

func newNetworkCreateCmd(a *app) *cobra.Command {
	var req api.CreateNetworkRequest
	cmd := &cobra.Command{
		Use:   "create NAME --subnet CIDR [--gateway ADDR] [--nat]",
		Short: "Create a network",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if req.Subnet == "" {
				return usageErrorf("--subnet is required, e.g. --subnet 10.20.0.0/24")
			}
			req.Name = args[0]
			c, err := a.client()
			if err != nil {
				return err
			}
			n, err := c.CreateNetwork(cmd.Context(), req)
			if err != nil {
				return err
			}
			return a.printNetwork(n)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&req.Subnet, "subnet", "", "the network's IPv4 prefix, e.g. 10.20.0.0/24 (required)")
	fl.StringVar(&req.Gateway, "gateway", "", "the host's address on the network (default: the subnet's first address)")
	fl.BoolVar(&req.NAT, "nat", false, "masquerade the network's traffic to the host's uplink")
	return cmd
}

func newNetworkListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List networks",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			nets, err := c.Networks(cmd.Context())
			if err != nil {
				return err
			}
			if nets == nil {
				nets = []api.Network{}
			}
			if a.jsonOutput() {
				return printJSON(a.stdout, nets)
			}
			return writeNetworkTable(a.stdout, nets)
		},
	}
}

// writeNetworkTable writes the table of lq network list, sorted by name.
func writeNetworkTable(w io.Writer, nets []api.Network) error {
	nets = slices.Clone(nets)
	slices.SortFunc(nets, func(x, y api.Network) int { return strings.Compare(x.Name, y.Name) })
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tSUBNET\tGATEWAY\tNAT\tBRIDGE\tNICS")
	for _, n := range nets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", n.Name, dash(n.Subnet), dash(n.Gateway), yesNo(n.NAT), dash(n.Bridge), n.NICs)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

func newNetworkShowCmd(a *app) *cobra.Command {
	return showCmd(a, "Show a network", (*api.Client).Network, a.printNetwork)
}

// printNetwork writes n as JSON or as key: value lines.
func (a *app) printNetwork(n api.Network) error {
	if a.jsonOutput() {
		return printJSON(a.stdout, n)
	}
	var l kvList
	l.add("name", n.Name)
	l.add("subnet", n.Subnet)
	l.add("gateway", n.Gateway)
	l.add("nat", yesNo(n.NAT))
	l.add("bridge", n.Bridge)
	l.add("nics", strconv.Itoa(n.NICs))
	return l.write(a.stdout)
}

func newNetworkDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a network that no NIC uses",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			return c.DeleteNetwork(cmd.Context(), args[0])
		},
	}
}

// nicFlags are lq vm create's --nic and --no-nic.
type nicFlags struct {
	specs []string
	none  bool
}

func (f *nicFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	// StringArray, not StringSlice: a spec's commas are its own.
	fl.StringArrayVar(&f.specs, "nic", nil, "a NIC: NETWORK[,ip=ADDR][,sg=GROUP]... (repeatable; default: one NIC on the default network)")
	fl.BoolVar(&f.none, "no-nic", false, "create the VM without any NIC")
}

// requests turns the flags into CreateVMRequest.NICs: nil (no field: the default network)
// without either flag, empty (none) with --no-nic.
func (f *nicFlags) requests() ([]api.NICRequest, error) {
	if f.none {
		if len(f.specs) > 0 {
			return nil, usageErrorf("--nic and --no-nic exclude each other")
		}
		return []api.NICRequest{}, nil
	}
	var nics []api.NICRequest
	for _, s := range f.specs {
		n, err := parseNICSpec(s)
		if err != nil {
			return nil, err
		}
		nics = append(nics, n)
	}
	return nics, nil
}

// parseNICSpec parses a --nic value: NETWORK[,ip=ADDR][,sg=GROUP]...
func parseNICSpec(s string) (api.NICRequest, error) {
	bad := func(format string, args ...any) error {
		return usageErrorf("--nic %q: %s (want NETWORK[,ip=ADDR][,sg=GROUP]...)", s, fmt.Sprintf(format, args...))
	}
	parts := strings.Split(s, ",")
	var n api.NICRequest
	n.Network = strings.TrimSpace(parts[0])
	switch {
	case n.Network == "":
		return n, bad("no network")
	case strings.Contains(n.Network, "="):
		return n, bad("the network comes first")
	}
	for _, p := range parts[1:] {
		key, val, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok {
			return n, bad("%q is not KEY=VALUE", p)
		}
		if val == "" {
			return n, bad("%s has no value", key)
		}
		switch key {
		case "ip":
			if n.IP != "" {
				return n, bad("ip given twice")
			}
			addr, err := netip.ParseAddr(val)
			if err != nil {
				return n, bad("ip %q is not an IP address", val)
			}
			n.IP = addr.String()
		case "sg":
			if !slices.Contains(n.SecurityGroups, val) {
				n.SecurityGroups = append(n.SecurityGroups, val)
			}
		default:
			return n, bad("unknown key %q", key)
		}
	}
	return n, nil
}

// vmIPs are the addresses lq vm list shows: per NIC the guest agent's (without prefix
// lengths and loopback), else the one IPAM gave it; for a VM without NICs, or NICs without
// any address, all the guest's.
func vmIPs(vm api.VM) []string {
	var ips []string
	for _, n := range vm.NICs {
		if g := bareIPs(n.GuestIPs); len(g) > 0 {
			ips = append(ips, g...)
		} else if n.IP != "" {
			ips = append(ips, n.IP)
		}
	}
	if len(ips) == 0 {
		return guestIPs(vm.Guest)
	}
	return ips
}

// bareIPs drops prefix lengths and loopback addresses.
func bareIPs(in []string) []string {
	return guestIPs(&api.Guest{Interfaces: []api.GuestInterface{{IPs: in}}})
}

// addNICs adds lq vm show's lines for a VM's NICs: nic0, nic1, ...
func addNICs(l *kvList, nics []api.NIC) {
	for i, n := range nics {
		v := []string{"network=" + n.Network, "mac=" + dash(n.MAC), "ip=" + dash(n.IP)}
		if len(n.GuestIPs) > 0 {
			v = append(v, "guest_ips="+strings.Join(n.GuestIPs, ","))
		}
		if len(n.SecurityGroups) > 0 {
			v = append(v, "sg="+strings.Join(n.SecurityGroups, ","))
		}
		if n.Tap != "" {
			v = append(v, "tap="+n.Tap)
		}
		l.add("nic"+strconv.Itoa(i), strings.Join(v, " "))
	}
}
