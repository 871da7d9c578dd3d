package commands_test

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"herald/commands"
	"herald/infra/eventstore/sqlite"
)

// BenchmarkHTTPSend measures POST /v1/notifications over loopback with
// keep-alive connections against a durable SQLite log.
func BenchmarkHTTPSend(b *testing.B) {
	store, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	h, err := commands.NewHandlers(commands.Deps{Store: store, Clock: time.Now, NewID: commands.UUIDv7})
	if err != nil {
		b.Fatal(err)
	}
	url := newServerB(b, commands.NewHTTP(h, commands.HTTPOptions{})) + "/v1/notifications"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	const body = `{"recipient":{"id":"u1","email":"ada@example.com"},"content":{"body":"hi"}}`
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(url, "application/json", strings.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
