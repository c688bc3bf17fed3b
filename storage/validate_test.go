package storage

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckCmdline(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"empty", "", true},
		{"typical", "console=ttyS0 root=/dev/vda rw quiet", true},
		{"max length", strings.Repeat("a", maxCmdline), true},
		{"too long", strings.Repeat("a", maxCmdline+1), false},
		{"newline", "console=ttyS0\ninit=/bin/sh", false},
		{"carriage return", "console=ttyS0\r", false},
		{"NUL", "console=ttyS0\x00", false},
		{"escape", "a\x1bb", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkCmdline(tt.in)
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalid)) {
				t.Errorf("checkCmdline = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// fakeBzImage is the smallest file checkKernel accepts.
func fakeBzImage() []byte {
	b := make([]byte, 4096)
	copy(b[bzMagicOffset:], bzMagic)
	return b
}

func TestCheckKernel(t *testing.T) {
	tests := []struct {
		name    string
		content []byte
		ok      bool
	}{
		{"bzImage", fakeBzImage(), true},
		{"text", []byte(strings.Repeat("not a kernel\n", 100)), false},
		{"magic at wrong offset", append([]byte("HdrS"), make([]byte, 1024)...), false},
		{"shorter than header", []byte("MZ"), false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vmlinuz")
			if err := os.WriteFile(path, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			err := checkKernel(path)
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalid)) {
				t.Errorf("checkKernel = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestValidNames(t *testing.T) {
	for _, s := range []string{"debian-12", "a", "0", strings.Repeat("a", 63)} {
		if !validName(s) {
			t.Errorf("validName(%q) = false", s)
		}
	}
	for _, s := range []string{"", "-a", "A", "a.b", "../x", "a/b", strings.Repeat("a", 64)} {
		if validName(s) {
			t.Errorf("validName(%q) = true", s)
		}
	}
	for _, s := range []string{"", ".", "..", "../x", "a/b", ".hidden", "a b"} {
		if validID(s) {
			t.Errorf("validID(%q) = true", s)
		}
	}
}
