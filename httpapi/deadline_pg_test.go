package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"boxoffice/postgres"
	"boxoffice/testenv"
)

// TestDeadlineCancelsThePostgreSQLQuery runs a search on PostgreSQL whose plans table
// another session holds locked: the handler answers 504 at its deadline, and its query
// is gone from the server while the lock is still held (cancelled, not abandoned).
func TestDeadlineCancelsThePostgreSQLQuery(t *testing.T) {
	primary, _ := testenv.PostgresSchema(t)
	app := fmt.Sprintf("edge_%016x", rand.Uint64())
	u, err := url.Parse(primary)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	store, err := postgres.Open(t.Context(), u.String(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	locker, err := pgx.Connect(t.Context(), primary)
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

	h := New(fixedCatalog{}, slog.New(slog.DiscardHandler), Config{Store: store, Timeouts: Timeouts{Search: 300 * time.Millisecond}})
	rec := getFrom(h, "/search?starts_at=2021-01-01", "192.0.2.1:1")
	checkJSON(t, rec, http.StatusGatewayTimeout)
	if got := decodeError(t, rec); got.Error.Code != "timeout" {
		t.Errorf("error = %+v, want code timeout", got.Error)
	}
	// The query no longer waits for the lock on the server. (Its backend may show
	// state "active" waiting on ClientRead for a while: it waits for the client's next
	// protocol message, and runs nothing.)
	testenv.Poll(t, "the search's query to stop waiting on the server while the lock is held", func() bool {
		var n int
		err := locker.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = $1 AND state = 'active' AND wait_event_type IS DISTINCT FROM 'Client'`, app).Scan(&n)
		return err == nil && n == 0
	})
	// Once the lock is gone the same pool serves searches again.
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	h2 := New(fixedCatalog{}, slog.New(slog.DiscardHandler), Config{Store: store})
	for _, q := range []string{"starts_at=2021-01-01", "starts_at=2021-01-02", "starts_at=2021-01-03"} {
		if rec := getFrom(h2, "/search?"+q, "192.0.2.1:1"); rec.Code != http.StatusOK {
			t.Errorf("GET /search?%s after the lock = %d %s", q, rec.Code, rec.Body)
		}
	}
}
