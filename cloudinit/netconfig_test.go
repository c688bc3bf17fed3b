package cloudinit

import (
	"net/netip"
	"os"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestNetworkConfig(t *testing.T) {
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	tests := []struct {
		name    string
		in      []Interface
		golden  string
		wantErr bool
	}{
		{"two-nics", []Interface{
			{MAC: "52:54:00:12:34:56", Address: p("10.20.0.5/24"), Gateway: a("10.20.0.1"), DNS: []netip.Addr{a("10.20.0.1")}, Search: []string{"lq"}},
			{MAC: "52:54:00:12:34:57", Address: p("10.30.0.9/24"), Gateway: a("10.30.0.1")},
		}, "testdata/netconfig-two-nics.yaml", false},
		{"no-gateway", []Interface{{MAC: "52:54:00:AB:CD:EF", Address: p("192.168.77.2/28")}}, "testdata/netconfig-no-gateway.yaml", false},
		{"bad-mac", []Interface{{MAC: "nope", Address: p("10.0.0.2/24")}}, "", true},
		{"ipv6", []Interface{{MAC: "52:54:00:12:34:56", Address: p("fd00::2/64")}}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NetworkConfig(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			var doc map[string]any
			if err := yaml.Unmarshal(got, &doc); err != nil {
				t.Fatalf("not YAML: %v\n%s", err, got)
			}
			if *update {
				os.WriteFile(tt.golden, got, 0o644)
			}
			want, err := os.ReadFile(tt.golden)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}
