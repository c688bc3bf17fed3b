package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/limiquantix/limiquantix/api"
)

const e2eToken = "tok-e2e"

// fakeLQD is a minimal lqd for running lq in-process against.
type fakeLQD struct {
	vms []api.VM

	mu       sync.Mutex
	lastExec api.ExecRequest
	lastBody string
}

func (f *fakeLQD) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+e2eToken {
		writeTestJSON(w, http.StatusUnauthorized, api.Error{Error: api.ErrorBody{Code: api.CodeUnauthorized, Message: "bad token"}})
		return
	}
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.lastBody = string(body)
	f.mu.Unlock()
	switch {
	case r.Method == "GET" && r.URL.Path == "/api/v1/vms":
		writeTestJSON(w, 200, f.vms)
	case r.Method == "POST" && r.URL.Path == "/api/v1/vms/web/exec":
		var req api.ExecRequest
		if err := json.Unmarshal(body, &req); err != nil {
			writeTestJSON(w, 400, api.Error{Error: api.ErrorBody{Code: api.CodeBadRequest, Message: err.Error()}})
			return
		}
		f.mu.Lock()
		f.lastExec = req
		f.mu.Unlock()
		var res api.ExecResult
		switch req.Command[0] {
		case "true":
		case "cat":
			res.Stdout = req.Input
		case "sh": // sh -c 'echo out; echo err >&2; exit 3'
			res = api.ExecResult{ExitCode: 3, Stdout: []byte("out\n"), Stderr: []byte("err\n")}
		case "sleep": // killed by SIGKILL
			res = api.ExecResult{ExitCode: -1, Signal: 9}
		}
		writeTestJSON(w, 200, res)
	case r.Method == "PATCH" && r.URL.Path == "/api/v1/vms/web":
		writeTestJSON(w, 200, f.vms[0])
	default:
		writeTestJSON(w, 404, api.Error{Error: api.ErrorBody{Code: api.CodeNotFound, Message: "no such thing: " + r.URL.Path}})
	}
}

func writeTestJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// runLQ runs lq in-process against srv with the given stdin.
func runLQ(t *testing.T, srv *httptest.Server, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := map[string]string{"LQ_DATA_DIR": t.TempDir()}
	if srv != nil {
		env["LQ_URL"] = srv.URL
		env["LQ_TOKEN"] = e2eToken
	}
	code = run(t.Context(), args, strings.NewReader(stdin), &out, &errOut, func(k string) string { return env[k] })
	return code, out.String(), errOut.String()
}

func testVMs() []api.VM {
	started := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
	return []api.VM{
		{UUID: "u1", Name: "web", State: "running", CPUs: 2, MemoryMiB: 1024, DiskGiB: 10, Image: "debian",
			RestartPolicy: "never", StartedAt: &started, UptimeSeconds: 300, CreatedAt: started,
			Guest: &api.Guest{Hostname: "web", Interfaces: []api.GuestInterface{{Name: "eth0", IPs: []string{"10.0.0.5/24"}}}}},
		{UUID: "u2", Name: "db", State: "stopped", CPUs: 1, MemoryMiB: 512, Image: "alpine", RestartPolicy: "always",
			CreatedAt: started},
	}
}

func TestVMListJSON(t *testing.T) {
	lqd := &fakeLQD{vms: testVMs()}
	srv := httptest.NewServer(lqd)
	defer srv.Close()

	code, stdout, stderr := runLQ(t, srv, "", "vm", "list", "-o", "json")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var got []api.VM
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("stdout is not a JSON list of VMs: %v\n%s", err, stdout)
	}
	if !reflect.DeepEqual(got, lqd.vms) {
		t.Errorf("VMs = %+v, want %+v", got, lqd.vms)
	}
	if !strings.HasPrefix(stdout, "[\n  {\n    \"uuid\": \"u1\",") {
		t.Errorf("stdout is not indented JSON:\n%s", stdout)
	}
}

func TestVMExec(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantCode   int
		wantStdout string
		wantStderr string
		wantReq    api.ExecRequest
	}{
		{
			name:    "success",
			args:    []string{"vm", "exec", "web", "--", "true"},
			wantReq: api.ExecRequest{Command: []string{"true"}},
		},
		{
			name:       "exit code and both streams",
			args:       []string{"vm", "exec", "web", "--timeout", "30", "--", "sh", "-c", "echo out; echo err >&2; exit 3"},
			wantCode:   3,
			wantStdout: "out\n",
			wantStderr: "err\n",
			wantReq:    api.ExecRequest{Command: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, TimeoutSeconds: 30},
		},
		{
			name:     "signal",
			args:     []string{"vm", "exec", "web", "--", "sleep", "1000"},
			wantCode: 137,
			wantReq:  api.ExecRequest{Command: []string{"sleep", "1000"}},
		},
		{
			name:       "stdin",
			args:       []string{"vm", "exec", "--stdin", "web", "--", "cat"},
			stdin:      "hello\n",
			wantStdout: "hello\n",
			wantReq:    api.ExecRequest{Command: []string{"cat"}, Input: []byte("hello\n")},
		},
		{
			name:     "stdin not sent without --stdin",
			args:     []string{"vm", "exec", "web", "--", "cat"},
			stdin:    "hello\n",
			wantReq:  api.ExecRequest{Command: []string{"cat"}},
			wantCode: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lqd := &fakeLQD{vms: testVMs()}
			srv := httptest.NewServer(lqd)
			defer srv.Close()
			code, stdout, stderr := runLQ(t, srv, tt.stdin, tt.args...)
			if code != tt.wantCode || stdout != tt.wantStdout || stderr != tt.wantStderr {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, stdout, stderr, tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
			if !reflect.DeepEqual(lqd.lastExec, tt.wantReq) {
				t.Errorf("request = %+v, want %+v", lqd.lastExec, tt.wantReq)
			}
		})
	}
}

func TestErrorsAndExitCodes(t *testing.T) {
	tests := []struct {
		name       string
		noServer   bool
		args       []string
		wantCode   int
		wantStderr string // prefix
	}{
		{
			name:       "API error",
			args:       []string{"vm", "show", "nope"},
			wantCode:   1,
			wantStderr: "lq: not_found: no such thing: /api/v1/vms/nope (HTTP 404)\n",
		},
		{
			name:       "usage: missing argument",
			args:       []string{"vm", "show"},
			wantCode:   2,
			wantStderr: "lq: vm show takes NAME; got 0 argument(s)\nRun 'lq vm show --help' for usage.\n",
		},
		{
			name:       "usage: unknown command",
			args:       []string{"vm", "frobnicate", "x"},
			wantCode:   2,
			wantStderr: "lq: unknown command \"frobnicate\" for \"lq vm\"\n",
		},
		{
			name:       "usage: bad output",
			args:       []string{"vm", "list", "-o", "yaml"},
			wantCode:   2,
			wantStderr: "lq: --output must be table or json, not \"yaml\"\n",
		},
		{
			name:       "usage: exec without command",
			args:       []string{"vm", "exec", "web"},
			wantCode:   2,
			wantStderr: "lq: exec needs a command",
		},
		{
			name:       "no token",
			noServer:   true,
			args:       []string{"vm", "list"},
			wantCode:   1,
			wantStderr: "lq: no API token: pass --token, set LQ_TOKEN, or run on the lqd host as root (reads ",
		},
		{
			name:       "bad token",
			args:       []string{"--token", "wrong", "host"},
			wantCode:   1,
			wantStderr: "lq: unauthorized: bad token (HTTP 401)\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var srv *httptest.Server
			if !tt.noServer {
				srv = httptest.NewServer(&fakeLQD{vms: testVMs()})
				defer srv.Close()
			}
			code, _, stderr := runLQ(t, srv, "", tt.args...)
			if code != tt.wantCode || !strings.HasPrefix(stderr, tt.wantStderr) {
				t.Errorf("exit %d, stderr %q; want %d, %q...", code, stderr, tt.wantCode, tt.wantStderr)
			}
		})
	}
}

func TestVMSetSendsOnlyGivenFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"memory", []string{"--memory", "2048"}, `{"memory_mib":2048}`},
		{"autostart false", []string{"--autostart=false"}, `{"autostart":false}`},
		{"cpus zero is sent", []string{"--cpus", "0", "--restart-policy", "always"}, `{"cpus":0,"restart_policy":"always"}`},
		{"ssh key replaces", []string{"--ssh-key", "ssh-ed25519 AAAA a@b"}, `{"ssh_keys":["ssh-ed25519 AAAA a@b"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lqd := &fakeLQD{vms: testVMs()}
			srv := httptest.NewServer(lqd)
			defer srv.Close()
			code, _, stderr := runLQ(t, srv, "", append([]string{"vm", "set", "web", "-o", "json"}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if got := strings.TrimSpace(lqd.lastBody); got != tt.want {
				t.Errorf("PATCH body = %s, want %s", got, tt.want)
			}
		})
	}
}
