//go:build !modernc

package sqlite

import (
	"net/url"

	_ "github.com/mattn/go-sqlite3" // cgo SQLite driver, chosen by measurement (see doc.go)
)

const driverName = "sqlite3"

func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_busy_timeout", "10000")
	q.Set("_cache_size", "-65536")
	if readOnly {
		q.Set("_query_only", "true")
	}
	return "file:" + path + "?" + q.Encode()
}
