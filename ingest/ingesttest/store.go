// Package ingesttest holds the contract suite that every store of ingest's ports
// (ingest.BatchStore, ingest.SyncLog and ingest.Baseline) runs: TestStore.
package ingesttest

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"boxoffice/catalog"
	"boxoffice/catalog/catalogtest"
	"boxoffice/ingest"
)

// Store is what the suite needs of an adapter: ingest's ports, and the catalog's reads
// to see the plans a batch applied.
type Store interface {
	ingest.BatchStore
	ingest.SyncLog
	ingest.Baseline
	catalog.Store
	// ProviderSyncs returns the records of RecordSync, one per provider, by name: what
	// GET /api/v1/providers reads (httpapi.ProviderLog).
	ProviderSyncs(ctx context.Context) ([]ingest.SyncRecord, error)
}

// Features lists what an adapter can do beyond the ports.
type Features struct {
	// Reopen closes s and returns a new Store over the same data, as a restart of the
	// process would; nil when the adapter keeps nothing across a restart.
	Reopen func(t *testing.T, s Store) Store
}

// TestStore runs the contract of ingest.BatchStore, ingest.SyncLog and ingest.Baseline
// against an adapter. Every sub-test calls open for an empty store of its own, which open closes
// through t.Cleanup; sub-tests run in parallel.
func TestStore(t *testing.T, open func(t *testing.T) Store, f Features) {
	run := func(name string, test func(t *testing.T, s Store)) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, open(t))
		})
	}
	run("NeverSynced", testNeverSynced)
	run("UntrackedBatchIsOnlyApplied", testUntracked)
	run("CompleteSyncConfirmsValidators", testComplete)
	run("BatchesInAnyOrderAndTwice", testAnyOrder)
	run("LostBatchKeepsTheSyncOpen", testLostBatch)
	run("ReplayedBatchCompletesItsSync", testReplayed)
	run("OlderSyncNeverReplacesANewer", testOlderSync)
	run("UnchangedResyncWritesNothing", testUnchangedResync)
	run("LateBatchNeverRegressesAnUnchangedResync", testLateAfterUnchanged)
	run("ProvidersAreIndependent", testProviders)
	run("ConcurrentBatchesOfOneSync", testConcurrent)
	run("RecordSyncKeepsTheLastOfEachProvider", testRecordSync)
	run("BeginPublishOrdersSyncs", testBeginPublish)
	run("StoredPlansHaveTheirFingerprints", testStoredPlans)
	run("StoredPlansStopAtAnError", testStoredPlansStop)
	run("ResyncPublishesOnlyChanges", testResyncPublishesChanges)
	run("ResyncAfterAQueuedSyncPublishesAll", testResyncAfterQueuedSync)
	run("ResyncAfterABrokenPublishPublishesAll", testResyncAfterBrokenPublish)
	run("ResyncAfterALostBatchPublishesAll", testResyncAfterLostBatch)
	run("OvertakenSyncPublishesNothing", testOvertakenSync)
	t.Run("Reopen", func(t *testing.T) {
		if f.Reopen == nil {
			t.Skip("the adapter keeps nothing across a restart")
		}
		t.Parallel()
		testReopen(t, open(t), f.Reopen)
	})
}

// testSync is a sync whose batches the tests apply, in any order.
type testSync struct {
	provider   string
	revision   int64
	batches    int
	validators ingest.Validators
}

func newSync(provider string, revision int64, batches int, etag string) testSync {
	return testSync{provider: provider, revision: revision, batches: batches,
		validators: ingest.Validators{ETag: etag, LastModified: "Wed, 30 Jun 2021 21:00:00 GMT"}}
}

// batch returns batch seq of the sync, with two plans of its own and a plan that
// every batch of every sync carries.
func (s testSync) batch(seq int) ingest.Batch {
	rev := catalogtest.Revision(s.revision)
	title := catalogtest.Title("rev " + strconv.FormatInt(s.revision, 10))
	plans := []catalog.Plan{
		catalogtest.NewPlan("b"+strconv.Itoa(seq), "1", rev, title),
		catalogtest.NewPlan("b"+strconv.Itoa(seq), "2", rev, title),
		catalogtest.NewPlan("shared", "1", rev, title),
	}
	for i := range plans { // the plans of the sync's provider, as ingest makes them
		p := &plans[i]
		p.Provider = s.provider
		p.ID = catalog.NewID(p.Provider, p.BasePlanID, p.PlanID)
	}
	return ingest.Batch{Schema: 1, Provider: s.provider, SyncID: strconv.FormatInt(s.revision, 36),
		Revision: s.revision, Seq: seq, Batches: s.batches, Validators: s.validators, Plans: plans}
}

func apply(t *testing.T, s Store, b ingest.Batch) int64 {
	t.Helper()
	v, err := s.ApplyBatch(t.Context(), b)
	if err != nil {
		t.Fatalf("ApplyBatch(%s seq %d of %d) = %v", b.SyncID, b.Seq, b.Batches, err)
	}
	return v
}

func wantState(t *testing.T, s Store, provider string, want ingest.SyncState) {
	t.Helper()
	got, err := s.SyncState(t.Context(), provider)
	if err != nil {
		t.Fatalf("SyncState(%s) = %v", provider, err)
	}
	if got != want {
		t.Fatalf("SyncState(%s) = %+v, want %+v", provider, got, want)
	}
}

// confirmed is the state after sync s completed, with no newer sync applied.
func confirmed(s testSync) ingest.SyncState {
	return ingest.SyncState{Revision: s.revision, Validators: s.validators, Latest: s.revision}
}

func testNeverSynced(t *testing.T, s Store) {
	wantState(t, s, "fever", ingest.SyncState{})
	if got := (ingest.SyncState{}).Since(); got != (ingest.Validators{}) {
		t.Errorf("zero state's Since() = %+v, want no validators", got)
	}
}

func testUntracked(t *testing.T, s Store) {
	b := newSync("fever", 10, 1, `"v1"`).batch(0)
	b.Batches, b.Provider, b.Revision, b.Validators = 0, "", 0, ingest.Validators{}
	if v := apply(t, s, b); v <= 0 {
		t.Fatalf("ApplyBatch(untracked batch of new online plans) = %d, want a version above 0", v)
	}
	ch, err := s.ChangedSince(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Plans) != len(b.Plans) {
		t.Errorf("%d plans searchable after an untracked batch of %d, want all", len(ch.Plans), len(b.Plans))
	}
	wantState(t, s, "fever", ingest.SyncState{})
}

func testComplete(t *testing.T, s Store) {
	s1 := newSync("fever", 10, 3, `"v1"`)
	apply(t, s, s1.batch(0))
	apply(t, s, s1.batch(1))
	// A sync in progress: the store holds part of its document, no validator fits.
	wantState(t, s, "fever", ingest.SyncState{Latest: 10})
	if got := (ingest.SyncState{Latest: 10}).Since(); got != (ingest.Validators{}) {
		t.Errorf("Since() during the first sync = %+v, want none", got)
	}
	v := apply(t, s, s1.batch(2))
	wantState(t, s, "fever", confirmed(s1))
	if got := confirmed(s1).Since(); got != s1.validators {
		t.Errorf("Since() after a complete sync = %+v, want %+v", got, s1.validators)
	}
	ch, err := s.ChangedSince(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Plans) != 7 || ch.Version != v {
		t.Errorf("ChangedSince(0) = %d plans at version %d, want the sync's 7 at %d", len(ch.Plans), ch.Version, v)
	}

	// The next sync, in progress, hides the confirmed validators from Since.
	s2 := newSync("fever", 20, 2, `"v2"`)
	apply(t, s, s2.batch(1))
	st := ingest.SyncState{Revision: 10, Validators: s1.validators, Latest: 20}
	wantState(t, s, "fever", st)
	if got := st.Since(); got != (ingest.Validators{}) {
		t.Errorf("Since() with a newer sync in progress = %+v, want none", got)
	}
	apply(t, s, s2.batch(0))
	wantState(t, s, "fever", confirmed(s2))
}

func testAnyOrder(t *testing.T, s Store) {
	s1 := newSync("fever", 10, 3, `"v1"`)
	for _, seq := range []int{2, 0, 2, 0} {
		apply(t, s, s1.batch(seq))
	}
	wantState(t, s, "fever", ingest.SyncState{Latest: 10})
	apply(t, s, s1.batch(1))
	wantState(t, s, "fever", confirmed(s1))
	apply(t, s, s1.batch(1)) // a redelivery after the confirmation
	wantState(t, s, "fever", confirmed(s1))
}

func testLostBatch(t *testing.T, s Store) {
	s1 := newSync("fever", 10, 2, `"v1"`)
	apply(t, s, s1.batch(0))
	apply(t, s, s1.batch(1))
	s2 := newSync("fever", 20, 3, `"v2"`)
	apply(t, s, s2.batch(0))
	apply(t, s, s2.batch(2)) // batch 1 is dead-lettered
	lost := ingest.SyncState{Revision: 10, Validators: s1.validators, Latest: 20}
	wantState(t, s, "fever", lost)

	// The next sync is unconditional and completes: it is confirmed, and the lost
	// batch no longer matters.
	s3 := newSync("fever", 30, 1, `"v2"`)
	apply(t, s, s3.batch(0))
	wantState(t, s, "fever", confirmed(s3))
	apply(t, s, s2.batch(1)) // replayed late: applied, its sync is older than s3
	wantState(t, s, "fever", confirmed(s3))
}

func testReplayed(t *testing.T, s Store) {
	s1 := newSync("fever", 10, 3, `"v1"`)
	apply(t, s, s1.batch(0))
	apply(t, s, s1.batch(2))
	wantState(t, s, "fever", ingest.SyncState{Latest: 10})
	apply(t, s, s1.batch(1)) // replayed from the dead letters
	wantState(t, s, "fever", confirmed(s1))
}

func testOlderSync(t *testing.T, s Store) {
	s1 := newSync("fever", 10, 2, `"v1"`)
	s2 := newSync("fever", 20, 1, `"v2"`)
	apply(t, s, s1.batch(0))
	apply(t, s, s2.batch(0))
	wantState(t, s, "fever", confirmed(s2))
	apply(t, s, s1.batch(1)) // the older sync's last batch, late
	wantState(t, s, "fever", confirmed(s2))
	s0 := newSync("fever", 5, 1, `"v0"`)
	apply(t, s, s0.batch(0)) // an older sync of one batch, complete by itself, late
	wantState(t, s, "fever", confirmed(s2))
	ch, err := s.ChangedSince(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ch.Plans {
		if p.BasePlanID == "shared" && p.Title != "rev 20" {
			t.Errorf("plan shared/1 has title %q after a late batch of an older sync, want the newer sync's", p.Title)
		}
	}
}

// withPlans returns batch seq of sync s carrying plans, made the plans of s's
// provider at s's revision, as ingest makes them.
func (s testSync) withPlans(seq int, plans ...catalog.Plan) ingest.Batch {
	b := s.batch(seq)
	b.Plans = make([]catalog.Plan, len(plans))
	for i, p := range plans {
		p.Provider, p.Revision = s.provider, s.revision
		p.ID = catalog.NewID(p.Provider, p.BasePlanID, p.PlanID)
		b.Plans[i] = p
	}
	return b
}

// stored returns the searchable plans by plan id.
func stored(t *testing.T, s Store) map[string]catalog.Plan {
	t.Helper()
	ch, err := s.ChangedSince(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]catalog.Plan, len(ch.Plans))
	for _, p := range ch.Plans {
		out[p.BasePlanID+"/"+p.PlanID] = p
	}
	return out
}

// A re-sync that finds every plan as stored writes no plan row and keeps the catalog
// version; the next one that changes a plan writes that plan alone and advances it.
func testUnchangedResync(t *testing.T, s Store) {
	a, b := catalogtest.NewPlan("u", "a"), catalogtest.NewPlan("u", "b")
	s1 := newSync("fever", 10, 1, `"v1"`)
	v1 := apply(t, s, s1.withPlans(0, a, b))
	s2 := newSync("fever", 20, 2, `"v2"`)
	if v := apply(t, s, s2.withPlans(0, a)); v != v1 {
		t.Errorf("ApplyBatch(an unchanged plan, newer sync) = version %d, want %d", v, v1)
	}
	if v := apply(t, s, s2.withPlans(1, b)); v != v1 {
		t.Errorf("ApplyBatch(the last unchanged plan, newer sync) = version %d, want %d", v, v1)
	}
	wantState(t, s, "fever", confirmed(s2))
	for id, p := range stored(t, s) {
		if p.Revision != 10 || p.Version != v1 {
			t.Errorf("plan %s after an unchanged re-sync: revision %d, version %d; want 10 and %d (not written)", id, p.Revision, p.Version, v1)
		}
	}

	s3 := newSync("fever", 30, 1, `"v3"`)
	a3 := a
	a3.Title = "Changed"
	v3 := apply(t, s, s3.withPlans(0, a3, b))
	if v3 <= v1 {
		t.Fatalf("ApplyBatch(a changed plan) = version %d, want above %d", v3, v1)
	}
	got := stored(t, s)
	if p := got["u/a"]; p.Title != "Changed" || p.Revision != 30 || p.Version != v3 {
		t.Errorf("changed plan: title %q, revision %d, version %d; want %q, 30 and %d", p.Title, p.Revision, p.Version, "Changed", v3)
	}
	if p := got["u/b"]; p.Revision != 10 || p.Version != v1 {
		t.Errorf("unchanged plan beside it: revision %d, version %d; want 10 and %d", p.Revision, p.Version, v1)
	}
}

// A batch of an older sync that arrives after a newer sync found a plan unchanged (and
// so wrote nothing, leaving the stored revision below its own) never replaces the
// values the newer sync observed.
func testLateAfterUnchanged(t *testing.T, s Store) {
	a := catalogtest.NewPlan("late", "a")
	s1 := newSync("fever", 10, 1, `"v1"`)
	v1 := apply(t, s, s1.withPlans(0, a))
	s3 := newSync("fever", 30, 1, `"v3"`)
	apply(t, s, s3.withPlans(0, a)) // unchanged: nothing written
	s2 := newSync("fever", 20, 2, `"v2"`)
	old := a
	old.Title = "Between the two"
	if v := apply(t, s, s2.withPlans(0, old)); v != v1 {
		t.Errorf("ApplyBatch(late batch of an older sync) = version %d, want %d", v, v1)
	}
	if p := stored(t, s)["late/a"]; p.Title != a.Title {
		t.Errorf("plan after a late batch of an older sync: title %q, want the newer sync's %q", p.Title, a.Title)
	}
	wantState(t, s, "fever", confirmed(s3))

	// A plan that no newer sync has seen is still inserted by a late batch.
	fresh := catalogtest.NewPlan("late", "fresh")
	apply(t, s, s2.withPlans(1, fresh))
	if _, ok := stored(t, s)["late/fresh"]; !ok {
		t.Errorf("a new plan of a late batch was not stored")
	}
}

func testProviders(t *testing.T, s Store) {
	fever := newSync("fever", 10, 1, `"f1"`)
	acme := newSync("acme", 5, 2, `"a1"`)
	apply(t, s, fever.batch(0))
	apply(t, s, acme.batch(0))
	wantState(t, s, "fever", confirmed(fever))
	wantState(t, s, "acme", ingest.SyncState{Latest: 5})
	apply(t, s, acme.batch(1))
	wantState(t, s, "acme", confirmed(acme))
	wantState(t, s, "fever", confirmed(fever))
	wantState(t, s, "other", ingest.SyncState{})
}

func testConcurrent(t *testing.T, s Store) {
	const n = 8
	s1 := newSync("fever", 10, n, `"v1"`)
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for seq := range n {
		for range 2 { // each batch twice, as a redelivery racing the first delivery
			wg.Go(func() {
				if _, err := s.ApplyBatch(t.Context(), s1.batch(seq)); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent ApplyBatch: %v", err)
	}
	wantState(t, s, "fever", confirmed(s1))
}

func testReopen(t *testing.T, s Store, reopen func(t *testing.T, s Store) Store) {
	s1 := newSync("fever", 10, 1, `"v1"`)
	apply(t, s, s1.batch(0))
	s2 := newSync("fever", 20, 2, `"v2"`)
	apply(t, s, s2.batch(1))
	s = reopen(t, s)
	wantState(t, s, "fever", ingest.SyncState{Revision: 10, Validators: s1.validators, Latest: 20})
	apply(t, s, s2.batch(0))
	wantState(t, s, "fever", confirmed(s2))
}

// testRecordSync records syncs of two providers: each keeps its last, a failure keeps
// the last success, and times come back to the microsecond in UTC.
func testRecordSync(t *testing.T, s Store) {
	ctx := t.Context()
	if recs, err := s.ProviderSyncs(ctx); err != nil || len(recs) != 0 {
		t.Fatalf("ProviderSyncs() of an empty store = %v, %v; want none", recs, err)
	}
	at := time.Date(2026, 12, 4, 22, 0, 0, 123456000, time.UTC)
	ok := ingest.SyncRecord{Provider: "b", SyncID: "s1", StartedAt: at, FinishedAt: at.Add(1500 * time.Millisecond),
		Outcome: ingest.OutcomeOK, Format: "json", Parsed: 10, Skipped: 2, Batches: 1, Attempts: 2, NextAt: at.Add(5 * time.Minute)}
	other := ingest.SyncRecord{Provider: "a", SyncID: "x1", StartedAt: at, FinishedAt: at, Outcome: ingest.OutcomeNotModified,
		Format: "planList", Attempts: 1, NextAt: at.Add(time.Minute)}
	for _, rec := range []ingest.SyncRecord{ok, other} {
		if err := s.RecordSync(ctx, rec); err != nil {
			t.Fatalf("RecordSync(%s) = %v", rec.SyncID, err)
		}
	}
	ok.LastSuccessAt, other.LastSuccessAt = ok.FinishedAt, other.FinishedAt
	checkRecords(t, s, other, ok)

	failed := ingest.SyncRecord{Provider: "b", SyncID: "s2", StartedAt: at.Add(5 * time.Minute), FinishedAt: at.Add(6 * time.Minute),
		Outcome: ingest.OutcomeFailed, Error: "provider: GET http://b/: 500 Internal Server Error", Attempts: 4, NextAt: at.Add(10 * time.Minute)}
	if err := s.RecordSync(ctx, failed); err != nil {
		t.Fatalf("RecordSync(failed) = %v", err)
	}
	failed.LastSuccessAt = ok.FinishedAt
	checkRecords(t, s, other, failed)
}

func checkRecords(t *testing.T, s Store, want ...ingest.SyncRecord) {
	t.Helper()
	got, err := s.ProviderSyncs(t.Context())
	if err != nil {
		t.Fatalf("ProviderSyncs() = %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("ProviderSyncs() = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ProviderSyncs()[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}
