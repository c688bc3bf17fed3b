package firewall

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/coreos/go-iptables/iptables"
)

// NewIPTables returns the iptables back end: chains named chainPrefix-* (iptables
// filter and nat, ebtables nat for anti-spoofing), jumped to from the built-in chains.
// The prefix must be 1-9 characters of [A-Za-z0-9_]. Apply acts on the network namespace
// of the calling OS thread (the iptables and ebtables children inherit it).
//
// Apply is not one transaction: it rewrites each changed chain by appending the new rules
// and then deleting the old ones from the top, innermost chains first, so a chain is never
// empty (fail-open) on the way, though for a moment it holds old rules followed by new.
// Unchanged chains are left alone. A failed Apply can leave a mix: apply again.
func NewIPTables(chainPrefix string) Backend {
	return &xtBackend{prefix: chainPrefix}
}

type xtBackend struct {
	prefix string
	mu     sync.Mutex
}

var xtPrefixRE = regexp.MustCompile(`^[A-Za-z0-9_]{1,9}$`)

func (b *xtBackend) Name() string { return "iptables" }

// xt runs iptables (through go-iptables) and ebtables (directly; go-iptables has no
// ebtables) for one Apply or Remove.
type xt struct {
	ctx context.Context
	ipt *iptables.IPTables
}

func (b *xtBackend) open(ctx context.Context) (*xt, error) {
	if !xtPrefixRE.MatchString(b.prefix) {
		return nil, fmt.Errorf("chain prefix %q: want 1-9 of [A-Za-z0-9_]", b.prefix)
	}
	ipt, err := iptables.New(iptables.IPFamily(iptables.ProtocolIPv4), iptables.Timeout(5))
	if err != nil {
		return nil, fmt.Errorf("find iptables: %w", err)
	}
	return &xt{ctx: ctx, ipt: ipt}, nil
}

func (x *xt) eb(table string, args ...string) (string, error) {
	if err := x.ctx.Err(); err != nil {
		return "", err
	}
	out, err := exec.CommandContext(x.ctx, "ebtables", append([]string{"-t", table}, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ebtables -t %s %s: %w: %s", table, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// chains lists the chains of tool's table.
func (x *xt) chains(tool, table string) ([]string, error) {
	if tool == "iptables" {
		return x.ipt.ListChains(table)
	}
	out, err := x.eb(table, "-L")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, l := range strings.Split(out, "\n") {
		if name, ok := strings.CutPrefix(l, "Bridge chain: "); ok {
			names = append(names, strings.SplitN(name, ",", 2)[0])
		}
	}
	return names, nil
}

// rules lists a chain's rules as `iptables -S` / `ebtables -L` print them, without
// "-A chain".
func (x *xt) rules(tool, table, chain string) ([]string, error) {
	var out []string
	if tool == "iptables" {
		lines, err := x.ipt.List(table, chain)
		if err != nil {
			return nil, err
		}
		for _, l := range lines {
			if r, ok := strings.CutPrefix(l, "-A "+chain+" "); ok {
				out = append(out, r)
			}
		}
		return out, nil
	}
	text, err := x.eb(table, "-L", chain)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "Bridge chain: ") {
			for _, r := range lines[i+1:] {
				if r = strings.TrimSpace(r); r != "" {
					out = append(out, r)
				}
			}
			break
		}
	}
	return out, nil
}

func (x *xt) newChain(tool, table, chain string) error {
	if tool == "iptables" {
		return x.ipt.NewChain(table, chain)
	}
	_, err := x.eb(table, "-N", chain, "-P", "RETURN")
	return err
}

func (x *xt) appendRule(tool, table, chain string, args []string) error {
	if tool == "iptables" {
		return x.ipt.Append(table, chain, args...)
	}
	_, err := x.eb(table, append([]string{"-A", chain}, args...)...)
	return err
}

func (x *xt) deleteFirst(tool, table, chain string) error {
	if tool == "iptables" {
		return x.ipt.DeleteById(table, chain, 1)
	}
	_, err := x.eb(table, "-D", chain, "1")
	return err
}

func (x *xt) flush(tool, table, chain string) error {
	if tool == "iptables" {
		return x.ipt.ClearChain(table, chain)
	}
	_, err := x.eb(table, "-F", chain)
	return err
}

func (x *xt) delete(tool, table, chain string) error {
	if tool == "iptables" {
		return x.ipt.DeleteChain(table, chain)
	}
	_, err := x.eb(table, "-X", chain)
	return err
}

// ensureJump makes the built-in chain from jump to chain first thing.
func (x *xt) ensureJump(tool, table, from, chain string) error {
	rules, err := x.rules(tool, table, from)
	if err != nil {
		return err
	}
	if slices.Contains(rules, "-j "+chain) {
		return nil
	}
	if tool == "iptables" {
		return x.ipt.Insert(table, from, 1, "-j", chain)
	}
	_, err = x.eb(table, "-I", from, "1", "-j", chain)
	return err
}

// deleteJumps deletes every jump from the built-in chain from to chain.
func (x *xt) deleteJumps(tool, table, from, chain string) error {
	rules, err := x.rules(tool, table, from)
	if err != nil {
		return err
	}
	for _, r := range rules {
		if r != "-j "+chain {
			continue
		}
		if tool == "iptables" {
			err = x.ipt.Delete(table, from, "-j", chain)
		} else {
			_, err = x.eb(table, "-D", from, "-j", chain)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

type xtTable struct{ tool, table string }

var xtTables = []xtTable{{"ebtables", "nat"}, {"iptables", "nat"}, {"iptables", "filter"}}

// Apply makes the back end's chains hold s; unchanged chains are left alone.
func (b *xtBackend) Apply(ctx context.Context, s State) error {
	p, err := buildNICPlan(s)
	if err != nil {
		return fmt.Errorf("iptables apply: %w", err)
	}
	if len(s.NICs) > 0 {
		if err := bridgeNetfilterOn(); err != nil {
			return fmt.Errorf("iptables apply: %w", err)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	x, err := b.open(ctx)
	if err != nil {
		return fmt.Errorf("iptables apply: %w", err)
	}
	want := xtPlan(p, b.prefix)
	have := map[xtTable][]string{}
	for _, t := range xtTables {
		names, err := x.chains(t.tool, t.table)
		if err != nil {
			return fmt.Errorf("iptables apply: list %s %s chains: %w", t.tool, t.table, err)
		}
		have[t] = names
	}
	for _, c := range want {
		if !slices.Contains(have[xtTable{c.tool, c.table}], c.name) {
			if err := x.newChain(c.tool, c.table, c.name); err != nil {
				return fmt.Errorf("iptables apply: create %s chain %s: %w", c.tool, c.name, err)
			}
		}
	}
	// Innermost chains first: a chain gets its new jumps only once their targets are full.
	for _, c := range slices.Backward(want) {
		if err := x.replace(c); err != nil {
			return fmt.Errorf("iptables apply: %w", err)
		}
	}
	for _, c := range want {
		if c.from == "" {
			continue
		}
		if err := x.ensureJump(c.tool, c.table, c.from, c.name); err != nil {
			return fmt.Errorf("iptables apply: jump from %s to %s: %w", c.from, c.name, err)
		}
	}
	// Chains of an older state: only other stale chains still jump to them, so flush
	// them all before deleting any.
	var stale []xtChain
	for _, t := range xtTables {
		for _, n := range have[t] {
			if b.owns(n) && !slices.ContainsFunc(want, func(c xtChain) bool { return c.name == n && c.tool == t.tool && c.table == t.table }) {
				stale = append(stale, xtChain{tool: t.tool, table: t.table, name: n})
			}
		}
	}
	for _, c := range stale {
		if err := x.flush(c.tool, c.table, c.name); err != nil {
			return fmt.Errorf("iptables apply: flush stale chain %s: %w", c.name, err)
		}
	}
	for _, c := range stale {
		if err := x.delete(c.tool, c.table, c.name); err != nil {
			return fmt.Errorf("iptables apply: delete stale chain %s: %w", c.name, err)
		}
	}
	return nil
}

func (b *xtBackend) owns(chain string) bool { return strings.HasPrefix(chain, b.prefix+"-") }

// replace rewrites c's rules unless they are already what c wants.
func (x *xt) replace(c xtChain) error {
	old, err := x.rules(c.tool, c.table, c.name)
	if err != nil {
		return fmt.Errorf("list chain %s: %w", c.name, err)
	}
	want := make([]string, len(c.rules))
	for i, r := range c.rules {
		want[i] = strings.Join(r, " ")
	}
	if slices.Equal(old, want) {
		return nil
	}
	for _, r := range c.rules {
		if err := x.appendRule(c.tool, c.table, c.name, r); err != nil {
			return fmt.Errorf("chain %s: append %q: %w", c.name, strings.Join(r, " "), err)
		}
	}
	for range old {
		if err := x.deleteFirst(c.tool, c.table, c.name); err != nil {
			return fmt.Errorf("chain %s: delete old rule: %w", c.name, err)
		}
	}
	return nil
}

// Remove deletes the jumps to the back end's chains, then all chains named with its
// prefix.
func (b *xtBackend) Remove(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	x, err := b.open(ctx)
	if err != nil {
		return fmt.Errorf("iptables remove: %w", err)
	}
	for _, k := range []chainKind{kForward, kInput, kOutput, kPostrouting, kPrerouting, kBrPost} {
		tool, table, from := xtPlace(k)
		if err := x.deleteJumps(tool, table, from, xtChainName(b.prefix, chainRef{kind: k})); err != nil {
			return fmt.Errorf("iptables remove: jumps from %s: %w", from, err)
		}
	}
	for _, t := range xtTables {
		names, err := x.chains(t.tool, t.table)
		if err != nil {
			return fmt.Errorf("iptables remove: list %s %s chains: %w", t.tool, t.table, err)
		}
		var ours []string
		for _, n := range names {
			if b.owns(n) {
				ours = append(ours, n)
			}
		}
		// Flush all first: our chains jump to each other.
		for _, n := range ours {
			if err := x.flush(t.tool, t.table, n); err != nil {
				return fmt.Errorf("iptables remove: flush %s: %w", n, err)
			}
		}
		for _, n := range ours {
			if err := x.delete(t.tool, t.table, n); err != nil {
				return fmt.Errorf("iptables remove: delete %s: %w", n, err)
			}
		}
	}
	return nil
}
