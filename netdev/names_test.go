package netdev

import (
	"fmt"
	"strings"
	"testing"
)

func TestTapName(t *testing.T) {
	tests := []struct {
		name  string
		uuid  string
		index int
		want  string
	}{
		{"v4 uuid keeps its digits", "3f2a9c41-d0e4-4b6a-9c1e-2f0d5b7a8e11", 0, "lqt3f2a9c41d00"},
		{"two-digit index", "3f2a9c41-d0e4-4b6a-9c1e-2f0d5b7a8e11", 12, "lqt3f2a9c41d012"},
		{"upper-case uuid", "3F2A9C41-D0E4-4B6A-9C1E-2F0D5B7A8E11", 1, "lqt3f2a9c41d01"},
		// A v7 UUID starts with a clock: two VMs made in the same ms would clash.
		{"v7 uuid is hashed", "01936b2e-1f00-7cc3-98c4-dc0c0c07398f", 0, "lqt" + hashHex("01936b2e-1f00-7cc3-98c4-dc0c0c07398f", 10) + "0"},
		{"not a uuid is hashed", "vm-one", 3, "lqt" + hashHex("vm-one", 10) + "3"},
		{"big index is hashed", "3f2a9c41-d0e4-4b6a-9c1e-2f0d5b7a8e11", 100, "lqt" + hashHex("3f2a9c41-d0e4-4b6a-9c1e-2f0d5b7a8e11\x00100", 12)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := TapName(tt.uuid, tt.index)
			if got != tt.want {
				t.Errorf("TapName(%q, %d) = %q, want %q", tt.uuid, tt.index, got, tt.want)
			}
			if err := validIfName(got); err != nil || !strings.HasPrefix(got, TapPrefix) {
				t.Errorf("TapName(%q, %d) = %q: not a valid lqd tap name: %v", tt.uuid, tt.index, got, err)
			}
		})
	}
}

func TestTapNameUnique(t *testing.T) {
	seen := map[string]string{}
	uuids := []string{
		"3f2a9c41-d0e4-4b6a-9c1e-2f0d5b7a8e11",
		"3f2a9c41-d1e4-4b6a-9c1e-2f0d5b7a8e11", // differs in the 10th digit
		"01936b2e-1f00-7cc3-98c4-dc0c0c07398f",
		"01936b2e-1f00-7cc3-98c4-dc0c0c07398e",
		"vm-one", "vm-two", "",
	}
	for _, u := range uuids {
		for _, i := range []int{0, 1, 2, 9, 10, 11, 99, 100, 1000, -1} {
			name := TapName(u, i)
			key := fmt.Sprintf("%s/%d", u, i)
			if prev, ok := seen[name]; ok {
				t.Errorf("TapName(%s) = TapName(%s) = %q", key, prev, name)
			}
			seen[name] = key
			if len(name) > maxIfName {
				t.Errorf("TapName(%s) = %q: longer than %d", key, name, maxIfName)
			}
		}
	}
}

func TestBridgeName(t *testing.T) {
	tests := []struct{ network, want string }{
		{"default", "lqb-default"},
		{"lab_1-a", "lqb-lab_1-a"},
		{"elevenchars", "lqb-elevenchars"},
		{"twelve-chars", "lqb-twel." + hashHex("twelve-chars", 6)},
		{"a/b c", "lqb-abc." + hashHex("a/b c", 6)},
		{"lab.net", "lqb-labn." + hashHex("lab.net", 6)},
		{"", "lqb-." + hashHex("", 6)},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		t.Run(tt.network, func(t *testing.T) {
			got := BridgeName(tt.network)
			if got != tt.want {
				t.Errorf("BridgeName(%q) = %q, want %q", tt.network, got, tt.want)
			}
			if err := validIfName(got); err != nil {
				t.Errorf("BridgeName(%q) = %q: %v", tt.network, got, err)
			}
			if prev, ok := seen[got]; ok {
				t.Errorf("BridgeName(%q) = BridgeName(%q)", tt.network, prev)
			}
			seen[got] = tt.network
		})
	}
	// Names longer than 11 characters that share a prefix still differ.
	if a, b := BridgeName("production-a"), BridgeName("production-b"); a == b {
		t.Errorf("BridgeName: production-a and production-b both give %q", a)
	}
}

func TestMACs(t *testing.T) {
	for _, seed := range []string{"", "vm1/0", "vm1/1", "3f2a9c41-d0e4-4b6a-9c1e-2f0d5b7a8e11/0"} {
		g, h := GuestMAC(seed), HostMAC(seed)
		for _, m := range [][]byte{g, h} {
			if len(m) != 6 {
				t.Fatalf("seed %q: MAC %x is not 6 bytes", seed, m)
			}
			if m[0]&0x01 != 0 {
				t.Errorf("seed %q: MAC %x is multicast", seed, m)
			}
			if m[0]&0x02 == 0 {
				t.Errorf("seed %q: MAC %x is not locally administered", seed, m)
			}
		}
		if !strings.HasPrefix(g.String(), "52:54:00:") {
			t.Errorf("GuestMAC(%q) = %s, want qemu's 52:54:00 prefix", seed, g)
		}
		if h[0] != 0xfe {
			t.Errorf("HostMAC(%q) = %s, want fe: prefix", seed, h)
		}
		if GuestMAC(seed).String() != g.String() || HostMAC(seed).String() != h.String() {
			t.Errorf("seed %q: MACs are not deterministic", seed)
		}
	}
	if GuestMAC("vm1/0").String() == GuestMAC("vm1/1").String() {
		t.Error("GuestMAC gives the same MAC for different seeds")
	}
	if HostMAC("vm1/0").String() == HostMAC("vm1/1").String() {
		t.Error("HostMAC gives the same MAC for different seeds")
	}
}
