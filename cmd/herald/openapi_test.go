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
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
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
	views, err := viewsqlite.Open(ctx, filepath.Join(dir, "views.db"), viewsqlite.Options{History: events})
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
		if route == "/*" || route == "/v1/*" { // the dashboard's static files, the API's answer to unknown paths
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

// TestOpenAPISecurityMatchesServer keeps the document's security true
// against a running server: every operation declared public (an empty
// security requirement) answers a request without a key with something
// other than 401, and every operation declared protected answers it 401
// (another scheme offered instead, like the SMS callback's signature, does
// not make an operation public).
// A protected operation names the one scope its bearer key needs (OpenAPI
// 3.1 lets a non-OAuth scheme list role names), the scope its summary
// states; a key with every other scope gets 403 and a key with that scope
// alone gets past the authenticator. The requests are harmless: ids that do
// not exist and bodies that are not JSON.
func TestOpenAPISecurityMatchesServer(t *testing.T) {
	t.Parallel()
	scopes := []config.Scope{config.ScopeSend, config.ScopeRead, config.ScopeAdmin}
	only := map[config.Scope]string{}   // a key with this scope alone
	allBut := map[config.Scope]string{} // a key with every scope but this one
	var keys []string
	for _, sc := range scopes {
		only[sc] = "only-" + string(sc) + "-0123456789"
		allBut[sc] = "all-but-" + string(sc) + "-0123456789"
		var others []string
		for _, o := range scopes {
			if o != sc {
				others = append(others, string(o))
			}
		}
		keys = append(keys, "only-"+string(sc)+":"+only[sc]+":"+string(sc),
			"all-but-"+string(sc)+":"+allBut[sc]+":"+strings.Join(others, "+"))
	}
	base, stop, err := startInProcess(context.Background(), serveArgs(t.TempDir(), keys...), io.Discard)
	if err != nil {
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
	})

	type requirement map[string][]string
	var doc struct {
		Security []requirement                         `json:"security"`
		Paths    map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(web.OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	param := regexp.MustCompile(`\{[^}]+\}`)
	// status answers method on path (its parameters replaced by an id that
	// names nothing) with key, reading no more than the status line and
	// headers: the live feed's stream would not end.
	status := func(method, path, key string) int {
		t.Helper()
		url := base + param.ReplaceAllString(path, "does-not-exist")
		var body io.Reader
		if method == "POST" || method == "PUT" || method == "PATCH" {
			body = strings.NewReader(`{"not json`)
		}
		req, err := http.NewRequest(method, url, body)
		if err != nil {
			t.Fatal(err)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	summaryScope := regexp.MustCompile(`\(scope (\w+)\)`)
	var public, protected int
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			method = strings.ToUpper(method)
			switch method {
			case "GET", "POST", "PUT", "PATCH", "DELETE":
			default:
				continue
			}
			var op struct {
				Summary  string         `json:"summary"`
				Security *[]requirement `json:"security"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			security := doc.Security
			if op.Security != nil {
				security = *op.Security
			}
			isPublic := len(security) == 0
			var roles []string
			for _, req := range security {
				if len(req) == 0 {
					isPublic = true
				}
				roles = append(roles, req["bearer"]...)
			}

			name := method + " " + path
			if isPublic {
				public++
				if code := status(method, path, ""); code == http.StatusUnauthorized {
					t.Errorf("%s is declared public (security []) but answers 401 without a key", name)
				}
				continue
			}
			protected++
			if code := status(method, path, ""); code != http.StatusUnauthorized {
				t.Errorf("%s is declared to need a key but answers %d without one", name, code)
			}
			if len(roles) != 1 || !slices.Contains(scopes, config.Scope(roles[0])) {
				t.Errorf("%s: bearer requirement names scopes %q, want one of send, read, admin", name, roles)
				continue
			}
			sc := config.Scope(roles[0])
			if m := summaryScope.FindStringSubmatch(op.Summary); m == nil || m[1] != string(sc) {
				t.Errorf("%s: summary %q disagrees with its security, scope %s", name, op.Summary, sc)
			}
			if code := status(method, path, allBut[sc]); code != http.StatusForbidden {
				t.Errorf("%s is declared to need scope %s, but a key without it gets %d, want 403", name, sc, code)
			}
			if code := status(method, path, only[sc]); code == http.StatusUnauthorized || code == http.StatusForbidden {
				t.Errorf("%s is declared to need scope %s, but a key with it alone gets %d", name, sc, code)
			}
		}
	}
	if public < 4 || protected < 40 {
		t.Fatalf("walked %d public and %d protected operations; the walk is broken", public, protected)
	}
}
