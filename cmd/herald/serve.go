package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"herald/adapters/dispatcher"
	"herald/adapters/fanout"
	"herald/adapters/recurring"
	"herald/adapters/scheduler"
	"herald/commands"
	"herald/commands/groups"
	"herald/commands/problem"
	"herald/commands/recipients"
	"herald/commands/schedules"
	"herald/commands/templates"
	"herald/infra/config"
	"herald/infra/eventstore"
	"herald/infra/httpserver"
	"herald/infra/metrics"
	"herald/projections"
	"herald/readapi"
	"herald/readapi/livefeed"
	"herald/web"
)

// role is one job a process can do; `herald serve` does them all.
type role uint8

const (
	roleAPI      role = 1 << iota // the HTTP API, the live feed
	roleProject                   // the projection runner
	roleDeliver                   // the dispatcher
	roleSchedule                  // releasing scheduled notifications
	allRoles     = roleAPI | roleProject | roleDeliver | roleSchedule
)

// serve runs every role in one process until ctx ends (SIGINT/SIGTERM),
// then shuts down in order: stop intake, let requests in progress finish,
// close the stores. started, if not nil, gets the listening address.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string, started chan<- net.Addr) error {
	return runRoles(ctx, allRoles, args, stdout, stderr, getenv, started)
}

// runRoles runs the given roles against the configured engines. Every
// process serves /healthz, /readyz and /metrics on --addr; only the api
// role mounts the API and the dashboard.
func runRoles(ctx context.Context, roles role, args []string, stdout, stderr io.Writer, getenv func(string) string, started chan<- net.Addr) error {
	cfg, err := config.ParseServe(args, getenv)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	if cfg.Delivery.Disabled {
		roles &^= roleDeliver
	}

	if roles&roleAPI != 0 && len(cfg.APIKeys) == 0 {
		key, secret, created, err := developmentKey(cfg)
		if err != nil {
			return err
		}
		cfg.APIKeys = []config.APIKey{key}
		verb := "kept in"
		if created {
			verb = "created in"
		}
		fmt.Fprintf(stdout, "No API keys configured: development key (send+read+admin), %s %s:\n\n    %s\n\n"+
			"Try: curl -H 'Authorization: Bearer %s' http://%s/v1/openapi.json\n\n",
			verb, filepath.Join(cfg.DataDir, devKeyFile), secret, secret, cfg.Addr)
	}

	raw, err := openEventStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	m := metrics.New()
	events := m.InstrumentStore(raw)
	views, closeViews, err := openViews(ctx, cfg, events, log)
	if err != nil {
		return errors.Join(err, raw.Close())
	}
	closeStores := func() error { return errors.Join(closeViews(), raw.Close()) }
	// Every process has a runner: the api role reports projection lag
	// from it even when another process runs the projections.
	runner, err := projections.NewRunner(events, views, projections.RunnerOptions{})
	if err != nil {
		return errors.Join(err, closeStores())
	}
	registerProjectionMetrics(context.WithoutCancel(ctx), m, runner)

	clock := func() time.Time { return time.Now().UTC() }
	tmpl, err := templates.NewService(templates.Deps{Store: events, Clock: clock, NewID: commands.UUIDv7})
	if err != nil {
		return errors.Join(err, closeStores())
	}
	secret, err := unsubscribeSecret(cfg.DataDir)
	if err != nil {
		return errors.Join(err, closeStores())
	}
	people, err := recipients.NewService(recipients.Deps{
		Store: events, Clock: clock, NewID: commands.UUIDv7, UnsubscribeSecret: secret, PublicURL: cfg.Delivery.PublicURL,
	})
	if err != nil {
		return errors.Join(err, closeStores())
	}
	groupSvc, err := groups.NewService(groups.Deps{Store: events, Clock: clock, NewID: commands.UUIDv7, Templates: tmpl})
	if err != nil {
		return errors.Join(err, closeStores())
	}
	scheduleSvc, err := schedules.NewService(schedules.Deps{Store: events, Clock: clock, NewID: commands.UUIDv7, Templates: tmpl})
	if err != nil {
		return errors.Join(err, closeStores())
	}
	// Frequency caps count the sends in the log, so the processes that
	// plan (api, schedule) follow it.
	counter, err := recipients.NewSendCounter(events, recipients.SendCounterOptions{})
	if err != nil {
		return errors.Join(err, closeStores())
	}
	// One set of handlers for the API, the dispatcher and the scheduler:
	// they share the handlers' state cache.
	handlers, err := commands.NewHandlers(commands.Deps{
		Store: events, Clock: clock, NewID: commands.UUIDv7, Templates: tmpl,
		Planner: recipients.NewPlanner(people, counter),
	})
	if err != nil {
		return errors.Join(err, closeStores())
	}

	// Background roles stop after the HTTP server has drained, so that
	// requests answered during shutdown still see fresh views, and
	// attempts in flight record their outcomes.
	var background []func() error
	stopAll := func() error {
		var errs []error
		for i := len(background) - 1; i >= 0; i-- {
			errs = append(errs, background[i]())
		}
		return errors.Join(errs...)
	}
	start := func(run func(ctx context.Context) error, detach bool) {
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if detach {
			rctx, cancel = context.WithCancel(context.WithoutCancel(ctx))
		}
		done := make(chan error, 1)
		go func() { done <- run(rctx) }()
		background = append(background, func() error {
			cancel()
			err := <-done
			if errors.Is(err, context.Canceled) {
				err = nil
			}
			return err
		})
	}
	if roles&(roleAPI|roleSchedule) != 0 {
		start(counter.Run, false)
	}
	if roles&roleProject != 0 {
		// One process at a time writes the views: the others stand by
		// until its lease expires (it died) or it gives the lease up.
		if l, ok := views.(leaser); ok && roles != allRoles {
			start(func(ctx context.Context) error {
				return runWithLease(ctx, l, "projections", 6*time.Second, log, runner.Run)
			}, true)
		} else {
			start(runner.Run, true)
		}
	}
	if roles&roleDeliver != 0 {
		backlog, err := deliveryBacklog(views)
		var d *dispatcher.Dispatcher
		if err == nil {
			d, err = newDispatcher(cfg, events, handlers.Attempts, backlog, tmpl, people, m.Registry, log)
		}
		if err != nil {
			return errors.Join(fmt.Errorf("deliver: %w", err), stopAll(), closeStores())
		}
		start(func(ctx context.Context) error { return d.Run(ctx, nil) }, false)
	}
	if roles&roleSchedule != 0 {
		backlog, err := scheduledBacklog(views)
		if err != nil {
			return errors.Join(fmt.Errorf("schedule: %w", err), stopAll(), closeStores())
		}
		// The schedule role's engines — scheduled releases, group
		// fan-outs, recurring schedules — built afresh for each term.
		schedule := func(ctx context.Context) error {
			sched, err := scheduler.New(scheduler.Config{
				Releaser: handlers.Release, Backlog: backlog, Logger: log,
				// Only requests and holds: a message for each of the
				// other notification events was 3.6% of the CPU of the
				// api benchmarks, for nothing.
				Follow: followNotifications(events, "scheduler", scheduler.Types()...),
			})
			if err != nil {
				return fmt.Errorf("schedule: %w", err)
			}
			// Group fan-outs and recurring schedules create ordinary
			// notifications through the batch handler.
			fan, err := fanout.New(fanout.Config{Store: events, Ledger: groupSvc, Sender: batchSender{handlers.SendBatch}, Logger: log})
			if err != nil {
				return fmt.Errorf("fan-out: %w", err)
			}
			rec, err := recurring.New(recurring.Config{Store: events, Ledger: scheduleSvc, Sender: batchSender{handlers.SendBatch}, Logger: log})
			if err != nil {
				return fmt.Errorf("recurring: %w", err)
			}
			errs := make(chan error, 3)
			go func() { errs <- sched.Run(ctx, nil) }()
			go func() { errs <- fan.Run(ctx, nil) }()
			go func() { errs <- rec.Run(ctx, nil) }()
			return errors.Join(<-errs, <-errs, <-errs)
		}
		// Like the projections, one schedule process works at a time when
		// they run apart: the others stand by on a lease, so a firing or a
		// fan-out chunk is never worked twice at once.
		if l, ok := views.(leaser); ok && roles != allRoles {
			start(func(ctx context.Context) error {
				return runWithLease(ctx, l, "schedule", 6*time.Second, log, schedule)
			}, false)
		} else {
			start(schedule, false)
		}
	}

	srv := httpserver.New(log, []func(http.Handler) http.Handler{m.Middleware}, httpserver.Check{
		Name: "eventstore",
		Probe: func(ctx context.Context) error {
			_, err := events.Head(ctx)
			return err
		},
	})
	if roles&roleAPI != 0 {
		// The live feed follows the log while clients are connected; it
		// ends its streams when shutdown begins, so they do not hold the
		// server's drain up.
		hub, err := livefeed.NewHub(events, livefeed.Options{Logger: log})
		if err != nil {
			return errors.Join(err, stopAll(), closeStores())
		}
		start(hub.Run, false)
		start(tmpl.Run, false) // the template list's index
		// Browsers subscribe with the key the dispatcher signs with.
		vapidPublic, _, err := vapidKeys(cfg.DataDir)
		if err != nil {
			return errors.Join(fmt.Errorf("webpush: %w", err), stopAll(), closeStores())
		}
		newApp(cfg, events, handlers, tmpl, people, groupSvc, scheduleSvc, views, runner, hub, m, vapidPublic, time.Now, log).mount(srv.Router())
	} else {
		srv.Router().Method("GET", "/metrics", m.Handler())
	}
	serveErr := srv.Serve(ctx, cfg.Addr, cfg.ShutdownTimeout, started)
	if err := errors.Join(serveErr, stopAll(), closeStores()); err != nil {
		return err
	}
	log.Info("stopped cleanly")
	return nil
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		panic(fmt.Sprintf("log level %q passed validation: %v", level, err))
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// app is the HTTP surface wired to its handlers.
type app struct {
	groups      http.Handler
	schedules   http.Handler
	recipients  http.Handler
	templates   http.Handler
	smsReceipts http.Handler
	auth        *httpserver.Authenticator
	commands    http.Handler
	reads       http.Handler
	live        http.Handler
	vapidKey    http.Handler
	metrics     *metrics.Metrics
}

func newApp(cfg config.Serve, events eventstore.Store, handlers commands.Handlers, tmpl *templates.Service, people *recipients.Service,
	groupSvc *groups.Service, scheduleSvc *schedules.Service, views viewEngine, runner *projections.Runner, hub *livefeed.Hub, m *metrics.Metrics,
	vapidPublic string, clock func() time.Time, log *slog.Logger) *app {
	auth := httpserver.NewAuthenticator(cfg.APIKeys, httpserver.Deny)
	cmds := commands.NewHTTP(handlers, commands.HTTPOptions{Actor: keyName})
	isAdmin := func(r *http.Request) bool {
		k, ok := httpserver.KeyFrom(r.Context())
		return ok && k.Has(config.ScopeAdmin)
	}
	return &app{
		groups:      groups.NewHTTP(groupSvc, groups.Options{Actor: keyName, IsAdmin: isAdmin}),
		schedules:   schedules.NewHTTP(scheduleSvc, schedules.Options{Actor: keyName, IsAdmin: isAdmin}),
		recipients:  recipients.NewHTTP(people, recipients.Options{Actor: keyName}),
		templates:   templates.NewHTTP(tmpl, templates.Options{Actor: keyName}),
		smsReceipts: smsReceipts(cfg.Delivery, handlers.RecordReceipt, auth.Require(config.ScopeSend)(ownRouting(cmds)), log),
		live:        livefeed.Handler(hub),
		vapidKey:    vapidPublicKey(vapidPublic),
		auth:        auth,
		commands:    cmds,
		reads: readapi.NewHTTP(readapi.Views{
			Notifications: views, Search: views, Inbox: views, Analytics: views,
			Audit: events, Projections: runner,
		}, readapi.Options{Now: clock}),
		metrics: m,
	}
}

// keyName is the actor of a request: the name of the API key that
// authenticated it.
func keyName(r *http.Request) string {
	k, _ := httpserver.KeyFrom(r.Context())
	return k.Name
}

// vapidPublicKey answers GET /v1/webpush/vapid-public-key with
// {"public_key": "<base64url>"}: the server's VAPID public key, the
// applicationServerKey a page passes to PushManager.subscribe before it
// hands the subscription to POST /v1/recipients/{id}/webpush-subscriptions.
// A push service refuses pushes to a subscription made with another key.
func vapidPublicKey(public string) http.Handler {
	body, _ := json.Marshal(struct {
		PublicKey string `json:"public_key"`
	}{public})
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
}

// route is one endpoint of the public API with the scope it needs ("" for
// none). The list is the single source the server mounts and the OpenAPI
// test checks.
type route struct {
	method, pattern string
	scope           config.Scope
	handler         http.Handler
}

// direct marks a handler served by this router's match (it reads its URL
// parameters from it) rather than by an API package's own router.
type direct struct{ http.Handler }

func (a *app) routes() []route {
	openapi := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(web.OpenAPI())
	})
	send, read, admin := config.ScopeSend, config.ScopeRead, config.ScopeAdmin
	return []route{
		{"GET", "/metrics", "", a.metrics.Handler()},
		{"GET", "/v1/openapi.json", "", openapi},
		{"POST", "/v1/notifications", send, a.commands},
		{"POST", "/v1/notifications/batch", send, a.commands},
		{"POST", "/v1/notifications/{id}/cancel", send, a.commands},
		{"POST", "/v1/notifications/{id}/resend", send, a.commands},
		{"POST", "/v1/receipts/{channel}", send, a.commands},
		{"POST", "/v1/receipts/sms", "", direct{a.smsReceipts}}, // signed provider callbacks; else a key
		{"POST", "/v1/recipients/{id}/inbox/{notificationId}/read", send, a.commands},
		{"GET", "/v1/notifications", read, a.reads},
		{"GET", "/v1/notifications/{id}", read, a.reads},
		{"GET", "/v1/notifications/{id}/events", read, a.reads},
		{"GET", "/v1/recipients/{id}/inbox", read, a.reads},
		{"GET", "/v1/recipients/{id}/stream", read, direct{a.live}},
		{"PUT", "/v1/recipients/{id}", send, a.recipients},
		{"GET", "/v1/recipients/{id}", read, a.recipients},
		{"PUT", "/v1/recipients/{id}/preferences", send, a.recipients},
		{"GET", "/v1/recipients/{id}/preferences", read, a.recipients},
		{"POST", "/v1/recipients/{id}/webpush-subscriptions", send, a.recipients},
		{"GET", "/v1/webpush/vapid-public-key", read, a.vapidKey},
		{"GET", "/v1/unsubscribe", "", a.recipients},  // the link in a message: signed, no key
		{"POST", "/v1/unsubscribe", "", a.recipients}, // the page's button and one-click unsubscribe
		{"POST", "/v1/groups", send, a.groups},
		{"GET", "/v1/groups/{id}", read, a.groups},
		{"POST", "/v1/groups/{id}/members", send, a.groups},
		{"POST", "/v1/groups/{id}/members/import", send, a.groups},
		{"GET", "/v1/groups/{id}/members", read, a.groups},
		{"POST", "/v1/groups/{id}/send", send, a.groups},
		{"GET", "/v1/batches/{id}", read, a.groups},
		{"POST", "/v1/batches/{id}/approve", admin, a.groups},
		{"POST", "/v1/batches/{id}/reject", admin, a.groups},
		{"POST", "/v1/schedules", send, a.schedules},
		{"GET", "/v1/schedules/{id}", read, a.schedules},
		{"POST", "/v1/schedules/{id}/pause", send, a.schedules},
		{"POST", "/v1/schedules/{id}/resume", send, a.schedules},
		{"DELETE", "/v1/schedules/{id}", send, a.schedules},
		{"POST", "/v1/templates", admin, a.templates},
		{"GET", "/v1/templates", read, a.templates},
		{"GET", "/v1/templates/{id}", read, a.templates},
		{"PUT", "/v1/templates/{id}", admin, a.templates},
		{"GET", "/v1/templates/{id}/versions/{version}", read, a.templates},
		{"POST", "/v1/templates/{id}/archive", admin, a.templates},
		{"POST", "/v1/templates/{id}/preview", send, a.templates},
		{"GET", "/v1/analytics/deliveries", read, a.reads},
		{"GET", "/v1/analytics/latency", read, a.reads},
		{"GET", "/v1/analytics/failures", read, a.reads},
		{"GET", "/v1/admin/projections", admin, a.reads},
		{"POST", "/v1/admin/projections/{name}/rebuild", admin, a.reads},
	}
}

func (a *app) mount(r chi.Router) {
	for _, rt := range a.routes() {
		h := rt.handler
		if _, ok := h.(direct); !ok {
			h = ownRouting(h)
		}
		if rt.scope != "" {
			h = a.auth.Require(rt.scope)(h)
		}
		r.Method(rt.method, rt.pattern, h)
	}
	r.Handle("/v1/*", unrouted(r))
	r.Handle("/*", web.Handler())
}

// unrouted answers a request under /v1 that no route takes, as the API
// answers everything: a problem+json 405 with Allow when the path has
// routes for other methods, a 404 when it has none. (The dashboard's
// catch-all answered them in plain text.)
func unrouted(routes chi.Routes) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			rctx := chi.NewRouteContext()
			if routes.Match(rctx, m, r.URL.Path) && rctx.RoutePattern() != "/v1/*" {
				allow = append(allow, m)
			}
		}
		p, detail := commands.ProblemNotFound, "no API route has this path"
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			p, detail = commands.ProblemMethodNotAllowed, fmt.Sprintf("%s is not served on this path; it takes %s", r.Method, strings.Join(allow, ", "))
		}
		problem.Write(w, p.Status, commands.Problem{Type: p.URI(), Title: p.Title, Status: p.Status, Detail: detail})
	})
}

// ownRouting lets an API package's own router match the request afresh. The
// outer router keeps its route context (and so its route pattern for
// metrics) instead of having the inner router append to it.
func ownRouting(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), chi.RouteCtxKey, chi.NewRouteContext())))
	})
}

// registerProjectionMetrics exposes each projection's lag, read from the
// runner at scrape time (a scrape has no context of its own: base stands in,
// bounded by a second).
func registerProjectionMetrics(base context.Context, m *metrics.Metrics, runner *projections.Runner) {
	lag := func(name string, seconds bool) func() float64 {
		return func() float64 {
			ctx, cancel := context.WithTimeout(base, time.Second)
			defer cancel()
			sts, err := runner.Status(ctx)
			if err != nil {
				return -1
			}
			for _, st := range sts {
				if st.Name == name {
					if seconds {
						return st.LagSeconds
					}
					return float64(st.LagEvents)
				}
			}
			return -1
		}
	}
	for _, name := range projections.Names() {
		labels := map[string]string{"projection": name}
		m.GaugeFunc("herald_projection_lag_events", "Events in the log the projection has not applied yet.", labels, lag(name, false))
		m.GaugeFunc("herald_projection_lag_seconds", "Age of the oldest event the projection has not applied yet.", labels, lag(name, true))
	}
}
