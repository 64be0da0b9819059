package pricing_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"boxoffice/catalog"
	"boxoffice/catalog/catalogtest"
	"boxoffice/pricing"
)

func TestDiffProducts(t *testing.T) {
	a := catalog.Zone{ZoneID: "1", Name: "Platea", Capacity: 100, Price: 2000, Numbered: true}
	b := catalog.Zone{ZoneID: "2", Name: "Anfiteatro", Capacity: 50, Price: 1500}
	c := catalog.Zone{ZoneID: "3", Name: "Palco", Capacity: 4, Price: 9000}
	before := catalogtest.NewPlan("d", "1", catalogtest.Zones(a, b, c))
	still := catalogtest.NewPlan("d", "2", catalogtest.Zones(a))
	old := map[catalog.ID]pricing.Priced{}
	for _, p := range pricing.NewProducts([]catalog.Plan{before, still}) {
		p.Surcharge, p.Price, p.Version = 100, 2100, 3
		old[p.ID] = p
	}
	gone := pricing.NewProducts([]catalog.Plan{before})[1] // b

	// c moves first with less capacity, b goes, d comes, a moves last; still's plan is
	// sold out now and starts later.
	c2 := c
	c2.Capacity = 1
	d := catalog.Zone{ZoneID: "4", Name: "Pista", Capacity: 300, Price: 1000}
	after := catalogtest.NewPlan("d", "1", catalogtest.Revision(2), catalogtest.Zones(c2, d, a))
	still2 := still
	still2.SoldOut, still2.StartsAt = true, still.StartsAt.Add(time.Hour)

	got := pricing.DiffProducts([]catalog.Plan{after, still2}, old)
	now := pricing.NewProducts([]catalog.Plan{after, still2})
	want := pricing.ProductDiff{Added: []pricing.Priced{now[1]}, Moved: []pricing.Priced{now[0], now[2], now[3]}, Gone: []catalog.ID{gone.ID}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DiffProducts mismatch (-want +got):\n%s", diff)
	}

	// The same plans again: nothing to write.
	stored := map[catalog.ID]pricing.Priced{}
	for _, p := range now {
		stored[p.ID] = p
	}
	if got := pricing.DiffProducts([]catalog.Plan{after, still2}, stored); !cmp.Equal(pricing.ProductDiff{}, got, cmpopts.EquateEmpty()) {
		t.Errorf("DiffProducts(unchanged) = %+v, want nothing", got)
	}
}

func TestNewProducts(t *testing.T) {
	z := catalog.Zone{ZoneID: "1", Name: "Platea", Capacity: 1, Price: 100}
	p1 := catalogtest.NewPlan("n", "1", catalogtest.Zones(z, z))
	p2 := catalogtest.NewPlan("n", "2", catalogtest.Zones())
	p3 := catalogtest.NewPlan("n", "3")
	got := pricing.NewProducts([]catalog.Plan{p1, p2, p3})
	var want []pricing.Priced
	for _, p := range []catalog.Plan{p1, p3} {
		for i, pr := range pricing.Products(p) {
			want = append(want, pricing.Priced{Product: pr, Position: i})
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("NewProducts mismatch (-want +got):\n%s", diff)
	}
	if slices.ContainsFunc(got, func(p pricing.Priced) bool { return p.Version != 0 || p.Price != 0 }) {
		t.Errorf("NewProducts gave priced products")
	}
}
