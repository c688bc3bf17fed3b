package qmp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

func TestDialGreeting(t *testing.T) {
	checkNoLeaks(t)
	m := dial(t, serveQMP(t, (*fakeConn).drain))
	if got := m.Version().String(); got != "9.2.1" {
		t.Errorf("Version = %q, want 9.2.1", got)
	}
	if got := m.Capabilities(); len(got) != 1 || got[0] != "oob" {
		t.Errorf("Capabilities = %q", got)
	}
	if err := m.Connect(); err != nil {
		t.Errorf("Connect on a live monitor: %v", err)
	}
}

func TestExecuteConcurrentOutOfOrder(t *testing.T) {
	checkNoLeaks(t)
	const n = 64
	path := serveQMP(t, func(c *fakeConn) {
		var cmds []fakeCmd
		for len(cmds) < n {
			cmd, ok := c.read()
			if !ok {
				return
			}
			cmds = append(cmds, cmd)
		}
		for i := len(cmds) - 1; i >= 0; i-- { // answer newest first
			c.reply(cmds[i], cmds[i].Arguments)
		}
		c.drain()
	})
	m := dial(t, path)

	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var out struct{ N int }
			if err := m.Execute(t.Context(), "echo", map[string]int{"n": i}, &out); err != nil {
				t.Errorf("echo %d: %v", i, err)
			} else if out.N != i {
				t.Errorf("echo %d: got reply for %d", i, out.N)
			}
		})
	}
	wg.Wait()
}

func TestExecuteTimeout(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{
			name: "ctx deadline",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 50*time.Millisecond)
			},
			want: context.DeadlineExceeded,
		},
		{
			name: "default timeout",
			opts: []Option{WithTimeout(50 * time.Millisecond)},
			ctx:  func() (context.Context, context.CancelFunc) { return context.Background(), func() {} },
			want: context.DeadlineExceeded,
		},
		{
			name: "cancelled",
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(50*time.Millisecond, cancel)
				return ctx, cancel
			},
			want: context.Canceled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkNoLeaks(t)
			path := serveQMP(t, func(c *fakeConn) {
				slow, ok := c.read() // never answered in time
				if !ok {
					return
				}
				fast, ok := c.read()
				if !ok {
					return
				}
				c.reply(slow, map[string]string{"who": "slow"}) // late
				c.reply(fast, map[string]string{"who": "fast"})
				c.drain()
			})
			m := dial(t, path, tt.opts...)

			ctx, cancel := tt.ctx()
			defer cancel()
			err := m.Execute(ctx, "slow", nil, nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("slow: err = %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "qmp: slow: ") {
				t.Errorf("error %q does not name the command", err)
			}
			var out struct{ Who string }
			if err := m.Execute(t.Context(), "fast", nil, &out); err != nil {
				t.Fatalf("fast: %v", err)
			}
			if out.Who != "fast" {
				t.Errorf("fast got the reply meant for %q", out.Who)
			}
		})
	}
}

func TestErrorReply(t *testing.T) {
	checkNoLeaks(t)
	path := serveQMP(t, func(c *fakeConn) {
		for cmd, ok := c.read(); ok; cmd, ok = c.read() {
			c.replyErr(cmd, "CommandNotFound", "The command "+cmd.Execute+" has not been found")
		}
	})
	m := dial(t, path)

	err := m.Execute(t.Context(), "bogus", nil, nil)
	var qerr *Error
	if !errors.As(err, &qerr) || qerr.Class != "CommandNotFound" || qerr.Command != "bogus" {
		t.Fatalf("err = %#v, want *Error CommandNotFound", err)
	}
	if want := "qmp: bogus: CommandNotFound: The command bogus has not been found"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
	if _, err := m.Run([]byte(`{"execute":"bogus2"}`)); !errors.As(err, &qerr) || qerr.Command != "bogus2" {
		t.Errorf("Run error = %v, want *Error for bogus2", err)
	}
}

func TestEventsSlowConsumer(t *testing.T) {
	checkNoLeaks(t)
	const total, buffer = 10000, 16
	path := serveQMP(t, func(c *fakeConn) {
		cmd, ok := c.read()
		if !ok {
			return
		}
		for i := range total {
			c.event("SEQ", map[string]any{"seq": i})
		}
		c.reply(cmd, struct{}{})
		c.drain()
	})
	m := dial(t, path)
	slow, _ := m.Subscribe(buffer) // never read until the flood is over

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := m.Execute(ctx, "flood", nil, nil); err != nil {
		t.Fatalf("command behind %d unread events: %v", total, err)
	}
	t.Logf("command completed after %d events in %v", total, time.Since(start))

	if got, want := m.Dropped(), uint64(total-buffer); got != want {
		t.Errorf("Dropped = %d, want %d", got, want)
	}
	for want := total - buffer; want < total; want++ {
		ev, _ := recvEvent(t, slow)
		if got := int(ev.Data["seq"].(float64)); got != want {
			t.Fatalf("event seq = %d, want %d (newest events kept)", got, want)
		}
	}
	select {
	case ev := <-slow:
		t.Errorf("unexpected extra event %+v", ev)
	default:
	}
}

func TestEventsUnsubscribe(t *testing.T) {
	checkNoLeaks(t)
	m := dial(t, serveQMP(t, (*fakeConn).drain))
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := m.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, ok := recvEvent(t, ch); ok {
		t.Error("Events channel still open after ctx ended")
	}
	_, unsubscribe := m.Subscribe(1)
	unsubscribe()
	unsubscribe() // idempotent
}

func TestLargeReply(t *testing.T) {
	for _, size := range []int{64<<10 + 1, 1 << 20} {
		t.Run(fmt.Sprintf("%dKiB", size>>10), func(t *testing.T) {
			checkNoLeaks(t)
			path := serveQMP(t, func(c *fakeConn) {
				for cmd, ok := c.read(); ok; cmd, ok = c.read() {
					var args struct{ Fill string }
					_ = json.Unmarshal(cmd.Arguments, &args)
					c.reply(cmd, strings.Repeat(args.Fill, size))
				}
			})
			m := dial(t, path)

			a, err := m.Run([]byte(`{"execute":"big","arguments":{"fill":"a"}}`))
			if err != nil {
				t.Fatal(err)
			}
			b, err := m.Run([]byte(`{"execute":"big","arguments":{"fill":"b"}}`))
			if err != nil {
				t.Fatal(err)
			}
			var c string
			if err := m.Execute(t.Context(), "big", map[string]string{"fill": "c"}, &c); err != nil {
				t.Fatal(err)
			}
			for _, r := range []struct {
				raw  []byte
				fill string
			}{{a, "a"}, {b, "b"}} {
				var reply struct{ Return string }
				if err := json.Unmarshal(r.raw, &reply); err != nil {
					t.Fatal(err)
				}
				if reply.Return != strings.Repeat(r.fill, size) {
					t.Errorf("reply %q corrupted or aliased (len %d)", r.fill, len(reply.Return))
				}
			}
			if c != strings.Repeat("c", size) {
				t.Errorf("Execute reply corrupted (len %d)", len(c))
			}
		})
	}
}

func TestDisconnect(t *testing.T) {
	tests := []struct {
		name         string
		clientCloses bool // else the server hangs up after the first command
	}{
		{name: "server EOF"},
		{name: "client Close", clientCloses: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkNoLeaks(t)
			got := make(chan struct{})
			path := serveQMP(t, func(c *fakeConn) {
				if _, ok := c.read(); !ok {
					return
				}
				close(got)
				if tt.clientCloses {
					c.drain()
				}
			})
			m := dial(t, path)
			sub, _ := m.Subscribe(4)
			errc := make(chan error, 1)
			go func() { errc <- m.Execute(context.Background(), "pending", nil, nil) }()
			<-got
			if tt.clientCloses {
				if err := m.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
			}

			select {
			case err := <-errc:
				if !errors.Is(err, ErrDisconnected) {
					t.Errorf("pending command: err = %v, want ErrDisconnected", err)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("pending command not failed")
			}
			select {
			case <-m.Done():
			case <-time.After(2 * time.Second):
				t.Fatal("Done not closed")
			}
			if ev, ok := recvEvent(t, sub); !ok || ev.Event != EventDisconnected {
				t.Errorf("subscriber got %+v (open %v), want %s", ev, ok, EventDisconnected)
			}
			if _, ok := recvEvent(t, sub); ok {
				t.Error("subscriber channel not closed")
			}

			start := time.Now()
			if err := m.Execute(context.Background(), "after", nil, nil); !errors.Is(err, ErrDisconnected) {
				t.Errorf("Execute after disconnect: %v", err)
			}
			if d := time.Since(start); d > 100*time.Millisecond {
				t.Errorf("Execute after disconnect took %v", d)
			}
			if err := m.Connect(); !errors.Is(err, ErrDisconnected) {
				t.Errorf("Connect after disconnect: %v", err)
			}
			if _, err := m.Events(t.Context()); !errors.Is(err, ErrDisconnected) {
				t.Errorf("Events after disconnect: %v", err)
			}
			late, _ := m.Subscribe(1)
			if ev, _ := recvEvent(t, late); ev.Event != EventDisconnected {
				t.Errorf("late subscriber got %+v", ev)
			}
			if err := m.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

func TestCommands(t *testing.T) {
	tests := []struct {
		name    string
		call    func(*Monitor, context.Context) error
		command string
		noReply bool // server hangs up instead of replying
	}{
		{"cont", (*Monitor).Cont, "cont", false},
		{"stop", (*Monitor).Stop, "stop", false},
		{"powerdown", (*Monitor).SystemPowerdown, "system_powerdown", false},
		{"reset", (*Monitor).SystemReset, "system_reset", false},
		{"quit", (*Monitor).Quit, "quit", false},
		{"quit hangs up", (*Monitor).Quit, "quit", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkNoLeaks(t)
			got := make(chan string, 1)
			path := serveQMP(t, func(c *fakeConn) {
				cmd, ok := c.read()
				if !ok {
					return
				}
				got <- cmd.Execute
				if tt.noReply {
					return
				}
				c.reply(cmd, struct{}{})
				c.drain()
			})
			m := dial(t, path)
			if err := tt.call(m, t.Context()); err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if sent := <-got; sent != tt.command {
				t.Errorf("sent %q, want %q", sent, tt.command)
			}
		})
	}
}

func TestQueryStatus(t *testing.T) {
	checkNoLeaks(t)
	path := serveQMP(t, func(c *fakeConn) {
		for cmd, ok := c.read(); ok; cmd, ok = c.read() {
			c.reply(cmd, map[string]any{"status": "prelaunch", "running": false, "singlestep": false})
		}
	})
	m := dial(t, path)
	st, err := m.QueryStatus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := (Status{Status: StatePrelaunch}); st != want {
		t.Errorf("QueryStatus = %+v, want %+v", st, want)
	}
}

func TestRunReturnsWholeReply(t *testing.T) {
	checkNoLeaks(t)
	path := serveQMP(t, func(c *fakeConn) {
		for cmd, ok := c.read(); ok; cmd, ok = c.read() {
			if !bytes.Equal(cmd.Arguments, []byte(`{"x":1}`)) {
				t.Errorf("arguments = %s", cmd.Arguments)
			}
			c.reply(cmd, 42)
		}
	})
	m := dial(t, path)
	out, err := m.Run([]byte(`{"execute":"answer","arguments":{"x":1},"id":"caller-id"}`))
	if err != nil {
		t.Fatal(err)
	}
	var reply struct {
		Return int
		ID     string
	}
	if err := json.Unmarshal(out, &reply); err != nil || reply.Return != 42 || reply.ID == "caller-id" {
		t.Errorf("Run = %s (%v), want return 42 under the monitor's own id", out, err)
	}
	if _, err := m.Run([]byte(`{"arguments":{}}`)); err == nil {
		t.Error("Run without execute: no error")
	}
}

var _ qmp.Monitor = (*Monitor)(nil)
