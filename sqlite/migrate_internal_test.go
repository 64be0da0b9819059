package sqlite

import (
	"io/fs"
	"slices"
	"strconv"
	"testing"

	"github.com/pressly/goose/v3"

	"boxoffice/catalog"
	"boxoffice/catalog/catalogtest"
	"boxoffice/pricing"
)

// TestMigrationKeysProductsByPlan takes a store with priced products down to the schema
// before migration 0008 (products keyed by their id, plans by theirs) and up again: the
// plans, their products in zone order and the products' prices come back as they were,
// and so do the plans' seqs, which the products are keyed by.
func TestMigrationKeysProductsByPlan(t *testing.T) {
	s := openInternal(t)
	var plans []catalog.Plan
	for i := range 30 {
		p := catalogtest.NewPlan("keyed", strconv.Itoa(i), catalogtest.Zones(
			catalog.Zone{ZoneID: "1", Name: "Platea", Capacity: 10, Price: catalog.Money(1000 + i)},
			catalog.Zone{ZoneID: "2", Name: "Anfiteatro", Capacity: 5, Price: 700, Numbered: true},
		))
		if i%3 == 1 {
			catalogtest.Offline(&p)
		}
		plans = append(plans, p)
	}
	if _, err := s.UpsertPlans(t.Context(), plans); err != nil {
		t.Fatal(err)
	}
	products := func() []pricing.Priced {
		t.Helper()
		ps, err := s.ProductsAfter(t.Context(), catalog.ID{}, 1000)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	seqs := func() []string {
		t.Helper()
		var out []string
		rows, err := s.read.QueryContext(t.Context(), `SELECT seq, hex(id) FROM plans ORDER BY seq`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var seq, id string
			if err := rows.Scan(&seq, &id); err != nil {
				t.Fatal(err)
			}
			out = append(out, seq+" "+id)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	priced := products()[3]
	priced.Surcharge, priced.Price, priced.Version = 250, 1234, 2
	if err := s.SavePrices(t.Context(), []pricing.Priced{priced}); err != nil {
		t.Fatal(err)
	}
	want := products()
	if len(want) != 40 { // 20 online plans, two zones each
		t.Fatalf("%d products, want 40", len(want))
	}
	event, err := s.EventProducts(t.Context(), plans[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	keys := seqs()

	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, s.write, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(t.Context(), 7); err != nil {
		t.Fatalf("down to 7: %v", err)
	}
	if _, err := p.Up(t.Context()); err != nil {
		t.Fatalf("up: %v", err)
	}
	if got := products(); !slices.Equal(got, want) {
		t.Errorf("after down and up, products = %v, want %v", got, want)
	}
	if got := seqs(); !slices.Equal(got, keys) {
		t.Errorf("after down and up, plans (seq id) = %v, want %v", got, keys)
	}
	got, err := s.EventProducts(t.Context(), plans[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, event) {
		t.Errorf("after down and up, EventProducts = %v, want %v", got, event)
	}
}
