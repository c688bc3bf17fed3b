package vmm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fakeSerial is qemu's side of a serial chardev socket: a unix listener that takes clients
// one at a time.
type fakeSerial struct {
	path  string
	ln    net.Listener
	conns chan net.Conn
}

func newFakeSerial(t *testing.T) *fakeSerial {
	t.Helper()
	dir, err := os.MkdirTemp("", "lqs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, SerialSocket)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	f := &fakeSerial{path: path, ln: ln, conns: make(chan net.Conn, 4)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			f.conns <- c
		}
	}()
	return f
}

// next waits for the hub to connect.
func (f *fakeSerial) next(t *testing.T) net.Conn {
	t.Helper()
	select {
	case c := <-f.conns:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("the hub did not connect")
		return nil
	}
}

// startHub runs a hub on path until the test ends; cancel ends it early.
func startHub(t *testing.T, path string) (*serialHub, context.CancelFunc) {
	t.Helper()
	h := newSerialHub(path, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return h, cancel
}

func attach(t *testing.T, h *serialHub) *SerialSession {
	t.Helper()
	s, err := h.attach()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// readN reads from a session until it has n bytes.
func readN(t *testing.T, s *SerialSession, n int) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var got []byte
	for len(got) < n {
		p, err := s.Read(ctx)
		if err != nil {
			t.Fatalf("read after %d of %d bytes: %v", len(got), n, err)
		}
		got = append(got, p...)
	}
	return got
}

func TestSerialHubFanOut(t *testing.T) {
	f := newFakeSerial(t)
	h, _ := startHub(t, f.path)
	qemu := f.next(t)
	a, b := attach(t, h), attach(t, h)
	want := []byte("Linux version 6.1.0\r\nlogin: ")
	if _, err := qemu.Write(want); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*SerialSession{"a": a, "b": b} {
		if got := readN(t, s, len(want)); !bytes.Equal(got, want) {
			t.Errorf("viewer %s got %q, want %q", name, got, want)
		}
	}

	// Input from either viewer reaches the guest.
	ctx := context.Background()
	if err := a.Write(ctx, []byte("root\n")); err != nil {
		t.Fatal(err)
	}
	if err := b.Write(ctx, []byte("uname\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	var in []byte
	qemu.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(in) < len("root\nuname\n") {
		n, err := qemu.Read(buf)
		if err != nil {
			t.Fatalf("guest side read %q: %v", in, err)
		}
		in = append(in, buf[:n]...)
	}
	if string(in) != "root\nuname\n" {
		t.Errorf("guest received %q", in)
	}
}

// TestSerialHubSlowViewer checks that a viewer that never reads neither blocks the hub's
// drain nor the other viewer, holds bounded memory, and learns how much it missed.
func TestSerialHubSlowViewer(t *testing.T) {
	f := newFakeSerial(t)
	h, _ := startHub(t, f.path)
	qemu := f.next(t)
	stuck, live := attach(t, h), attach(t, h)

	const chunk, chunks = 64 << 10, 16 // 1 MiB: four times a session's queue
	var out []byte
	for i := range chunks {
		p := bytes.Repeat([]byte{byte('a' + i)}, chunk)
		out = append(out, p...)
		qemu.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := qemu.Write(p); err != nil {
			t.Fatalf("chunk %d: guest output blocked: %v", i, err)
		}
		if got := readN(t, live, chunk); !bytes.Equal(got, p) {
			t.Fatalf("chunk %d: the live viewer got %d bytes, not the chunk", i, len(got))
		}
	}
	stuck.mu.Lock()
	held := len(stuck.pending)
	stuck.mu.Unlock()
	if held > 2*serialQueue {
		t.Errorf("the stuck viewer holds %d bytes, over its bound %d", held, 2*serialQueue)
	}
	got, err := stuck.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	notice, tail, ok := bytes.Cut(got, []byte("behind]\r\n"))
	var skipped int
	if !ok || !bytes.HasPrefix(notice, []byte("\r\n[lqd: ")) {
		t.Fatalf("stuck viewer's output does not start with a notice: %q...", got[:min(len(got), 80)])
	}
	fmt.Sscanf(string(notice), "\r\n[lqd: %d bytes", &skipped)
	if skipped+len(tail) != len(out) || !bytes.Equal(tail, out[skipped:]) {
		t.Errorf("stuck viewer: %d bytes skipped and %d kept; want the newest of %d", skipped, len(tail), len(out))
	}
}

func TestSerialHubReplay(t *testing.T) {
	tests := []struct {
		name    string
		written int
		want    int // replay length: the tail of what was written
	}{
		{"nothing yet", 0, 0},
		{"less than the replay", 100, 100},
		{"more than the replay", 3*SerialReplay + 123, SerialReplay},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeSerial(t)
			h, _ := startHub(t, f.path)
			qemu := f.next(t)
			witness := attach(t, h) // to know when the hub has read everything
			out := make([]byte, tt.written)
			for i := range out {
				out[i] = byte('a' + i%26)
			}
			if _, err := qemu.Write(out); err != nil {
				t.Fatal(err)
			}
			readN(t, witness, tt.written)
			s := attach(t, h)
			if _, err := qemu.Write([]byte("LIVE")); err != nil {
				t.Fatal(err)
			}
			got := readN(t, s, tt.want+4)
			want := append(append([]byte(nil), out[len(out)-tt.want:]...), "LIVE"...)
			if !bytes.Equal(got, want) {
				t.Errorf("replay+live: got %d bytes %q...; want %d bytes", len(got), got[:min(len(got), 16)], len(want))
			}
		})
	}
}

func TestSerialHubEnd(t *testing.T) {
	f := newFakeSerial(t)
	h, cancel := startHub(t, f.path)
	qemu := f.next(t)
	s := attach(t, h)
	if _, err := qemu.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	readN(t, s, 3)
	if _, err := qemu.Write([]byte("last")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	cancel() // the run ended
	ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	var got []byte
	for {
		p, err := s.Read(ctx)
		got = append(got, p...)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("read after the end: %v, want io.EOF", err)
			}
			break
		}
	}
	if string(got) != "last" {
		t.Errorf("output before the end: %q, want %q", got, "last")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := h.attach(); errors.Is(err, ErrConflict) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("attach still works after the hub ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSerialHubReconnect checks that the hub reconnects when its connection drops while the
// run lasts, and that sessions survive it.
func TestSerialHubReconnect(t *testing.T) {
	f := newFakeSerial(t)
	h, _ := startHub(t, f.path)
	first := f.next(t)
	s := attach(t, h)
	first.Close()
	second := f.next(t)
	if _, err := second.Write([]byte("again")); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, s, 5); string(got) != "again" {
		t.Errorf("after reconnect got %q", got)
	}
}

func TestSerialWriteNotConnected(t *testing.T) {
	h := newSerialHub(filepath.Join(t.TempDir(), "none.sock"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	s, err := h.attach()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), []byte("x")); !errors.Is(err, ErrConflict) {
		t.Errorf("write with no connection: %v, want ErrConflict", err)
	}
}

func TestSerialAttachErrors(t *testing.T) {
	m := newTestManager(t)
	m.vms["off"] = newMachine(m, Spec{UUID: "u-off", Name: "off"}, StateStopped, time.Now())
	tests := []struct {
		name string
		vm   string
		want error
	}{
		{"no such vm", "nope", ErrNotFound},
		{"stopped", "off", ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := m.SerialAttach(context.Background(), tt.vm); !errors.Is(err, tt.want) {
				t.Errorf("SerialAttach: %v, want %v", err, tt.want)
			}
			if _, _, err := m.ConsolePaths(tt.vm); !errors.Is(err, tt.want) {
				t.Errorf("ConsolePaths: %v, want %v", err, tt.want)
			}
			if _, err := m.Stats(tt.vm); !errors.Is(err, tt.want) {
				t.Errorf("Stats: %v, want %v", err, tt.want)
			}
		})
	}
}

// newTestManager is a Manager with no database: enough for the accessors.
func newTestManager(t *testing.T) *Manager {
	t.Helper()
	m := New(Config{DataDir: t.TempDir(), RunDir: t.TempDir(), Bus: &Bus{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(m.Close)
	return m
}

func BenchmarkSerialFanOut(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, SerialSocket)
	ln, err := net.Listen("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	h := newSerialHub(path, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.run(ctx)
	qemu, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer qemu.Close()
	const viewers = 10
	var sessions []*SerialSession
	for range viewers {
		s, err := h.attach()
		if err != nil {
			b.Fatal(err)
		}
		sessions = append(sessions, s)
	}
	line := bytes.Repeat([]byte("x"), 79)
	line = append(line, '\n')
	b.SetBytes(int64(len(line)))
	b.ResetTimer()
	for range b.N {
		qemu.Write(line)
		for _, s := range sessions {
			got := 0
			for got < len(line) {
				p, err := s.Read(ctx)
				if err != nil {
					b.Fatal(err)
				}
				got += len(p)
			}
		}
	}
}
