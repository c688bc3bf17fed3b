package firewall

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// stateFile is the JSON form of a State in testdata (MACs as text).
type stateFile struct {
	Comment  string
	Networks []Network
	Groups   []Group
	NICs     []struct {
		Tap, Bridge string
		MAC         string
		IP          netip.Addr
		Groups      []string
		Mark        uint32
	}
}

func loadState(t testing.TB, path string) State {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f stateFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	s := State{Networks: f.Networks, Groups: f.Groups}
	for _, n := range f.NICs {
		mac, err := net.ParseMAC(n.MAC)
		if err != nil {
			mac = net.HardwareAddr(n.MAC) // invalid cases keep the bad value
		}
		s.NICs = append(s.NICs, NIC{Tap: n.Tap, Bridge: n.Bridge, MAC: mac, IP: n.IP, Groups: n.Groups, Mark: n.Mark})
	}
	return s
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update and review the diff):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestGolden renders every testdata/<case>.json: valid states to <case>.nft (Render) and
// <case>.iptables (the iptables back end's commands), invalid ones to <case>.err.
func TestGolden(t *testing.T) {
	cases, err := filepath.Glob("testdata/*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range cases {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		t.Run(name, func(t *testing.T) {
			s := loadState(t, path)
			out, err := Render(s)
			if strings.HasPrefix(name, "invalid-") {
				if err == nil {
					t.Fatal("Render succeeded on an invalid state")
				}
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("error does not wrap ErrInvalid: %v", err)
				}
				if err2 := s.Validate(); err2 == nil || err2.Error() != err.Error() {
					t.Errorf("Validate = %v, Render error = %v", err2, err)
				}
				golden(t, name+".err", err.Error()+"\n")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+".nft", out)
			p, err := buildNICPlan(s)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+".iptables", renderIPTables(p, "LQ"))
		})
	}
}

func TestMarks(t *testing.T) {
	s := State{NICs: []NIC{{Tap: "a"}, {Tap: "b", Mark: 1}, {Tap: "c"}, {Tap: "d", Mark: 3}, {Tap: "e"}}}
	got := s.Marks()
	want := map[string]uint32{"a": 2, "b": 1, "c": 4, "d": 3, "e": 5}
	for tap, m := range want {
		if got[tap] != m {
			t.Errorf("mark of %s = %d, want %d (all: %v)", tap, got[tap], m, got)
		}
	}
}
