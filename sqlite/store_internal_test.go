package sqlite

import (
	"context"
	"testing"
	"time"

	"boxoffice/catalog"
	"boxoffice/catalog/catalogtest"
)

// hangGuard bounds a call that must not wait for another connection's transaction: a
// deadlock fails the test with a message instead of hanging it. It is not a timing
// assertion; the calls take milliseconds.
const hangGuard = 30 * time.Second

func openInternal(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestReadDuringWriteTransaction holds the write transaction open, as a big batch does,
// and reads: the readers neither wait nor see the uncommitted batch.
func TestReadDuringWriteTransaction(t *testing.T) {
	s := openInternal(t)
	a := catalogtest.NewPlan("r", "a")
	v, err := s.UpsertPlans(t.Context(), []catalog.Plan{a})
	if err != nil {
		t.Fatal(err)
	}

	tx, err := s.write.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(t.Context(), `UPDATE catalog_version SET version = version + 100`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(t.Context(), `UPDATE plans SET title = 'uncommitted'`); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), hangGuard)
	defer cancel()
	ch, err := s.ChangedSince(ctx, 0)
	if err != nil {
		t.Fatalf("ChangedSince during a write transaction: %v", err)
	}
	if ch.Version != v || len(ch.Plans) != 1 || ch.Plans[0].Title != a.Title {
		t.Errorf("ChangedSince(0) during a write transaction = %d plans at version %d, want the committed plan at %d", len(ch.Plans), ch.Version, v)
	}
	got, err := s.SearchPlans(ctx, catalog.Window{})
	if err != nil {
		t.Fatalf("SearchPlans during a write transaction: %v", err)
	}
	if len(got) != 1 || got[0].Title != a.Title {
		t.Errorf("SearchPlans during a write transaction = %v, want the committed plan", got)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping during a write transaction: %v", err)
	}
}

// TestWriteDuringReadTransaction holds a read snapshot open, as a long ChangedSince does,
// and writes: the writer does not wait, and the reader keeps its snapshot.
func TestWriteDuringReadTransaction(t *testing.T) {
	s := openInternal(t)
	v1, err := s.UpsertPlans(t.Context(), []catalog.Plan{catalogtest.NewPlan("w", "a")})
	if err != nil {
		t.Fatal(err)
	}

	rtx, err := s.read.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rtx.Rollback()
	if got, err := readVersion(t.Context(), rtx); err != nil || got != v1 {
		t.Fatalf("version in the read transaction = %d, %v; want %d", got, err, v1)
	}

	ctx, cancel := context.WithTimeout(t.Context(), hangGuard)
	defer cancel()
	v2, err := s.UpsertPlans(ctx, []catalog.Plan{catalogtest.NewPlan("w", "b")})
	if err != nil {
		t.Fatalf("UpsertPlans during a read transaction: %v", err)
	}
	if got, err := readVersion(t.Context(), rtx); err != nil || got != v1 {
		t.Errorf("version in the read transaction after a write = %d, %v; want %d, its snapshot", got, err, v1)
	}
	if got, err := readVersion(t.Context(), s.read); err != nil || got != v2 {
		t.Errorf("version read afresh = %d, %v; want %d", got, err, v2)
	}
}
