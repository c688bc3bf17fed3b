package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveConfig(t *testing.T) {
	tests := []struct {
		name               string
		flagURL, flagToken string
		env                map[string]string // LQ_DATA_DIR is set to a temp dir unless given
		files              map[string]string // in the data dir
		want               config
		wantErr            string
	}{
		{
			name:    "flags beat env and files",
			flagURL: "http://flag:1", flagToken: "flagtok",
			env:   map[string]string{"LQ_URL": "http://env:2", "LQ_TOKEN": "envtok"},
			files: map[string]string{"api.url": "http://file:3\n", "admin.token": "filetok\n"},
			want:  config{URL: "http://flag:1", Token: "flagtok"},
		},
		{
			name:  "env beats files",
			env:   map[string]string{"LQ_URL": "http://env:2", "LQ_TOKEN": "envtok"},
			files: map[string]string{"api.url": "http://file:3\n", "admin.token": "filetok\n"},
			want:  config{URL: "http://env:2", Token: "envtok"},
		},
		{
			name:  "files beat defaults; lines trimmed",
			files: map[string]string{"api.url": "  http://[::1]:7480/ \nignored\n", "admin.token": " filetok \r\n"},
			want:  config{URL: "http://[::1]:7480", Token: "filetok"},
		},
		{
			name:  "default URL when no api.url",
			files: map[string]string{"admin.token": "filetok"},
			want:  config{URL: "http://127.0.0.1:7480", Token: "filetok"},
		},
		{
			name:  "empty api.url means the default",
			files: map[string]string{"api.url": "\n", "admin.token": "filetok"},
			want:  config{URL: "http://127.0.0.1:7480", Token: "filetok"},
		},
		{
			name:    "flag URL without scheme",
			flagURL: "lqhost:7480/", flagToken: "t",
			want: config{URL: "http://lqhost:7480", Token: "t"},
		},
		{
			name:  "mixed sources",
			env:   map[string]string{"LQ_TOKEN": "envtok"},
			files: map[string]string{"api.url": "https://file:3"},
			want:  config{URL: "https://file:3", Token: "envtok"},
		},
		{
			name:    "no token anywhere",
			files:   map[string]string{"api.url": "http://file:3"},
			wantErr: "no API token: pass --token, set LQ_TOKEN, or run on the lqd host as root (reads DATADIR/admin.token)",
		},
		{
			name:    "empty token file",
			files:   map[string]string{"admin.token": "\n"},
			wantErr: "no API token: pass --token, set LQ_TOKEN, or run on the lqd host as root (reads DATADIR/admin.token)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			env := map[string]string{"LQ_DATA_DIR": dir}
			for k, v := range tt.env {
				env[k] = v
			}
			got, err := resolveConfig(tt.flagURL, tt.flagToken, func(k string) string { return env[k] })
			if tt.wantErr != "" {
				want := strings.ReplaceAll(tt.wantErr, "DATADIR", dir)
				if err == nil || err.Error() != want {
					t.Fatalf("err = %v, want %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("resolveConfig: %v", err)
			}
			if got != tt.want {
				t.Errorf("config = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestResolveConfigDefaultDataDir checks the message names /var/lib/limiquantix when
// LQ_DATA_DIR is unset (and, on a machine without lqd, that no token is found there).
func TestResolveConfigDefaultDataDir(t *testing.T) {
	if _, err := os.Stat("/var/lib/limiquantix/admin.token"); err == nil {
		t.Skip("this host runs lqd")
	}
	_, err := resolveConfig("", "", func(string) string { return "" })
	want := "no API token: pass --token, set LQ_TOKEN, or run on the lqd host as root (reads /var/lib/limiquantix/admin.token)"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
}
