package vmm

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"time"
)

// The serial console. qemu's serial chardev is a unix socket that takes one client, and a
// client that stops reading stalls the guest's UART once the socket buffer fills. So lqd
// owns that one connection for each run: a hub that always drains it, keeps the last
// SerialReplay bytes for newcomers, and fans the output out to any number of sessions, each
// with a bounded queue. A session that falls behind loses its oldest unread output (and is
// told how much, in the stream); it never slows the hub, the guest or other sessions. Input
// from any session goes to the guest. The console log file is written by qemu itself (the
// chardev's logfile), independently of the hub.

// Serial console limits.
const (
	SerialReplay       = 16 << 10  // bytes of recent output a new session gets first
	serialQueue        = 256 << 10 // unread bytes a session keeps at least; at most twice that
	serialReadBuf      = 4 << 10
	serialDialFor      = 10 * time.Second // how long the hub retries connecting
	serialDialEvery    = 50 * time.Millisecond
	serialWriteTimeout = 5 * time.Second
)

// serialSkipped is written into a session's output where it lost output for falling behind.
const serialSkipped = "\r\n[lqd: %d bytes of console output skipped: this viewer fell behind]\r\n"

// SerialSession is one viewer of a VM's serial console. Read returns the replay of recent
// output first, then live output; it returns io.EOF once the console has ended (the VM
// stopped, or the session was closed) and everything before was read.
type SerialSession struct {
	hub  *serialHub
	wake chan struct{} // one slot: "something changed"

	mu      sync.Mutex
	pending []byte
	skipped int   // output bytes dropped since the last Read
	err     error // why the session ended; nil while it lasts
}

// Read returns the output that arrived since the last Read, waiting for some if there is
// none yet.
func (s *SerialSession) Read(ctx context.Context) ([]byte, error) {
	for {
		s.mu.Lock()
		if len(s.pending) > 0 {
			p := s.pending
			if s.skipped > 0 {
				p = append(fmt.Appendf(nil, serialSkipped, s.skipped), p...)
			}
			s.pending, s.skipped = nil, 0
			s.mu.Unlock()
			return p, nil
		}
		err := s.err
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Write sends input to the guest's serial port.
func (s *SerialSession) Write(ctx context.Context, p []byte) error {
	s.mu.Lock()
	err := s.err
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("serial console: write: session ended: %w", err)
	}
	return s.hub.write(ctx, p)
}

// Close detaches the session. It is idempotent.
func (s *SerialSession) Close() {
	s.hub.detach(s)
	s.end(io.EOF)
}

// push queues output; false means the session is over. A queue over twice serialQueue
// drops its oldest bytes down to serialQueue: the copy is amortized over the bytes between
// trims, so a viewer that never reads costs little.
func (s *SerialSession) push(p []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return false
	}
	s.pending = append(s.pending, p...)
	if over := len(s.pending) - serialQueue; len(s.pending) > 2*serialQueue {
		s.pending = append(s.pending[:0], s.pending[over:]...)
		s.skipped += over
	}
	s.signal()
	return true
}

// end records why the session is over; the first reason wins.
func (s *SerialSession) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
	s.signal()
}

// signal wakes a waiting Read. Called with mu held.
func (s *SerialSession) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// serialHub owns the connection to one run's serial socket.
type serialHub struct {
	path string
	log  *slog.Logger
	wsem chan struct{} // one writer at a time; unlike a mutex, waiting honours ctx

	mu    sync.Mutex
	conn  net.Conn // nil while not connected
	ring  []byte   // the last SerialReplay bytes of output (up to twice that before a trim)
	subs  map[*SerialSession]struct{}
	ended bool
}

func newSerialHub(path string, log *slog.Logger) *serialHub {
	return &serialHub{path: path, log: log, wsem: make(chan struct{}, 1), subs: map[*SerialSession]struct{}{}}
}

// run connects to the socket (retrying briefly: qemu may still be setting it up), drains
// it, and reconnects if the connection drops while ctx lasts. When ctx ends, or the socket
// cannot be reached, the hub ends and every session reads io.EOF.
func (h *serialHub) run(ctx context.Context) {
	defer h.end()
	for {
		conn, err := dialRetry(ctx, h.path, serialDialFor)
		if err != nil {
			if ctx.Err() == nil {
				h.log.Warn("serial console: cannot connect", "path", h.path, "err", err)
			}
			return
		}
		h.mu.Lock()
		h.conn = conn
		h.mu.Unlock()
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		err = h.drain(conn)
		stop()
		h.mu.Lock()
		h.conn = nil
		h.mu.Unlock()
		conn.Close()
		if ctx.Err() != nil {
			return
		}
		h.log.Debug("serial console: disconnected; reconnecting", "path", h.path, "err", err)
	}
}

// drain reads the socket until it fails, handing every chunk to the sessions.
func (h *serialHub) drain(conn net.Conn) error {
	buf := make([]byte, serialReadBuf)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			h.publish(buf[:n])
		}
		if err != nil {
			return err
		}
	}
}

func (h *serialHub) publish(p []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ring = append(h.ring, p...)
	if len(h.ring) > 2*SerialReplay {
		h.ring = append(h.ring[:0], h.ring[len(h.ring)-SerialReplay:]...)
	}
	for s := range h.subs {
		if !s.push(p) {
			delete(h.subs, s)
		}
	}
}

// attach adds a session whose first Read is the replay: under one lock, so nothing is
// missed or repeated between the replay and live output.
func (h *serialHub) attach() (*SerialSession, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ended {
		return nil, fmt.Errorf("%w: serial console has ended", ErrConflict)
	}
	s := &SerialSession{hub: h, wake: make(chan struct{}, 1)}
	replay := h.ring
	if len(replay) > SerialReplay {
		replay = replay[len(replay)-SerialReplay:]
	}
	if len(replay) > 0 {
		s.pending = append([]byte(nil), replay...)
		s.signal()
	}
	h.subs[s] = struct{}{}
	return s, nil
}

func (h *serialHub) detach(s *SerialSession) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

// end closes every session; later attaches fail.
func (h *serialHub) end() {
	h.mu.Lock()
	h.ended = true
	subs := h.subs
	h.subs = map[*SerialSession]struct{}{}
	h.mu.Unlock()
	for s := range subs {
		s.end(io.EOF)
	}
}

// write sends p to the guest. A guest that does not read its UART makes qemu stop reading
// the socket, so a write gives up after serialWriteTimeout (or when ctx ends).
func (h *serialHub) write(ctx context.Context, p []byte) error {
	select {
	case h.wsem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("serial console: write: %w", ctx.Err())
	}
	defer func() { <-h.wsem }()
	h.mu.Lock()
	conn := h.conn
	h.mu.Unlock()
	if conn == nil {
		return fmt.Errorf("%w: serial console: write: not connected to %s", ErrConflict, h.path)
	}
	deadline := time.Now().Add(serialWriteTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetWriteDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetWriteDeadline(time.Unix(1, 0)) })
	_, err := conn.Write(p)
	stop()
	conn.SetWriteDeadline(time.Time{})
	if err != nil {
		return fmt.Errorf("serial console: write %d bytes: %w", len(p), err)
	}
	return nil
}

// dialRetry connects to a unix socket, retrying for up to d while it is not there or not
// listening yet.
func dialRetry(ctx context.Context, path string, d time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var dialer net.Dialer
	for {
		conn, err := dialer.DialContext(ctx, "unix", path)
		if err == nil {
			return conn, nil
		}
		t := time.NewTimer(serialDialEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("dial %s: %w", path, err)
		case <-t.C:
		}
	}
}

// untilClosed returns a context that ends with parent or when done is closed.
func untilClosed(parent context.Context, done <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	go func() {
		select {
		case <-done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// startSerial gives a run its serial hub, which lasts as long as the run.
func (vm *machine) startSerial(r *run) {
	m := vm.m
	vm.mu.Lock()
	id, name := vm.spec.UUID, vm.spec.Name
	vm.mu.Unlock()
	h := newSerialHub(filepath.Join(m.vmRunDir(id), SerialSocket), m.log.With("vm", name))
	r.mu.Lock()
	r.serial = h
	r.mu.Unlock()
	ctx, cancel := untilClosed(m.ctx, r.exited)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer cancel()
		h.run(ctx)
	}()
}

// SerialAttach joins the serial console of a VM whose qemu runs. Any number of sessions may
// be attached at once; each must be closed.
func (m *Manager) SerialAttach(ctx context.Context, name string) (*SerialSession, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("vmm: serial %s: %w", name, err)
	}
	vm, err := m.get(name)
	if err != nil {
		return nil, err
	}
	r := vm.currentRun()
	if r == nil {
		return nil, fmt.Errorf("%w: vm %q is %s: no serial console", ErrConflict, name, vm.State())
	}
	r.mu.Lock()
	h := r.serial
	r.mu.Unlock()
	if h == nil {
		return nil, fmt.Errorf("%w: vm %q: serial console not ready yet", ErrConflict, name)
	}
	s, err := h.attach()
	if err != nil {
		return nil, fmt.Errorf("vmm: serial %s: %w", name, err)
	}
	return s, nil
}

// ConsolePaths returns the unix sockets of the VNC and serial consoles of a VM whose qemu
// runs. The serial socket takes one client, which is lqd's own hub: others should use
// SerialAttach; it is returned for diagnostics.
func (m *Manager) ConsolePaths(name string) (vnc, serial string, err error) {
	vm, err := m.get(name)
	if err != nil {
		return "", "", err
	}
	vm.mu.Lock()
	id, state, running := vm.spec.UUID, vm.state, vm.run != nil
	vm.mu.Unlock()
	if !running {
		return "", "", fmt.Errorf("%w: vm %q is %s: no console", ErrConflict, name, state)
	}
	dir := m.vmRunDir(id)
	return filepath.Join(dir, VNCSocket), filepath.Join(dir, SerialSocket), nil
}
