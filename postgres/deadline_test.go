package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"boxoffice/catalog"
	"boxoffice/testenv"
)

// TestDeadlineCancelsTheQuery checks that a read whose caller's deadline passes returns,
// and that its query stops on the server too: a query blocked on a lock would
// otherwise wait there for as long as the lock is held.
func TestDeadlineCancelsTheQuery(t *testing.T) {
	base := newSchema(t)
	app := fmt.Sprintf("deadline_%016x", rand.Uint64())
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	s := openStore(t, u.String(), "", nil)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}

	// Another session holds the plans table, so a search waits for it.
	locker, err := pgx.Connect(t.Context(), base)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close(context.Background())
	tx, err := locker.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(t.Context(), "LOCK TABLE plans IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err = s.SearchPlans(ctx, catalog.Window{})
	if err == nil {
		t.Fatal("SearchPlans() on a locked table past its deadline = nil error")
	}
	if ctx.Err() == nil {
		t.Fatalf("SearchPlans() = %v before its deadline", err)
	}
	// The lock is still held: only a cancelled query is gone from the server.
	active := func() int64 {
		return queryInt(t, base, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'`, app)
	}
	testenv.Poll(t, "the search to stop on the server while the lock is held", func() bool { return active() == 0 })

	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SearchPlans(t.Context(), catalog.Window{}); err != nil {
		t.Errorf("SearchPlans() after the lock = %v", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Error("a later search inherits the deadline")
	}
}
