package main

import (
	"errors"
	"io/fs"
	"reflect"
	"testing"

	"github.com/limiquantix/limiquantix/api"
)

func TestParseSSHKeys(t *testing.T) {
	files := map[string]string{
		"id.pub":    "ssh-ed25519 AAAAC3 me@laptop\n",
		"keys":      "# team keys\nssh-rsa AAAAB3 a@x\n\n  ecdsa-sha2-nistp256 AAAAE2 b@y  \r\nsk-ssh-ed25519@openssh.com AAAAGn c@z\n",
		"empty.pub": "# nothing here\n\n",
	}
	readFile := func(name string) ([]byte, error) {
		s, ok := files[name]
		if !ok {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		return []byte(s), nil
	}
	tests := []struct {
		name    string
		values  []string
		want    []string
		wantErr bool
	}{
		{name: "none", values: nil, want: nil},
		{name: "literal ssh-", values: []string{"ssh-ed25519 AAAA x@y"}, want: []string{"ssh-ed25519 AAAA x@y"}},
		{name: "literal ecdsa-", values: []string{"ecdsa-sha2-nistp256 AAAA"}, want: []string{"ecdsa-sha2-nistp256 AAAA"}},
		{name: "literal sk-", values: []string{"sk-ecdsa-sha2-nistp256@openssh.com AAAA"}, want: []string{"sk-ecdsa-sha2-nistp256@openssh.com AAAA"}},
		{name: "file with one key", values: []string{"id.pub"}, want: []string{"ssh-ed25519 AAAAC3 me@laptop"}},
		{
			name:   "file with several keys, comments and blank lines",
			values: []string{"keys"},
			want:   []string{"ssh-rsa AAAAB3 a@x", "ecdsa-sha2-nistp256 AAAAE2 b@y", "sk-ssh-ed25519@openssh.com AAAAGn c@z"},
		},
		{
			name:   "repeated flag keeps order",
			values: []string{"id.pub", "ssh-rsa LITERAL z@z", "keys"},
			want: []string{"ssh-ed25519 AAAAC3 me@laptop", "ssh-rsa LITERAL z@z",
				"ssh-rsa AAAAB3 a@x", "ecdsa-sha2-nistp256 AAAAE2 b@y", "sk-ssh-ed25519@openssh.com AAAAGn c@z"},
		},
		{name: "missing file", values: []string{"nope.pub"}, wantErr: true},
		{name: "file without keys", values: []string{"empty.pub"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSSHKeys(tt.values, readFile)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("keys = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSplitExecArgs(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		dash     int
		wantName string
		wantArgv []string
		wantErr  bool
	}{
		{name: "with dash", args: []string{"vm1", "ls", "-l"}, dash: 1, wantName: "vm1", wantArgv: []string{"ls", "-l"}},
		{name: "without dash", args: []string{"vm1", "uptime"}, dash: -1, wantName: "vm1", wantArgv: []string{"uptime"}},
		{name: "no name", args: []string{"ls"}, dash: 0, wantErr: true},
		{name: "nothing", args: nil, dash: -1, wantErr: true},
		{name: "no command", args: []string{"vm1"}, dash: 1, wantErr: true},
		{name: "two names", args: []string{"vm1", "vm2", "ls"}, dash: 2, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, argv, err := splitExecArgs(tt.args, tt.dash)
			if tt.wantErr {
				var ue usageError
				if !errors.As(err, &ue) {
					t.Fatalf("err = %v, want a usageError", err)
				}
				return
			}
			if err != nil || name != tt.wantName || !reflect.DeepEqual(argv, tt.wantArgv) {
				t.Errorf("= %q, %q, %v; want %q, %q", name, argv, err, tt.wantName, tt.wantArgv)
			}
		})
	}
}

func TestExecExitCode(t *testing.T) {
	tests := []struct {
		res  api.ExecResult
		want int
	}{
		{api.ExecResult{}, 0},
		{api.ExecResult{ExitCode: 3}, 3},
		{api.ExecResult{Signal: 9}, 137},
		{api.ExecResult{ExitCode: -1, Signal: 15}, 143},
	}
	for _, tt := range tests {
		if got := execExitCode(tt.res); got != tt.want {
			t.Errorf("execExitCode(%+v) = %d, want %d", tt.res, got, tt.want)
		}
	}
}
