package storage

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestExecRunner(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		timeout time.Duration
		want    string   // stdout
		wantErr []string // substrings of the error; nil: success
	}{
		{"stdout", []string{"-c", "echo hello; echo noise >&2"}, 0, "hello\n", nil},
		{"failure names the command and its stderr", []string{"-c", "echo '  Could not open x  ' >&2; exit 3"}, 0, "",
			[]string{"sh -c echo", "exit status 3", ": Could not open x"}},
		{"context deadline kills it", []string{"-c", "sleep 10"}, 50 * time.Millisecond, "", []string{"sh -c sleep 10", "killed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			out, err := ExecRunner{}.Run(ctx, "sh", tt.args...)
			if tt.wantErr == nil {
				if err != nil || string(out) != tt.want {
					t.Fatalf("Run = %q, %v; want %q", out, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatal("Run succeeded, want an error")
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}
