// Package pricingtest holds the contract suite that every pricing.Store adapter runs,
// TestStore.
package pricingtest

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"boxoffice/catalog"
	"boxoffice/catalog/catalogtest"
	"boxoffice/pricing"
	"boxoffice/task"
)

// Stores is what an adapter under test provides: the pricing store, the catalog
// store whose plan upserts keep its products in step, and the task records whose
// generations of pricing.Kind are the pricing's triggers.
type Stores interface {
	catalog.Store
	pricing.Store
	task.Records
}

// TestStore runs the pricing.Store contract against an adapter. Every sub-test calls
// open for a store of its own, fresh, empty and migrated, which open closes through
// t.Cleanup; sub-tests run in parallel. Reads follow writes at once, so reads that may
// go to a replica (primary false, EventProducts) must see the store's own writes: open
// a store without a lagging replica.
//
// Besides what pricing.Store documents, the suite holds adapters to these decisions:
//
//   - Products follow the plan's stored values (catalog.Store's rules: the highest
//     revision wins), also when a late or offline observation is what made the plan
//     ever-online. A plan whose stored zones change has its products replaced: new
//     ones unpriced, vanished ones gone, surviving IDs keep Surcharge, Price and
//     Version and take the new position, base price and capacity. SoldOut and
//     StartsAt always come from the plan as stored.
//   - A product never priced has Surcharge 0, Price 0 and Version 0.
//   - EventProducts of an ever-online plan without zones is empty, not ErrNotFound.
//   - Market labels what it returns with the location asked for, whichever market
//     applied: its own, the global one, or Neutral.
//   - Markets change only in BeginRun: AddMarketEvent records, it does not apply. A
//     location's first event starts its market from Neutral, not from the global one.
//     BeginRun counts every event it folds, even one that sets nothing.
//   - State.Requested and Run.Gen count the task generations (task.Records) of
//     pricing.Kind; SaveTask changes neither. The task records themselves are held to
//     task/tasktest.TestRecords.
//   - Times come back in UTC, exact to the microsecond at least.
//   - SavePrices writes Surcharge, Price and Version only, and skips products that no
//     longer exist (a plan upsert replaced them during the run).
//   - CompleteRun never lowers Done or Version; it returns the whole State after it.
func TestStore(t *testing.T, open func(t *testing.T) Stores) {
	run := func(name string, test func(t *testing.T, s Stores)) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, open(t))
		})
	}

	run("EmptyStore", testEmptyStore)
	run("ProductsOfOnlinePlan", testProductsOfOnlinePlan)
	run("RepeatedZones", testRepeatedZones)
	run("NeverOnlineHasNoProducts", testNeverOnline)
	run("LateOnlineUsesStoredValues", testLateOnline)
	run("OfflineLaterKeepsProducts", testOfflineLater)
	run("ZoneChangeReplacesProducts", testZoneChange)
	run("PlanValuesFollow", testPlanValuesFollow)
	run("ZonelessPlan", testZoneless)
	run("LateBatchChangesNothing", testLateBatch)
	run("BatchDuplicates", testBatchDuplicates)
	run("ManyPlans", testManyPlans)

	run("MarketFallbacks", testMarketFallbacks)
	run("MarketVersion", testMarketVersion)
	run("MarketEventIDsIncrease", testEventIDs)
	run("BeginRunFolds", testBeginRunFolds)

	run("RequestedCountsRecalculations", testRequested)
	run("ConcurrentRequested", testConcurrentRequested)

	run("ProductsAfterPages", testProductsAfter)
	run("SavePrices", testSavePrices)
	run("CompleteRun", testCompleteRun)
	run("RunCycle", testRunCycle)
}

var cest = time.FixedZone("CEST", 2*60*60)

func testEmptyStore(t *testing.T, s Stores) {
	if got := productsAfter(t, s, catalog.ID{}, 10); len(got) != 0 {
		t.Errorf("ProductsAfter(zero, 10) = %d products, want none", len(got))
	}
	wantNoEvent(t, s, catalog.NewID("nobody", "1", "1"))
	wantNoProduct(t, s, pricing.NewProductID(catalog.NewID("nobody", "1", "1"), "1", false, "x", 0))
	wantState(t, s, pricing.State{})
	wantMarket(t, s, "madrid", pricing.Neutral("madrid"), 0)
	wantMarket(t, s, pricing.GlobalLocation, pricing.Neutral(pricing.GlobalLocation), 0)
}

func testProductsOfOnlinePlan(t *testing.T, s Stores) {
	p := catalogtest.NewPlan("morancos", "1", catalogtest.At(catalogtest.Epoch.In(cest), time.Hour), catalogtest.Zones(
		catalog.Zone{ZoneID: "186", Name: "Amfiteatre", Capacity: 2, Price: 7500, Numbered: true},
		catalog.Zone{ZoneID: "186", Name: "Amfiteatre", Capacity: 16, Price: 6500},
		catalog.Zone{ZoneID: "186", Name: "Amfiteatre lateral", Capacity: 0, Price: 6000},
		catalog.Zone{ZoneID: "7", Name: `Pista "Ñ" \ 日本`, Capacity: 1 << 40, Price: 1 << 50},
	))
	p.SoldOut = true
	other := catalogtest.NewPlan("other", "1")
	upsert(t, s, p, other)

	want := products(p)
	ids := map[catalog.ID]bool{}
	for _, w := range want {
		ids[w.ID] = true
	}
	if len(ids) != 4 {
		t.Fatalf("pricing.Products gave %d distinct ids for 4 zones", len(ids))
	}
	wantEvent(t, s, p.ID, want)
	for _, w := range want {
		wantProduct(t, s, w)
	}
	all := append(products(p), products(other)...)
	slices.SortFunc(all, compareIDs)
	wantAll(t, s, all)
}

// Zones equal in zone id, name and numbered flag are products of their own, told apart
// by their occurrence.
func testRepeatedZones(t *testing.T, s Stores) {
	z := catalog.Zone{ZoneID: "186", Name: "Amfiteatre", Capacity: 2, Price: 7500, Numbered: true}
	z2 := z
	z2.Capacity, z2.Price = 3, 7000
	p := catalogtest.NewPlan("rep", "1", catalogtest.Zones(z, z2, z))
	upsert(t, s, p)
	want := products(p)
	if want[0].ID == want[1].ID || want[1].ID == want[2].ID || want[0].ID == want[2].ID {
		t.Fatalf("pricing.Products gave repeated ids: %v", want)
	}
	wantEvent(t, s, p.ID, want)
	wantAll(t, s, slices.SortedFunc(slices.Values(want), compareIDs))
}

func testNeverOnline(t *testing.T, s Stores) {
	off := catalogtest.NewPlan("off", "1", catalogtest.Offline)
	off2 := catalogtest.NewPlan("off", "1", catalogtest.Offline, catalogtest.Revision(2), catalogtest.Title("Still off"))
	upsert(t, s, off)
	upsert(t, s, off2)
	wantNoEvent(t, s, off.ID)
	wantNoEvent(t, s, catalog.NewID("unknown", "1", "1"))
	wantNoProduct(t, s, products(off)[0].ID)
	wantAll(t, s, nil)
}

// A late online observation makes the plan ever-online with the values it has stored,
// from a newer offline observation.
func testLateOnline(t *testing.T, s Stores) {
	stored := catalogtest.NewPlan("late", "1", catalogtest.Offline, catalogtest.Revision(2), catalogtest.Zones(
		catalog.Zone{ZoneID: "2", Name: "Anfiteatro", Capacity: 5, Price: 3550},
		catalog.Zone{ZoneID: "3", Name: "Palco", Capacity: 4, Price: 9000, Numbered: true},
	))
	upsert(t, s, stored)
	wantNoEvent(t, s, stored.ID)
	upsert(t, s, catalogtest.NewPlan("late", "1", catalogtest.Revision(1)))
	wantEvent(t, s, stored.ID, products(stored))
	wantAll(t, s, slices.SortedFunc(slices.Values(products(stored)), compareIDs))
}

// Ever-online is sticky: a plan that goes offline keeps products, which follow its
// newer values.
func testOfflineLater(t *testing.T, s Stores) {
	on := catalogtest.NewPlan("sw", "1")
	upsert(t, s, on)
	wantEvent(t, s, on.ID, products(on))

	off := catalogtest.NewPlan("sw", "1", catalogtest.Revision(2), catalogtest.Offline, catalogtest.Zones(
		catalog.Zone{ZoneID: "1", Name: "Platea", Capacity: 40, Price: 2200, Numbered: true},
		catalog.Zone{ZoneID: "2", Name: "Anfiteatro", Capacity: 5, Price: 3550},
	))
	upsert(t, s, off)
	wantEvent(t, s, on.ID, products(off))

	off3 := catalogtest.NewPlan("sw", "1", catalogtest.Revision(3), catalogtest.Offline, catalogtest.Title("Still offline"),
		catalogtest.Zones(off.Zones...))
	upsert(t, s, off3)
	wantEvent(t, s, on.ID, products(off3))
}

func testZoneChange(t *testing.T, s Stores) {
	a := catalog.Zone{ZoneID: "1", Name: "Platea", Capacity: 100, Price: 2000, Numbered: true}
	b := catalog.Zone{ZoneID: "2", Name: "Anfiteatro", Capacity: 50, Price: 1500}
	c := catalog.Zone{ZoneID: "3", Name: "Palco", Capacity: 4, Price: 9000, Numbered: true}
	p1 := catalogtest.NewPlan("zc", "1", catalogtest.Zones(a, b, c))
	upsert(t, s, p1)
	old := products(p1)
	for i := range old {
		old[i].Surcharge = pricing.BasisPoints(100 * (i + 1))
		old[i].Price = catalog.Money(1000 + i)
		old[i].Version = 7
	}
	savePrices(t, s, old...)
	wantEvent(t, s, p1.ID, old)

	// c moves first with less capacity and a new price, b goes, d comes, a moves last.
	c2 := c
	c2.Capacity, c2.Price = 1, 9500
	d := catalog.Zone{ZoneID: "4", Name: "Pista", Capacity: 300, Price: 1000}
	p2 := catalogtest.NewPlan("zc", "1", catalogtest.Revision(2), catalogtest.Zones(c2, d, a))
	upsert(t, s, p2)
	want := products(p2)
	if want[0].ID != old[2].ID || want[2].ID != old[0].ID {
		t.Fatalf("pricing.Products: zone ids changed with the zones' order")
	}
	for _, w := range []struct{ now, before int }{{0, 2}, {2, 0}} {
		want[w.now].Surcharge, want[w.now].Price, want[w.now].Version = old[w.before].Surcharge, old[w.before].Price, old[w.before].Version
	}
	wantEvent(t, s, p2.ID, want)
	for _, w := range want {
		wantProduct(t, s, w)
	}
	wantNoProduct(t, s, old[1].ID)
	wantAll(t, s, slices.SortedFunc(slices.Values(want), compareIDs))
}

// SoldOut and StartsAt come from the plan: a change of them alone shows in its products,
// which keep their prices.
func testPlanValuesFollow(t *testing.T, s Stores) {
	p1 := catalogtest.NewPlan("follow", "1")
	upsert(t, s, p1)
	priced := products(p1)
	priced[0].Surcharge, priced[0].Price, priced[0].Version = 500, 2100, 3
	savePrices(t, s, priced...)

	p2 := catalogtest.NewPlan("follow", "1", catalogtest.Revision(2), catalogtest.At(catalogtest.Epoch.AddDate(0, 0, 3), time.Hour))
	p2.SoldOut = true
	upsert(t, s, p2)
	want := products(p2)
	want[0].Surcharge, want[0].Price, want[0].Version = 500, 2100, 3
	wantEvent(t, s, p2.ID, want)
	wantProduct(t, s, want[0])
}

func testZoneless(t *testing.T, s Stores) {
	p1 := catalogtest.NewPlan("zl", "1", catalogtest.Zones())
	upsert(t, s, p1)
	wantEvent(t, s, p1.ID, nil)

	p2 := catalogtest.NewPlan("zl", "1", catalogtest.Revision(2))
	upsert(t, s, p2)
	wantEvent(t, s, p2.ID, products(p2))

	p3 := catalogtest.NewPlan("zl", "1", catalogtest.Revision(3), catalogtest.Zones())
	upsert(t, s, p3)
	wantEvent(t, s, p3.ID, nil)
	wantNoProduct(t, s, products(p2)[0].ID)
	wantAll(t, s, nil)
}

func testLateBatch(t *testing.T, s Stores) {
	p2 := catalogtest.NewPlan("lb", "1", catalogtest.Revision(2), catalogtest.Zones(
		catalog.Zone{ZoneID: "1", Name: "Platea", Capacity: 10, Price: 2000},
		catalog.Zone{ZoneID: "2", Name: "Anfiteatro", Capacity: 20, Price: 1000},
	))
	upsert(t, s, p2)
	want := products(p2)
	want[1].Surcharge, want[1].Price, want[1].Version = -300, 970, 1
	savePrices(t, s, want[1])

	upsert(t, s, catalogtest.NewPlan("lb", "1", catalogtest.Revision(1), catalogtest.Title("Older"), catalogtest.Zones(
		catalog.Zone{ZoneID: "9", Name: "Other", Capacity: 1, Price: 1},
	)))
	wantEvent(t, s, p2.ID, want)
	upsert(t, s, catalogtest.NewPlan("lb", "1", catalogtest.Revision(2), catalogtest.Title("Same revision"),
		catalogtest.Zones(catalog.Zone{ZoneID: "9", Name: "Other", Capacity: 1, Price: 1})))
	wantEvent(t, s, p2.ID, want)
	upsert(t, s, p2) // a redelivery
	wantEvent(t, s, p2.ID, want)
	wantAll(t, s, slices.SortedFunc(slices.Values(want), compareIDs))
}

// Inside one batch the first occurrence of a plan wins over others of its revision, and
// its products are the ones kept.
func testBatchDuplicates(t *testing.T, s Stores) {
	first := catalogtest.NewPlan("dup", "1", catalogtest.Offline)
	second := catalogtest.NewPlan("dup", "1", catalogtest.Zones(catalog.Zone{ZoneID: "5", Name: "Gallinero", Capacity: 9, Price: 500}))
	upsert(t, s, first, second)
	wantEvent(t, s, first.ID, products(first))
}

func testManyPlans(t *testing.T, s Stores) {
	const n = 1500
	batch := make([]catalog.Plan, n)
	var all []pricing.Priced
	for i := range batch {
		batch[i] = catalogtest.NewPlan("many", strconv.Itoa(i), catalogtest.Zones(
			catalog.Zone{ZoneID: "1", Name: "Platea", Capacity: int64(i), Price: catalog.Money(1000 + i)},
			catalog.Zone{ZoneID: "2", Name: "Anfiteatro", Capacity: 50, Price: 2500},
			catalog.Zone{ZoneID: "2", Name: "Anfiteatro", Capacity: 20, Price: 900, Numbered: true},
		))
		if i%10 == 9 {
			catalogtest.Offline(&batch[i])
		} else {
			all = append(all, products(batch[i])...)
		}
	}
	upsert(t, s, batch...)
	slices.SortFunc(all, compareIDs)
	wantAll(t, s, all)

	// A newer sync changing one plan's zones replaces its products only, and a plan new
	// in it gets its own.
	for i := range batch {
		batch[i].Revision = 2
	}
	batch[700].Zones = batch[700].Zones[1:]
	added := catalogtest.NewPlan("many", strconv.Itoa(n), catalogtest.Revision(2))
	upsert(t, s, slices.Concat(batch, []catalog.Plan{added})...)
	all = slices.DeleteFunc(all, func(p pricing.Priced) bool { return p.PlanID == batch[700].ID })
	all = append(all, products(batch[700])...)
	all = append(all, products(added)...)
	slices.SortFunc(all, compareIDs)
	wantAll(t, s, all)
	wantEvent(t, s, batch[700].ID, products(batch[700]))
}

func testMarketFallbacks(t *testing.T, s Stores) {
	addEvent(t, s, pricing.MarketEvent{Location: pricing.GlobalLocation, Multiplier: bp(12000), Demand: bp(500)})
	// Recorded, not applied yet.
	wantMarket(t, s, "madrid", pricing.Neutral("madrid"), 0)
	wantMarket(t, s, pricing.GlobalLocation, pricing.Neutral(pricing.GlobalLocation), 0)

	beginRun(t, s)
	wantMarket(t, s, "madrid", pricing.Market{Location: "madrid", Multiplier: 12000, Demand: 500}, 0)
	wantMarket(t, s, pricing.GlobalLocation, pricing.Market{Location: pricing.GlobalLocation, Multiplier: 12000, Demand: 500}, 0)

	// A location's own market starts from Neutral, not from the global one.
	addEvent(t, s, pricing.MarketEvent{Location: "madrid", Multiplier: bp(9000)})
	beginRun(t, s)
	wantMarket(t, s, "madrid", pricing.Market{Location: "madrid", Multiplier: 9000, Demand: 0}, 0)
	wantMarket(t, s, "sevilla", pricing.Market{Location: "sevilla", Multiplier: 12000, Demand: 500}, 0)
	wantMarket(t, s, "madrid ", pricing.Market{Location: "madrid ", Multiplier: 12000, Demand: 500}, 0)
}

func testMarketVersion(t *testing.T, s Stores) {
	if _, err := s.CompleteRun(t.Context(), pricing.Run{Gen: 0, Version: 4}, catalogtest.Epoch); err != nil {
		t.Fatalf("CompleteRun: %v", err)
	}
	wantMarket(t, s, "madrid", pricing.Neutral("madrid"), 4)
	addEvent(t, s, pricing.MarketEvent{Location: "madrid", Demand: bp(-200)})
	run := beginRun(t, s)
	if run.Version != 5 {
		t.Errorf("BeginRun().Version = %d, want 5", run.Version)
	}
	wantMarket(t, s, "madrid", pricing.Market{Location: "madrid", Multiplier: pricing.One, Demand: -200}, 4)
	if _, err := s.CompleteRun(t.Context(), run, catalogtest.Epoch); err != nil {
		t.Fatalf("CompleteRun: %v", err)
	}
	wantMarket(t, s, "madrid", pricing.Market{Location: "madrid", Multiplier: pricing.One, Demand: -200}, 5)
	wantMarket(t, s, "lugo", pricing.Neutral("lugo"), 5)
	if st := state(t, s); st.Version != 5 {
		t.Errorf("PricingState().Version = %d, want 5, the version Market reports", st.Version)
	}
}

func testEventIDs(t *testing.T, s Stores) {
	var last int64
	for i := range 5 {
		id := addEvent(t, s, pricing.MarketEvent{ID: 1000, Location: "loc" + strconv.Itoa(i), Demand: bp(100)})
		if id <= last {
			t.Errorf("AddMarketEvent #%d = %d after %d, want a higher id", i, id, last)
		}
		last = id
	}
	wantState(t, s, pricing.State{Events: last})

	const writers = 8
	ids := make([]int64, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			ids[g], errs[g] = s.AddMarketEvent(t.Context(), pricing.MarketEvent{Location: pricing.GlobalLocation, Source: "pubsub"})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent AddMarketEvent: %v", err)
	}
	seen := map[int64]bool{}
	for _, id := range ids {
		if id <= last || seen[id] {
			t.Errorf("concurrent AddMarketEvent gave ids %v after %d, want distinct ids above it", ids, last)
			break
		}
		seen[id] = true
	}
	if st := state(t, s); st.Events != slices.Max(ids) {
		t.Errorf("PricingState().Events = %d, want %d, the last id", st.Events, slices.Max(ids))
	}
}

func testBeginRunFolds(t *testing.T, s Stores) {
	now := catalogtest.Epoch
	events := []pricing.MarketEvent{
		{Location: "madrid", Multiplier: bp(12000), Source: "api"},
		{Location: pricing.GlobalLocation, Demand: bp(-500), Source: "api"},
		{Location: "madrid", Demand: bp(1000), Source: "pubsub"},
		{Location: "madrid", Multiplier: bp(15000), Source: "api"},
		{Location: "bilbao", Demand: bp(200), Source: "api"},
		{Location: pricing.GlobalLocation, Source: "api"}, // sets nothing: asks for a run
		{Location: pricing.GlobalLocation, Multiplier: bp(11000), Source: "api"},
	}
	var last int64
	for _, ev := range events {
		ev.ReceivedAt = now
		last = addEvent(t, s, ev)
	}
	for range 2 {
		createTask(t, s, pricing.Kind, "market-event", now)
	}
	createTask(t, s, "other", "api", now)
	wantState(t, s, pricing.State{Requested: 2, Events: last})

	run, err := s.BeginRun(t.Context(), now)
	if err != nil {
		t.Fatalf("BeginRun: %v", err)
	}
	global := pricing.Market{Location: pricing.GlobalLocation, Multiplier: 11000, Demand: -500}
	if want := (pricing.Run{Gen: 2, Version: 1, Global: global, Events: len(events)}); run != want {
		t.Errorf("BeginRun() = %+v, want %+v", run, want)
	}
	wantState(t, s, pricing.State{Requested: 2, Events: last, Applied: last})
	wantMarket(t, s, "madrid", pricing.Market{Location: "madrid", Multiplier: 15000, Demand: 1000}, 0)
	wantMarket(t, s, "bilbao", pricing.Market{Location: "bilbao", Multiplier: pricing.One, Demand: 200}, 0)
	wantMarket(t, s, "vigo", pricing.Market{Location: "vigo", Multiplier: 11000, Demand: -500}, 0)

	// Nothing new: nothing folded, the same run.
	if again := beginRun(t, s); again != (pricing.Run{Gen: 2, Version: 1, Global: global}) {
		t.Errorf("second BeginRun() = %+v, want %+v", again, pricing.Run{Gen: 2, Version: 1, Global: global})
	}

	// Nil fields keep the values of earlier runs.
	createTask(t, s, pricing.Kind, "market-event", now)
	addEvent(t, s, pricing.MarketEvent{Location: "madrid", Demand: bp(-100)})
	last = addEvent(t, s, pricing.MarketEvent{Location: pricing.GlobalLocation, Demand: bp(0)})
	global.Demand = 0
	if run := beginRun(t, s); run != (pricing.Run{Gen: 3, Version: 1, Global: global, Events: 2}) {
		t.Errorf("third BeginRun() = %+v, want %+v", run, pricing.Run{Gen: 3, Version: 1, Global: global, Events: 2})
	}
	wantMarket(t, s, "madrid", pricing.Market{Location: "madrid", Multiplier: 15000, Demand: -100}, 0)
	wantState(t, s, pricing.State{Requested: 3, Events: last, Applied: last})
}

// testRequested checks that State.Requested is the generation of the last task of
// pricing.Kind created, and that saving a task changes nothing of it.
func testRequested(t *testing.T, s Stores) {
	now := time.Date(2021, 6, 30, 23, 15, 7, 123456000, cest)
	var first task.Record
	for i := range 3 {
		rec := createTask(t, s, pricing.Kind, "api", now)
		if i == 0 {
			first = rec
		}
	}
	createTask(t, s, "other", "cron", now)
	createTask(t, s, pricing.Kind, "market-event", now)
	wantState(t, s, pricing.State{Requested: 4})
	first.State, first.Attempts, first.StartedAt = task.Running, 1, now
	if err := s.SaveTask(t.Context(), first, 0); err != nil {
		t.Fatalf("SaveTask: %v", err)
	}
	wantState(t, s, pricing.State{Requested: 4})
}

func testConcurrentRequested(t *testing.T, s Stores) {
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.CreateTask(t.Context(), pricing.Kind, "api", catalogtest.Epoch)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent CreateTask: %v", err)
	}
	wantState(t, s, pricing.State{Requested: n})
}

func testProductsAfter(t *testing.T, s Stores) {
	var all []pricing.Priced
	var batch []catalog.Plan
	for i := range 7 {
		p := catalogtest.NewPlan("pages", strconv.Itoa(i), catalogtest.Zones(
			catalog.Zone{ZoneID: "1", Name: "Platea", Capacity: 10, Price: 1000},
			catalog.Zone{ZoneID: "2", Name: "Anfiteatro", Capacity: 10, Price: 800},
			catalog.Zone{ZoneID: "2", Name: "Anfiteatro", Capacity: 10, Price: 800},
		))
		batch = append(batch, p)
		all = append(all, products(p)...)
	}
	upsert(t, s, batch...)
	slices.SortFunc(all, compareIDs)

	for _, limit := range []int{1, 4, 21, 100} {
		var got []pricing.Priced
		var after catalog.ID
		for page := 0; ; page++ {
			if page > len(all) {
				t.Fatalf("ProductsAfter(limit %d): more than %d pages", limit, len(all))
			}
			batch := productsAfter(t, s, after, limit)
			if len(batch) > limit {
				t.Fatalf("ProductsAfter(%s, %d) = %d products, more than the limit", after, limit, len(batch))
			}
			if len(batch) == 0 {
				break
			}
			got = append(got, batch...)
			after = batch[len(batch)-1].ID
		}
		if diff := cmp.Diff(all, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("ProductsAfter pages of %d mismatch (-want +got):\n%s", limit, diff)
		}
	}

	// After an ID that is no product's: the ones above it.
	mid := all[10].ID
	mid[15]++
	if bytes.Compare(mid[:], all[10].ID[:]) <= 0 || bytes.Compare(mid[:], all[11].ID[:]) >= 0 {
		t.Fatalf("test data: %s is not between the product IDs %s and %s", mid, all[10].ID, all[11].ID)
	}
	if got := productsAfter(t, s, mid, 3); !slices.EqualFunc(got, all[11:14], samePriced) {
		t.Errorf("ProductsAfter(%s, 3) = %v, want %v", mid, ids(got), ids(all[11:14]))
	}
	last := all[len(all)-1].ID
	if got := productsAfter(t, s, last, 10); len(got) != 0 {
		t.Errorf("ProductsAfter(the last id, 10) = %v, want none", ids(got))
	}
}

func testSavePrices(t *testing.T, s Stores) {
	p := catalogtest.NewPlan("save", "1", catalogtest.Zones(
		catalog.Zone{ZoneID: "1", Name: "Platea", Capacity: 10, Price: 1000},
		catalog.Zone{ZoneID: "2", Name: "Anfiteatro", Capacity: 0, Price: 800},
		catalog.Zone{ZoneID: "3", Name: "Palco", Capacity: 2, Price: 5000},
	))
	upsert(t, s, p)
	want := products(p)
	want[0].Surcharge, want[0].Price, want[0].Version = 1500, 1150, 2
	want[1].Surcharge, want[1].Price, want[1].Version = -400, 768, 2

	// Only the priced fields are written; a product that no longer exists is skipped.
	sent := slices.Clone(want[:2])
	sent[0].BasePrice, sent[0].Capacity, sent[0].Name, sent[0].Position, sent[0].SoldOut = 1, 1, "changed", 9, true
	gone := pricing.Priced{Product: pricing.Product{ID: pricing.NewProductID(p.ID, "9", false, "Gone", 0), PlanID: p.ID},
		Price: 1, Version: 2}
	savePrices(t, s, append(sent, gone)...)
	wantEvent(t, s, p.ID, want)
	for _, w := range want {
		wantProduct(t, s, w)
	}
	wantNoProduct(t, s, gone.ID)
	wantAll(t, s, slices.SortedFunc(slices.Values(want), compareIDs))

	// A later run writes over them.
	want[0].Surcharge, want[0].Price, want[0].Version = 0, 1000, 3
	savePrices(t, s, want[0])
	wantProduct(t, s, want[0])
	savePrices(t, s)
	wantEvent(t, s, p.ID, want)
}

func testCompleteRun(t *testing.T, s Stores) {
	for range 3 {
		createTask(t, s, pricing.Kind, "api", catalogtest.Epoch)
	}
	tests := []struct {
		run  pricing.Run
		want pricing.State
	}{
		{pricing.Run{Gen: 2, Version: 1}, pricing.State{Requested: 3, Done: 2, Version: 1}},
		{pricing.Run{Gen: 3, Version: 2}, pricing.State{Requested: 3, Done: 3, Version: 2}},
		{pricing.Run{Gen: 1, Version: 1}, pricing.State{Requested: 3, Done: 3, Version: 2}}, // an older run, late
		{pricing.Run{Gen: 3, Version: 2}, pricing.State{Requested: 3, Done: 3, Version: 2}}, // again
		{pricing.Run{Gen: 2, Version: 5}, pricing.State{Requested: 3, Done: 3, Version: 5}},
	}
	for _, tt := range tests {
		got, err := s.CompleteRun(t.Context(), tt.run, catalogtest.Epoch)
		if err != nil {
			t.Fatalf("CompleteRun(%+v): %v", tt.run, err)
		}
		if got != tt.want {
			t.Errorf("CompleteRun(%+v) = %+v, want %+v", tt.run, got, tt.want)
		}
		wantState(t, s, tt.want)
	}
}

// testRunCycle runs a recalculation as pricing.Recalculator does.
func testRunCycle(t *testing.T, s Stores) {
	now := catalogtest.Epoch.Add(-48 * time.Hour)
	p := catalogtest.NewPlan("cycle", "1")
	upsert(t, s, p)
	createTask(t, s, pricing.Kind, "api", now)
	ev := addEvent(t, s, pricing.MarketEvent{Location: pricing.GlobalLocation, Multiplier: bp(12500), Source: "api", ReceivedAt: now})

	run := beginRun(t, s)
	if want := (pricing.Run{Gen: 1, Version: 1, Global: pricing.Market{Location: pricing.GlobalLocation, Multiplier: 12500}, Events: 1}); run != want {
		t.Errorf("BeginRun() = %+v, want %+v", run, want)
	}
	batch := productsAfter(t, s, catalog.ID{}, 100)
	for i := range batch {
		batch[i].Surcharge = pricing.DefaultPolicy.Surcharge(batch[i].Product, now)
		f := pricing.DefaultPolicy.Factors(batch[i].BasePrice, batch[i].Surcharge, run.Global)
		var err error
		if batch[i].Price, err = f.Price(0); err != nil {
			t.Fatal(err)
		}
		batch[i].Version = run.Version
	}
	savePrices(t, s, batch...)
	st, err := s.CompleteRun(t.Context(), run, now)
	if err != nil {
		t.Fatalf("CompleteRun: %v", err)
	}
	if want := (pricing.State{Requested: 1, Done: 1, Version: 1, Events: ev, Applied: ev}); st != want {
		t.Errorf("CompleteRun() = %+v, want %+v", st, want)
	}
	want := products(p)
	want[0].Surcharge, want[0].Price, want[0].Version = 500, 2625, 1 // 20.00 × 1.25 × 1.05
	wantEvent(t, s, p.ID, want)
	wantMarket(t, s, "cadiz", pricing.Market{Location: "cadiz", Multiplier: 12500}, 1)
}

// products returns the products of plan p as a store returns them before any
// recalculation.
func products(p catalog.Plan) []pricing.Priced {
	prods := pricing.Products(p)
	out := make([]pricing.Priced, len(prods))
	for i, pr := range prods {
		pr.StartsAt = pr.StartsAt.UTC()
		out[i] = pricing.Priced{Product: pr, Position: i}
	}
	return out
}

func bp(v pricing.BasisPoints) *pricing.BasisPoints { return &v }

func upsert(t *testing.T, s Stores, batch ...catalog.Plan) int64 {
	t.Helper()
	v, err := s.UpsertPlans(t.Context(), batch)
	if err != nil {
		t.Fatalf("UpsertPlans(%d plans): %v", len(batch), err)
	}
	return v
}

func savePrices(t *testing.T, s Stores, prices ...pricing.Priced) {
	t.Helper()
	if err := s.SavePrices(t.Context(), prices); err != nil {
		t.Fatalf("SavePrices(%d products): %v", len(prices), err)
	}
}

func addEvent(t *testing.T, s Stores, ev pricing.MarketEvent) int64 {
	t.Helper()
	id, err := s.AddMarketEvent(t.Context(), ev)
	if err != nil {
		t.Fatalf("AddMarketEvent(%s): %v", ev.AppendPayload(nil), err)
	}
	return id
}

func beginRun(t *testing.T, s Stores) pricing.Run {
	t.Helper()
	run, err := s.BeginRun(t.Context(), catalogtest.Epoch)
	if err != nil {
		t.Fatalf("BeginRun: %v", err)
	}
	return run
}

func createTask(t *testing.T, s Stores, kind, trigger string, now time.Time) task.Record {
	t.Helper()
	rec, err := s.CreateTask(t.Context(), kind, trigger, now)
	if err != nil {
		t.Fatalf("CreateTask(%q, %q): %v", kind, trigger, err)
	}
	return rec
}

func state(t *testing.T, s Stores) pricing.State {
	t.Helper()
	st, err := s.PricingState(t.Context())
	if err != nil {
		t.Fatalf("PricingState: %v", err)
	}
	return st
}

func wantState(t *testing.T, s Stores, want pricing.State) {
	t.Helper()
	if got := state(t, s); got != want {
		t.Errorf("PricingState() = %+v, want %+v", got, want)
	}
}

// wantMarket checks Market(location) on the primary and off it.
func wantMarket(t *testing.T, s Stores, location string, want pricing.Market, version int64) {
	t.Helper()
	for _, primary := range []bool{true, false} {
		m, v, err := s.Market(t.Context(), location, primary)
		if err != nil {
			t.Fatalf("Market(%q, %v): %v", location, primary, err)
		}
		if m != want || v != version {
			t.Errorf("Market(%q, %v) = %+v at version %d, want %+v at %d", location, primary, m, v, want, version)
		}
	}
}

func productsAfter(t *testing.T, s Stores, after catalog.ID, limit int) []pricing.Priced {
	t.Helper()
	got, err := s.ProductsAfter(t.Context(), after, limit)
	if err != nil {
		t.Fatalf("ProductsAfter(%s, %d): %v", after, limit, err)
	}
	checkUTC(t, "ProductsAfter", got)
	return got
}

// wantAll checks that paging through ProductsAfter gives want, which is in ID order.
func wantAll(t *testing.T, s Stores, want []pricing.Priced) {
	t.Helper()
	var got []pricing.Priced
	var after catalog.ID
	for {
		batch := productsAfter(t, s, after, 500)
		if len(batch) == 0 {
			break
		}
		got = append(got, batch...)
		after = batch[len(batch)-1].ID
		if len(got) > len(want)+500 {
			break
		}
	}
	if slices.EqualFunc(want, got, samePriced) {
		return
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("ProductsAfter pages mismatch (-want +got):\n%s", diff)
	}
}

func wantEvent(t *testing.T, s Stores, event catalog.ID, want []pricing.Priced) {
	t.Helper()
	got, err := s.EventProducts(t.Context(), event)
	if err != nil {
		t.Fatalf("EventProducts(%s): %v", event, err)
	}
	checkUTC(t, "EventProducts", got)
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("EventProducts(%s) mismatch (-want +got):\n%s", event, diff)
	}
}

func wantNoEvent(t *testing.T, s Stores, event catalog.ID) {
	t.Helper()
	if got, err := s.EventProducts(t.Context(), event); !errors.Is(err, pricing.ErrNotFound) {
		t.Errorf("EventProducts(%s) = %d products, %v; want pricing.ErrNotFound", event, len(got), err)
	}
}

// wantProduct checks Product(want.ID) on the primary and off it.
func wantProduct(t *testing.T, s Stores, want pricing.Priced) {
	t.Helper()
	for _, primary := range []bool{true, false} {
		got, err := s.Product(t.Context(), want.ID, primary)
		if err != nil {
			t.Fatalf("Product(%s, %v): %v", want.ID, primary, err)
		}
		checkUTC(t, "Product", []pricing.Priced{got})
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Product(%s, %v) mismatch (-want +got):\n%s", want.ID, primary, diff)
		}
	}
}

func wantNoProduct(t *testing.T, s Stores, id catalog.ID) {
	t.Helper()
	for _, primary := range []bool{true, false} {
		if got, err := s.Product(t.Context(), id, primary); !errors.Is(err, pricing.ErrNotFound) {
			t.Errorf("Product(%s, %v) = %+v, %v; want pricing.ErrNotFound", id, primary, got, err)
		}
	}
}

// samePriced reports whether cmp.Diff would find no difference, faster.
func samePriced(a, b pricing.Priced) bool {
	return a.ID == b.ID && a.PlanID == b.PlanID && a.ZoneID == b.ZoneID && a.Name == b.Name && a.Numbered == b.Numbered &&
		a.BasePrice == b.BasePrice && a.Capacity == b.Capacity && a.SoldOut == b.SoldOut && a.StartsAt.Equal(b.StartsAt) &&
		a.Position == b.Position && a.Surcharge == b.Surcharge && a.Price == b.Price && a.Version == b.Version
}

func compareIDs(a, b pricing.Priced) int { return bytes.Compare(a.ID[:], b.ID[:]) }

func ids(ps []pricing.Priced) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID.String()
	}
	return out
}

// checkUTC reports start times that a store did not return in UTC; cmp compares times
// with Equal, which ignores the location.
func checkUTC(t *testing.T, call string, ps []pricing.Priced) {
	t.Helper()
	for _, p := range ps {
		if p.StartsAt.Location() != time.UTC {
			t.Errorf("%s: product %s: StartsAt in %s, want UTC", call, p.ID, p.StartsAt.Location())
		}
	}
}
