package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/limiquantix/limiquantix/api"
	"github.com/spf13/cobra"
)

func newSGCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "sg",
		Aliases: []string{"security-group"},
		Short:   "Manage security groups: the firewall rules of VMs' NICs",
		Long: "Manage security groups. A NIC in no group, or only in groups without an inbound rule,\n" +
			"accepts nothing inbound but the replies to its own traffic. Put NICs in groups with\n" +
			"lq vm create --nic NETWORK,sg=GROUP.",
		Args: groupArgs,
		RunE: groupRun,
	}
	cmd.AddCommand(
		newSGCreateCmd(a),
		newSGListCmd(a),
		newSGShowCmd(a),
		newSGDeleteCmd(a),
		newSGRuleCmd(a),
	)
	return cmd
}

func newSGCreateCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "create NAME",
		Short: "Create an empty security group (add rules with lq sg rule add)",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			g, err := c.CreateSecurityGroup(cmd.Context(), api.CreateSecurityGroupRequest{Name: args[0]})
			if err != nil {
				return err
			}
			return a.printGroup(g)
		},
	}
}

func newSGListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List security groups",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			gs, err := c.SecurityGroups(cmd.Context())
			if err != nil {
				return err
			}
			if gs == nil {
				gs = []api.SecurityGroup{}
			}
			if a.jsonOutput() {
				return printJSON(a.stdout, gs)
			}
			return writeGroupTable(a.stdout, gs)
		},
	}
}

// writeGroupTable writes the table of lq sg list, sorted by name.
func writeGroupTable(w io.Writer, gs []api.SecurityGroup) error {
	gs = slices.Clone(gs)
	slices.SortFunc(gs, func(x, y api.SecurityGroup) int { return strings.Compare(x.Name, y.Name) })
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tRULES\tIN\tOUT")
	for _, g := range gs {
		in := 0
		for _, r := range g.Rules {
			if r.Direction != "out" {
				in++
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", g.Name, len(g.Rules), in, len(g.Rules)-in)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

func newSGShowCmd(a *app) *cobra.Command {
	return showCmd(a, "Show a security group's rules", (*api.Client).SecurityGroup, a.printGroup)
}

// printGroup writes g as JSON or as its table of rules.
func (a *app) printGroup(g api.SecurityGroup) error {
	if a.jsonOutput() {
		if g.Rules == nil {
			g.Rules = []api.SecurityRule{}
		}
		return printJSON(a.stdout, g)
	}
	return writeRuleTable(a.stdout, g.Rules)
}

// writeRuleTable writes the table of lq sg show, in the server's order.
func writeRuleTable(w io.Writer, rules []api.SecurityRule) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tDIR\tPROTO\tPORTS\tPEER")
	for _, r := range rules {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", dash(r.ID), dash(r.Direction), dash(r.Proto), formatPorts(r), formatPeer(r))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// formatPorts renders a rule's ports: 80, 8000-8100, any (tcp/udp without ports), or -
// (protocols without ports).
func formatPorts(r api.SecurityRule) string {
	switch {
	case r.PortFrom == 0 && (r.Proto == "tcp" || r.Proto == "udp"):
		return "any"
	case r.PortFrom == 0:
		return "-"
	case r.PortTo == 0 || r.PortTo == r.PortFrom:
		return strconv.Itoa(r.PortFrom)
	default:
		return strconv.Itoa(r.PortFrom) + "-" + strconv.Itoa(r.PortTo)
	}
}

// formatPeer renders a rule's peer: a CIDR, or sg:GROUP for the NICs of a group.
func formatPeer(r api.SecurityRule) string {
	if r.FromGroup != "" {
		return "sg:" + r.FromGroup
	}
	return dash(r.CIDR)
}

func newSGDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a security group that no NIC and no other group's rule uses",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			return c.DeleteSecurityGroup(cmd.Context(), args[0])
		},
	}
}

func newSGRuleCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rule",
		Short: "Add and remove a security group's rules",
		Args:  groupArgs,
		RunE:  groupRun,
	}
	cmd.AddCommand(newSGRuleAddCmd(a), newSGRuleRemoveCmd(a))
	return cmd
}

// ruleFlags are the flags of lq sg rule add.
type ruleFlags struct {
	in, out         bool
	proto, ports    string
	from, to, group string
}

// rules turns the flags into the rules to add: one per element of --port.
func (f ruleFlags) rules() ([]api.SecurityRule, error) {
	base := api.SecurityRule{Direction: "in"}
	switch {
	case f.in && f.out:
		return nil, usageErrorf("--in and --out exclude each other")
	case f.out:
		base.Direction = "out"
	}
	base.Proto = strings.ToLower(f.proto)
	switch base.Proto {
	case "tcp", "udp", "icmp", "any":
	case "":
		return nil, usageErrorf("--proto is required: tcp, udp, icmp or any")
	default:
		return nil, usageErrorf("--proto %q: must be tcp, udp, icmp or any", f.proto)
	}
	if f.from != "" && f.to != "" {
		return nil, usageErrorf("--from and --to are the same flag; give one")
	}
	peer := firstNonEmpty(f.from, f.to)
	switch {
	case peer != "" && f.group != "":
		return nil, usageErrorf("--from (or --to) and --from-group exclude each other")
	case f.group != "":
		base.FromGroup = f.group
	case peer != "":
		base.CIDR = peer
	default:
		base.CIDR = "0.0.0.0/0"
	}
	if f.ports == "" {
		return []api.SecurityRule{base}, nil
	}
	if base.Proto != "tcp" && base.Proto != "udp" {
		return nil, usageErrorf("--port applies to tcp and udp only, not %s", base.Proto)
	}
	ranges, err := parsePorts(f.ports)
	if err != nil {
		return nil, err
	}
	rules := make([]api.SecurityRule, 0, len(ranges))
	for _, pr := range ranges {
		r := base
		r.PortFrom, r.PortTo = pr[0], pr[1]
		rules = append(rules, r)
	}
	return rules, nil
}

// parsePorts parses --port: a comma-separated list of ports and ranges, e.g. 80,443,8000-8100.
func parsePorts(s string) ([][2]int, error) {
	var out [][2]int
	for elem := range strings.SplitSeq(s, ",") {
		elem = strings.TrimSpace(elem)
		lo, hi, isRange := strings.Cut(elem, "-")
		from, err := parsePort(lo)
		if err != nil {
			return nil, usageErrorf("--port %q: %q: %v", s, elem, err)
		}
		to := from
		if isRange {
			if to, err = parsePort(hi); err != nil {
				return nil, usageErrorf("--port %q: %q: %v", s, elem, err)
			}
			if from > to {
				return nil, usageErrorf("--port %q: range %q: the first port is above the last", s, elem)
			}
		}
		out = append(out, [2]int{from, to})
	}
	return out, nil
}

func parsePort(s string) (int, error) {
	if s == "" {
		return 0, errors.New("want a port or a range such as 8000-8100")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, errors.New("ports are 1 to 65535")
	}
	return n, nil
}

func newSGRuleAddCmd(a *app) *cobra.Command {
	var f ruleFlags
	cmd := &cobra.Command{
		Use:   "add GROUP [--in|--out] --proto tcp|udp|icmp|any [--port LIST] [--from CIDR | --from-group GROUP]",
		Short: "Add rules to a security group; prints their IDs",
		Long: "Add rules to a security group. --in (the default) allows traffic to the group's NICs\n" +
			"from the peer; --out allows traffic from them to the peer (--to is --from's alias).\n" +
			"The peer is a CIDR (default 0.0.0.0/0) or the NICs of a group (--from-group).\n" +
			"--port takes ports and ranges, e.g. 80,443,8000-8100: one rule each. If one fails, the\n" +
			"rules already added are removed again, so the group is left as it was.",
		Args: exactArgs("GROUP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			rules, err := f.rules()
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			added, err := addRules(cmd.Context(), c, args[0], rules)
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return printJSON(a.stdout, added)
			}
			for _, r := range added {
				if _, err := fmt.Fprintln(a.stdout, r.ID); err != nil {
					return fmt.Errorf("write output: %w", err)
				}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.in, "in", false, "allow inbound traffic, from the peer (the default)")
	fl.BoolVar(&f.out, "out", false, "allow outbound traffic, to the peer")
	fl.StringVar(&f.proto, "proto", "", "tcp, udp, icmp or any (required)")
	fl.StringVar(&f.ports, "port", "", "ports and ranges, comma-separated: 22 or 80,443 or 8000-8100 (tcp/udp; default: all)")
	fl.StringVar(&f.from, "from", "", "the peer's CIDR (default 0.0.0.0/0); with --out the destination")
	fl.StringVar(&f.to, "to", "", "alias of --from, reads better with --out")
	fl.StringVar(&f.group, "from-group", "", "the peer is the NICs of this security group")
	return cmd
}

// rollbackTimeout bounds removing the rules of a failed lq sg rule add.
const rollbackTimeout = 30 * time.Second

// addRules posts rules one by one. If one fails, it deletes the ones already added and
// returns the error; the rollback goes on even if ctx was canceled.
func addRules(ctx context.Context, c *api.Client, group string, rules []api.SecurityRule) ([]api.SecurityRule, error) {
	added := make([]api.SecurityRule, 0, len(rules))
	for _, r := range rules {
		got, err := c.AddRule(ctx, group, r)
		if err == nil {
			added = append(added, got)
			continue
		}
		if len(rules) == 1 {
			return nil, err
		}
		e := &ruleAddError{ports: formatPorts(r), err: err}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		defer cancel()
		for _, done := range added {
			if derr := c.DeleteRule(rctx, group, done.ID); derr != nil {
				e.left = append(e.left, done.ID)
				e.rollbackErr = errors.Join(e.rollbackErr, derr)
			} else {
				e.removed = append(e.removed, done.ID)
			}
		}
		return nil, e
	}
	return added, nil
}

// ruleAddError is the failure of one of several rules of lq sg rule add, with what became
// of the rules added before it.
type ruleAddError struct {
	ports       string   // the failed rule's ports
	err         error    // why it failed
	removed     []string // IDs of the earlier rules, removed again
	left        []string // IDs of the earlier rules that could not be removed
	rollbackErr error
}

func (e *ruleAddError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lq: rule for port %s: %s", e.ports, strings.TrimPrefix(e.err.Error(), "lq: "))
	if len(e.removed) > 0 {
		fmt.Fprintf(&b, "; removed the %d rule(s) already added (%s)", len(e.removed), strings.Join(e.removed, " "))
	}
	if len(e.left) > 0 {
		msg := strings.ReplaceAll(e.rollbackErr.Error(), "\n", "; ")
		fmt.Fprintf(&b, "; could not remove the rule(s) already added: %s: %s", strings.Join(e.left, " "), strings.TrimPrefix(msg, "lq: "))
	}
	if len(e.removed) == 0 && len(e.left) == 0 {
		b.WriteString("; no rules added")
	}
	return b.String()
}

func (e *ruleAddError) Unwrap() error { return e.err }

func newSGRuleRemoveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "remove GROUP RULE_ID [RULE_ID...]",
		Aliases: []string{"rm", "delete"},
		Short:   "Remove rules from a security group by ID (see lq sg show)",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usageErrorf("%s takes GROUP and at least one RULE_ID; got %d argument(s)", subcommand(cmd), len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			// Each ID on its own: one unknown ID does not keep the others.
			var errs []error
			for _, id := range args[1:] {
				if err := c.DeleteRule(cmd.Context(), args[0], id); err != nil {
					if cmd.Context().Err() != nil {
						return err
					}
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		},
	}
}
