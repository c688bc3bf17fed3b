package firewall

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/nftables"
)

const (
	throughputPort   = 5201
	throughputFor    = 3 * time.Second // per measurement
	throughputWrite  = 128 << 10       // bytes per write
	throughputRounds = 3
)

// BenchmarkThroughput measures guest-to-guest TCP throughput (a -> b, through the bridge)
// with no firewall, with the nft back end and with the iptables back end, as ratios to
// no firewall; the target is a cost under 10%. Each case has its own topology, built
// once, so "off" never sees a table or hook the other back ends leave behind
// (iptables-nft keeps its base chains after Remove); bridge-nf-call-iptables is 1 in all
// three. Each measurement sends for 3 s; they are interleaved (off, nft, iptables, off,
// ...), 3 rounds per b.N (-benchtime 3x gives 9), and the medians reported. MBps is 10^6
// bytes of payload per second. The ratios are only as steady as the machine's idle CPU:
// with other load on it, look at the runs and raise -benchtime.
func BenchmarkThroughput(b *testing.B) { benchThroughput(b, 0) }

// BenchmarkThroughput200NICs is BenchmarkThroughput with 200 more NICs on br0 in the
// state (their taps need not exist), listed before a and b, half in each group: any rule
// list on the packet path that grows with the NICs is 200 rules longer before it reaches
// the measured ones.
func BenchmarkThroughput200NICs(b *testing.B) { benchThroughput(b, 200) }

// withExtraNICs returns s with n more NICs on its first network, ahead of its own, in
// groups alternately taken from groups: taps x000, x001, ..., addresses from .30 of the
// network's subnet up.
func withExtraNICs(s State, n int, groups ...string) State {
	base := s.Networks[0].Subnet.Addr().As4()
	extra := make([]NIC, n)
	for i := range extra {
		ip := base
		ip[3] = byte(30 + i)
		extra[i] = NIC{
			Tap: fmt.Sprintf("x%03d", i), Bridge: s.Networks[0].Bridge,
			MAC: net.HardwareAddr{2, 0, 0, 1, byte(i >> 8), byte(i)}, IP: netip.AddrFrom4(ip),
			Groups: []string{groups[i%len(groups)]},
		}
	}
	s.NICs = append(extra, s.NICs...)
	return s
}

func benchThroughput(b *testing.B, extraNICs int) {
	needRoot(b)
	ctx := context.Background()
	groups := []Group{{Name: "iperf", Rules: []Rule{tcpIn(throughputPort, "client")}}, {Name: "client"}}
	members := map[string][]string{"a": {"client"}, "b": {"iperf"}}

	cases := []struct {
		name string
		tp   *topo
		be   func(*netns) Backend
		sink *tcpSink
		mbps []float64
	}{
		{name: "off"},
		{name: "nft", be: func(ns *netns) Backend {
			return &nftBackend{table: testTable, opts: []nftables.ConnOption{nftables.WithNetNSFd(ns.fd)}}
		}},
		{name: "iptables", be: func(*netns) Backend { return NewIPTables(testPrefix) }},
	}
	for i := range cases {
		c := &cases[i]
		c.tp = newTopo(b, "a", "b")
		ga, gb := c.tp.guests["a"], c.tp.guests["b"]
		c.sink = gb.ns.listenSink(b, fmt.Sprintf("%s:%d", gb.ip, throughputPort))
		if c.be == nil {
			continue
		}
		s := withExtraNICs(c.tp.state(false, groups, members), extraNICs, "client", "iperf")
		if err := c.tp.host.apply(ctx, c.be(c.tp.host), s); err != nil {
			b.Fatalf("%s: %v", c.name, err)
		}
		// The firewall is really on: a port the group does not open stays shut.
		gb.ns.listen(b, gb.ip+":5202")
		if ga.ns.canConnect(gb.ip + ":5202") {
			b.Fatalf("%s: a->b:5202 passed a firewall that allows only %d", c.name, throughputPort)
		}
	}
	b.ResetTimer()

	for range b.N * throughputRounds {
		for i := range cases {
			c := &cases[i]
			gb := c.tp.guests["b"]
			mbps, err := c.tp.guests["a"].ns.sendFor(c.sink, fmt.Sprintf("%s:%d", gb.ip, throughputPort), throughputFor)
			if err != nil {
				b.Fatalf("%s: %v", c.name, err)
			}
			c.mbps = append(c.mbps, mbps)
		}
	}
	off, nft, ipt := median(cases[0].mbps), median(cases[1].mbps), median(cases[2].mbps)
	b.ReportMetric(off, "off-MBps")
	b.ReportMetric(nft, "nft-MBps")
	b.ReportMetric(ipt, "iptables-MBps")
	b.ReportMetric(nft/off, "nft-ratio")
	b.ReportMetric(ipt/off, "iptables-ratio")
	fmt.Printf("\n%-22s %9s %7s   %s\n", "TCP a->b, bridged", "MB/s", "ratio", "runs, in order (MB/s)")
	for _, c := range cases {
		fmt.Printf("%-22s %9.0f %7.3f   %.0f\n", c.name, median(c.mbps), median(c.mbps)/off, c.mbps)
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// tcpSink is a TCP server inside a namespace that reads and discards each connection and
// reports how many bytes it got and when the sender closed.
type tcpSink struct {
	done chan sinkResult
}

type sinkResult struct {
	n   int64
	end time.Time
	err error
}

func (n *netns) listenSink(t testing.TB, addr string) *tcpSink {
	t.Helper()
	var ln net.Listener
	if err := n.do(func() (err error) {
		ln, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatalf("listen %s in %s: %v", addr, n.name, err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &tcpSink{done: make(chan sinkResult, 1)}
	go func() {
		buf := make([]byte, 1<<20)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			var r sinkResult
			for {
				k, err := c.Read(buf)
				r.n += int64(k)
				if err != nil {
					r.end = time.Now()
					if !errors.Is(err, io.EOF) {
						r.err = err
					}
					break
				}
			}
			c.Close()
			s.done <- r
		}
	}()
	return s
}

// sendFor connects from inside n to the sink at addr, writes for d and returns the
// throughput the sink saw, in MB/s (from the first write to the sink reading EOF).
func (n *netns) sendFor(s *tcpSink, addr string, d time.Duration) (float64, error) {
	c, err := n.dial(addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	buf := make([]byte, throughputWrite)
	start := time.Now()
	for stop := start.Add(d); time.Now().Before(stop); {
		if _, err := c.Write(buf); err != nil {
			return 0, fmt.Errorf("write: %w", err)
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return 0, err
	}
	select {
	case r := <-s.done:
		if r.err != nil {
			return 0, fmt.Errorf("sink: %w", r.err)
		}
		return float64(r.n) / 1e6 / r.end.Sub(start).Seconds(), nil
	case <-time.After(10 * time.Second):
		return 0, fmt.Errorf("sink did not see the end of the stream")
	}
}
