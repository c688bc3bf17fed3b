package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestParseInfo(t *testing.T) {
	tests := []struct {
		name string
		file string // testdata/, real `qemu-img info -U --output=json` output (qemu 7.2)
		want Info
	}{
		{"qcow2", "info-qcow2.json", Info{
			Format: "qcow2", VirtualSize: 2 << 30, ActualSize: 200704, ClusterSize: 65536,
		}},
		{"qcow2 with backing file", "info-qcow2-backing.json", Info{
			Format: "qcow2", VirtualSize: 10 << 30, ActualSize: 200704, ClusterSize: 65536,
			BackingFile:     "/var/lib/lq/pools/default/images/debian.qcow2",
			FullBackingFile: "/var/lib/lq/pools/default/images/debian.qcow2",
			BackingFormat:   "qcow2",
		}},
		{"raw", "info-raw.json", Info{Format: "raw", VirtualSize: 64 << 20}},
		{"qcow2 with external data file", "info-qcow2-datafile.json", Info{
			Format: "qcow2", VirtualSize: 1 << 20, ActualSize: 266240, ClusterSize: 65536,
			DataFile: "/etc/shadow",
		}},
		{"luks-encrypted qcow2", "info-qcow2-encrypted.json", Info{
			Format: "qcow2", VirtualSize: 1 << 20, ActualSize: 2297856, ClusterSize: 65536,
			Encrypted: true,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseInfo([]byte(readTestdata(t, tt.file)))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("parseInfo(%s)\n got %+v\nwant %+v", tt.file, got, tt.want)
			}
		})
	}
}

func TestParseInfoBad(t *testing.T) {
	for _, out := range []string{"", "not json", "{}", `{"virtual-size": "big"}`} {
		if _, err := parseInfo([]byte(out)); err == nil {
			t.Errorf("parseInfo(%q) = nil error", out)
		}
	}
}

func TestInspect(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	runErr := errors.New("exit status 1: Could not open")
	tests := []struct {
		name     string
		path     string
		wantCall string
		wantErr  error
	}{
		{"absolute path", "/pool/images/a.qcow2", "qemu-img info -U --output=json /pool/images/a.qcow2", nil},
		// "json:{...}" would be a protocol spec to qemu-img; made absolute, it is a file name.
		{"relative path made absolute", "json:{}", "qemu-img info -U --output=json " + filepath.Join(wd, "json:{}"), nil},
		{"qemu-img fails", "/pool/images/missing", "qemu-img info -U --output=json /pool/images/missing", runErr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &fakeRunner{t: t,
				out:  map[string]string{tt.wantCall: readTestdata(t, "info-raw.json")},
				fail: map[string]error{},
			}
			if tt.wantErr != nil {
				r.fail[tt.wantCall] = tt.wantErr
			}
			info, err := Inspect(context.Background(), r, tt.path)
			if len(r.calls) != 1 || r.calls[0] != tt.wantCall {
				t.Errorf("calls = %q, want [%q]", r.calls, tt.wantCall)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && info.Format != "raw" {
				t.Errorf("format = %q", info.Format)
			}
		})
	}
}
