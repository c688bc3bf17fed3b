package firewall

import (
	"encoding/binary"
	"fmt"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// ruleExprs translates a plan rule into nftables expressions, with the same protocol
// dependencies nft itself would add (so `nft list` prints the rule as Render does).
// sets maps set names to their IDs in the same batch.
func ruleExprs(rl rule, f family, sets map[string]uint32) []expr.Any {
	b := exprBuilder{fam: f, sets: sets}
	for _, m := range rl.match {
		b.match(m)
	}
	b.verdict(rl.verdict)
	return b.out
}

type exprBuilder struct {
	fam  family
	sets map[string]uint32
	out  []expr.Any
	ipv4 bool  // the IPv4 dependency is in place
	arp  bool  // the ARP dependency is in place
	l4   Proto // the layer 4 dependency in place, if any
}

func (b *exprBuilder) add(e ...expr.Any) { b.out = append(b.out, e...) }

func (b *exprBuilder) cmp(neg bool, data []byte) {
	op := expr.CmpOpEq
	if neg {
		op = expr.CmpOpNeq
	}
	b.add(&expr.Cmp{Op: op, Register: 1, Data: data})
}

func (b *exprBuilder) meta(k expr.MetaKey) { b.add(&expr.Meta{Key: k, Register: 1}) }

func (b *exprBuilder) payload(base expr.PayloadBase, off, n uint32) {
	b.add(&expr.Payload{DestRegister: 1, Base: base, Offset: off, Len: n})
}

// needIPv4 adds what nft adds before an ip match: meta nfproto in inet, meta protocol in
// bridge.
func (b *exprBuilder) needIPv4() {
	if b.ipv4 {
		return
	}
	b.ipv4 = true
	if b.fam == familyBridge {
		b.meta(expr.MetaKeyPROTOCOL)
		b.cmp(false, binaryutil.BigEndian.PutUint16(uint16(etherIPv4)))
		return
	}
	b.meta(expr.MetaKeyNFPROTO)
	b.cmp(false, []byte{unix.NFPROTO_IPV4})
}

func (b *exprBuilder) needL4(p Proto) {
	if b.l4 == p {
		return
	}
	b.l4 = p
	b.meta(expr.MetaKeyL4PROTO)
	b.cmp(false, []byte{protoNumber(p)})
}

func (b *exprBuilder) needARP() {
	if b.arp {
		return
	}
	b.arp = true
	b.payload(expr.PayloadBaseLLHeader, 12, 2)
	b.cmp(false, binaryutil.BigEndian.PutUint16(uint16(etherARP)))
}

// selectorLoad says where a selector's field is: a meta key, or a payload base, offset and
// length.
type selectorLoad struct {
	isMeta bool
	meta   expr.MetaKey
	base   expr.PayloadBase
	offset uint32
	len    uint32
}

var selectorLoads = map[selector]selectorLoad{
	selIIF:       {isMeta: true, meta: expr.MetaKeyIIFNAME, len: unix.IFNAMSIZ},
	selOIF:       {isMeta: true, meta: expr.MetaKeyOIFNAME, len: unix.IFNAMSIZ},
	selMark:      {isMeta: true, meta: expr.MetaKeyMARK, len: 4},
	selEtherSrc:  {base: expr.PayloadBaseLLHeader, offset: 6, len: 6},
	selARPSrcMAC: {base: expr.PayloadBaseNetworkHeader, offset: 8, len: 6},
	selARPSrcIP:  {base: expr.PayloadBaseNetworkHeader, offset: 14, len: 4},
	selIPSrc:     {base: expr.PayloadBaseNetworkHeader, offset: 12, len: 4},
	selIPDst:     {base: expr.PayloadBaseNetworkHeader, offset: 16, len: 4},
}

// lookup looks the selected fields up in set m.name.
func (b *exprBuilder) lookup(m match) {
	b.loadKey(m.sel)
	b.add(&expr.Lookup{SourceRegister: 1, SetName: m.name, SetID: b.sets[m.name], Invert: m.neg})
}

// loadKey loads the selected fields into consecutive registers from 1, each padded to 4
// bytes as in a concatenated set key, as nft does: protocol dependencies first.
func (b *exprBuilder) loadKey(sel []selector) {
	for _, s := range sel {
		switch s {
		case selARPSrcMAC, selARPSrcIP:
			b.needARP()
		case selIPSrc, selIPDst:
			b.needIPv4()
		}
	}
	var off uint32
	for _, s := range sel {
		l := selectorLoads[s]
		reg := register(off)
		if l.isMeta {
			b.add(&expr.Meta{Key: l.meta, Register: reg})
		} else {
			b.add(&expr.Payload{DestRegister: reg, Base: l.base, Offset: l.offset, Len: l.len})
		}
		off += (l.len + 3) &^ 3
	}
}

// register names the register at byte offset off of the register file: the 16-byte
// registers (1-4) where aligned, else the 4-byte ones (8-23).
func register(off uint32) uint32 {
	if off%16 == 0 {
		return 1 + off/16
	}
	return 8 + off/4
}

func protoNumber(p Proto) byte {
	switch p {
	case TCP:
		return unix.IPPROTO_TCP
	case UDP:
		return unix.IPPROTO_UDP
	case ICMP:
		return unix.IPPROTO_ICMP
	}
	panic(fmt.Sprintf("firewall: no protocol number for %q", p))
}

func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

func (b *exprBuilder) match(m match) {
	switch m.kind {
	case mIIF, mOIF:
		k := expr.MetaKeyIIFNAME
		if m.kind == mOIF {
			k = expr.MetaKeyOIFNAME
		}
		b.meta(k)
		b.cmp(m.neg, ifname(m.name))
	case mCTEstRel, mCTInvalid:
		bits := expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED
		if m.kind == mCTInvalid {
			bits = expr.CtStateBitINVALID
		}
		b.add(&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)})
	case mSrc, mDst:
		b.needIPv4()
		off := uint32(12)
		if m.kind == mDst {
			off = 16
		}
		addr := m.prefix.Masked().Addr().As4()
		bits := m.prefix.Bits()
		if bits%8 == 0 {
			// Whole bytes: nft loads just the prefix bytes and compares them.
			b.payload(expr.PayloadBaseNetworkHeader, off, uint32(bits/8))
			b.cmp(m.neg, addr[:bits/8])
			return
		}
		b.payload(expr.PayloadBaseNetworkHeader, off, 4)
		mask := binary.BigEndian.AppendUint32(nil, ^uint32(0)<<(32-bits))
		b.add(&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)})
		b.cmp(m.neg, addr[:])
	case mIPv4:
		b.needIPv4()
	case mProto:
		b.needL4(m.proto)
	case mSport, mDport:
		b.needL4(m.proto)
		off := uint32(2)
		if m.kind == mSport {
			off = 0
		}
		b.payload(expr.PayloadBaseTransportHeader, off, 2)
		if m.from == m.to {
			b.cmp(false, binaryutil.BigEndian.PutUint16(uint16(m.from)))
			return
		}
		b.add(&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: binaryutil.BigEndian.PutUint16(uint16(m.from))},
			&expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: binaryutil.BigEndian.PutUint16(uint16(m.to))})
	case mEtherType:
		b.payload(expr.PayloadBaseLLHeader, 12, 2)
		b.cmp(m.neg, binaryutil.BigEndian.PutUint16(uint16(m.etype)))
	case mARPSrcIP:
		b.needARP()
		a := m.addr.As4()
		b.payload(expr.PayloadBaseNetworkHeader, 14, 4)
		b.cmp(m.neg, a[:])
	case mLookup:
		b.lookup(m)
	default:
		panic(fmt.Sprintf("firewall: unknown match kind %d", m.kind))
	}
}

func (b *exprBuilder) verdict(v verdict) {
	switch v.kind {
	case vAccept:
		b.add(&expr.Verdict{Kind: expr.VerdictAccept})
	case vDrop:
		b.add(&expr.Verdict{Kind: expr.VerdictDrop})
	case vReturn:
		b.add(&expr.Verdict{Kind: expr.VerdictReturn})
	case vJump:
		b.add(&expr.Verdict{Kind: expr.VerdictJump, Chain: nftChainName(v.target)})
	case vGoto:
		b.add(&expr.Verdict{Kind: expr.VerdictGoto, Chain: nftChainName(v.target)})
	case vSetMark:
		b.add(&expr.Immediate{Register: 1, Data: binaryutil.NativeEndian.PutUint32(v.mark)},
			&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1})
	case vMap:
		// The looked-up value goes to the verdict register (0).
		b.loadKey(v.sel)
		b.add(&expr.Lookup{SourceRegister: 1, SetName: v.set, SetID: b.sets[v.set], IsDestRegSet: true, DestRegister: unix.NFT_REG_VERDICT})
	case vMasquerade:
		b.add(&expr.Masq{})
	default:
		panic(fmt.Sprintf("firewall: unknown verdict kind %d", v.kind))
	}
}
