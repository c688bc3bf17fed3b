package api

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/limiquantix/limiquantix/store"
	"github.com/limiquantix/limiquantix/vmm"
)

// realtime holds what the live endpoints share: console tickets and WebSockets
// (console.go, ticket.go), server-sent events (events_sse.go) and metrics (metrics.go).
type realtime struct {
	consoles  consoles
	tickets   *ticketStore
	origins   []string // extra origins allowed to open console WebSockets
	tokens    func(ctx context.Context, t store.Token) error
	stats     statsSource
	metrics   http.Handler
	heartbeat time.Duration // between comment lines on an idle event stream

	// shutdown ends when an http.Server that serves these endpoints shuts down. Shutdown
	// waits for handlers (an event stream never returns by itself) and ignores hijacked
	// connections (WebSockets), so long-lived responses must be told to end.
	shutdown context.Context
	stop     context.CancelFunc
	mu       sync.Mutex
	hooked   map[*http.Server]bool
}

func newRealtime(c Config, hostname string) *realtime {
	rt := &realtime{
		consoles:  vmmConsoles{c.VMs},
		tickets:   newTicketStore(systemClock{}, ticketTTL),
		origins:   c.ConsoleOrigins,
		tokens:    tokenStillValid(c.DB),
		stats:     c.VMs,
		heartbeat: sseHeartbeat,
		hooked:    map[*http.Server]bool{},
	}
	rt.shutdown, rt.stop = context.WithCancel(context.Background())
	var pools []capacityPool
	if c.Pool != nil {
		pools = append(pools, c.Pool)
	}
	rt.metrics = newMetricsHandler(c.VMs, pools, hostname, c.Log)
	return rt
}

// hookShutdown makes sure rt.shutdown ends when the http.Server serving r shuts down.
func (rt *realtime) hookShutdown(r *http.Request) {
	srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server)
	if !ok {
		return
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if !rt.hooked[srv] {
		rt.hooked[srv] = true
		srv.RegisterOnShutdown(rt.stop)
	}
}

// live returns the context of a long-lived response: it ends with the request, or when the
// http.Server serving it shuts down.
func (rt *realtime) live(r *http.Request) (context.Context, context.CancelFunc) {
	rt.hookShutdown(r)
	ctx, cancel := context.WithCancel(r.Context())
	unhook := context.AfterFunc(rt.shutdown, cancel)
	return ctx, func() {
		unhook()
		cancel()
	}
}

// realtimeRoutes registers the live endpoints that take a bearer token; r is under /api/v1.
func (s *Server) realtimeRoutes(r chi.Router) {
	r.Post("/vms/{name}/console-ticket", s.consoleTicket)
	r.Get("/vms/{name}/stats", s.vmStats)
}

// consoleRoutes registers the console WebSockets; r is under /api/v1, outside the bearer
// group: browsers cannot set headers on a WebSocket, so these take a ticket instead.
func (s *Server) consoleRoutes(r chi.Router) {
	r.Get("/vms/{name}/console", s.vncConsole)
	r.Get("/vms/{name}/serial", s.serialConsole)
}

// consoles is what the console endpoints need from vmm.
type consoles interface {
	UUID(name string) (string, error)
	VNCSocket(name string) (string, error)
	SerialAttach(ctx context.Context, name string) (serialSession, error)
}

// serialSession is one viewer of a serial console (a *vmm.SerialSession).
type serialSession interface {
	Read(ctx context.Context) ([]byte, error)
	Write(ctx context.Context, p []byte) error
	Close()
}

type vmmConsoles struct{ m *vmm.Manager }

func (c vmmConsoles) UUID(name string) (string, error) {
	v, err := c.m.Get(name)
	return v.UUID, err
}

func (c vmmConsoles) VNCSocket(name string) (string, error) {
	vnc, _, err := c.m.ConsolePaths(name)
	return vnc, err
}

func (c vmmConsoles) SerialAttach(ctx context.Context, name string) (serialSession, error) {
	s, err := c.m.SerialAttach(ctx, name)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// tokenStillValid checks, when a ticket is used, that the token that asked for it has not
// been revoked since.
func tokenStillValid(db *store.DB) func(ctx context.Context, t store.Token) error {
	return func(ctx context.Context, t store.Token) error {
		got, err := db.TokenByHash(ctx, t.Hash)
		if errors.Is(err, store.ErrNotFound) || (err == nil && got.ID != t.ID) {
			return errorf(http.StatusUnauthorized, CodeUnauthorized, "the token that asked for this console ticket is no longer valid")
		}
		return err
	}
}
