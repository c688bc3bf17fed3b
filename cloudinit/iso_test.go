package cloudinit

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kdomanski/iso9660"
)

func testSeed(t *testing.T, netcfg []byte) Seed {
	t.Helper()
	s, err := Render(Config{
		InstanceID:    "6f1c2a4e-3b5d-4e8f-9a0b-1c2d3e4f5a6b",
		Hostname:      "web-1",
		SSHKeys:       []string{testKeyEd25519},
		UserData:      "#!/bin/sh\necho hi\n",
		NetworkConfig: netcfg,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// readISO returns the volume id and root files (by the name iso9660 reports)
// of the image at path.
func readISO(t *testing.T, path string) (string, map[string][]byte) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := iso9660.OpenImage(f)
	if err != nil {
		t.Fatalf("OpenImage: %v", err)
	}
	label, err := img.Label()
	if err != nil {
		t.Fatalf("Label: %v", err)
	}
	root, err := img.RootDir()
	if err != nil {
		t.Fatalf("RootDir: %v", err)
	}
	children, err := root.GetChildren()
	if err != nil {
		t.Fatalf("GetChildren: %v", err)
	}
	files := map[string][]byte{}
	for _, c := range children {
		b, err := io.ReadAll(c.Reader())
		if err != nil {
			t.Fatalf("read %s: %v", c.Name(), err)
		}
		files[c.Name()] = b
	}
	return label, files
}

func TestWriteISO(t *testing.T) {
	tests := []struct {
		name   string
		netcfg []byte
		want   []string
	}{
		{"without network-config", nil, []string{"meta-data", "user-data", "vendor-data"}},
		{"with network-config", []byte("version: 2\n"), []string{"meta-data", "network-config", "user-data", "vendor-data"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seed := testSeed(t, tt.netcfg)
			path := filepath.Join(t.TempDir(), "seed.iso")
			if err := WriteISO(seed, path); err != nil {
				t.Fatalf("WriteISO: %v", err)
			}

			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("mode = %v, want 0600", st.Mode().Perm())
			}
			if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
				t.Errorf("%s.tmp left behind (stat err %v)", path, err)
			}

			label, files := readISO(t, path)
			if label != VolumeID {
				t.Errorf("volume id = %q, want %q", label, VolumeID)
			}
			var names []string
			for n := range files {
				names = append(names, n)
			}
			sort.Strings(names)
			if strings.Join(names, " ") != strings.Join(tt.want, " ") {
				t.Errorf("files = %v, want %v", names, tt.want)
			}
			for name, want := range map[string][]byte{
				"meta-data": seed.MetaData, "user-data": seed.UserData,
				"vendor-data": seed.VendorData, "network-config": seed.NetworkConfig,
			} {
				if got, ok := files[name]; ok && !bytes.Equal(got, want) {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

// TestWriteISOReplaces checks that a rewrite replaces the previous seed and
// that a stale .tmp (from a crash) with a laxer mode does not leak its mode.
func TestWriteISOReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seed.iso")
	if err := WriteISO(testSeed(t, []byte("version: 2\n")), path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".tmp", []byte("junk"), 0o666); err != nil {
		t.Fatal(err)
	}
	second := testSeed(t, nil)
	if err := WriteISO(second, path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", st.Mode().Perm())
	}
	_, files := readISO(t, path)
	if _, ok := files["network-config"]; ok {
		t.Error("network-config from the first seed survived the rewrite")
	}
}

func TestWriteISOErrors(t *testing.T) {
	good := testSeed(t, nil)
	tests := []struct {
		name    string
		seed    Seed
		path    string
		wantErr string
	}{
		{"no meta-data", Seed{UserData: good.UserData}, "seed.iso", "meta-data and user-data are required"},
		{"no user-data", Seed{MetaData: good.MetaData}, "seed.iso", "meta-data and user-data are required"},
		{"missing directory", good, "nodir/seed.iso", "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			err := WriteISO(tt.seed, filepath.Join(dir, tt.path))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("WriteISO error = %v, want one containing %q", err, tt.wantErr)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("left files behind: %v", ents)
			}
		})
	}
}

// TestWriteISOMountedNames loop-mounts the image and checks the names Linux
// shows, which are the names cloud-init opens. It needs root and a kernel
// with isofs; it skips otherwise.
func TestWriteISOMountedNames(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to loop-mount")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "seed.iso")
	seed := testSeed(t, []byte("version: 2\n"))
	if err := WriteISO(seed, path); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "loop,ro", "-t", "iso9660", path, mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot loop-mount iso9660 here: %v: %s", err, out)
	}
	defer func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
		}
	}()
	for name, want := range map[string][]byte{
		"meta-data": seed.MetaData, "user-data": seed.UserData,
		"vendor-data": seed.VendorData, "network-config": seed.NetworkConfig,
	} {
		got, err := os.ReadFile(filepath.Join(mnt, name))
		if err != nil {
			t.Errorf("mounted seed: %v", err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("mounted %s = %q, want %q", name, got, want)
		}
	}
}
