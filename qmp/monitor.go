package qmp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/digitalocean/go-qemu/qmp"
)

var _ qmp.Monitor = (*Monitor)(nil)

// Monitor is a QMP client. Commands may be issued from many goroutines at
// once: each carries a unique "id" and one reader goroutine routes replies
// back to their callers and events to subscribers.
type Monitor struct {
	path    string
	opts    options
	conn    net.Conn
	version qmp.Version
	caps    []string
	events  bus

	// wsem is a one-slot semaphore serializing writes; unlike a mutex,
	// waiting for it honours ctx.
	wsem chan struct{}

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan message // nil once disconnected
	err     error                   // set once disconnected; wraps ErrDisconnected

	closing   atomic.Bool
	closeOnce sync.Once
	closeErr  error
	done      chan struct{} // closed after the reader has cleaned up
}

// message is one JSON object read from the monitor: an event or a reply.
type message struct {
	qmp.Event
	ID     json.RawMessage `json:"id"`
	Return json.RawMessage `json:"return"`
	Error  *errorBody      `json:"error"`

	raw json.RawMessage // the whole object, a fresh slice
}

// Dial connects to the QMP unix socket at path, reads the greeting and
// negotiates capabilities. ctx bounds the handshake only.
func Dial(ctx context.Context, path string, opts ...Option) (*Monitor, error) {
	m := &Monitor{
		path:    path,
		opts:    newOptions(DefaultTimeout, opts),
		wsem:    make(chan struct{}, 1),
		pending: make(map[uint64]chan message),
		done:    make(chan struct{}),
	}
	ctx, cancel := withDefaultTimeout(ctx, m.opts.timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("qmp: dial %s: %w", path, err)
	}
	m.conn = conn
	dec := json.NewDecoder(conn)
	if err := m.handshake(ctx, dec); err != nil {
		conn.Close()
		return nil, fmt.Errorf("qmp: handshake %s: %w", path, err)
	}
	go m.readLoop(dec)
	return m, nil
}

func (m *Monitor) handshake(ctx context.Context, dec *json.Decoder) error {
	stop := watchDeadline(ctx, m.conn.SetDeadline)
	defer stop()
	var greeting struct {
		QMP *struct {
			Version      qmp.Version `json:"version"`
			Capabilities []string    `json:"capabilities"`
		} `json:"QMP"`
	}
	if err := dec.Decode(&greeting); err != nil {
		return fmt.Errorf("read greeting: %w", ctxErr(ctx, err))
	}
	if greeting.QMP == nil {
		return errors.New("read greeting: not a QMP greeting")
	}
	m.version, m.caps = greeting.QMP.Version, greeting.QMP.Capabilities

	buf, _ := json.Marshal(request{Execute: "qmp_capabilities"})
	if _, err := m.conn.Write(append(buf, '\n')); err != nil {
		return fmt.Errorf("qmp_capabilities: %w", ctxErr(ctx, err))
	}
	for {
		var msg message
		if err := dec.Decode(&msg); err != nil {
			return fmt.Errorf("qmp_capabilities: %w", ctxErr(ctx, err))
		}
		if msg.Event.Event != "" {
			continue // nobody can have subscribed yet
		}
		if msg.Error != nil {
			return &Error{Command: "qmp_capabilities", Class: msg.Error.Class, Desc: msg.Error.Desc}
		}
		return nil
	}
}

// Version is the QEMU version announced in the greeting.
func (m *Monitor) Version() qmp.Version { return m.version }

// Capabilities are the QMP capabilities announced in the greeting.
func (m *Monitor) Capabilities() []string { return append([]string(nil), m.caps...) }

// Done is closed once the connection is gone and all cleanup has run.
func (m *Monitor) Done() <-chan struct{} { return m.done }

// Connect implements qmp.Monitor. Dial already connected, so it only
// reports whether the connection is still up; to reconnect, Dial again.
func (m *Monitor) Connect() error {
	select {
	case <-m.done:
		return fmt.Errorf("qmp: connect %s: %w", m.path, m.disconnectErr())
	default:
		return nil
	}
}

// Disconnect implements qmp.Monitor; it is Close.
func (m *Monitor) Disconnect() error { return m.Close() }

// Close closes the socket and waits until pending commands have failed
// with ErrDisconnected and subscribers have been closed. It is idempotent.
func (m *Monitor) Close() error {
	m.closeOnce.Do(func() {
		m.closing.Store(true)
		if err := m.conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			m.closeErr = fmt.Errorf("qmp: close %s: %w", m.path, err)
		}
	})
	<-m.done
	return m.closeErr
}

// Execute runs command with args (nil for none) and unmarshals the reply's
// "return" into out unless out is nil. A QMP error reply is an *Error. If
// ctx has no deadline, the default timeout applies; a reply arriving after
// the caller gave up is dropped.
func (m *Monitor) Execute(ctx context.Context, command string, args, out any) error {
	_, err := m.execute(ctx, command, args, out)
	return err
}

// execute is Execute that also reports whether the command was written.
func (m *Monitor) execute(ctx context.Context, command string, args, out any) (sent bool, err error) {
	msg, sent, err := m.roundTrip(ctx, command, func(id string) ([]byte, error) {
		return json.Marshal(request{Execute: command, Arguments: args, ID: id})
	})
	if err != nil {
		return sent, err
	}
	if out != nil && len(msg.Return) > 0 {
		if err := json.Unmarshal(msg.Return, out); err != nil {
			return true, fmt.Errorf("qmp: %s: decode reply: %w", command, err)
		}
	}
	return true, nil
}

// Run implements qmp.Monitor: command is a JSON QMP command, which gets a
// fresh "id"; the result is the whole reply object ({"return": ...}). A
// QMP error reply is returned as an *Error. The default timeout applies.
func (m *Monitor) Run(command []byte) ([]byte, error) {
	var req map[string]json.RawMessage
	if err := json.Unmarshal(command, &req); err != nil {
		return nil, fmt.Errorf("qmp: run: parse command: %w", err)
	}
	var name string
	if err := json.Unmarshal(req["execute"], &name); err != nil || name == "" {
		return nil, fmt.Errorf("qmp: run: command has no \"execute\" name")
	}
	msg, _, err := m.roundTrip(context.Background(), name, func(id string) ([]byte, error) {
		req["id"], _ = json.Marshal(id)
		return json.Marshal(req)
	})
	if err != nil {
		return nil, err
	}
	return msg.raw, nil
}

// roundTrip registers a fresh id, writes encode(id) and waits for the
// reply routed to that id.
func (m *Monitor) roundTrip(ctx context.Context, name string, encode func(id string) ([]byte, error)) (msg message, sent bool, err error) {
	ctx, cancel := withDefaultTimeout(ctx, m.opts.timeout)
	defer cancel()

	m.mu.Lock()
	if m.err != nil {
		err := m.err
		m.mu.Unlock()
		return msg, false, fmt.Errorf("qmp: %s: %w", name, err)
	}
	m.nextID++
	id := m.nextID
	ch := make(chan message, 1) // the reader never blocks on it
	m.pending[id] = ch
	m.mu.Unlock()
	defer m.forget(id)

	buf, err := encode(strconv.FormatUint(id, 10))
	if err != nil {
		return msg, false, fmt.Errorf("qmp: %s: encode: %w", name, err)
	}
	if err := m.write(ctx, append(buf, '\n')); err != nil {
		return msg, false, fmt.Errorf("qmp: %s: %w", name, err)
	}

	select {
	case msg = <-ch:
	case <-ctx.Done():
		return msg, true, fmt.Errorf("qmp: %s: %w", name, ctx.Err())
	case <-m.done:
		select {
		case msg = <-ch: // routed just before the connection dropped
		default:
			return msg, true, fmt.Errorf("qmp: %s: %w", name, m.disconnectErr())
		}
	}
	if msg.Error != nil {
		return msg, true, &Error{Command: name, Class: msg.Error.Class, Desc: msg.Error.Desc}
	}
	return msg, true, nil
}

// write sends one encoded command. A write cut short by ctx leaves half a
// command on the wire, so it closes the connection.
func (m *Monitor) write(ctx context.Context, buf []byte) error {
	select {
	case m.wsem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-m.done:
		return m.disconnectErr()
	}
	defer func() { <-m.wsem }()

	stop := watchDeadline(ctx, m.conn.SetWriteDeadline)
	n, err := m.conn.Write(buf)
	stop()
	if err != nil {
		if n > 0 {
			m.conn.Close()
		}
		return ctxErr(ctx, err)
	}
	return nil
}

func (m *Monitor) forget(id uint64) {
	m.mu.Lock()
	delete(m.pending, id)
	m.mu.Unlock()
}

func (m *Monitor) disconnectErr() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// readLoop owns reading: it routes replies by id and publishes events
// until the connection fails, then cleans up.
func (m *Monitor) readLoop(dec *json.Decoder) {
	var err error
	for {
		var raw json.RawMessage // fresh per message: replies never alias
		if err = dec.Decode(&raw); err != nil {
			break
		}
		m.dispatch(raw)
	}
	m.shutdown(err)
}

func (m *Monitor) dispatch(raw json.RawMessage) {
	var msg message
	if err := json.Unmarshal(raw, &msg); err != nil {
		m.opts.log.Warn("qmp: undecodable message", "path", m.path, "err", err)
		return
	}
	msg.raw = raw
	if msg.Event.Event != "" {
		m.events.publish(msg.Event)
		return
	}
	var sid string
	_ = json.Unmarshal(msg.ID, &sid)
	id, err := strconv.ParseUint(sid, 10, 64)
	if err != nil {
		m.opts.log.Warn("qmp: reply without a known id", "path", m.path, "id", string(msg.ID))
		return
	}
	m.mu.Lock()
	ch, ok := m.pending[id]
	delete(m.pending, id)
	m.mu.Unlock()
	if !ok {
		m.opts.log.Debug("qmp: dropping late reply", "path", m.path, "id", id)
		return
	}
	ch <- msg
}

// shutdown fails pending and future commands, tells subscribers and closes
// Done. Waiting callers notice through Done.
func (m *Monitor) shutdown(cause error) {
	m.mu.Lock()
	if m.closing.Load() {
		m.err = fmt.Errorf("%w: monitor closed", ErrDisconnected)
	} else {
		m.err = fmt.Errorf("%w: %v", ErrDisconnected, cause)
	}
	m.pending = nil
	m.mu.Unlock()
	m.conn.Close()
	m.events.close()
	close(m.done)
}
