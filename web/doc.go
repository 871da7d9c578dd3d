// Package web is the dashboard, embedded into the binary. For now it is one
// page that shows whether the server is healthy and ready; the views of
// notifications and analytics come with the read API.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Handler serves the dashboard's files.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded folder is part of the build
	}
	return http.FileServerFS(sub)
}

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 document of the whole HTTP API. A test in
// cmd/herald keeps it true: every route the server serves is in it, and
// every path in it is served.
func OpenAPI() []byte { return openAPI }
