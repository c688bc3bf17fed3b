package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/go-chi/chi/v5"
)

// Browser consoles: a VM's VNC display and its serial console over WebSocket. A page first
// gets a ticket with its bearer token, then opens the WebSocket with ?ticket= (ticket.go).
// VNC is proxied byte for byte to the VM's VNC unix socket (noVNC speaks RFB in binary
// messages, subprotocol "binary"); the serial console goes through vmm's serial hub, so
// any number of viewers can watch one console.

// WebSocket limits.
const (
	wsReadLimit        = 1 << 20 // one message from the browser (VNC clipboard, pasted text)
	wsPingEvery        = 30 * time.Second
	wsPingTimeout      = 10 * time.Second
	consoleDialTimeout = 5 * time.Second
	consoleCopyBuf     = 32 << 10
)

// consoleTicket is POST /api/v1/vms/{name}/console-ticket.
func (s *Server) consoleTicket(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	id, err := s.rt.consoles.UUID(name)
	if err != nil {
		writeError(w, r, err)
		return
	}
	who, _ := Identity(r.Context())
	plain, expires, err := s.rt.tickets.issue(name, id, who)
	if err != nil {
		writeError(w, r, err)
		return
	}
	base := "/api/v1/vms/" + url.PathEscape(name)
	q := "?ticket=" + url.QueryEscape(plain)
	writeJSON(w, http.StatusCreated, ConsoleTicket{Ticket: plain, ExpiresAt: expires.UTC(),
		VNCURL: base + "/console" + q, SerialURL: base + "/serial" + q})
}

// vncConsole is GET /api/v1/vms/{name}/console: a WebSocket to the VM's VNC server.
func (s *Server) vncConsole(w http.ResponseWriter, r *http.Request) {
	name, ok := s.admitConsole(w, r, "vnc")
	if !ok {
		return
	}
	sock, err := s.rt.consoles.VNCSocket(name)
	if err != nil {
		writeError(w, r, err)
		return
	}
	d := net.Dialer{Timeout: consoleDialTimeout}
	conn, err := d.DialContext(r.Context(), "unix", sock)
	if err != nil {
		writeError(w, r, errorf(http.StatusServiceUnavailable, CodeUnavailable, "vm %q: VNC console unreachable: %v", name, err))
		return
	}
	defer conn.Close()
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"binary"}, InsecureSkipVerify: true})
	if err != nil {
		return // Accept has answered the request
	}
	s.rt.hookShutdown(r)
	start := time.Now()
	proxyStream(r.Context(), s.rt.shutdown, ws, conn)
	s.log.Info("console closed", "vm", name, "kind", "vnc", "dur_s", int(time.Since(start).Seconds()))
}

// serialConsole is GET /api/v1/vms/{name}/serial: a WebSocket on the VM's serial console.
func (s *Server) serialConsole(w http.ResponseWriter, r *http.Request) {
	name, ok := s.admitConsole(w, r, "serial")
	if !ok {
		return
	}
	sess, err := s.rt.consoles.SerialAttach(r.Context(), name)
	if err != nil {
		writeError(w, r, err)
		return
	}
	defer sess.Close()
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"binary"}, InsecureSkipVerify: true})
	if err != nil {
		return
	}
	s.rt.hookShutdown(r)
	start := time.Now()
	proxySerial(r.Context(), s.rt.shutdown, ws, sess, s.log.With("vm", name))
	s.log.Info("console closed", "vm", name, "kind", "serial", "dur_s", int(time.Since(start).Seconds()))
}

// admitConsole vets a console WebSocket request before the upgrade: its Origin (403), then
// its ticket (401), which it consumes, and which must be for this very VM and from a token
// that is still valid. Refusals are JSON errors.
func (s *Server) admitConsole(w http.ResponseWriter, r *http.Request, kind string) (string, bool) {
	name := chi.URLParam(r, "name")
	if !s.rt.originAllowed(r) {
		writeError(w, r, errorf(http.StatusForbidden, CodeForbidden, "origin %q may not open consoles on %s", r.Header.Get("Origin"), r.Host))
		return "", false
	}
	t, err := s.rt.tickets.redeem(r.URL.Query().Get("ticket"))
	if err != nil {
		writeError(w, r, errorf(http.StatusUnauthorized, CodeUnauthorized, "%v", err))
		return "", false
	}
	id, err := s.rt.consoles.UUID(name)
	if err != nil {
		writeError(w, r, err)
		return "", false
	}
	if id != t.uuid {
		writeError(w, r, errorf(http.StatusUnauthorized, CodeUnauthorized, "console ticket is for vm %q, not %q", t.vm, name))
		return "", false
	}
	if err := s.rt.tokens(r.Context(), t.token); err != nil {
		writeError(w, r, err)
		return "", false
	}
	s.log.Info("console opened", "vm", name, "kind", kind, "token", t.token.Name, "remote", r.RemoteAddr)
	return name, true
}

// originAllowed accepts requests without an Origin (not from a browser), from the same
// origin (the Origin's host is the request's Host), or from a configured extra origin: a
// host pattern as in path.Match, or a scheme://host pattern. Everything else could be a
// foreign page riding on a user's ticket.
func (rt *realtime) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, p := range rt.origins {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
			return true
		}
	}
	return false
}

// proxyStream copies between a WebSocket and a stream socket until either ends. What the
// socket sends goes out as binary messages; every message in, binary or text, is written
// to the socket. The end of the socket closes the WebSocket with a reason; the end of the
// WebSocket closes the socket.
func proxyStream(ctx, shutdown context.Context, ws *websocket.Conn, conn net.Conn) {
	defer ws.CloseNow()
	defer closeOnEnd(shutdown, ws)()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ws.SetReadLimit(wsReadLimit)
	go keepAlive(ctx, ws)
	inDone := make(chan struct{})
	go func() {
		defer close(inDone)
		defer conn.Close() // the browser went: let the VM's socket go
		buf := make([]byte, consoleCopyBuf)
		for {
			_, msg, err := ws.Reader(ctx)
			if err != nil {
				return
			}
			if _, err := io.CopyBuffer(conn, msg, buf); err != nil {
				ws.Close(websocket.StatusGoingAway, "console socket write failed")
				return
			}
		}
	}()
	buf := make([]byte, consoleCopyBuf)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			if werr := ws.Write(ctx, websocket.MessageBinary, buf[:n]); werr != nil {
				break
			}
		}
		if errors.Is(err, net.ErrClosed) {
			break // closed on our side: the WebSocket ended first
		}
		if err != nil {
			ws.Close(websocket.StatusNormalClosure, "console closed: the VM's console socket ended")
			break
		}
	}
	conn.Close()
	ws.CloseNow()
	<-inDone
}

// proxySerial joins a WebSocket to a serial console session: output as binary messages,
// every message in as input. The end of the console (the VM stopped) closes the WebSocket
// with a reason.
func proxySerial(ctx, shutdown context.Context, ws *websocket.Conn, sess serialSession, log *slog.Logger) {
	defer ws.CloseNow()
	defer closeOnEnd(shutdown, ws)()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ws.SetReadLimit(wsReadLimit)
	go keepAlive(ctx, ws)
	inDone := make(chan struct{})
	go func() {
		defer close(inDone)
		defer cancel() // the browser went: stop waiting for output
		for {
			_, p, err := ws.Read(ctx)
			if err != nil {
				return
			}
			if err := sess.Write(ctx, p); err != nil {
				log.Debug("serial input lost", "bytes", len(p), "err", err)
			}
		}
	}()
	for {
		p, err := sess.Read(ctx)
		switch {
		case errors.Is(err, io.EOF):
			ws.Close(websocket.StatusNormalClosure, "serial console ended: the VM stopped")
		case err != nil && ctx.Err() == nil:
			log.Warn("serial console", "err", err)
			ws.Close(websocket.StatusInternalError, "serial console failed; see lqd's log")
		}
		if err != nil {
			break // or ctx ended: the browser went
		}
		if err := ws.Write(ctx, websocket.MessageBinary, p); err != nil {
			break
		}
	}
	cancel()
	ws.CloseNow()
	<-inDone
}

// closeOnEnd closes the WebSocket with status 1001 and a reason if shutdown ends (lqd is
// shutting down) before the returned function is called.
func closeOnEnd(shutdown context.Context, ws *websocket.Conn) (stop func() bool) {
	return context.AfterFunc(shutdown, func() { ws.Close(websocket.StatusGoingAway, "lqd is shutting down") })
}

// keepAlive pings the browser so that idle consoles survive proxies with idle timeouts, and
// closes a WebSocket whose peer no longer answers.
func keepAlive(ctx context.Context, ws *websocket.Conn) {
	t := time.NewTicker(wsPingEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, wsPingTimeout)
		err := ws.Ping(pctx)
		cancel()
		if err != nil {
			ws.CloseNow()
			return
		}
	}
}
