package main

import (
	"context"
	"encoding/json"
	"herald/commands"
	"herald/commands/groups"
	"herald/commands/recipients"
	"herald/commands/schedules"
	"herald/commands/templates"
	"herald/readapi/livefeed"
	"log/slog"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"herald/infra/config"
	"herald/infra/eventstore/sqlite"
	"herald/infra/httpserver"
	"herald/infra/metrics"
	viewsqlite "herald/infra/viewstore/sqlite"
	"herald/projections"
	"herald/web"
)

// TestOpenAPIMatchesRouter keeps /v1/openapi.json true: every route the
// server's router serves is documented, and every documented operation is
// served.
func TestOpenAPIMatchesRouter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	events, err := sqlite.Open(ctx, filepath.Join(dir, "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	views, err := viewsqlite.Open(ctx, filepath.Join(dir, "views.db"), viewsqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer views.Close()
	runner, err := projections.NewRunner(events, views, projections.RunnerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	handlers, err := commands.NewHandlers(commands.Deps{Store: events, Clock: time.Now, NewID: commands.UUIDv7})
	if err != nil {
		t.Fatal(err)
	}
	hub, err := livefeed.NewHub(events, livefeed.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := templates.NewService(templates.Deps{Store: events, Clock: time.Now, NewID: commands.UUIDv7})
	if err != nil {
		t.Fatal(err)
	}
	people, err := recipients.NewService(recipients.Deps{Store: events, Clock: time.Now, NewID: commands.UUIDv7})
	if err != nil {
		t.Fatal(err)
	}
	groupSvc, err := groups.NewService(groups.Deps{Store: events, Clock: time.Now, NewID: commands.UUIDv7})
	if err != nil {
		t.Fatal(err)
	}
	scheduleSvc, err := schedules.NewService(schedules.Deps{Store: events, Clock: time.Now, NewID: commands.UUIDv7})
	if err != nil {
		t.Fatal(err)
	}
	a := newApp(config.Serve{}, events, handlers, tmpl, people, groupSvc, scheduleSvc, views, runner, hub, metrics.New(), "", time.Now, slog.New(slog.DiscardHandler))
	srv := httpserver.New(slog.New(slog.DiscardHandler), nil)
	a.mount(srv.Router())

	served := map[string]bool{}
	err = chi.Walk(srv.Router(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if route == "/*" { // the dashboard's static files
			return nil
		}
		served[strings.ToUpper(method)+" "+route] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(web.OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			switch method {
			case "get", "post", "put", "patch", "delete":
				documented[strings.ToUpper(method)+" "+path] = true
			}
		}
	}
	var missing, extra []string
	for r := range served {
		if !documented[r] {
			missing = append(missing, r)
		}
	}
	for r := range documented {
		if !served[r] {
			extra = append(extra, r)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("openapi.json and the router disagree\nserved, not documented: %v\ndocumented, not served: %v", missing, extra)
	}
	if len(served) < 19 {
		t.Fatalf("only %d routes walked; the walk is broken", len(served))
	}
}
