package qmp

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

// fakeConn is the server side of one scripted QMP connection.
type fakeConn struct {
	t    *testing.T
	conn net.Conn
	dec  *json.Decoder
	mu   sync.Mutex
}

type fakeCmd struct {
	Execute   string          `json:"execute"`
	Arguments json.RawMessage `json:"arguments"`
	ID        json.RawMessage `json:"id"`
}

// read returns the next command; false once the client has gone.
func (c *fakeConn) read() (fakeCmd, bool) {
	var cmd fakeCmd
	if err := c.dec.Decode(&cmd); err != nil {
		return cmd, false
	}
	return cmd, true
}

// drain reads until the client goes away.
func (c *fakeConn) drain() {
	for {
		if _, ok := c.read(); !ok {
			return
		}
	}
}

func (c *fakeConn) send(v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	buf, err := json.Marshal(v)
	if err != nil {
		c.t.Errorf("fake: marshal: %v", err)
		return
	}
	_, _ = c.conn.Write(append(buf, '\r', '\n')) // qemu ends lines with CRLF
}

func (c *fakeConn) reply(cmd fakeCmd, ret any) {
	c.send(map[string]any{"return": ret, "id": cmd.ID})
}

func (c *fakeConn) replyErr(cmd fakeCmd, class, desc string) {
	c.send(map[string]any{"error": map[string]string{"class": class, "desc": desc}, "id": cmd.ID})
}

func (c *fakeConn) event(name string, data map[string]any) {
	c.send(map[string]any{
		"event":     name,
		"data":      data,
		"timestamp": map[string]int64{"seconds": 1700000000, "microseconds": 1},
	})
}

// serveQMP listens on a fresh unix socket; for the first connection it
// greets, answers qmp_capabilities and runs script. Script should return
// once read reports the client gone.
func serveQMP(t *testing.T, script func(c *fakeConn)) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "qmp.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		c := &fakeConn{t: t, conn: conn, dec: json.NewDecoder(conn)}
		c.send(map[string]any{"QMP": map[string]any{
			"version":      map[string]any{"qemu": map[string]int{"major": 9, "minor": 2, "micro": 1}, "package": "fake"},
			"capabilities": []string{"oob"},
		}})
		cmd, ok := c.read()
		if !ok || cmd.Execute != "qmp_capabilities" {
			t.Errorf("fake: want qmp_capabilities first, got %+v", cmd)
			return
		}
		c.send(map[string]any{"return": map[string]any{}})
		script(c)
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return path
}

// dial connects to path and closes the monitor when the test ends.
func dial(t *testing.T, path string, opts ...Option) *Monitor {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := Dial(ctx, path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// checkNoLeaks fails the test if monitor reader goroutines outlive it.
// Call it first so its cleanup runs last.
func checkNoLeaks(t *testing.T) {
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for {
			buf := make([]byte, 1<<20)
			stacks := string(buf[:runtime.Stack(buf, true)])
			if !strings.Contains(stacks, "qmp.(*Monitor).readLoop") {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("leaked goroutines:\n%s", stacks)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// recvEvent waits up to a second for an event or a closed channel.
func recvEvent(t *testing.T, ch <-chan qmp.Event) (qmp.Event, bool) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		return ev, ok
	case <-time.After(time.Second):
		t.Fatal("no event within 1s")
		return qmp.Event{}, false
	}
}
