package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"boxoffice/catalog"
	"boxoffice/catalog/catalogtest"
	"boxoffice/pricing"
	"boxoffice/pricing/pricingtest"
	"boxoffice/task"
	"boxoffice/task/tasktest"
)

// TestPricingStore runs the pricing.Store contract, each sub-test on a schema of its own
// and without a replica: the suite reads its writes at once.
func TestPricingStore(t *testing.T) {
	pricingtest.TestStore(t, func(t *testing.T) pricingtest.Stores {
		s, _ := migrated(t)
		return s
	})
}

// TestTaskRecords runs the task.Records contract, each sub-test on a schema of its own
// and without a replica.
func TestTaskRecords(t *testing.T) {
	tasktest.TestRecords(t, func(t *testing.T) task.Records {
		s, _ := migrated(t)
		return s
	})
	tasktest.TestOutbox(t, func(t *testing.T) tasktest.Outbox {
		s, _ := migrated(t)
		return s
	})
}

// TestPricingReadsReplica writes through the primary and polls the reads that may go
// to the real replica (Product, Market, EventProducts, Task) until the replica serves
// them with the writes.
func TestPricingReadsReplica(t *testing.T) {
	t.Parallel()
	primaryURL := newSchema(t)
	w := openStore(t, primaryURL, "", nil)
	if err := w.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, primaryURL, replicated(t, primaryURL), nil)

	p := catalogtest.NewPlan("rep", "1")
	if _, err := s.UpsertPlans(t.Context(), []catalog.Plan{p}); err != nil {
		t.Fatal(err)
	}
	want := pricing.Priced{Product: pricing.Products(p)[0]}
	want.Surcharge, want.Price, want.Version = 500, 2100, 1
	if err := s.SavePrices(t.Context(), []pricing.Priced{want}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddMarketEvent(t.Context(), pricing.MarketEvent{Location: "madrid", Demand: bp(300)}); err != nil {
		t.Fatal(err)
	}
	run, err := s.BeginRun(t.Context(), catalogtest.Epoch)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CompleteRun(t.Context(), run, catalogtest.Epoch); err != nil {
		t.Fatal(err)
	}
	rec, err := s.CreateTask(t.Context(), pricing.Kind, "api", catalogtest.Epoch)
	if err != nil {
		t.Fatal(err)
	}
	rec.State, rec.Attempts = task.Running, 1
	if err := s.SaveTask(t.Context(), rec, 0); err != nil {
		t.Fatal(err)
	}

	wantMarket := pricing.Market{Location: "madrid", Multiplier: pricing.One, Demand: 300}
	reads := []struct {
		name string
		read func() (string, error) // the mismatch, if any
	}{
		{"Product", func() (string, error) {
			got, err := s.Product(t.Context(), want.ID, false)
			return cmp.Diff(want, got), err
		}},
		{"EventProducts", func() (string, error) {
			got, err := s.EventProducts(t.Context(), p.ID)
			return cmp.Diff([]pricing.Priced{want}, got), err
		}},
		{"Market", func() (string, error) {
			m, v, err := s.Market(t.Context(), "madrid", false)
			return cmp.Diff(marketAt{wantMarket, 1}, marketAt{m, v}), err
		}},
		{"Task", func() (string, error) {
			got, err := s.Task(t.Context(), rec.ID)
			return cmp.Diff(rec, got), err
		}},
	}
	for _, r := range reads {
		poll(t, func() (bool, string) {
			var diff string
			by, err := servedBy(s, func() (err error) {
				diff, err = r.read()
				return err
			})
			if err != nil && !errors.Is(err, pricing.ErrNotFound) {
				t.Fatalf("%s: %v", r.name, err)
			}
			return err == nil && by == "replica" && diff == "",
				fmt.Sprintf("%s served by the %s: %v, mismatch (-want +got):\n%s", r.name, by, err, diff)
		})
	}
}

// TestTaskReadsPrimaryWhenReplicaLags reads a task the replica does not have, as one
// that has not replayed it yet: the store's replica is another schema, migrated and
// empty. Task finds it on the primary; other reads stay on the replica.
func TestTaskReadsPrimaryWhenReplicaLags(t *testing.T) {
	t.Parallel()
	_, primaryURL := migrated(t)
	_, laggingURL := migrated(t)
	s := openStore(t, primaryURL, laggingURL, nil)

	rec, err := s.CreateTask(t.Context(), pricing.Kind, "api", catalogtest.Epoch)
	if err != nil {
		t.Fatal(err)
	}
	var got task.Record
	by, err := servedBy(s, func() (err error) {
		got, err = s.Task(t.Context(), rec.ID)
		return err
	})
	if err != nil || by != "primary" {
		t.Fatalf("Task(%s) missing on the replica: served by the %s, %v; want the primary, nil", rec.ID, by, err)
	}
	if diff := cmp.Diff(rec, got); diff != "" {
		t.Errorf("Task(%s) mismatch (-want +got):\n%s", rec.ID, diff)
	}
	if _, err := s.Task(t.Context(), "7b1e4a52-0c8d-4a61-9e27-55d410a9c37f"); !errors.Is(err, task.ErrNotFound) {
		t.Errorf("Task(unknown) = %v, want task.ErrNotFound", err)
	}
	if by, err := servedBy(s, func() error { _, _, err := s.Market(t.Context(), "madrid", false); return err }); err != nil || by != "replica" {
		t.Errorf("Market(primary false): served by the %s, %v; want the replica, nil", by, err)
	}
}

// TestMigrateBackfillsProducts checks that Migrate gives products to the ever-online
// plans stored without them, as before migration 0002, over more than one page, and
// that it does nothing once they have them; and that it reads no plan for that once the
// backfill is done (pending_chores).
func TestMigrateBackfillsProducts(t *testing.T) {
	t.Parallel()
	s, u := migrated(t)
	const n = 5001 // two pages
	batch := benchBatch("bf", 0, n, 1, "Backfill")
	batch = append(batch,
		catalogtest.NewPlan("bf", "offline", catalogtest.Offline),
		catalogtest.NewPlan("bf", "zoneless", catalogtest.Zones()))
	if _, err := s.UpsertPlans(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	priced := pricing.Priced{Product: pricing.Products(batch[0])[0], Surcharge: 1, Price: 2, Version: 3}
	if err := s.SavePrices(t.Context(), []pricing.Priced{priced}); err != nil {
		t.Fatal(err)
	}
	schema := schemaOf(t, u)
	count := func() int64 { return queryInt(t, u, `SELECT count(*) FROM `+schema+`.products`) }
	want := count()
	if want != 3*n {
		t.Fatalf("%d products after upserting %d plans of 3 zones, want %d", want, n, 3*n)
	}
	// Keep one plan's products, priced, as a Migrate interrupted after its first page would.
	execSQL(t, u, `DELETE FROM `+schema+`.products WHERE plan_id <> $1`, [16]byte(batch[0].ID))
	// A store upgraded from before products has the backfill pending (migration 0011):
	// without it, Migrate reads no plan for it.
	pending := func() int64 { return queryInt(t, u, `SELECT count(*) FROM `+schema+`.pending_chores`) }
	if n := pending(); n != 0 {
		t.Fatalf("%d chores pending after the first Migrate, want 0", n)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != 3 {
		t.Fatalf("Migrate with no chore pending: %d products, want the 3 left", got)
	}
	execSQL(t, u, `INSERT INTO `+schema+`.pending_chores (name) VALUES ('backfill_products')`)

	for i := range 2 {
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate #%d: %v", i+1, err)
		}
		if got := count(); got != want {
			t.Errorf("after Migrate #%d: %d products, want %d", i+1, got, want)
		}
		if n := pending(); n != 0 {
			t.Errorf("after Migrate #%d: %d chores pending, want 0", i+1, n)
		}
	}
	for _, i := range []int{0, 1, 4999, 5000} {
		got, err := s.EventProducts(t.Context(), batch[i].ID)
		if err != nil {
			t.Fatal(err)
		}
		want := products(batch[i])
		if i == 0 {
			want[0] = priced
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("EventProducts(plan %d) after the backfill mismatch (-want +got):\n%s", i, diff)
		}
	}
	if _, err := s.EventProducts(t.Context(), batch[n].ID); !errors.Is(err, pricing.ErrNotFound) {
		t.Errorf("EventProducts(never online plan) after the backfill = %v, want pricing.ErrNotFound", err)
	}
}

// TestSavePricesBesideUpserts saves prices while upserts replace the same products:
// neither fails (a deadlock on product rows would fail one), and the products end in
// the order of the last upsert.
func TestSavePricesBesideUpserts(t *testing.T) {
	t.Parallel()
	s, _ := migrated(t)
	const plans, rounds = 300, 10
	if _, err := s.UpsertPlans(t.Context(), benchBatch("race", 0, plans, 1, "Rev 1")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), hangGuard)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() {
		for r := range rounds {
			batch := benchBatch("race", 0, plans, int64(r+2), "Rev "+strconv.Itoa(r+2))
			for i := range batch {
				// Another order of zones each round: every product moves.
				z := batch[i].Zones
				batch[i].Zones = slices.Concat(z[r%3:], z[:r%3])
			}
			if _, err := s.UpsertPlans(ctx, batch); err != nil {
				errs[0] = err
				return
			}
		}
	})
	wg.Go(func() {
		for r := range rounds {
			all, err := s.ProductsAfter(ctx, catalog.ID{}, 3*plans)
			if err != nil {
				errs[1] = err
				return
			}
			// In reverse ID order, as a writer that locks rows the other way round.
			for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
				all[i], all[j] = all[j], all[i]
			}
			for i := range all {
				all[i].Price, all[i].Version = catalog.Money(r), int64(r+1)
			}
			if err := s.SavePrices(ctx, all); err != nil {
				errs[1] = err
				return
			}
		}
	})
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	last := benchBatch("race", 0, 1, rounds+1, "")[0]
	z := last.Zones
	last.Zones = slices.Concat(z[(rounds-1)%3:], z[:(rounds-1)%3])
	got, err := s.EventProducts(t.Context(), last.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := products(last)
	if len(got) != len(want) {
		t.Fatalf("EventProducts(plan 0) = %d products, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].ID != want[i].ID || got[i].Position != i {
			t.Errorf("EventProducts(plan 0)[%d] = product %s at %d, want %s", i, got[i].ID, got[i].Position, want[i].ID)
		}
	}
}

// TestUpsertWritesChangedProductsOnly checks which product rows upserts write, by their
// xmin (the transaction that last wrote the row): none when only a plan's title
// changes, one when one zone's capacity does; and that a plan stored offline that comes
// online with other zones gets the newer zones' products.
func TestUpsertWritesChangedProductsOnly(t *testing.T) {
	t.Parallel()
	s, u := migrated(t)
	schema := schemaOf(t, u)
	zones := []catalog.Zone{
		{ZoneID: "1", Name: "Platea", Capacity: 10, Price: 2000},
		{ZoneID: "2", Name: "Anfiteatro", Capacity: 20, Price: 1000},
	}
	upsert := func(p catalog.Plan) {
		t.Helper()
		if _, err := s.UpsertPlans(t.Context(), []catalog.Plan{p}); err != nil {
			t.Fatal(err)
		}
	}
	writers := func(p catalog.Plan) []int64 {
		t.Helper()
		var xmins []int64
		for _, pr := range pricing.Products(p) {
			xmins = append(xmins, queryInt(t, u, `SELECT xmin::text::bigint FROM `+schema+`.products WHERE id = $1`, [16]byte(pr.ID)))
		}
		return xmins
	}

	p := catalogtest.NewPlan("w", "1", catalogtest.Zones(zones...))
	upsert(p)
	before := writers(p)
	upsert(catalogtest.NewPlan("w", "1", catalogtest.Revision(2), catalogtest.Title("Renamed"), catalogtest.Zones(zones...)))
	if got := writers(p); !slices.Equal(got, before) {
		t.Errorf("after a change of title, products written by %v, want %v: unchanged", got, before)
	}
	zones[1].Capacity = 19
	p = catalogtest.NewPlan("w", "1", catalogtest.Revision(3), catalogtest.Zones(zones...))
	upsert(p)
	if got := writers(p); got[0] != before[0] || got[1] == before[1] {
		t.Errorf("after zone 1's capacity changed, products written by %v, before by %v; want only zone 1's rewritten", got, before)
	}
	if diff := cmp.Diff(products(p), eventProducts(t, s, p.ID)); diff != "" {
		t.Errorf("EventProducts after zone 1's capacity changed mismatch (-want +got):\n%s", diff)
	}

	off := catalogtest.NewPlan("w", "2", catalogtest.Offline, catalogtest.Zones(zones...))
	upsert(off)
	on := catalogtest.NewPlan("w", "2", catalogtest.Revision(2), catalogtest.Zones(zones[1:]...))
	upsert(on)
	if diff := cmp.Diff(products(on), eventProducts(t, s, on.ID)); diff != "" {
		t.Errorf("EventProducts of a plan gone online with other zones mismatch (-want +got):\n%s", diff)
	}
}

func eventProducts(t *testing.T, s pricing.Store, event catalog.ID) []pricing.Priced {
	t.Helper()
	got, err := s.EventProducts(t.Context(), event)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// products returns the products of p as a store returns them before any recalculation.
func products(p catalog.Plan) []pricing.Priced {
	var out []pricing.Priced
	for i, pr := range pricing.Products(p) {
		pr.StartsAt = pr.StartsAt.UTC()
		out = append(out, pricing.Priced{Product: pr, Position: i})
	}
	return out
}

// marketAt is what Market returns.
type marketAt struct {
	Market  pricing.Market
	Version int64
}

func bp(v pricing.BasisPoints) *pricing.BasisPoints { return &v }

// BenchmarkUpsertPlans5000 upserts batches of 5000 plans of three zones each, the size
// of a sync's batches, which keep their products in step: new plans, and newer
// observations that change every plan (every product is replaced).
func BenchmarkUpsertPlans5000(b *testing.B) {
	const size = 5000
	s, _ := migrated(b)
	upsert := func(b *testing.B, batch []catalog.Plan) {
		if _, err := s.UpsertPlans(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("new", func(b *testing.B) {
		first := 0
		for b.Loop() {
			b.StopTimer()
			batch := benchBatch("new", first, size, 1, "New")
			first += size
			b.StartTimer()
			upsert(b, batch)
		}
		b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "plans/s")
	})
	b.Run("changed", func(b *testing.B) {
		upsert(b, benchBatch("changed", 0, size, 1, "Revision 1"))
		rev := int64(1)
		for b.Loop() {
			b.StopTimer()
			rev++
			batch := benchBatch("changed", 0, size, rev, "Revision "+strconv.FormatInt(rev, 10))
			b.StartTimer()
			upsert(b, batch)
		}
		b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "plans/s")
	})
}
