package catalogtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"boxoffice/catalog"
)

// Features lists what a Store adapter can do beyond the port, so that TestStore runs
// only the tests that apply to it.
type Features struct {
	// Reopen closes s and returns a new Store over the same data, as a restart of the
	// process would, closed through t.Cleanup like the stores of open. Nil when the
	// adapter keeps nothing across a restart.
	Reopen func(t *testing.T, s catalog.Store) catalog.Store
}

// TestStore runs the catalog.Store contract (see catalog.Store) against an adapter.
// Every sub-test calls open for a store of its own, empty, which open closes through
// t.Cleanup; sub-tests run in parallel. Nothing here assumes a particular database.
func TestStore(t *testing.T, open func(t *testing.T) catalog.Store, f Features) {
	run := func(name string, test func(t *testing.T, s catalog.Store)) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, open(t))
		})
	}

	run("EmptyStore", testEmptyStore)
	run("RoundTrip", testRoundTrip)
	run("Window", testWindow)
	run("OrderByStartThenID", testOrder)
	run("StoredPlansDoNotAlias", testNoAlias)
	run("InvalidUTF8Replaced", testInvalidUTF8)

	run("OfflineOnlyNotSearchable", testOfflineOnly)
	run("OnlineThenOfflineKeepsLatestValues", testOnlineThenOffline)
	run("LateOnlineMakesEverOnline", testLateOnline)
	run("RedeliveredOnlineMakesEverOnline", testRedeliveredOnline)
	run("DuplicateOnlineInBatchMakesEverOnline", testDuplicateOnlineInBatch)
	run("VanishedPlansStay", testVanished)

	run("NewerRevisionReplaces", testNewerRevision)
	run("RedeliveryChangesNothing", testRedelivery)
	run("LowerRevisionNeverRegresses", testLowerRevision)
	run("BatchDuplicates", testBatchDuplicates)

	run("ChangedSince", testChangedSince)
	run("EachChangeReadsOneSnapshot", testEachChangeSnapshot)
	run("EachChangeStopsOnError", testEachChangeStops)
	run("NewerRevisionSameValuesKeepsVersion", testSameValues)
	run("UnsearchableChangeKeepsVersion", testUnsearchableChange)

	run("ConcurrentUpserts", testConcurrentUpserts)
	run("LargeBatch", testLargeBatch)
	run("CanceledContext", testCanceledContext)

	t.Run("Reopen", func(t *testing.T) {
		if f.Reopen == nil {
			t.Skip("the adapter keeps nothing across a restart")
		}
		t.Parallel()
		testReopen(t, open(t), f.Reopen)
	})
}

func testEmptyStore(t *testing.T, s catalog.Store) {
	wantChanges(t, s, 0, catalog.Changes{Version: 0})
	wantSearch(t, s, catalog.Window{}, nil)
	if v := upsert(t, s); v != 0 {
		t.Errorf("UpsertPlans(no plans) = %d, want 0", v)
	}
	wantChanges(t, s, 0, catalog.Changes{Version: 0})
}

func testRoundTrip(t *testing.T, s catalog.Store) {
	cest := time.FixedZone("CEST", 2*60*60)
	full := NewPlan("full", "1",
		Title(`Concierto de Ñandú — "Live" at O'Brien's \ 日本`),
		Zones(
			catalog.Zone{ZoneID: "1", Name: "Platea", Capacity: 100, Price: 2000, Numbered: true},
			catalog.Zone{ZoneID: "1", Name: "Platea (sin numerar)", Capacity: 0, Price: 1999},
			catalog.Zone{ZoneID: "7", Name: "Grada \"Norte\"\n\\ sur", Capacity: 3, Price: 1 << 50},
			catalog.Zone{ZoneID: "", Name: "", Capacity: 1 << 40, Price: 0, Numbered: true},
			catalog.Zone{ZoneID: "1", Name: "Platea", Capacity: 100, Price: 2000, Numbered: true},
		),
	)
	full.SoldOut = true
	full.OrganizerCompanyID = "org-ñ"

	bare := NewPlan("bare", "1", Zones(), At(Epoch.Add(time.Hour), 0))
	bare.OrganizerCompanyID = ""
	bare.SellFrom, bare.SellTo = time.Time{}, time.Time{}
	bare.Revision = 1<<62 + 3

	zoned := NewPlan("zoned", "1")
	zoned.StartsAt = time.Date(2021, 7, 1, 0, 0, 0, 0, cest) // 2021-06-30 22:00 UTC
	zoned.EndsAt = time.Date(2021, 7, 1, 1, 30, 0, 0, cest)
	zoned.SellFrom = time.Date(2021, 6, 1, 0, 0, 0, 0, cest)
	zoned.SellTo = time.Date(2021, 6, 30, 23, 59, 59, 0, cest)

	v := upsert(t, s, full, bare, zoned)
	if v <= 0 {
		t.Fatalf("UpsertPlans(3 new online plans) = %d, want a version above 0", v)
	}
	wantSearch(t, s, catalog.Window{}, searchable(v, full, bare, zoned))
	wantChanges(t, s, 0, catalog.Changes{Plans: searchable(v, full, bare, zoned), Version: v})
}

// testInvalidUTF8 checks the rule for text that is not UTF-8 (a provider's Latin-1, a
// cut multi-byte sequence): the batch applies, and each invalid byte reads back as
// U+FFFD, in every field and zone, as encoding/json would write it.
func testInvalidUTF8(t *testing.T, s catalog.Store) {
	bad := NewPlan("latin\xf1", "\xff1", Title("Concierto de \xd1and\xfa \xe2\x82"), Zones(
		catalog.Zone{ZoneID: "\xb71", Name: "Platea \xa1\xa2", Capacity: 1, Price: 2000},
		catalog.Zone{ZoneID: "2", Name: "Anfiteatro", Capacity: 2, Price: 1000},
	))
	bad.OrganizerCompanyID = "org-\xe9"
	good := NewPlan("good", "1")
	v := upsert(t, s, bad, good)

	want := bad
	want.Provider, want.BasePlanID, want.PlanID = bad.Provider, "latin\uFFFD", "\uFFFD1"
	want.Title = "Concierto de \uFFFDand\uFFFD \uFFFD\uFFFD"
	want.OrganizerCompanyID = "org-\uFFFD"
	want.Zones = []catalog.Zone{
		{ZoneID: "\uFFFD1", Name: "Platea \uFFFD\uFFFD", Capacity: 1, Price: 2000},
		{ZoneID: "2", Name: "Anfiteatro", Capacity: 2, Price: 1000},
	}
	if bad.Zones[0].Name != "Platea \xa1\xa2" {
		t.Errorf("UpsertPlans changed the caller's zones: %q", bad.Zones[0].Name)
	}
	wantSearch(t, s, catalog.Window{}, searchable(v, want, good))
	wantChanges(t, s, 0, catalog.Changes{Plans: searchable(v, want, good), Version: v})
}

func testWindow(t *testing.T, s catalog.Store) {
	plans := map[string]catalog.Plan{
		"a": NewPlan("w", "a", At(Epoch, 2*time.Hour)),
		"b": NewPlan("w", "b", At(Epoch.AddDate(0, 0, 1), 3*time.Hour)),
		"c": NewPlan("w", "c", At(Epoch.AddDate(0, 0, 2), 0)),
		"d": NewPlan("w", "d", At(Epoch.AddDate(0, 0, -1), 4*24*time.Hour)),
	}
	v := upsert(t, s, plans["a"], plans["b"], plans["c"], plans["d"])
	cest := time.FixedZone("CEST", 2*60*60)

	tests := []struct {
		name     string
		from, to time.Time
		want     []string // ordered by start
	}{
		{name: "open", want: []string{"d", "a", "b", "c"}},
		{name: "from at a start", from: Epoch, want: []string{"a", "b", "c"}},
		{name: "from a second after a start", from: Epoch.Add(time.Second), want: []string{"b", "c"}},
		{name: "from a nanosecond after a start", from: Epoch.Add(time.Nanosecond), want: []string{"b", "c"}},
		{name: "from half a second before a start", from: Epoch.Add(-500 * time.Millisecond), want: []string{"a", "b", "c"}},
		{name: "from in another zone", from: Epoch.In(cest), want: []string{"a", "b", "c"}},
		{name: "to at a end", to: Epoch.Add(2 * time.Hour), want: []string{"a"}},
		{name: "to a second before a end", to: Epoch.Add(2*time.Hour - time.Second)},
		{name: "to a nanosecond before a end", to: Epoch.Add(2*time.Hour - time.Nanosecond)},
		{name: "to just under a second after a end", to: Epoch.Add(2*time.Hour + 999*time.Millisecond), want: []string{"a"}},
		{name: "both bounds", from: Epoch, to: Epoch.Add(27 * time.Hour), want: []string{"a", "b"}},
		{name: "equal bounds at an instant plan", from: Epoch.AddDate(0, 0, 2), to: Epoch.AddDate(0, 0, 2), want: []string{"c"}},
		{name: "equal bounds at a start", from: Epoch, to: Epoch},
		{name: "inside a plan", from: Epoch.Add(30 * time.Minute), to: Epoch.Add(time.Hour)},
		{name: "exactly the longest plan", from: Epoch.AddDate(0, 0, -1), to: Epoch.AddDate(0, 0, 3), want: []string{"d", "a", "b", "c"}},
		{name: "after everything", from: Epoch.AddDate(1, 0, 0)},
		{name: "before everything", to: Epoch.AddDate(-1, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []catalog.Plan
			for _, name := range tt.want {
				want = append(want, plans[name])
			}
			wantSearch(t, s, catalog.Window{From: tt.from, To: tt.to}, searchable(v, want...))
		})
	}
}

func testOrder(t *testing.T, s catalog.Store) {
	var plans []catalog.Plan
	for i := range 8 {
		plans = append(plans, NewPlan("same", strconv.Itoa(i)))
	}
	plans = append(plans,
		NewPlan("early", "1", At(Epoch.Add(-time.Second), time.Hour)),
		NewPlan("late", "1", At(Epoch.Add(time.Second), 0)),
		NewPlan("late", "2", At(Epoch.Add(time.Second), time.Minute)),
	)
	v1 := upsert(t, s, plans[3], plans[9], plans[0], plans[7], plans[5])
	v2 := upsert(t, s, plans[10], plans[1], plans[6], plans[8], plans[2], plans[4])

	want := append(searchable(v1, plans[3], plans[9], plans[0], plans[7], plans[5]),
		searchable(v2, plans[10], plans[1], plans[6], plans[8], plans[2], plans[4])...)
	got := search(t, s, catalog.Window{})
	slices.SortFunc(want, func(a, b catalog.Plan) int {
		if c := a.StartsAt.Compare(b.StartsAt); c != 0 {
			return c
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("SearchPlans(open..open) mismatch (-want +got):\n%s", diff)
	}
}

func testNoAlias(t *testing.T, s catalog.Store) {
	p := NewPlan("alias", "1", Zones(catalog.Zone{ZoneID: "1", Name: "Pista", Capacity: 10, Price: 1000}))
	batch := []catalog.Plan{p}
	v := upsert(t, s, batch...)
	want := searchable(v, NewPlan("alias", "1", Zones(catalog.Zone{ZoneID: "1", Name: "Pista", Capacity: 10, Price: 1000})))

	batch[0].Zones[0].Price = 1
	batch[0].Title = "changed by the caller"
	got := search(t, s, catalog.Window{})
	if len(got) == 1 && len(got[0].Zones) == 1 {
		got[0].Zones[0].Price = 2
	}
	wantSearch(t, s, catalog.Window{}, want)
}

func testOfflineOnly(t *testing.T, s catalog.Store) {
	if v := upsert(t, s, NewPlan("off", "1", Offline), NewPlan("off", "2", Offline, Revision(2))); v != 0 {
		t.Errorf("UpsertPlans(offline plans) = %d, want 0 (nothing searchable changed)", v)
	}
	wantSearch(t, s, catalog.Window{}, nil)
	wantChanges(t, s, 0, catalog.Changes{Version: 0})

	on := NewPlan("on", "1")
	v := upsert(t, s, on, NewPlan("off", "3", Offline))
	if v <= 0 {
		t.Fatalf("UpsertPlans(one online plan) = %d, want a version above 0", v)
	}
	wantSearch(t, s, catalog.Window{}, searchable(v, on))
	wantChanges(t, s, 0, catalog.Changes{Plans: searchable(v, on), Version: v})
}

func testOnlineThenOffline(t *testing.T, s catalog.Store) {
	v1 := upsert(t, s, NewPlan("sw", "1", Title("Online")))
	later := NewPlan("sw", "1", Revision(2), Offline, Title("Offline now"), At(Epoch.AddDate(0, 0, 1), 3*time.Hour),
		Zones(catalog.Zone{ZoneID: "2", Name: "Anfiteatro", Capacity: 5, Price: 3550}))
	v2 := upsert(t, s, later)
	if v2 <= v1 {
		t.Fatalf("UpsertPlans(newer offline observation) = %d, want a version above %d", v2, v1)
	}
	wantSearch(t, s, catalog.Window{}, searchable(v2, later))
	wantSearch(t, s, catalog.Window{From: Epoch, To: Epoch.Add(2 * time.Hour)}, nil)
	wantChanges(t, s, v1, catalog.Changes{Plans: searchable(v2, later), Version: v2})

	// Once offline, it stays ever-online through newer offline observations.
	latest := NewPlan("sw", "1", Revision(3), Offline, Title("Still offline"))
	v3 := upsert(t, s, latest)
	if v3 <= v2 {
		t.Fatalf("UpsertPlans(newest offline observation) = %d, want a version above %d", v3, v2)
	}
	wantSearch(t, s, catalog.Window{}, searchable(v3, latest))
}

func testLateOnline(t *testing.T, s catalog.Store) {
	now := NewPlan("late", "1", Revision(2), Offline, Title("Now"))
	if v := upsert(t, s, now); v != 0 {
		t.Errorf("UpsertPlans(offline plan) = %d, want 0", v)
	}
	v := upsert(t, s, NewPlan("late", "1", Revision(1), Title("Before"), At(Epoch.AddDate(0, 0, -3), time.Hour)))
	if v <= 0 {
		t.Fatalf("UpsertPlans(late online observation) = %d, want a version above 0", v)
	}
	wantSearch(t, s, catalog.Window{}, searchable(v, now))
	wantChanges(t, s, 0, catalog.Changes{Plans: searchable(v, now), Version: v})
}

func testRedeliveredOnline(t *testing.T, s catalog.Store) {
	first := NewPlan("redo", "1", Offline, Title("First"))
	upsert(t, s, first)
	v := upsert(t, s, NewPlan("redo", "1", Title("Second")))
	if v <= 0 {
		t.Fatalf("UpsertPlans(online observation at the same revision) = %d, want a version above 0", v)
	}
	wantSearch(t, s, catalog.Window{}, searchable(v, first))
}

func testDuplicateOnlineInBatch(t *testing.T, s catalog.Store) {
	first := NewPlan("dup", "1", Offline, Title("First"))
	v := upsert(t, s, first, NewPlan("dup", "1", Title("Second")))
	if v <= 0 {
		t.Fatalf("UpsertPlans(offline then online occurrence) = %d, want a version above 0", v)
	}
	wantSearch(t, s, catalog.Window{}, searchable(v, first))
}

func testVanished(t *testing.T, s catalog.Store) {
	a, b := NewPlan("v", "a"), NewPlan("v", "b", At(Epoch.Add(time.Hour), time.Hour))
	v1 := upsert(t, s, a, b)
	a2 := NewPlan("v", "a", Revision(2), Title("Renamed"))
	v2 := upsert(t, s, a2)
	want := append(searchable(v2, a2), searchable(v1, b)...)
	wantSearch(t, s, catalog.Window{}, want)
	wantChanges(t, s, 0, catalog.Changes{Plans: want, Version: v2})
}

func testNewerRevision(t *testing.T, s catalog.Store) {
	v1 := upsert(t, s, NewPlan("new", "1"), NewPlan("new", "2"))
	a2 := NewPlan("new", "1", Revision(2), Title("Renamed"), At(Epoch.Add(-time.Hour), 30*time.Minute),
		Zones(catalog.Zone{ZoneID: "9", Name: "VIP", Capacity: 1, Price: 99999, Numbered: true}))
	a2.OrganizerCompanyID = ""
	a2.SoldOut = true
	b2 := NewPlan("new", "2", Revision(7), Zones())
	v2 := upsert(t, s, a2, b2)
	if v2 <= v1 {
		t.Fatalf("UpsertPlans(newer revisions) = %d, want a version above %d", v2, v1)
	}
	wantSearch(t, s, catalog.Window{}, searchable(v2, a2, b2))
}

func testRedelivery(t *testing.T, s catalog.Store) {
	a, b := NewPlan("re", "a"), NewPlan("re", "b", Offline)
	c := NewPlan("re", "c")
	v1 := upsert(t, s, a, b, c)
	if v := upsert(t, s, a, b, c); v != v1 {
		t.Errorf("UpsertPlans(the same batch again) = %d, want %d", v, v1)
	}
	if v := upsert(t, s, NewPlan("re", "a", Title("Same revision, other title")), NewPlan("re", "c", Offline)); v != v1 {
		t.Errorf("UpsertPlans(other values at the same revision) = %d, want %d", v, v1)
	}
	wantSearch(t, s, catalog.Window{}, searchable(v1, a, c))
	wantChanges(t, s, v1, catalog.Changes{Version: v1})
}

func testLowerRevision(t *testing.T, s catalog.Store) {
	a := NewPlan("low", "a", Revision(5))
	v1 := upsert(t, s, a)
	for r := int64(4); r >= 0; r-- {
		old := NewPlan("low", "a", Revision(r), Title("Old "+strconv.FormatInt(r, 10)), Offline, Zones())
		if v := upsert(t, s, old); v != v1 {
			t.Errorf("UpsertPlans(revision %d after 5) = %d, want %d", r, v, v1)
		}
	}
	wantSearch(t, s, catalog.Window{}, searchable(v1, a))
}

func testBatchDuplicates(t *testing.T, s catalog.Store) {
	firstWins := NewPlan("bd", "first", Title("First"))
	newerLater := NewPlan("bd", "later", Revision(2), Title("Newer"))
	newerFirst := NewPlan("bd", "earlier", Revision(3), Title("Newer"))
	v := upsert(t, s,
		firstWins,
		NewPlan("bd", "later", Revision(1), Title("Older")),
		newerFirst,
		NewPlan("bd", "first", Title("Second")),
		newerLater,
		NewPlan("bd", "earlier", Revision(2), Title("Older")),
		NewPlan("bd", "first", Title("Third")),
	)
	wantSearch(t, s, catalog.Window{}, searchable(v, newerFirst, firstWins, newerLater))
}

func testChangedSince(t *testing.T, s catalog.Store) {
	a, b := NewPlan("cs", "a"), NewPlan("cs", "b")
	v1 := upsert(t, s, a, b)
	b2, c := NewPlan("cs", "b", Revision(2), Title("B2")), NewPlan("cs", "c")
	v2 := upsert(t, s, b2, c)
	d := NewPlan("cs", "d", Revision(2), Offline)
	v3 := upsert(t, s, d, a)
	v4 := upsert(t, s, NewPlan("cs", "d", Revision(1)))
	if !(0 < v1 && v1 < v2 && v2 == v3 && v3 < v4) {
		t.Fatalf("UpsertPlans versions = %d, %d, %d, %d; want 0 < v1 < v2 = v3 < v4", v1, v2, v3, v4)
	}

	tests := []struct {
		since int64
		want  catalog.Changes
	}{
		{since: 0, want: catalog.Changes{Plans: append(searchable(v1, a), append(searchable(v2, b2, c), searchable(v4, d)...)...), Version: v4}},
		{since: v1, want: catalog.Changes{Plans: append(searchable(v2, b2, c), searchable(v4, d)...), Version: v4}},
		{since: v2, want: catalog.Changes{Plans: searchable(v4, d), Version: v4}},
		{since: v4, want: catalog.Changes{Version: v4}},
		{since: v4 + 1000, want: catalog.Changes{Version: v4}},
	}
	for _, tt := range tests {
		wantChanges(t, s, tt.since, tt.want)
	}
}

func testEachChangeSnapshot(t *testing.T, s catalog.Store) {
	var plans []catalog.Plan
	for i := range 10 {
		plans = append(plans, NewPlan("snap", strconv.Itoa(i)))
	}
	v1 := upsert(t, s, plans...)
	want := catalog.Changes{Plans: slices.SortedFunc(slices.Values(searchable(v1, plans...)), compareIDs), Version: v1}

	// After the first page, every plan changes and one is added: the pages that follow
	// are still those of the version the first was read at.
	var v2 int64
	got := eachChange(t, s, 0, 3, func(page int) {
		if page > 1 {
			return
		}
		var next []catalog.Plan
		for i := range 10 {
			next = append(next, NewPlan("snap", strconv.Itoa(i), Revision(2), Title("changed "+strconv.Itoa(i))))
		}
		next = append(next, NewPlan("snap", "new"))
		v2 = upsert(t, s, next...)
	})
	if v2 <= v1 {
		t.Fatalf("UpsertPlans(every plan changed) = %d, want a version above %d", v2, v1)
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("EachChange(0) with a change after its first page mismatch version %d (-want +got):\n%s", v1, diff)
	}
	if got := changedSince(t, s, v1); got.Version != v2 || len(got.Plans) != 11 {
		t.Errorf("ChangedSince(%d) = %d plans at version %d, want 11 at %d", v1, len(got.Plans), got.Version, v2)
	}
}

func testEachChangeStops(t *testing.T, s catalog.Store) {
	var plans []catalog.Plan
	for i := range 5 {
		plans = append(plans, NewPlan("stop", strconv.Itoa(i)))
	}
	upsert(t, s, plans...)
	stop := errors.New("enough")
	pages := 0
	if _, err := s.EachChange(t.Context(), 0, 2, func(catalog.Changes) error {
		pages++
		return stop
	}); err != stop || pages != 1 { // fn's error comes back as it is, not wrapped
		t.Errorf("EachChange with fn failing on the 1st page = %v after %d pages, want %v after 1", err, pages, stop)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.EachChange(ctx, 0, 2, func(catalog.Changes) error { return nil }); err == nil {
		t.Errorf("EachChange(canceled context) = nil, want an error")
	}
}

func testSameValues(t *testing.T, s catalog.Store) {
	a := NewPlan("same", "a")
	v1 := upsert(t, s, a)
	a3 := NewPlan("same", "a", Revision(3))
	if v := upsert(t, s, a3); v != v1 {
		t.Errorf("UpsertPlans(newer revision, same values) = %d, want %d", v, v1)
	}
	wantChanges(t, s, v1, catalog.Changes{Version: v1})

	// The newer revision was recorded: an observation between the two can't regress it.
	if v := upsert(t, s, NewPlan("same", "a", Revision(2), Title("Regressed"))); v != v1 {
		t.Errorf("UpsertPlans(revision 2 after 3) = %d, want %d", v, v1)
	}
	wantSearch(t, s, catalog.Window{}, searchable(v1, a3))
}

func testUnsearchableChange(t *testing.T, s catalog.Store) {
	a := NewPlan("un", "a")
	v1 := upsert(t, s, a)
	if v := upsert(t, s, NewPlan("un", "b", Offline)); v != v1 {
		t.Errorf("UpsertPlans(new offline plan) = %d, want %d", v, v1)
	}
	if v := upsert(t, s, NewPlan("un", "b", Offline, Revision(2), Title("Renamed"))); v != v1 {
		t.Errorf("UpsertPlans(changed offline plan) = %d, want %d", v, v1)
	}
	wantChanges(t, s, 0, catalog.Changes{Plans: searchable(v1, a), Version: v1})
}

func testConcurrentUpserts(t *testing.T, s catalog.Store) {
	const (
		writers = 4
		calls   = 15
		shared  = 8
	)
	versions := make([][]int64, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range calls {
				r := int64(i*writers + g + 1)
				batch := []catalog.Plan{NewPlan(fmt.Sprintf("writer%d", g), strconv.Itoa(i))}
				for k := range shared {
					if g%2 == 1 {
						k = shared - 1 - k
					}
					batch = append(batch, NewPlan("shared", strconv.Itoa(k), Revision(r), Title(fmt.Sprintf("rev %d", r))))
				}
				v, err := s.UpsertPlans(t.Context(), batch)
				if err != nil {
					errs[g] = fmt.Errorf("writer %d call %d: %w", g, i, err)
					return
				}
				versions[g] = append(versions[g], v)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Errorf("UpsertPlans: %v", err)
		}
	}
	if t.Failed() {
		return
	}

	seen := make(map[int64]bool)
	var last int64
	for g, vs := range versions {
		for i, v := range vs {
			if i > 0 && v <= vs[i-1] {
				t.Errorf("writer %d: UpsertPlans call %d = %d after %d, want a higher version", g, i, v, vs[i-1])
			}
			if seen[v] {
				t.Errorf("writer %d: UpsertPlans call %d = %d, a version another changing call returned", g, i, v)
			}
			seen[v] = true
			last = max(last, v)
		}
	}

	ch := changedSince(t, s, 0)
	if ch.Version != last {
		t.Errorf("ChangedSince(0).Version = %d, want %d, the highest version UpsertPlans returned", ch.Version, last)
	}
	got := make(map[string]catalog.Plan)
	for _, p := range ch.Plans {
		got[p.BasePlanID+"/"+p.PlanID] = p
	}
	if len(got) != writers*calls+shared {
		t.Errorf("ChangedSince(0) returned %d plans, want %d", len(got), writers*calls+shared)
	}
	for k := range shared {
		p := got["shared/"+strconv.Itoa(k)]
		top := int64(writers * calls)
		if p.Revision != top || p.Title != fmt.Sprintf("rev %d", top) {
			t.Errorf("shared plan %d: revision %d titled %q, want revision %d titled %q", k, p.Revision, p.Title, top, fmt.Sprintf("rev %d", top))
		}
	}
}

func testLargeBatch(t *testing.T, s catalog.Store) {
	const n = 3000
	batch := make([]catalog.Plan, 0, n)
	var online []catalog.Plan
	for i := range n {
		p := NewPlan("big", strconv.Itoa(i), At(Epoch.Add(time.Duration(i)*time.Minute), 90*time.Minute), Zones(
			catalog.Zone{ZoneID: "1", Name: "Platea", Capacity: int64(i), Price: catalog.Money(1000 + i)},
			catalog.Zone{ZoneID: "2", Name: "Anfiteatro", Capacity: 50, Price: catalog.Money(2500 + i)},
			catalog.Zone{ZoneID: "2", Name: "Anfiteatro lateral", Capacity: 20, Price: 900, Numbered: true},
		))
		if i%10 == 9 {
			Offline(&p)
		} else {
			online = append(online, p)
		}
		batch = append(batch, p)
	}
	v1 := upsert(t, s, batch...)
	if v1 <= 0 {
		t.Fatalf("UpsertPlans(%d plans) = %d, want a version above 0", n, v1)
	}
	wantChanges(t, s, 0, catalog.Changes{Plans: searchable(v1, online...), Version: v1})
	w := catalog.Window{From: Epoch.Add(1000 * time.Minute), To: Epoch.Add(2000 * time.Minute)}
	var inside []catalog.Plan
	for _, p := range online {
		if w.Contains(p) {
			inside = append(inside, p)
		}
	}
	wantSearch(t, s, w, searchable(v1, inside...))

	if v := upsert(t, s, batch...); v != v1 {
		t.Errorf("UpsertPlans(the same %d plans again) = %d, want %d", n, v, v1)
	}
	next := make([]catalog.Plan, n)
	for i, p := range batch {
		p.Revision = 2
		next[i] = p
	}
	next[1234].Title = "The only change"
	v2 := upsert(t, s, next...)
	if v2 <= v1 {
		t.Fatalf("UpsertPlans(one change in %d plans) = %d, want a version above %d", n, v2, v1)
	}
	wantChanges(t, s, v1, catalog.Changes{Plans: searchable(v2, next[1234]), Version: v2})
}

func testCanceledContext(t *testing.T, s catalog.Store) {
	a := NewPlan("ctx", "a")
	v := upsert(t, s, a)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if got, err := s.UpsertPlans(ctx, []catalog.Plan{NewPlan("ctx", "b")}); err == nil {
		t.Errorf("UpsertPlans(canceled context) = %d, nil; want an error", got)
	}
	if got, err := s.SearchPlans(ctx, catalog.Window{}); err == nil {
		t.Errorf("SearchPlans(canceled context) = %d plans, nil; want an error", len(got))
	}
	if got, err := s.ChangedSince(ctx, 0); err == nil {
		t.Errorf("ChangedSince(canceled context) = %d plans at version %d, nil; want an error", len(got.Plans), got.Version)
	}

	// The canceled batch changed nothing and the store still works.
	wantChanges(t, s, 0, catalog.Changes{Plans: searchable(v, a), Version: v})
	b := NewPlan("ctx", "b")
	v2 := upsert(t, s, b)
	wantSearch(t, s, catalog.Window{}, append(searchable(v, a), searchable(v2, b)...))
}

func testReopen(t *testing.T, s catalog.Store, reopen func(*testing.T, catalog.Store) catalog.Store) {
	a, b := NewPlan("re", "a"), NewPlan("re", "b", At(Epoch.Add(time.Hour), time.Hour))
	c := NewPlan("re", "c", Revision(2), Offline)
	v1 := upsert(t, s, a, b, c)
	a2 := NewPlan("re", "a", Revision(2), Title("Renamed"))
	v2 := upsert(t, s, a2)

	s = reopen(t, s)
	wantChanges(t, s, 0, catalog.Changes{Plans: append(searchable(v2, a2), searchable(v1, b)...), Version: v2})
	if v := upsert(t, s, a, b, c); v != v2 {
		t.Errorf("after reopening, UpsertPlans(older batch) = %d, want %d", v, v2)
	}
	v3 := upsert(t, s, NewPlan("re", "c", Revision(1)))
	if v3 <= v2 {
		t.Errorf("after reopening, UpsertPlans(late online observation) = %d, want a version above %d", v3, v2)
	}
	wantSearch(t, s, catalog.Window{}, append(searchable(v2, a2), append(searchable(v1, b), searchable(v3, c)...)...))
}

// upsert applies batch to s, stopping the test on an error.
func upsert(t *testing.T, s catalog.Store, batch ...catalog.Plan) int64 {
	t.Helper()
	v, err := s.UpsertPlans(t.Context(), batch)
	if err != nil {
		t.Fatalf("UpsertPlans(%d plans): %v", len(batch), err)
	}
	return v
}

// search returns the plans of s inside w, stopping the test on an error.
func search(t *testing.T, s catalog.Store, w catalog.Window) []catalog.Plan {
	t.Helper()
	got, err := s.SearchPlans(t.Context(), w)
	if err != nil {
		t.Fatalf("SearchPlans(%s): %v", formatWindow(w), err)
	}
	checkUTC(t, "SearchPlans", got)
	return got
}

// changedSince returns the changes of s since version with the plans ordered by ID,
// stopping the test on an error. It also reads them with EachChange in pages of two,
// and reports an error unless the pages hold the same.
func changedSince(t *testing.T, s catalog.Store, version int64) catalog.Changes {
	t.Helper()
	got, err := s.ChangedSince(t.Context(), version)
	if err != nil {
		t.Fatalf("ChangedSince(%d): %v", version, err)
	}
	checkUTC(t, "ChangedSince", got.Plans)
	slices.SortFunc(got.Plans, compareIDs)
	paged := eachChange(t, s, version, 2, nil)
	if diff := cmp.Diff(got, paged, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("EachChange(%d) in pages of 2 mismatch ChangedSince (-ChangedSince +EachChange):\n%s", version, diff)
	}
	return got
}

// eachChange returns the changes of s since version read by EachChange in pages of
// limit, with the plans ordered by ID, stopping the test on an error. It reports an
// error for an empty page, a page beyond limit or of another version than EachChange
// returned. During is called after each page, with the page's number from 1.
func eachChange(t *testing.T, s catalog.Store, version int64, limit int, during func(page int)) catalog.Changes {
	t.Helper()
	var got catalog.Changes
	var versions []int64
	v, err := s.EachChange(t.Context(), version, limit, func(ch catalog.Changes) error {
		if len(ch.Plans) == 0 || len(ch.Plans) > limit {
			t.Errorf("EachChange(%d, limit %d): a page of %d plans", version, limit, len(ch.Plans))
		}
		got.Plans = append(got.Plans, ch.Plans...)
		versions = append(versions, ch.Version)
		if during != nil {
			during(len(versions))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("EachChange(%d, limit %d): %v", version, limit, err)
	}
	for i, pv := range versions {
		if pv != v {
			t.Errorf("EachChange(%d, limit %d): page %d read at version %d, returned %d", version, limit, i+1, pv, v)
		}
	}
	got.Version = v
	checkUTC(t, "EachChange", got.Plans)
	slices.SortFunc(got.Plans, compareIDs)
	return got
}

// wantSearch checks that SearchPlans(w) returns want, in the port's order: by start,
// then ID.
func wantSearch(t *testing.T, s catalog.Store, w catalog.Window, want []catalog.Plan) {
	t.Helper()
	want = slices.SortedStableFunc(slices.Values(want), compareStartThenID)
	got := search(t, s, w)
	if slices.EqualFunc(want, got, samePlan) {
		return
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("SearchPlans(%s) mismatch (-want +got):\n%s", formatWindow(w), diff)
	}
}

func wantChanges(t *testing.T, s catalog.Store, version int64, want catalog.Changes) {
	t.Helper()
	want.Plans = slices.SortedFunc(slices.Values(want.Plans), compareIDs)
	got := changedSince(t, s, version)
	if got.Version == want.Version && slices.EqualFunc(want.Plans, got.Plans, samePlan) {
		return
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("ChangedSince(%d) mismatch (-want +got):\n%s", version, diff)
	}
}

// searchable returns copies of plans as a store returns them once ever-online, last
// changed at version.
func searchable(version int64, plans ...catalog.Plan) []catalog.Plan {
	out := make([]catalog.Plan, len(plans))
	for i, p := range plans {
		p.EverOnline = true
		p.Version = version
		p.Zones = slices.Clone(p.Zones)
		out[i] = p
	}
	return out
}

// samePlan reports whether cmp.Diff would find no difference between a and b, faster:
// the large batches of the suite are slow to compare by reflection under -race.
func samePlan(a, b catalog.Plan) bool {
	return a.ID == b.ID && a.Provider == b.Provider && a.BasePlanID == b.BasePlanID && a.PlanID == b.PlanID &&
		a.Title == b.Title && a.OrganizerCompanyID == b.OrganizerCompanyID && a.SellMode == b.SellMode &&
		a.StartsAt.Equal(b.StartsAt) && a.EndsAt.Equal(b.EndsAt) && a.SellFrom.Equal(b.SellFrom) && a.SellTo.Equal(b.SellTo) &&
		a.SoldOut == b.SoldOut && slices.Equal(a.Zones, b.Zones) &&
		a.Revision == b.Revision && a.EverOnline == b.EverOnline && a.Version == b.Version
}

func compareIDs(a, b catalog.Plan) int { return bytes.Compare(a.ID[:], b.ID[:]) }

func compareStartThenID(a, b catalog.Plan) int {
	if c := a.StartsAt.Compare(b.StartsAt); c != 0 {
		return c
	}
	return compareIDs(a, b)
}

// checkUTC reports times that a store did not return in UTC. cmp compares times with
// Equal, which ignores the location.
func checkUTC(t *testing.T, call string, plans []catalog.Plan) {
	t.Helper()
	for _, p := range plans {
		for name, tm := range map[string]time.Time{"StartsAt": p.StartsAt, "EndsAt": p.EndsAt, "SellFrom": p.SellFrom, "SellTo": p.SellTo} {
			if tm.Location() != time.UTC {
				t.Errorf("%s: plan %s/%s: %s in %s, want UTC", call, p.BasePlanID, p.PlanID, name, tm.Location())
			}
		}
	}
}

func formatWindow(w catalog.Window) string {
	f := func(t time.Time) string {
		if t.IsZero() {
			return "open"
		}
		return t.Format(time.RFC3339Nano)
	}
	return f(w.From) + ".." + f(w.To)
}
