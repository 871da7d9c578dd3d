package commands_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"herald/commands"
)

func itemsJSON(items ...string) string {
	return `{"items":[` + strings.Join(items, ",") + `]}`
}

func validItem(i int) string {
	return fmt.Sprintf(`{"recipient":{"id":"user-%d","email":"u%d@example.com"},"channels":["email"],"content":{"body":"hello %d"}}`, i, i, i)
}

func TestBatchThousandItemsLand(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 1000
	items := make([]string, n)
	for i := range items {
		items[i] = validItem(i)
	}
	r := e.postJSON(t, "/v1/notifications/batch", itemsJSON(items...))
	mustStatus(t, r, http.StatusAccepted)
	if r.Body["accepted"] != float64(n) || r.Body["rejected"] != float64(0) {
		t.Fatalf("accepted %v rejected %v", r.Body["accepted"], r.Body["rejected"])
	}
	list := r.Body["items"].([]any)
	seen := map[string]bool{}
	for i, it := range list {
		m := it.(map[string]any)
		id, _ := m["id"].(string)
		if m["index"] != float64(i) || id == "" || m["status"] != "in_progress" || m["created"] != true || seen[id] {
			t.Fatalf("item %d: %v", i, m)
		}
		seen[id] = true
	}
	// Every item is its own stream of request + plan, and nothing else
	// was written.
	if got := e.head(t); got != 2*n {
		t.Errorf("log head %d, want %d events", got, 2*n)
	}
	for _, i := range []int{0, 499, 999} {
		id := list[i].(map[string]any)["id"].(string)
		if got := e.eventTypes(t, id); !slices.Equal(got, []string{"NotificationRequested", "DeliveryPlanned"}) {
			t.Errorf("item %d stream %v", i, got)
		}
	}
}

func TestBatchMixedItems(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Notifications sent before the batch, to collide with.
	mustStatus(t, e.postJSON(t, "/v1/notifications", validItem(100), "Idempotency-Key", "seen-same"), http.StatusAccepted)
	mustStatus(t, e.postJSON(t, "/v1/notifications", validItem(101), "Idempotency-Key", "seen-other"), http.StatusAccepted)
	before := e.head(t)

	withKey := func(item, key string) string {
		return strings.TrimSuffix(item, "}") + `,"idempotency_key":"` + key + `"}`
	}
	r := e.postJSON(t, "/v1/notifications/batch", itemsJSON(
		validItem(0), // 0 accepted
		`{"recipient":{"email":"not-an-address"},"priority":"urgent"}`,   // 1 invalid fields
		`{"recipient":{"id":"u"},"content":{"body":"x"},"colour":"red"}`, // 2 unknown field
		withKey(validItem(100), "seen-same"),                             // 3 repeat of an earlier send
		withKey(validItem(999), "seen-other"),                            // 4 key reused with another body
		withKey(validItem(7), "dup"),                                     // 5 accepted
		withKey(validItem(7), "dup"),                                     // 6 same key, same body, same batch
		withKey(validItem(8), "dup"),                                     // 7 same key, other body, same batch
		`{"recipient":{"id":5}}`,                                         // 8 wrong type
		`[1,2]`,                                                          // 9 not an object
		withKey(validItem(9), "bad\\u0001key"),                           // 10 unprintable key
	))
	mustStatus(t, r, http.StatusAccepted)
	type want struct {
		created bool
		problem string
		fields  []string
	}
	wants := []want{
		{created: true},
		{problem: "validation-failed", fields: []string{"recipient.email", "content", "priority"}},
		{problem: "unknown-field", fields: []string{"colour"}},
		{},
		{problem: "idempotency-conflict"},
		{created: true},
		{},
		{problem: "idempotency-conflict"},
		{problem: "validation-failed", fields: []string{"recipient.id"}},
		{problem: "validation-failed"},
		{problem: "validation-failed", fields: []string{"idempotency_key"}},
	}
	list := r.Body["items"].([]any)
	if len(list) != len(wants) {
		t.Fatalf("%d items answered, want %d", len(list), len(wants))
	}
	ids := make([]string, len(list))
	for i, w := range wants {
		m := list[i].(map[string]any)
		ids[i], _ = m["id"].(string)
		if m["index"] != float64(i) {
			t.Errorf("item %d has index %v", i, m["index"])
		}
		p, _ := m["problem"].(map[string]any)
		if (w.problem == "" || w.problem == "idempotency-conflict") != (ids[i] != "") {
			t.Errorf("item %d id %q: only items naming a notification carry an id", i, ids[i])
		}
		if w.problem == "" {
			if p != nil || m["created"] != w.created || ids[i] == "" {
				t.Errorf("item %d: %v, want created=%v", i, m, w.created)
			}
			continue
		}
		if p == nil || p["type"] != commands.ProblemTypeBase+w.problem {
			t.Errorf("item %d: %v, want problem %s", i, m, w.problem)
			continue
		}
		var fields []string
		errs, _ := p["errors"].([]any)
		for _, f := range errs {
			fields = append(fields, f.(map[string]any)["field"].(string))
		}
		if w.fields != nil && !slices.Equal(fields, w.fields) {
			t.Errorf("item %d fields %v, want %v", i, fields, w.fields)
		}
	}
	if r.Body["accepted"] != float64(2) || r.Body["repeated"] != float64(2) || r.Body["rejected"] != float64(7) {
		t.Errorf("counts accepted %v repeated %v rejected %v", r.Body["accepted"], r.Body["repeated"], r.Body["rejected"])
	}
	if ids[5] != ids[6] || ids[5] != string(commands.IdempotentNotificationID("tester", "dup")) {
		t.Errorf("same key in one batch gave ids %s and %s", ids[5], ids[6])
	}
	if got := e.head(t) - before; got != 4 {
		t.Errorf("batch appended %d events, want 4 (two notifications)", got)
	}
}

func TestBatchRefusedWhole(t *testing.T) {
	t.Parallel()
	tooMany := make([]string, commands.MaxBatchItems+1)
	for i := range tooMany {
		tooMany[i] = `{}`
	}
	tests := []struct {
		name     string
		body     string
		status   int
		typ      string
		fields   []string
		hasItems bool
	}{
		{"no item valid", itemsJSON(`{"recipient":{}}`, `{"x":1}`), 422, "validation-failed", []string{"items[0].recipient", "items[0].content", "items[1].x"}, true},
		{"empty", `{"items":[]}`, 422, "validation-failed", []string{"items"}, false},
		{"too many", itemsJSON(tooMany...), 422, "too-many-items", nil, false},
		{"unknown top-level field", `{"items":[],"notifications":[]}`, 400, "unknown-field", []string{"notifications"}, false},
		{"not json", `items`, 400, "malformed-json", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			r := e.postJSON(t, "/v1/notifications/batch", tc.body)
			mustProblem(t, r, tc.status, tc.typ)
			if tc.fields != nil && !slices.Equal(r.fields(), tc.fields) {
				t.Errorf("fields %v, want %v", r.fields(), tc.fields)
			}
			if _, ok := r.Body["items"]; ok != tc.hasItems {
				t.Errorf("items listed: %v, want %v", ok, tc.hasItems)
			}
			if e.head(t) != 0 {
				t.Errorf("refused batch appended %d events", e.head(t))
			}
		})
	}
}

func TestBatchIdempotencyKeyRepeatsNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := itemsJSON(validItem(1), validItem(2), validItem(3))
	first := e.postJSON(t, "/v1/notifications/batch", body, "Idempotency-Key", "nightly-2026-11-23")
	mustStatus(t, first, http.StatusAccepted)
	head := e.head(t)
	again := e.postJSON(t, "/v1/notifications/batch", body, "Idempotency-Key", "nightly-2026-11-23")
	mustStatus(t, again, http.StatusOK)
	if again.Body["repeated"] != float64(3) || e.head(t) != head {
		t.Errorf("retried batch: %s; head %d → %d", again.Raw, head, e.head(t))
	}
	for i := range 3 {
		a := first.Body["items"].([]any)[i].(map[string]any)["id"]
		b := again.Body["items"].([]any)[i].(map[string]any)["id"]
		if a != b {
			t.Errorf("item %d: id %v then %v", i, a, b)
		}
	}
}

// A batch whose every item reuses its key with another request is a 409,
// as each item alone would be, not a validation failure.
func TestBatchOfConflictsIsAConflict(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mustStatus(t, e.postJSON(t, "/v1/notifications/batch", itemsJSON(validItem(1), validItem(2)), "Idempotency-Key", "b-1"), http.StatusAccepted)
	head := e.head(t)
	r := e.postJSON(t, "/v1/notifications/batch", itemsJSON(validItem(3), validItem(4)), "Idempotency-Key", "b-1")
	mustProblem(t, r, http.StatusConflict, "idempotency-conflict")
	if items, _ := r.Body["items"].([]any); len(items) != 2 || e.head(t) != head {
		t.Fatalf("conflicting batch: %s; head %d → %d", r.Raw, head, e.head(t))
	}
}

// The longest batch key leaves room for every item's "#<index>".
func TestBatchIdempotencyKeyLeavesRoomForTheIndex(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	long := strings.Repeat("k", commands.MaxIdempotencyKeyLen-len("#9999"))
	mustStatus(t, e.postJSON(t, "/v1/notifications/batch", itemsJSON(validItem(1)), "Idempotency-Key", long), http.StatusAccepted)
	r := e.postJSON(t, "/v1/notifications/batch", itemsJSON(validItem(1)), "Idempotency-Key", long+"k")
	mustProblem(t, r, http.StatusUnprocessableEntity, "validation-failed")
	if !strings.Contains(string(r.Raw), `"field":"Idempotency-Key"`) {
		t.Fatalf("a batch key one too long: %s; want the header named", r.Raw)
	}
}
