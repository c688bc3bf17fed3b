package netdev

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

func addrs(ss ...string) map[netip.Addr]bool {
	m := map[netip.Addr]bool{}
	for _, s := range ss {
		m[netip.MustParseAddr(s)] = true
	}
	return m
}

func TestPoolValidate(t *testing.T) {
	tests := []struct {
		name    string
		subnet  string
		gateway string
		ok      bool
	}{
		{"slash24", "10.20.0.0/24", "10.20.0.1", true},
		{"gateway at the top", "10.20.0.0/24", "10.20.0.254", true},
		{"slash8", "10.0.0.0/8", "10.0.0.1", true},
		{"slash30", "192.168.5.4/30", "192.168.5.5", true},
		{"slash7 too big", "10.0.0.0/7", "10.0.0.1", false},
		{"slash31 too small", "10.0.0.0/31", "10.0.0.1", false},
		{"not a network address", "10.20.0.1/24", "10.20.0.1", false},
		{"ipv6", "fd00::/64", "fd00::1", false},
		{"gateway outside", "10.20.0.0/24", "10.20.1.1", false},
		{"gateway is network", "10.20.0.0/24", "10.20.0.0", false},
		{"gateway is broadcast", "10.20.0.0/24", "10.20.0.255", false},
		{"no gateway", "10.20.0.0/24", "", false},
		{"no subnet", "", "10.20.0.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Pool
			if tt.subnet != "" {
				p.Subnet = netip.MustParsePrefix(tt.subnet)
			}
			if tt.gateway != "" {
				p.Gateway = netip.MustParseAddr(tt.gateway)
			}
			err := p.Validate()
			if tt.ok != (err == nil) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestPoolAllocate(t *testing.T) {
	p24 := Pool{Subnet: netip.MustParsePrefix("10.20.0.0/24"), Gateway: netip.MustParseAddr("10.20.0.1")}
	reserved := p24
	reserved.Reserved = []netip.Prefix{netip.MustParsePrefix("10.20.0.2/31"), netip.MustParsePrefix("10.20.0.5/32")}
	topGW := Pool{Subnet: netip.MustParsePrefix("10.20.0.0/24"), Gateway: netip.MustParseAddr("10.20.0.254")}
	p30 := Pool{Subnet: netip.MustParsePrefix("192.168.5.4/30"), Gateway: netip.MustParseAddr("192.168.5.5")}
	allReserved := p24
	allReserved.Reserved = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}

	tests := []struct {
		name    string
		pool    Pool
		used    map[netip.Addr]bool
		want    string // requested address, "" for any
		got     string
		wantErr error
	}{
		{name: "first is .2", pool: p24, got: "10.20.0.2"},
		{name: "lowest free", pool: p24, used: addrs("10.20.0.2", "10.20.0.3", "10.20.0.5"), got: "10.20.0.4"},
		{name: "reserved skipped", pool: reserved, used: addrs("10.20.0.4"), got: "10.20.0.6"},
		{name: "gateway at top: .1 is free", pool: topGW, got: "10.20.0.1"},
		{name: "gateway at top skipped", pool: topGW, used: addrs(hostRange("10.20.0.", 1, 253)...), wantErr: ErrExhausted},
		{name: "slash30 one address", pool: p30, got: "192.168.5.6"},
		{name: "slash30 exhausted", pool: p30, used: addrs("192.168.5.6"), wantErr: ErrExhausted},
		{name: "all reserved", pool: allReserved, wantErr: ErrExhausted},
		{name: "want free", pool: p24, used: addrs("10.20.0.2"), want: "10.20.0.77", got: "10.20.0.77"},
		{name: "want taken", pool: p24, used: addrs("10.20.0.77"), want: "10.20.0.77", wantErr: ErrConflict},
		{name: "want gateway", pool: p24, want: "10.20.0.1", wantErr: ErrConflict},
		{name: "want reserved", pool: reserved, want: "10.20.0.3", wantErr: ErrConflict},
		{name: "want network", pool: p24, want: "10.20.0.0", wantErr: ErrInvalid},
		{name: "want broadcast", pool: p24, want: "10.20.0.255", wantErr: ErrInvalid},
		{name: "want outside", pool: p24, want: "10.20.1.7", wantErr: ErrInvalid},
		{name: "want ipv6", pool: p24, want: "fd00::7", wantErr: ErrInvalid},
		{name: "want 4in6 is unmapped", pool: p24, want: "::ffff:10.20.0.9", got: "10.20.0.9"},
		{name: "invalid pool", pool: Pool{Subnet: netip.MustParsePrefix("10.20.0.0/24")}, wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want netip.Addr
			if tt.want != "" {
				want = netip.MustParseAddr(tt.want)
			}
			got, err := tt.pool.Allocate(tt.used, want)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Allocate() = %v, %v; want error %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.String() != tt.got {
				t.Fatalf("Allocate() = %v, %v; want %s", got, err, tt.got)
			}
		})
	}
}

func hostRange(prefix string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, prefix+strconv.Itoa(i))
	}
	return out
}

func TestPoolAllocateFillsSlash29(t *testing.T) {
	p := Pool{Subnet: netip.MustParsePrefix("10.9.9.8/29"), Gateway: netip.MustParseAddr("10.9.9.9")}
	used := map[netip.Addr]bool{}
	var order []string
	for {
		a, err := p.Allocate(used, netip.Addr{})
		if errors.Is(err, ErrExhausted) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		used[a] = true
		order = append(order, a.String())
	}
	want := "10.9.9.10 10.9.9.11 10.9.9.12 10.9.9.13 10.9.9.14"
	if got := strings.Join(order, " "); got != want {
		t.Errorf("allocation order %s, want %s", got, want)
	}
}

func TestDHCPRange(t *testing.T) {
	tests := []struct{ subnet, gw, start, end string }{
		{"10.20.0.0/24", "10.20.0.1", "10.20.0.1", "10.20.0.254"},
		{"10.0.0.0/8", "10.0.0.1", "10.0.0.1", "10.255.255.254"},
		{"192.168.5.4/30", "192.168.5.5", "192.168.5.5", "192.168.5.6"},
	}
	for _, tt := range tests {
		t.Run(tt.subnet, func(t *testing.T) {
			p := Pool{Subnet: netip.MustParsePrefix(tt.subnet), Gateway: netip.MustParseAddr(tt.gw)}
			s, e := p.DHCPRange()
			if s.String() != tt.start || e.String() != tt.end {
				t.Errorf("DHCPRange() = %v, %v; want %s, %s", s, e, tt.start, tt.end)
			}
		})
	}
	if s, e := (Pool{}).DHCPRange(); s.IsValid() || e.IsValid() {
		t.Errorf("DHCPRange of an invalid pool = %v, %v; want zero", s, e)
	}
}

func TestOverlaps(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"10.20.0.0/24", "10.20.0.0/24", true},
		{"10.20.0.0/24", "10.20.0.128/25", true},
		{"10.0.0.0/8", "10.20.0.0/24", true},
		{"10.20.0.0/24", "10.20.1.0/24", false},
		{"10.20.0.0/23", "10.20.1.0/24", true},
		{"192.168.0.0/16", "10.0.0.0/8", false},
		{"10.20.0.7/24", "10.20.0.200/32", true}, // unmasked input is masked
		{"10.20.0.0/24", "fd00::/64", false},
	}
	for _, tt := range tests {
		t.Run(tt.a+"_"+tt.b, func(t *testing.T) {
			a, b := netip.MustParsePrefix(tt.a), netip.MustParsePrefix(tt.b)
			if got := Overlaps(a, b); got != tt.want {
				t.Errorf("Overlaps(%s, %s) = %v, want %v", a, b, got, tt.want)
			}
			if got := Overlaps(b, a); got != tt.want {
				t.Errorf("Overlaps(%s, %s) = %v, want %v", b, a, got, tt.want)
			}
		})
	}
	if Overlaps(netip.Prefix{}, netip.MustParsePrefix("10.0.0.0/8")) {
		t.Error("an invalid prefix overlaps")
	}
}
