//go:build modernc

package sqlite

import (
	"errors"
	"net/url"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

const driverName = "sqlite"

func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "cache_size(-65536)")
	q.Add("_pragma", "mmap_size("+mmapSize+")")
	if readOnly {
		q.Add("_pragma", "query_only(true)")
	}
	return "file:" + path + "?" + q.Encode()
}

// isUniqueViolation reports whether err is SQLite refusing a row that a
// UNIQUE index already holds.
func isUniqueViolation(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}
