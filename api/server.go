package api

import (
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/limiquantix/limiquantix/netdev"
	"github.com/limiquantix/limiquantix/storage"
	"github.com/limiquantix/limiquantix/store"
	"github.com/limiquantix/limiquantix/vmm"
	"github.com/limiquantix/limiquantix/webui"
)

// Limits on request bodies.
const (
	maxJSONBody   = 1 << 20  // every JSON request; user-data has its own, smaller cap
	maxImageBytes = 64 << 30 // one uploaded disk
	maxBootBytes  = 512 << 20
)

// Server is lqd's HTTP API.
type Server struct {
	vms      *vmm.Manager
	images   *storage.Library
	pool     *storage.DirPool
	db       *store.DB
	log      *slog.Logger
	version  string
	auth     *Auth
	hostname string
	rt       *realtime        // consoles, event stream, metrics (realtime.go)
	volumes  *storage.Volumes // pools and volumes (storage.go)
	nets     *netdev.Service  // networks and security groups (networks.go)
}

// Config wires a Server.
type Config struct {
	VMs     *vmm.Manager
	Images  *storage.Library
	Pool    *storage.DirPool
	Volumes *storage.Volumes // nil: no pool, volume, snapshot, clone or backup routes work
	Nets    *netdev.Service  // nil: no networking
	DB      *store.DB
	Log     *slog.Logger
	Version string
	// ConsoleOrigins are origins, besides the API's own, whose pages may open console
	// WebSockets: host patterns as in path.Match ("ui.example.com", "*.example.com"), or
	// scheme://host patterns.
	ConsoleOrigins []string
}

// NewServer returns the API server.
func NewServer(c Config) *Server {
	if c.Log == nil {
		c.Log = slog.Default()
	}
	hostname, _ := os.Hostname()
	return &Server{vms: c.VMs, images: c.Images, pool: c.Pool, db: c.DB, log: c.Log, version: c.Version, auth: NewAuth(c.DB), hostname: hostname,
		rt: newRealtime(c, hostname), volumes: c.Volumes, nets: c.Nets}
}

// Handler returns the routes.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.RequestID, s.accessLog, middleware.Recoverer)
	ui := webui.Handler()
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		// Paths outside the API are the embedded web UI's (index.html for its routes).
		if p := r.URL.Path; p != "/api" && !strings.HasPrefix(p, "/api/") {
			ui.ServeHTTP(w, r)
			return
		}
		writeError(w, r, errorf(http.StatusNotFound, CodeNotFound, "no such path: %s", r.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, errorf(http.StatusMethodNotAllowed, CodeBadRequest, "method %s not allowed on %s", r.Method, r.URL.Path))
	})
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.With(s.auth.Middleware).Get("/metrics", s.serveMetrics)
	r.Route("/api/v1", func(r chi.Router) {
		r.Get("/openapi.json", serveOpenAPI)
		s.consoleRoutes(r) // WebSockets: a ticket, not a bearer token (browsers cannot set headers)
		r.Group(func(r chi.Router) {
			r.Use(s.auth.Middleware)
			r.Get("/host", s.getHost)
			r.Get("/vms", s.listVMs)
			r.Post("/vms", s.createVM)
			r.Get("/vms/{name}", s.getVM)
			r.Patch("/vms/{name}", s.updateVM)
			r.Delete("/vms/{name}", s.deleteVM)
			r.Post("/vms/{name}/{action:start|stop|shutdown|reboot|reset|pause|resume}", s.vmAction)
			r.Get("/vms/{name}/console-log", s.consoleLog)
			r.Post("/vms/{name}/exec", s.exec)
			r.Get("/images", s.listImages)
			r.Post("/images", s.importImage)
			r.Get("/images/{name}", s.getImage)
			r.Delete("/images/{name}", s.deleteImage)
			r.Get("/events", s.listEvents)
			s.networkRoutes(r)
			s.realtimeRoutes(r)
			s.storageRoutes(r)
		})
	})
	return r
}

// accessLog writes one structured line per request.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		start := time.Now()
		next.ServeHTTP(ww, r)
		s.log.Info("http", "method", r.Method, "path", r.URL.Path, "status", ww.Status(),
			"bytes", ww.BytesWritten(), "dur_ms", time.Since(start).Milliseconds(),
			"req_id", middleware.GetReqID(r.Context()), "remote", r.RemoteAddr)
	})
}

func (s *Server) getHost(w http.ResponseWriter, r *http.Request) {
	h := s.vms.Host()
	out := Host{Name: s.hostname, Version: s.version, QEMUVersion: h.QEMUVersion, Accel: h.Accel, AccelReason: h.AccelReason,
		CPUs: h.CPUs, MemoryBytes: h.MemoryBytes}
	for _, vm := range s.vms.List() {
		out.VMs++
		if vm.State == vmm.StateRunning {
			out.VMsRunning++
		}
	}
	if s.pool != nil {
		c, err := s.pool.Capacity()
		if err != nil {
			writeError(w, r, err)
			return
		}
		out.Pools = append(out.Pools, Pool{Name: s.pool.Name(), Path: s.pool.Path(), Total: c.Total, Used: c.Used, Free: c.Free})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	if wantsEventStream(r) {
		s.streamEvents(w, r)
		return
	}
	after, err := queryInt(r, "after", 0, 0, 1<<62)
	if err != nil {
		writeError(w, r, err)
		return
	}
	limit, err := queryInt(r, "limit", 100, 1, 1000)
	if err != nil {
		writeError(w, r, err)
		return
	}
	evs, err := s.db.Events(r.Context(), after, int(limit))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeList(w, evs, toAPIEvent)
}

func toAPIEvent(e store.Event) Event {
	return Event{ID: e.ID, Time: e.Time, Type: e.Type, VM: e.VM, Message: e.Message}
}
