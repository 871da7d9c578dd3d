package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	viewsqlite "herald/infra/viewstore/sqlite"
	"herald/infra/viewstore/viewstoretest"
)

func TestLeaseOneHolderAtATime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "views.db")
	a, err := viewsqlite.Open(ctx, path, viewsqlite.Options{History: &viewstoretest.Recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := viewsqlite.Open(ctx, path, viewsqlite.Options{History: &viewstoretest.Recorder{}}) // a second process on the same file
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const ttl = 300 * time.Millisecond
	if ok, err := a.AcquireLease(ctx, "projections", "A", ttl); !ok || err != nil {
		t.Fatalf("A first: %v %v", ok, err)
	}
	if ok, err := b.AcquireLease(ctx, "projections", "B", ttl); ok || err != nil {
		t.Fatalf("B while A holds it: %v %v, want refused", ok, err)
	}
	if ok, _ := a.AcquireLease(ctx, "projections", "A", ttl); !ok {
		t.Fatal("A could not renew its own lease")
	}
	if ok, _ := b.AcquireLease(ctx, "other", "B", ttl); !ok {
		t.Fatal("leases of other names are independent")
	}
	// A dies (stops renewing): B takes over once the lease expires.
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok, err := b.AcquireLease(ctx, "projections", "B", ttl)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("B never took over the expired lease")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ok, _ := a.AcquireLease(ctx, "projections", "A", ttl); ok {
		t.Fatal("A renewed a lease B holds")
	}
	// Release hands it over without waiting for expiry.
	if err := b.ReleaseLease(ctx, "projections", "B"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := a.AcquireLease(ctx, "projections", "A", ttl); !ok {
		t.Fatal("A could not take a released lease")
	}
}
