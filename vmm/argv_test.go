package vmm

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// argvCase is testdata/<name>.json: host facts plus a plan; <name>.argv holds the expected
// argv one argument per line, or <name>.err the expected error.
type argvCase struct {
	Comment string `json:"_comment"` // what the case guards
	Host    Host   `json:"host"`
	Plan    Plan   `json:"plan"`
}

func TestArgvGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/argv-*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no argv cases: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var c argvCase
			dec := json.NewDecoder(strings.NewReader(string(raw)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&c); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			argv, err := Argv(c.Host, c.Plan)
			var got, golden string
			if err != nil {
				got, golden = err.Error()+"\n", strings.TrimSuffix(f, ".json")+".err"
			} else {
				got, golden = strings.Join(argv, "\n")+"\n", strings.TrimSuffix(f, ".json")+".argv"
			}
			if *update {
				os.Remove(strings.TrimSuffix(f, ".json") + ".err")
				os.Remove(strings.TrimSuffix(f, ".json") + ".argv")
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run go test ./vmm -update): %v", err)
			}
			if got != string(want) {
				t.Errorf("argv differs from %s:\n%s", golden, lineDiff(string(want), got))
			}
		})
	}
}

// lineDiff shows lines only in want (-) or only in got (+), in order.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + itoa(i+1) + ":\n- " + wl + "\n+ " + gl + "\n")
		}
	}
	return b.String()
}

func itoa(i int) string { return strconv.Itoa(i) }
