// Package problem is what the command APIs share of their answers: the type
// of a catalogue entry (RFC 9457 problem types under one base URI) and the
// writing of JSON and problem+json bodies. Each API keeps its own catalogue
// (titles name its resource), its own problem document (extension fields)
// and its own mapping of errors to entries.
package problem

import (
	"net/http"

	fastjson "github.com/segmentio/encoding/json" // see domain/codec.go
)

// Base prefixes every problem type URI; all command APIs use it, so a
// client branches on the same names everywhere.
const Base = "https://herald.dev/problems/"

// Type is one entry of a catalogue of problems. Name, and hence the type
// URI, is stable: clients branch on it.
type Type struct {
	Name   string
	Status int
	Title  string
}

// URI returns the problem's type URI.
func (t Type) URI() string { return Base + t.Name }

// internal is the body written when a document cannot be encoded.
var internal = Type{"internal", http.StatusInternalServerError, "Internal error"}

// Write answers with the problem document doc as application/problem+json
// with status; a 503 says to retry after a second.
func Write(w http.ResponseWriter, status int, doc any) {
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	write(w, "application/problem+json", status, doc)
}

// WriteJSON answers with v as application/json with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	write(w, "application/json", status, v)
}

func write(w http.ResponseWriter, contentType string, status int, v any) {
	body, err := fastjson.Marshal(v)
	if err != nil {
		contentType, status = "application/problem+json", http.StatusInternalServerError
		body = []byte(`{"type":"` + internal.URI() + `","title":"` + internal.Title + `","status":500}`)
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
