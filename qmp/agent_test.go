package qmp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeAgent is a scripted qemu-guest-agent. It answers guest-sync-delimited
// after junk (a stale reply, a torn line, a stale 0xFF-delimited sync), and
// other commands through handle, which returns nil for "no reply".
type fakeAgent struct {
	t      *testing.T
	handle func(c net.Conn, cmd fakeCmd) any
	late   []any // replies to send just before the next sync reply
}

func ret(v any) any { return map[string]any{"return": v} }

func errReply(class, desc string) any {
	return map[string]any{"error": map[string]string{"class": class, "desc": desc}}
}

// serveAgent serves connections one after another, as qemu's chardev does.
func serveAgent(t *testing.T, handle func(c net.Conn, cmd fakeCmd) any) (*fakeAgent, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "qga.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAgent{t: t, handle: handle}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			f.serve(conn)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return f, path
}

func (f *fakeAgent) serve(conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	write := func(v any) {
		buf, _ := json.Marshal(v)
		_, _ = conn.Write(append(buf, '\n'))
	}
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		var cmd fakeCmd
		if json.Unmarshal(bytes.TrimLeft(line, "\xff"), &cmd) != nil {
			continue // the 0xFF resets the real agent's parser too
		}
		if cmd.Execute != "guest-sync-delimited" {
			if reply := f.handle(conn, cmd); reply != nil {
				write(reply)
			}
			continue
		}
		var args struct{ ID int64 }
		if err := json.Unmarshal(cmd.Arguments, &args); err != nil {
			f.t.Errorf("fake agent: sync arguments %s: %v", cmd.Arguments, err)
		}
		if !bytes.HasPrefix(line, []byte{0xFF}) {
			f.t.Errorf("fake agent: sync not preceded by 0xFF: %q", line)
		}
		for _, v := range f.late {
			write(v)
		}
		f.late = nil
		fmt.Fprintf(conn, "{\"return\": {\"stale\": true}}\n{\"retu\xff{\"return\": -1}\n\xff{\"return\": %d}\n", args.ID)
	}
}

func dialAgent(t *testing.T, path string, opts ...Option) *Agent {
	t.Helper()
	a, err := DialAgent(t.Context(), path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	a.shutdownWait = 100 * time.Millisecond
	t.Cleanup(func() { a.Close() })
	return a
}

// guest answers the read-only commands like a small Linux guest.
func guest(t *testing.T) func(net.Conn, fakeCmd) any {
	return func(_ net.Conn, cmd fakeCmd) any {
		switch cmd.Execute {
		case "guest-ping":
			return ret(struct{}{})
		case "guest-info":
			return ret(map[string]any{"version": "9.2.0", "supported_commands": []map[string]any{
				{"name": "guest-ping", "enabled": true, "success-response": true},
				{"name": "guest-shutdown", "enabled": true, "success-response": false},
			}})
		case "guest-get-host-name":
			return ret(map[string]string{"host-name": "vm1"})
		case "guest-get-osinfo":
			return ret(map[string]string{
				"id": "debian", "name": "Debian GNU/Linux", "pretty-name": "Debian GNU/Linux 12 (bookworm)",
				"version": "12 (bookworm)", "version-id": "12", "kernel-release": "6.1.0-18-amd64",
				"kernel-version": "#1 SMP", "machine": "x86_64",
			})
		case "guest-network-get-interfaces":
			return ret([]map[string]any{{
				"name": "eth0", "hardware-address": "52:54:00:12:34:56",
				"ip-addresses": []map[string]any{
					{"ip-address-type": "ipv4", "ip-address": "10.0.0.5", "prefix": 24},
					{"ip-address-type": "ipv6", "ip-address": "fe80::1", "prefix": 64},
				},
			}})
		case "guest-fsfreeze-freeze":
			return ret(2)
		case "guest-fsfreeze-thaw":
			return ret(2)
		case "guest-fsfreeze-status":
			return ret("thawed")
		case "guest-exec":
			var args struct {
				Path          string
				Arg           []string
				InputData     string `json:"input-data"`
				CaptureOutput bool   `json:"capture-output"`
			}
			_ = json.Unmarshal(cmd.Arguments, &args)
			if args.Path != "/bin/cat" || args.InputData != base64.StdEncoding.EncodeToString([]byte("hi")) || !args.CaptureOutput {
				t.Errorf("guest-exec arguments = %s", cmd.Arguments)
			}
			return ret(map[string]int{"pid": 42})
		case "guest-exec-status":
			return ret(map[string]any{"exited": true, "exitcode": 0,
				"out-data": base64.StdEncoding.EncodeToString([]byte("hi")), "err-data": ""})
		default:
			return errReply("CommandNotFound", "The command "+cmd.Execute+" has not been found")
		}
	}
}

func TestAgentCommands(t *testing.T) {
	_, path := serveAgent(t, guest(t))
	a := dialAgent(t, path)
	tests := []struct {
		name string
		call func(context.Context) (any, error)
		want any
	}{
		{"ping", func(ctx context.Context) (any, error) { return nil, a.Ping(ctx) }, nil},
		{"host name", func(ctx context.Context) (any, error) { return a.HostName(ctx) }, "vm1"},
		{"info", func(ctx context.Context) (any, error) { return a.Info(ctx) }, AgentInfo{Version: "9.2.0", Commands: []AgentCommand{
			{Name: "guest-ping", Enabled: true, SuccessResponse: true},
			{Name: "guest-shutdown", Enabled: true},
		}}},
		{"os info", func(ctx context.Context) (any, error) { return a.OSInfo(ctx) }, OSInfo{
			ID: "debian", Name: "Debian GNU/Linux", PrettyName: "Debian GNU/Linux 12 (bookworm)",
			Version: "12 (bookworm)", VersionID: "12", KernelRelease: "6.1.0-18-amd64",
			KernelVersion: "#1 SMP", Machine: "x86_64",
		}},
		{"interfaces", func(ctx context.Context) (any, error) { return a.NetworkInterfaces(ctx) }, []Interface{{
			Name: "eth0", HardwareAddress: "52:54:00:12:34:56",
			IPAddresses: []IPAddress{{"ipv4", "10.0.0.5", 24}, {"ipv6", "fe80::1", 64}},
		}}},
		{"freeze", func(ctx context.Context) (any, error) { return a.FSFreeze(ctx) }, 2},
		{"thaw", func(ctx context.Context) (any, error) { return a.FSThaw(ctx) }, 2},
		{"freeze status", func(ctx context.Context) (any, error) { return a.FSFreezeStatus(ctx) }, "thawed"},
		{"exec", func(ctx context.Context) (any, error) {
			return a.Exec(ctx, "/bin/cat", nil, nil, []byte("hi"), true)
		}, 42},
		{"exec status", func(ctx context.Context) (any, error) { return a.ExecStatus(ctx, 42) },
			ExecStatus{Exited: true, Stdout: []byte("hi"), Stderr: []byte{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			got, err := tt.call(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestAgentErrorReply(t *testing.T) {
	_, path := serveAgent(t, guest(t))
	a := dialAgent(t, path)
	err := a.call(t.Context(), "guest-bogus", nil, nil)
	var qerr *Error
	if !errors.As(err, &qerr) || qerr.Class != "CommandNotFound" || qerr.Command != "guest-bogus" {
		t.Fatalf("err = %v, want *Error CommandNotFound", err)
	}
}

func TestAgentConcurrentCalls(t *testing.T) {
	_, path := serveAgent(t, guest(t))
	a := dialAgent(t, path)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if name, err := a.HostName(t.Context()); err != nil || name != "vm1" {
				t.Errorf("HostName = %q, %v", name, err)
			}
		})
	}
	wg.Wait()
}

func TestAgentRun(t *testing.T) {
	var polls atomic.Int32
	_, path := serveAgent(t, func(_ net.Conn, cmd fakeCmd) any {
		switch cmd.Execute {
		case "guest-exec":
			return ret(map[string]int{"pid": 7})
		case "guest-exec-status":
			if polls.Add(1) < 3 {
				return ret(map[string]bool{"exited": false})
			}
			return ret(map[string]any{"exited": true, "exitcode": 3,
				"out-data": base64.StdEncoding.EncodeToString([]byte("out")),
				"err-data": base64.StdEncoding.EncodeToString([]byte("err"))})
		}
		return errReply("CommandNotFound", cmd.Execute)
	})
	a := dialAgent(t, path)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	res, err := a.Run(ctx, "/bin/false", []string{"-x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := ExecResult{ExitCode: 3, Stdout: []byte("out"), Stderr: []byte("err")}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("Run = %+v, want %+v", res, want)
	}
	if n := polls.Load(); n != 3 {
		t.Errorf("polled %d times, want 3", n)
	}
}

func TestAgentShutdown(t *testing.T) {
	tests := []struct {
		name    string
		reply   func(c net.Conn) any
		wantErr bool
	}{
		{name: "no reply", reply: func(net.Conn) any { return nil }},
		{name: "hangs up", reply: func(c net.Conn) any { c.Close(); return nil }},
		{name: "error reply", reply: func(net.Conn) any { return errReply("GenericError", "not allowed") }, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := guest(t)
			_, path := serveAgent(t, func(c net.Conn, cmd fakeCmd) any {
				if cmd.Execute == "guest-shutdown" {
					if string(cmd.Arguments) != `{"mode":"reboot"}` {
						t.Errorf("guest-shutdown arguments = %s", cmd.Arguments)
					}
					return tt.reply(c)
				}
				return base(c, cmd)
			})
			a := dialAgent(t, path)
			err := a.Shutdown(t.Context(), "reboot")
			var qerr *Error
			if tt.wantErr != errors.As(err, &qerr) {
				t.Fatalf("Shutdown err = %v, want error %v", err, tt.wantErr)
			}
			// The agent stays usable (resynced or redialled).
			if err := a.Ping(t.Context()); err != nil {
				t.Errorf("Ping after shutdown: %v", err)
			}
		})
	}
}

func TestAgentTimeoutResyncs(t *testing.T) {
	var f *fakeAgent
	base := guest(t)
	stalled := false // touched by the server goroutine only
	f, path := serveAgent(t, func(c net.Conn, cmd fakeCmd) any {
		if cmd.Execute == "guest-get-host-name" && !stalled {
			stalled = true
			f.late = []any{ret(map[string]string{"host-name": "late"})} // answered too late
			return nil
		}
		return base(c, cmd)
	})
	a := dialAgent(t, path)

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := a.HostName(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first HostName err = %v, want deadline exceeded", err)
	}
	// The first call's late reply precedes the next sync reply: skipped.
	if name, err := a.HostName(t.Context()); err != nil || name != "vm1" {
		t.Errorf("HostName after timeout = %q, %v; want vm1", name, err)
	}
}

func TestAgentNotRunning(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"ctx deadline", nil, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}},
		{"default timeout", []Option{WithTimeout(50 * time.Millisecond)}, func() (context.Context, context.CancelFunc) {
			return context.Background(), func() {}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A chardev with no agent behind it: accepts, reads, never answers.
			path := filepath.Join(t.TempDir(), "qga.sock")
			ln, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				if conn, err := ln.Accept(); err == nil {
					var sink bytes.Buffer
					_, _ = sink.ReadFrom(conn)
					conn.Close()
				}
			}()
			a := dialAgent(t, path, tt.opts...)
			t.Cleanup(func() { a.Close(); ln.Close(); <-done })

			ctx, cancel := tt.ctx()
			defer cancel()
			start := time.Now()
			if err := a.Ping(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Ping err = %v, want deadline exceeded", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("Ping took %v", d)
			}
		})
	}
}

func TestAgentClosed(t *testing.T) {
	_, path := serveAgent(t, guest(t))
	a := dialAgent(t, path)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Ping(t.Context()); !errors.Is(err, ErrDisconnected) {
		t.Errorf("Ping after Close = %v, want ErrDisconnected", err)
	}
}
