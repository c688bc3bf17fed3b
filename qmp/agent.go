package qmp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Agent is a qemu-guest-agent client speaking over the unix socket of the
// chardev behind the org.qemu.guest_agent.0 virtio-serial port. Calls are
// serialized. Because a stopped agent silently swallows commands, every
// call has a deadline (ctx's, or the default timeout) and starts with a
// guest-sync-delimited handshake that discards replies left over from
// earlier calls that timed out.
type Agent struct {
	path string
	opts options
	// shutdownWait is how long Shutdown waits for an error reply.
	shutdownWait time.Duration

	// sem is a one-slot semaphore held for a whole call; unlike a mutex,
	// waiting for it honours ctx. Its holder owns r.
	sem chan struct{}
	r   *bufio.Reader

	mu     sync.Mutex // guards conn and closed, so Close can interrupt a call
	conn   net.Conn   // nil after a broken connection: the next call redials
	closed bool
}

// agentReply is one reply line from the agent.
type agentReply struct {
	Return json.RawMessage `json:"return"`
	Error  *errorBody      `json:"error"`
}

// DialAgent connects to the guest agent's chardev socket at path. It
// succeeds even when no agent runs in the guest; calls then time out.
func DialAgent(ctx context.Context, path string, opts ...Option) (*Agent, error) {
	a := &Agent{
		path:         path,
		opts:         newOptions(DefaultAgentTimeout, opts),
		shutdownWait: time.Second,
		sem:          make(chan struct{}, 1),
	}
	if _, err := a.connect(ctx); err != nil {
		return nil, fmt.Errorf("qmp: dial agent %s: %w", path, err)
	}
	return a, nil
}

// Close closes the connection, interrupting a call in progress.
func (a *Agent) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	if a.conn == nil {
		return nil
	}
	err := a.conn.Close()
	a.conn = nil
	if err != nil {
		return fmt.Errorf("qmp: close agent %s: %w", a.path, err)
	}
	return nil
}

// connect returns the live connection, redialling after a broken one.
// The caller holds sem (or is DialAgent).
func (a *Agent) connect(ctx context.Context) (net.Conn, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, fmt.Errorf("%w: agent closed", ErrDisconnected)
	}
	if a.conn != nil {
		return a.conn, nil
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", a.path)
	if err != nil {
		return nil, err
	}
	a.conn, a.r = conn, bufio.NewReader(conn)
	return conn, nil
}

// drop forgets conn after an unrecoverable error.
func (a *Agent) drop(conn net.Conn) {
	a.mu.Lock()
	defer a.mu.Unlock()
	conn.Close()
	if a.conn == conn {
		a.conn = nil
	}
}

// call runs command and unmarshals its "return" into out unless out is nil.
func (a *Agent) call(ctx context.Context, command string, args, out any) error {
	return a.do(ctx, command, args, out, false)
}

// do runs one command. With noReply, the command is one that answers only
// on failure (guest-shutdown): silence or EOF after the write is success.
func (a *Agent) do(ctx context.Context, command string, args, out any, noReply bool) error {
	ctx, cancel := withDefaultTimeout(ctx, a.opts.timeout)
	defer cancel()
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("qmp: %s: %w", command, ctx.Err())
	}
	defer func() { <-a.sem }()

	conn, err := a.connect(ctx)
	if err != nil {
		return fmt.Errorf("qmp: %s: %w", command, err)
	}
	stop := watchDeadline(ctx, conn.SetDeadline)
	defer stop()

	if err := a.sync(conn); err != nil {
		return a.fail(ctx, conn, command+": guest-sync-delimited", err)
	}
	buf, err := json.Marshal(request{Execute: command, Arguments: args})
	if err != nil {
		return fmt.Errorf("qmp: %s: encode: %w", command, err)
	}
	if _, err := conn.Write(append(buf, '\n')); err != nil {
		return a.fail(ctx, conn, command, err)
	}
	if noReply {
		if d, ok := ctx.Deadline(); !ok || time.Until(d) > a.shutdownWait {
			_ = conn.SetReadDeadline(time.Now().Add(a.shutdownWait))
		}
	}
	reply, err := a.readReply()
	if err != nil {
		if noReply && ctx.Err() != context.Canceled &&
			(errors.Is(err, os.ErrDeadlineExceeded) || isHangup(err)) {
			if isHangup(err) {
				a.drop(conn)
			}
			return nil
		}
		return a.fail(ctx, conn, command, err)
	}
	if reply.Error != nil {
		return &Error{Command: command, Class: reply.Error.Class, Desc: reply.Error.Desc}
	}
	if out != nil && len(reply.Return) > 0 {
		if err := json.Unmarshal(reply.Return, out); err != nil {
			return fmt.Errorf("qmp: %s: decode reply: %w", command, err)
		}
	}
	return nil
}

// fail wraps err. After a timeout the connection stays: the next call's
// sync skips whatever late reply arrives. Other I/O errors drop it.
func (a *Agent) fail(ctx context.Context, conn net.Conn, what string, err error) error {
	if !errors.Is(err, os.ErrDeadlineExceeded) &&
		!errors.As(err, new(*json.SyntaxError)) && !errors.As(err, new(*json.UnmarshalTypeError)) {
		a.drop(conn)
	}
	return fmt.Errorf("qmp: %s: %w", what, ctxErr(ctx, err))
}

// sync sends 0xFF (resetting the agent's parser) and guest-sync-delimited
// with a random id, then discards input up to the 0xFF-prefixed reply
// carrying that id.
func (a *Agent) sync(conn net.Conn) error {
	id := rand.Int64N(math.MaxInt32)
	buf, err := json.Marshal(request{Execute: "guest-sync-delimited", Arguments: map[string]int64{"id": id}})
	if err != nil {
		return err
	}
	if _, err := conn.Write(append(append([]byte{0xFF}, buf...), '\n')); err != nil {
		return err
	}
	for {
		if err := a.skipPast(0xFF); err != nil {
			return err
		}
		line, err := a.r.ReadBytes('\n')
		if err != nil {
			return err
		}
		var reply struct {
			Return *int64 `json:"return"`
		}
		if json.Unmarshal(line, &reply) == nil && reply.Return != nil && *reply.Return == id {
			return nil
		}
		a.opts.log.Debug("qmp: agent: skipping stale sync reply", "path", a.path, "line", string(line))
	}
}

func (a *Agent) skipPast(delim byte) error {
	for {
		b, err := a.r.ReadByte()
		if err != nil {
			return err
		}
		if b == delim {
			return nil
		}
	}
}

// readReply reads the next non-blank reply line.
func (a *Agent) readReply() (agentReply, error) {
	for {
		line, err := a.r.ReadBytes('\n')
		if err != nil {
			return agentReply{}, err
		}
		line = bytes.TrimSpace(bytes.TrimLeft(line, "\xff"))
		if len(line) == 0 {
			continue
		}
		var reply agentReply
		if err := json.Unmarshal(line, &reply); err != nil {
			return agentReply{}, err
		}
		return reply, nil
	}
}

// isHangup reports whether the peer went away, as when the guest powers off.
func isHangup(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}
