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
