package firewall

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/nftables"
)

// state100 is a /16 network with 100 NICs (taps need not exist: rules name them) in three
// groups that reference each other; extra adds one rule to the group all NICs share.
func state100(extra bool) State {
	s := State{
		Networks: []Network{{Bridge: "br0", Subnet: netip.MustParsePrefix("10.77.0.0/16"), Gateway: netip.MustParseAddr("10.77.0.1"), NAT: true}},
		Groups: []Group{
			{Name: "all", Rules: []Rule{{Direction: In, Proto: ICMP, Group: "all"}, tcpIn(22, "10.77.0.1/32")}},
			{Name: "web", Rules: []Rule{tcpIn(443, "0.0.0.0/0"), {Direction: In, Proto: TCP, PortFrom: 8000, PortTo: 8100, Group: "all"}}},
			{Name: "db", Rules: []Rule{tcpIn(5432, "web"), {Direction: Out, Proto: UDP, PortFrom: 53}, {Direction: Out, Proto: Any, Group: "all"}}},
		},
	}
	if extra {
		s.Groups[0].Rules = append(s.Groups[0].Rules, Rule{Direction: In, Proto: UDP, PortFrom: 161, CIDR: netip.MustParsePrefix("10.0.0.0/8")})
	}
	for i := range 100 {
		groups := []string{"all", "web"}
		if i%4 == 0 {
			groups = []string{"all", "db"}
		}
		s.NICs = append(s.NICs, NIC{
			Tap: fmt.Sprintf("tap%03d", i), Bridge: "br0",
			MAC:    net.HardwareAddr{2, 0, 0, 0, byte(i >> 8), byte(i)},
			IP:     netip.AddrFrom4([4]byte{10, 77, byte(1 + i/200), byte(10 + i%200)}),
			Groups: groups,
		})
	}
	return s
}

// BenchmarkApply100NICs measures one nft Apply of a group change that touches all 100
// NICs' inbound chains (the whole two tables are rewritten in one batch).
func BenchmarkApply100NICs(b *testing.B) {
	needRoot(b)
	tp := newTopo(b)
	be := &nftBackend{table: testTable, opts: []nftables.ConnOption{nftables.WithNetNSFd(tp.host.fd)}}
	states := [2]State{state100(false), state100(true)}
	ctx := context.Background()
	if err := tp.host.apply(ctx, be, states[0]); err != nil {
		b.Fatal(err)
	}
	i := 0
	err := tp.host.do(func() error {
		start := time.Now()
		for b.Loop() {
			i++
			if err := be.Apply(ctx, states[i%2]); err != nil {
				return err
			}
		}
		b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(i), "ms/apply")
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
