//go:build modernc

package sqlite

import (
	"net/url"
	"strconv"
	"time"

	_ "modernc.org/sqlite" // pure-Go SQLite driver
)

const driverName = "sqlite"

func dsn(path string, readOnly bool, busy time.Duration) string {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(max(busy.Milliseconds(), 1), 10)+")")
	q.Add("_pragma", "cache_size(-65536)")
	q.Add("_pragma", "mmap_size("+mmapSize+")")
	if readOnly {
		q.Add("_pragma", "query_only(true)")
	}
	return "file:" + path + "?" + q.Encode()
}
