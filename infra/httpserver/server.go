package httpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// Check is a readiness probe of a dependency; a non-nil error makes /readyz
// answer 503 naming the check.
type Check struct {
	Name  string
	Probe func(ctx context.Context) error
}

// Server serves an HTTP API until its context ends, then shuts down
// gracefully. The zero value is not usable; use New.
type Server struct {
	router   chi.Router
	log      *slog.Logger
	checks   []Check
	ready    atomic.Bool
	draining atomic.Bool
}

// New returns a server whose router already has request ids, panic recovery,
// the given middleware (outermost first) and the /healthz and /readyz
// endpoints. Mount API routes on Router().
func New(log *slog.Logger, mw []func(http.Handler) http.Handler, checks ...Check) *Server {
	s := &Server{router: chi.NewRouter(), log: log, checks: checks}
	s.router.Use(middleware.RequestID, middleware.Recoverer, decodedPaths)
	s.router.Use(mw...)
	s.router.Get("/healthz", s.healthz)
	s.router.Get("/readyz", s.readyz)
	return s
}

// decodedPaths makes every router downstream (the API packages route again
// on their own) match on the decoded path. chi matches on the escaped form
// when the client escaped more than it had to, so /v1/recipients/ann%40x
// handed its handler the ID "ann%40x", not "ann@x". An escaped "/" becomes
// a separator: no ID may hold one.
func decodedPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawPath != "" {
			u := *r.URL
			u.RawPath = ""
			r2 := *r
			r2.URL = &u
			r = &r2
		}
		next.ServeHTTP(w, r)
	})
}

// Router returns the router to mount routes on before Serve.
func (s *Server) Router() chi.Router { return s.router }

// healthz answers 200 while the process is alive and serving, even when a
// dependency is down: restarting the process would not fix that.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{"status":"ok"}`)
}

// readyz answers 200 once the server is listening with every dependency
// answering, and 503 while starting, draining on shutdown, or degraded.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if !s.ready.Load() || s.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"status":"unavailable","reason":"starting or shutting down"}`)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	for _, c := range s.checks {
		if err := c.Probe(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, `{"status":"unavailable","check":%q}`, c.Name)
			return
		}
	}
	fmt.Fprint(w, `{"status":"ready"}`)
}

// Serve listens on addr and serves until ctx ends; then it stops accepting
// connections, lets requests in progress finish within shutdownTimeout, and
// returns. started, if not nil, receives the bound address once listening
// (useful with port 0).
func (s *Server) Serve(ctx context.Context, addr string, shutdownTimeout time.Duration, started chan<- net.Addr) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           s.router,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.ready.Store(true)
	s.log.Info("listening", "addr", ln.Addr().String())
	if started != nil {
		started <- ln.Addr()
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.draining.Store(true)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
