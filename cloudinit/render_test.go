package cloudinit

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"mime"
	"mime/multipart"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// goldenCase is testdata/<case>.json. User-data and network-config come from
// testdata/<case>.user-data.in and <case>.network-config.in when present, so
// they stay readable.
type goldenCase struct {
	Comment    string   `json:"comment"` // what the case guards
	InstanceID string   `json:"instance_id"`
	Hostname   string   `json:"hostname"`
	SSHKeys    []string `json:"ssh_keys"`
	WantError  string   `json:"want_error"` // substring of the expected error; no goldens then
}

// TestRenderGolden renders every testdata/<case>.json and compares each seed
// file with testdata/<case>.<file>. Run `go test ./cloudinit -update` to
// rewrite the goldens, then review the diff.
func TestRenderGolden(t *testing.T) {
	cases, err := filepath.Glob("testdata/*.json")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, path := range cases {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		t.Run(name, func(t *testing.T) {
			cfg, wantErr := loadCase(t, name)
			seed, err := Render(cfg)
			if wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), wantErr) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("Render error = %v, want ErrInvalid containing %q", err, wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			again, err := Render(cfg)
			if err != nil || !equalSeeds(seed, again) {
				t.Fatalf("Render is not deterministic (err %v)", err)
			}
			checkGolden(t, name+".meta-data", seed.MetaData)
			checkGolden(t, name+".user-data", seed.UserData)
			checkGolden(t, name+".vendor-data", seed.VendorData)
			checkGolden(t, name+".network-config", seed.NetworkConfig)
			checkUserDataParses(t, cfg, seed.UserData)
		})
	}
}

func loadCase(t *testing.T, name string) (Config, string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var gc goldenCase
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&gc); err != nil {
		t.Fatalf("%s.json: %v", name, err)
	}
	cfg := Config{InstanceID: gc.InstanceID, Hostname: gc.Hostname, SSHKeys: gc.SSHKeys}
	if b, err := os.ReadFile(filepath.Join("testdata", name+".user-data.in")); err == nil {
		cfg.UserData = string(b)
	} else if !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join("testdata", name+".network-config.in")); err == nil {
		cfg.NetworkConfig = b
	} else if !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return cfg, gc.WantError
}

// checkGolden compares got with testdata/file; nil got means the file must
// not exist.
func checkGolden(t *testing.T, file string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", file)
	if *update {
		if got == nil {
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			return
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	switch {
	case got == nil && errors.Is(err, os.ErrNotExist):
	case got == nil:
		t.Errorf("%s: rendered nothing, but golden exists (err %v); run with -update", file, err)
	case err != nil:
		t.Errorf("%s: %v; run with -update", file, err)
	case !bytes.Equal(got, want):
		t.Errorf("%s mismatch; run with -update and review the diff\n--- got\n%s\n--- want\n%s", file, got, want)
	}
}

// checkUserDataParses checks the rendered user-data the way cloud-init reads
// it: a cloud-config that is a YAML mapping, or a multipart message whose
// parts decode back to our cloud-config and the user's script.
func checkUserDataParses(t *testing.T, cfg Config, ud []byte) {
	t.Helper()
	if !strings.HasPrefix(cfg.UserData, scriptHeader) {
		checkCloudConfig(t, cfg, ud)
		return
	}
	hdr, body, ok := bytes.Cut(ud, []byte("\n\n"))
	if !ok {
		t.Fatalf("multipart user-data has no header/body separator")
	}
	ctype := strings.TrimPrefix(strings.SplitN(string(hdr), "\n", 2)[0], "Content-Type: ")
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("top-level Content-Type %q: %v", ctype, err)
	}
	r := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var types []string
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("multipart: %v", err)
		}
		data, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		if p.Header.Get("Content-Transfer-Encoding") == "base64" {
			if data, err = base64.StdEncoding.DecodeString(strings.ReplaceAll(string(data), "\n", "")); err != nil {
				t.Fatalf("part base64: %v", err)
			}
		}
		pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		types = append(types, pt)
		switch pt {
		case "text/cloud-config":
			checkCloudConfig(t, cfg, data)
		case "text/x-shellscript":
			if string(data) != cfg.UserData {
				t.Errorf("script part = %q, want %q", data, cfg.UserData)
			}
		}
	}
	if strings.Join(types, ",") != "text/cloud-config,text/x-shellscript" {
		t.Errorf("multipart parts = %v", types)
	}
}

func checkCloudConfig(t *testing.T, cfg Config, b []byte) {
	t.Helper()
	if !bytes.HasPrefix(b, []byte(cloudConfigHeader+"\n")) {
		t.Fatalf("cloud-config lacks header: %q", b)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("cloud-config does not parse: %v", err)
	}
	if m["hostname"] != cfg.Hostname || m["preserve_hostname"] != false {
		t.Errorf("hostname = %v, preserve_hostname = %v", m["hostname"], m["preserve_hostname"])
	}
	keys, _ := m["ssh_authorized_keys"].([]any)
	for _, k := range cfg.SSHKeys {
		found := false
		for _, have := range keys {
			if s, _ := have.(string); keyIdentity(s) == keyIdentity(k) {
				found = true
			}
		}
		if !found {
			t.Errorf("key %.30s... missing from ssh_authorized_keys", k)
		}
	}
}

func equalSeeds(a, b Seed) bool {
	return bytes.Equal(a.MetaData, b.MetaData) && bytes.Equal(a.UserData, b.UserData) &&
		bytes.Equal(a.VendorData, b.VendorData) && bytes.Equal(a.NetworkConfig, b.NetworkConfig) &&
		(a.NetworkConfig == nil) == (b.NetworkConfig == nil)
}
