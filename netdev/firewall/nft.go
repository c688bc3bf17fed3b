package firewall

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// NewNFT returns the nftables back end: one inet and one bridge table named tableName,
// both owned by lqd and rewritten whole, in one netlink batch, by each Apply. Apply acts
// on the network namespace of the calling OS thread.
func NewNFT(tableName string) Backend {
	return &nftBackend{table: tableName}
}

type nftBackend struct {
	table string
	opts  []nftables.ConnOption // tests pass nftables.WithNetNSFd

	mu sync.Mutex // one batch at a time: each reads the tables it then rewrites
}

func (b *nftBackend) Name() string { return "nft" }

func (b *nftBackend) tables() (inet, bridge *nftables.Table) {
	return &nftables.Table{Family: nftables.TableFamilyINet, Name: b.table},
		&nftables.Table{Family: nftables.TableFamilyBridge, Name: b.table}
}

// Apply replaces both tables' content with s in one transaction: it flushes every rule,
// deletes the chains and sets s no longer needs (and the maps, which are re-created),
// refills the sets it keeps and re-adds all rules. Base chains stay registered, so packets
// see either the old ruleset or the new one, and conntrack entries are untouched. A failed
// batch changes nothing.
func (b *nftBackend) Apply(ctx context.Context, s State) error {
	p, err := buildNFTPlan(s)
	if err != nil {
		return fmt.Errorf("nft apply: %w", err)
	}
	if len(s.NICs) > 0 {
		if err := bridgeNetfilterOn(); err != nil {
			return fmt.Errorf("nft apply: %w", err)
		}
	}
	return b.applyPlan(ctx, p)
}

func (b *nftBackend) applyPlan(ctx context.Context, p *nftPlan) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("nft apply: %w", err)
	}
	c, err := nftables.New(append(b.opts, nftables.WithSockOptions(bigBuffers))...)
	if err != nil {
		return fmt.Errorf("nft apply: open netlink: %w", err)
	}
	inet, bridge := b.tables()
	have, err := b.existing(c)
	if err != nil {
		return fmt.Errorf("nft apply: %w", err)
	}

	c.AddTable(inet)
	c.AddTable(bridge)
	c.FlushTable(inet)
	c.FlushTable(bridge)

	type wanted struct {
		t *nftables.Table
		f family
		c chain
	}
	var want []wanted
	for _, ch := range p.inet {
		want = append(want, wanted{inet, familyInet, ch})
	}
	for _, ch := range p.bridge {
		want = append(want, wanted{bridge, familyBridge, ch})
	}
	type setWant struct {
		t *nftables.Table
		s nftSet
	}
	var sets []setWant
	for _, st := range p.inetSets {
		sets = append(sets, setWant{inet, st})
	}
	for _, st := range p.bridgeSets {
		sets = append(sets, setWant{bridge, st})
	}
	keepSet := map[objKey]*nftables.Set{}
	for _, sw := range sets {
		keepSet[objKey{sw.t.Family, sw.s.name}] = nftSetOf(sw.t, sw.s)
	}
	// Rules are flushed above, so only verdict maps' elements still reference chains: sets
	// go first, then the chains nothing references any more.
	for _, old := range have.sets {
		k := objKey{old.Table.Family, old.Name}
		// A set whose type changed cannot be updated in place; it is re-created below.
		if nw, ok := keepSet[k]; !ok || !sameSetType(old, nw) {
			c.DelSet(old)
		}
	}
	keep := map[objKey]bool{}
	for _, w := range want {
		keep[objKey{w.t.Family, nftChainName(w.c.ref)}] = true
	}
	for _, ch := range have.chains {
		if !keep[objKey{ch.Table.Family, ch.Name}] {
			c.DelChain(ch)
		}
	}

	// Rules refer to sets by name and by their ID in this batch.
	setIDs := map[nftables.TableFamily]map[string]uint32{inet.Family: {}, bridge.Family: {}}
	for _, sw := range sets {
		set := keepSet[objKey{sw.t.Family, sw.s.name}]
		if err := c.AddSet(set, nil); err != nil {
			return fmt.Errorf("nft apply: set %s: %w", set.Name, err)
		}
		c.FlushSet(set)
		setIDs[sw.t.Family][sw.s.name] = set.ID
	}

	chains := make([]*nftables.Chain, len(want))
	for i, w := range want {
		ch := &nftables.Chain{Table: w.t, Name: nftChainName(w.c.ref)}
		if w.c.ref.base() {
			bc := nftBase(w.c.ref.kind)
			hook := nftHooks[bc.hook]
			prio := nftables.ChainPriority(bc.priority)
			policy := nftables.ChainPolicyAccept
			ch.Hooknum, ch.Priority, ch.Type, ch.Policy = &hook, &prio, nftables.ChainType(bc.typ), &policy
		}
		if old, ok := have.byName[objKey{w.t.Family, ch.Name}]; ok {
			switch {
			case w.c.ref.base() != (old.Hooknum != nil) || w.c.ref.base() && !sameHook(old, ch):
				c.DelChain(old) // a hook cannot come, go or change in place; re-created below
			case !w.c.ref.base():
				// It exists, emptied by the flush above. Re-adding costs the kernel an
				// update per chain, a third of the batch with one chain per NIC.
				chains[i] = ch
				continue
			}
		}
		chains[i] = c.AddChain(ch)
	}
	// Elements go in after the chains, which a verdict map's elements name.
	for _, sw := range sets {
		if len(sw.s.elems) == 0 {
			continue
		}
		set := keepSet[objKey{sw.t.Family, sw.s.name}]
		if err := c.SetAddElements(set, setElements(sw.s)); err != nil {
			return fmt.Errorf("nft apply: set %s elements: %w", set.Name, err)
		}
	}
	for i, w := range want {
		for _, rl := range w.c.rules {
			c.AddRule(&nftables.Rule{Table: w.t, Chain: chains[i], Exprs: ruleExprs(rl, w.f, setIDs[w.t.Family])})
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("nft apply: %w", err)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nft apply: commit tables %s: %w", b.table, err)
	}
	return nil
}

// batchBuffer bounds one batch: the kernel refuses a sendmsg larger than the send buffer
// and drops acks (ENOBUFS) beyond the receive buffer; a few thousand rules, one ack each,
// outgrow the defaults. It is a limit, not an allocation.
const batchBuffer = 64 << 20

// bigBuffers raises the netlink socket's buffers to batchBuffer, past rmem_max and
// wmem_max when allowed (CAP_NET_ADMIN), as nft does.
func bigBuffers(c *netlink.Conn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("netlink buffers: %w", err)
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		for _, o := range [][2]int{{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}, {unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}} {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], batchBuffer) != nil {
				if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[1], batchBuffer); err != nil {
					serr = err
				}
			}
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("netlink buffers: %w", err)
	}
	return nil
}

var nftHooks = map[string]nftables.ChainHook{
	"prerouting":  *nftables.ChainHookPrerouting,
	"input":       *nftables.ChainHookInput,
	"forward":     *nftables.ChainHookForward,
	"output":      *nftables.ChainHookOutput,
	"postrouting": *nftables.ChainHookPostrouting,
}

// sameSetType reports whether the existing set old can be refilled as nw. Maps never are:
// google/nftables reads a verdict map's key type back as "verdict", so the key type of an
// existing map is unknown; they are re-created (in the same batch) instead.
func sameSetType(old, nw *nftables.Set) bool {
	if old.IsMap || nw.IsMap {
		return false
	}
	return old.KeyType.GetNFTMagic() == nw.KeyType.GetNFTMagic()
}

func sameHook(a, b *nftables.Chain) bool {
	if a.Hooknum == nil || a.Priority == nil {
		return false
	}
	return *a.Hooknum == *b.Hooknum && *a.Priority == *b.Priority && a.Type == b.Type
}

// objKey names a chain or set of one of the two tables.
type objKey struct {
	family nftables.TableFamily
	name   string
}

// owned is what exists of lqd's tables now.
type owned struct {
	tables []*nftables.Table
	chains []*nftables.Chain
	byName map[objKey]*nftables.Chain
	sets   []*nftables.Set
}

func (b *nftBackend) existing(c *nftables.Conn) (owned, error) {
	o := owned{byName: map[objKey]*nftables.Chain{}}
	inet, bridge := b.tables()
	for _, t := range []*nftables.Table{inet, bridge} {
		got, err := c.ListTableOfFamily(t.Name, t.Family)
		switch {
		case errors.Is(err, os.ErrNotExist) || (err == nil && got == nil):
			continue
		case err != nil:
			return o, fmt.Errorf("list table %s: %w", t.Name, err)
		}
		o.tables = append(o.tables, got)
		chains, err := c.ListChainsOfTableFamily(t.Family)
		if err != nil {
			return o, fmt.Errorf("list chains of %s: %w", t.Name, err)
		}
		for _, ch := range chains {
			if ch.Table.Name == t.Name {
				o.chains = append(o.chains, ch)
				o.byName[objKey{t.Family, ch.Name}] = ch
			}
		}
		sets, err := c.GetSets(got)
		if err != nil {
			return o, fmt.Errorf("list sets of %s: %w", t.Name, err)
		}
		o.sets = append(o.sets, sets...)
	}
	return o, nil
}

// Remove deletes both tables, if they exist, in one batch.
func (b *nftBackend) Remove(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("nft remove: %w", err)
	}
	c, err := nftables.New(b.opts...)
	if err != nil {
		return fmt.Errorf("nft remove: open netlink: %w", err)
	}
	have, err := b.existing(c)
	if err != nil {
		return fmt.Errorf("nft remove: %w", err)
	}
	for _, t := range have.tables {
		c.DelTable(t)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nft remove: delete tables %s: %w", b.table, err)
	}
	return nil
}

var nftSetTypes = map[setType]nftables.SetDatatype{
	tIPv4: nftables.TypeIPAddr, tMark: nftables.TypeMark, tIfname: nftables.TypeIFName, tEther: nftables.TypeEtherAddr,
	tVerdict: nftables.TypeVerdict,
}

// nftSetOf declares s in table t.
func nftSetOf(t *nftables.Table, s nftSet) *nftables.Set {
	set := &nftables.Set{Table: t, Name: s.name, KeyType: nftSetTypes[s.key[0]]}
	if len(s.key) == 1 && (s.key[0] == tMark || s.key[0] == tIfname) {
		// Recorded in the set's user data, as nft does; without it nft prints these keys
		// byte-swapped (marks) or empty (interface names).
		set.KeyByteOrder = binaryutil.NativeEndian
	}
	if len(s.key) > 1 {
		types := make([]nftables.SetDatatype, len(s.key))
		for i, k := range s.key {
			types[i] = nftSetTypes[k]
		}
		set.KeyType = nftables.MustConcatSetType(types...)
	}
	if s.data != tNone {
		set.IsMap, set.DataType = true, nftSetTypes[s.data]
	}
	return set
}

// setElements encodes s's elements: key fields each padded to 4 bytes, as concatenated
// keys are laid out in registers; a verdict map's values as verdicts.
func setElements(s nftSet) []nftables.SetElement {
	out := make([]nftables.SetElement, len(s.elems))
	for i, e := range s.elems {
		var key []byte
		for j, t := range s.key {
			b := e[j].bytes(t)
			if len(s.key) > 1 {
				b = append(b, make([]byte, (4-len(b)%4)%4)...)
			}
			key = append(key, b...)
		}
		out[i].Key = key
		if s.data == tVerdict {
			out[i].VerdictData = verdictData(e[len(s.key)].verdict)
		}
	}
	return out
}

// verdictData is a verdict map's value.
func verdictData(v verdict) *expr.Verdict {
	switch v.kind {
	case vAccept:
		return &expr.Verdict{Kind: expr.VerdictAccept}
	case vDrop:
		return &expr.Verdict{Kind: expr.VerdictDrop}
	case vJump:
		return &expr.Verdict{Kind: expr.VerdictJump, Chain: nftChainName(v.target)}
	case vGoto:
		return &expr.Verdict{Kind: expr.VerdictGoto, Chain: nftChainName(v.target)}
	}
	panic(fmt.Sprintf("firewall: verdict kind %d cannot be a map value", v.kind))
}

// bytes encodes a field as the kernel compares it: marks in host order, the rest as on
// the wire, interface names NUL-padded to IFNAMSIZ.
func (f elemField) bytes(t setType) []byte {
	switch t {
	case tIPv4:
		return f.ip.AsSlice()
	case tMark:
		return binaryutil.NativeEndian.PutUint32(f.mark)
	case tIfname:
		return ifname(f.name)
	case tEther:
		return slices.Clone(f.mac)
	}
	panic(fmt.Sprintf("firewall: unknown set type %d", t))
}
