package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"boxoffice/catalog"
	"boxoffice/catalog/catalogtest"
	"boxoffice/pricing"
	"boxoffice/pricing/pricingtest"
	"boxoffice/sqlite"
	"boxoffice/task"
	"boxoffice/task/tasktest"
)

func TestPricingStore(t *testing.T) {
	pricingtest.TestStore(t, func(t *testing.T) pricingtest.Stores { return openStore(t, t.TempDir()) })
}

func TestTaskRecords(t *testing.T) {
	tasktest.TestRecords(t, func(t *testing.T) task.Records { return openStore(t, t.TempDir()) })
	tasktest.TestOutbox(t, func(t *testing.T) tasktest.Outbox { return openStore(t, t.TempDir()) })
}

// TestMigrateBackfillsProducts checks that Migrate gives products to the ever-online
// plans of a database that has none for them, as one from before products existed,
// and leaves alone the ones that have products; and that it reads no plan for that
// once the backfill is done (pending_chores).
func TestMigrateBackfillsProducts(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	const n = 1200 // more than one backfill chunk
	var plans []catalog.Plan
	for i := range n {
		p := catalogtest.NewPlan("fill", strconv.Itoa(i), catalogtest.Zones(
			catalog.Zone{ZoneID: "1", Name: "Platea", Capacity: 10, Price: catalog.Money(1000 + i)},
			catalog.Zone{ZoneID: "1", Name: "Platea", Capacity: 10, Price: catalog.Money(1000 + i)},
		))
		switch i % 4 {
		case 1:
			catalogtest.Offline(&p)
		case 2:
			p.Zones = nil
		}
		plans = append(plans, p)
	}
	if _, err := s.UpsertPlans(t.Context(), plans); err != nil {
		t.Fatal(err)
	}
	want := allProducts(t, s)
	if len(want) != n { // half the plans, two zones each
		t.Fatalf("%d products before the backfill, want %d", len(want), n)
	}
	priced := want[0]
	priced.Surcharge, priced.Price, priced.Version = 100, 999, 4
	if err := s.SavePrices(t.Context(), []pricing.Priced{priced}); err != nil {
		t.Fatal(err)
	}
	want[0] = priced

	// Drop the products of every plan but the priced product's, as if they predated them.
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.ExecContext(t.Context(), `DELETE FROM products WHERE plan_seq <> (SELECT seq FROM plans WHERE id = ?)`, priced.PlanID[:])
	if err != nil {
		t.Fatal(err)
	}
	if gone, _ := res.RowsAffected(); gone != int64(len(want)-2) {
		t.Fatalf("deleted %d products, want %d", gone, len(want)-2)
	}
	// A database upgraded from before products has the backfill pending (migration 0011):
	// without it, Migrate leaves the plans alone.
	pending := func() int {
		var n int
		if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM pending_chores`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := pending(); n != 0 {
		t.Fatalf("%d chores pending after the first Migrate, want 0", n)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if got := allProducts(t, s); len(got) != 2 {
		t.Fatalf("Migrate with no chore pending: %d products, want the 2 left", len(got))
	}
	if _, err := db.ExecContext(t.Context(), `INSERT INTO pending_chores (name) VALUES ('backfill_products')`); err != nil {
		t.Fatal(err)
	}

	for range 2 {
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		if got := allProducts(t, s); !slices.Equal(got, want) {
			t.Errorf("after Migrate, %d products, want %d as before they were dropped", len(got), len(want))
		}
		if n := pending(); n != 0 {
			t.Errorf("after Migrate, %d chores pending, want 0", n)
		}
	}
}

func allProducts(t *testing.T, s *sqlite.Store) []pricing.Priced {
	t.Helper()
	var all []pricing.Priced
	var after catalog.ID
	for {
		batch, err := s.ProductsAfter(t.Context(), after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(batch) == 0 {
			return all
		}
		all = append(all, batch...)
		after = batch[len(batch)-1].ID
	}
}
