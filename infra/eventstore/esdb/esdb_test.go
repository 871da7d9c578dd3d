package esdb_test

import (
	"os"
	"testing"

	"herald/infra/eventstore"
	"herald/infra/eventstore/esdb"
	"herald/infra/eventstore/eventstoretest"
)

// TestContract runs the event log contract suite against the EventStoreDB
// server HERALD_ESDB_URL names, e.g. esdb://127.0.0.1:2113?tls=false. The
// server is shared: the suite writes under stream prefixes of its own.
func TestContract(t *testing.T) {
	url := os.Getenv("HERALD_ESDB_URL")
	if url == "" {
		t.Skip("HERALD_ESDB_URL not set: EventStoreDB contract suite skipped (no server on this machine)")
	}
	openStore := func(t *testing.T) eventstore.Store {
		t.Helper()
		s, err := esdb.Open(t.Context(), url)
		if err != nil {
			t.Fatalf("open %s: %v", url, err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	open := func(t *testing.T) (eventstore.Store, func(*testing.T) eventstore.Store) {
		return openStore(t), openStore
	}
	eventstoretest.RunWithOptions(t, open, eventstoretest.Options{SparsePositions: true})
}
