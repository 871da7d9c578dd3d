package httpserver

import (
	"encoding/json"
	"net/http"
)

// Deny writes the refusals of Authenticator as application/problem+json
// (RFC 9457) with the stable types unauthorized (401) and forbidden (403).
func Deny(w http.ResponseWriter, _ *http.Request, status int, detail string) {
	name, title := "unauthorized", "Missing or unknown API key"
	if status == http.StatusForbidden {
		name, title = "forbidden", "API key lacks the scope"
	}
	Problem(w, status, name, title, detail)
}

// Problem writes an application/problem+json answer of the stable type
// https://herald.dev/problems/<name>.
func Problem(w http.ResponseWriter, status int, name, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type": "https://herald.dev/problems/" + name, "title": title, "status": status, "detail": detail,
	})
}
