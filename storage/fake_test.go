package storage

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
)

// fakeRunner answers qemu-img commands from a table keyed by the whole command line and
// records every call. "qemu-img create" writes a stub file at its target (the
// next-to-last argument) unless it is told to fail. Any other unknown command fails.
type fakeRunner struct {
	t     *testing.T
	out   map[string]string // command line → stdout
	fail  map[string]error  // command line → error
	calls []string
}

func (f *fakeRunner) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	line := strings.Join(append([]string{name}, args...), " ")
	f.calls = append(f.calls, line)
	if err, ok := f.fail[line]; ok {
		return nil, err
	}
	if out, ok := f.out[line]; ok {
		return []byte(out), nil
	}
	if name == "qemu-img" && len(args) > 2 && args[0] == "create" {
		if err := os.WriteFile(args[len(args)-2], []byte("QFI\xfb stub"), 0o644); err != nil {
			f.t.Fatalf("fake qemu-img create: %v", err)
		}
		return nil, nil
	}
	return nil, fmt.Errorf("fake: unexpected command %q", line)
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
