package ingesttest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"

	"boxoffice/catalog"
	"boxoffice/catalog/catalogtest"
	"boxoffice/ingest"
	"boxoffice/task"
)

// The contract of ingest.Baseline, and what a Syncer does with it: the cases run real
// syncs (ingest.Syncer) against the store and apply the batches they publish through
// the worker's handler (ingest.BatchHandler), in the orders a broker may deliver them.

func testBeginPublish(t *testing.T, s Store) {
	ctx := t.Context()
	begin := func(provider string, revision, after int64) error {
		t.Helper()
		err := s.BeginPublish(ctx, provider, revision, after)
		if err != nil && !errors.Is(err, ingest.ErrSuperseded) {
			t.Fatalf("BeginPublish(%s, %d, %d) = %v", provider, revision, after, err)
		}
		return err
	}
	if err := begin("fever", 10, 9); err != nil {
		t.Fatalf("BeginPublish(the first sync) = %v, want nil", err)
	}
	wantState(t, s, "fever", ingest.SyncState{Published: 10})
	if err := begin("fever", 20, 10); err != nil {
		t.Fatalf("BeginPublish(a newer sync after the one it saw) = %v, want nil", err)
	}
	// A sync that saw 10 and left plans out, overtaken by 20 meanwhile; a sync older
	// than 20 that left none out.
	if err := begin("fever", 30, 10); !errors.Is(err, ingest.ErrSuperseded) {
		t.Errorf("BeginPublish(30 after 10, with 20 begun) = %v, want ErrSuperseded", err)
	}
	if err := begin("fever", 15, 14); !errors.Is(err, ingest.ErrSuperseded) {
		t.Errorf("BeginPublish(15, with 20 begun) = %v, want ErrSuperseded", err)
	}
	wantState(t, s, "fever", ingest.SyncState{Published: 20})
	if err := begin("acme", 5, 4); err != nil {
		t.Errorf("BeginPublish(another provider's older revision) = %v, want nil", err)
	}
	wantState(t, s, "fever", ingest.SyncState{Published: 20})

	// Published counts until a sync at or above it is confirmed.
	s1 := newSync("fever", 20, 1, `"v1"`)
	apply(t, s, s1.batch(0))
	st := confirmed(s1)
	st.Published = 20
	wantState(t, s, "fever", st)
	if !st.Settled() {
		t.Errorf("%+v.Settled() = false, want true: every sync that began is confirmed", st)
	}
	if err := begin("fever", 40, 20); err != nil {
		t.Fatalf("BeginPublish(40 after 20) = %v, want nil", err)
	}
	st.Published = 40
	wantState(t, s, "fever", st)
	if st.Settled() {
		t.Errorf("%+v.Settled() = true, want false: sync 40 began and is not confirmed", st)
	}
}

func testStoredPlans(t *testing.T, s Store) {
	online := catalogtest.NewPlan("sp", "online")
	offline := catalogtest.NewPlan("sp", "offline", catalogtest.Offline)
	latin1 := catalogtest.NewPlan("sp", "latin1", catalogtest.Title("Espa\xf1a"))
	apply(t, s, newSync("fever", 10, 1, `"v1"`).withPlans(0, online, offline, latin1))
	apply(t, s, newSync("acme", 10, 1, `"a1"`).withPlans(0, catalogtest.NewPlan("sp", "other")))
	want := map[catalog.ID]storedPlan{}
	var f catalog.Fingerprinter
	for _, p := range []catalog.Plan{online, offline, latin1} {
		p.Provider = "fever"
		p.ID = catalog.NewID(p.Provider, p.BasePlanID, p.PlanID)
		want[p.ID] = storedPlan{fingerprint: f.Fingerprint(p), everOnline: p.SellMode == catalog.Online}
	}
	got := storedPlans(t, s, "fever")
	if len(got) != len(want) {
		t.Fatalf("StoredPlans(fever) = %v, want %v", got, want)
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("StoredPlans(fever)[%s] = %+v, want %+v (the fingerprint of catalog.Fingerprinter)", id, got[id], w)
		}
	}
}

// StoredPlans stops at the first error of its function, and returns it: how a sync
// stops reading a provider with more stored plans than it keeps.
func testStoredPlansStop(t *testing.T, s Store) {
	apply(t, s, newSync("fever", 10, 1, `"v1"`).withPlans(0,
		catalogtest.NewPlan("sp", "a"), catalogtest.NewPlan("sp", "b"), catalogtest.NewPlan("sp", "c")))
	stop := errors.New("enough")
	calls := 0
	err := s.StoredPlans(t.Context(), "fever", func(catalog.ID, int64, bool) error {
		if calls++; calls == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 2 {
		t.Errorf("StoredPlans(fever) = %v after %d calls, want %v after 2", err, calls, stop)
	}
}

// storedPlan is what StoredPlans gives of a plan.
type storedPlan struct {
	fingerprint int64
	everOnline  bool
}

func storedPlans(t *testing.T, s Store, provider string) map[catalog.ID]storedPlan {
	t.Helper()
	out := map[catalog.ID]storedPlan{}
	if err := s.StoredPlans(t.Context(), provider, func(id catalog.ID, fingerprint int64, everOnline bool) error {
		out[id] = storedPlan{fingerprint, everOnline}
		return nil
	}); err != nil {
		t.Fatalf("StoredPlans(%s) = %v", provider, err)
	}
	return out
}

// A re-sync of a Settled provider publishes only the plans it changes: none of an
// unchanged catalog (one batch without plans, which confirms the sync and its
// validators, and keeps the catalog version), one of a catalog with one plan changed.
func testResyncPublishesChanges(t *testing.T, s Store) {
	a, b, c := doc("a", "v1"), doc("b", "v1"), doc("c", "v1")
	in := newIngester(t, s, 10)
	deliver(t, s, in.sync(t, `"e1"`, a, b, c)...)
	v1 := catalogVersion(t, s)

	msgs := in.sync(t, `"e2"`, a, b, c)
	if got := in.last.Unchanged; got != 3 {
		t.Errorf("unchanged re-sync: Result.Unchanged = %d, want 3", got)
	}
	if n := plansIn(t, msgs); len(msgs) != 1 || n != 0 {
		t.Fatalf("unchanged re-sync published %d batches of %d plans, want one batch without plans", len(msgs), n)
	}
	deliver(t, s, msgs...)
	st := wantConfirmed(t, s, in, `"e2"`)
	if v := catalogVersion(t, s); v != v1 {
		t.Errorf("catalog version after an unchanged re-sync = %d, want %d", v, v1)
	}

	a2 := doc("a", "v2")
	msgs = in.sync(t, `"e3"`, a2, b, c)
	if n := plansIn(t, msgs); n != 1 {
		t.Fatalf("re-sync with one plan changed published %d plans, want 1", n)
	}
	deliver(t, s, msgs...)
	if next := wantConfirmed(t, s, in, `"e3"`); next.Revision <= st.Revision {
		t.Errorf("confirmed revision %d after %d, want it to grow", next.Revision, st.Revision)
	}
	wantTitles(t, s, map[string]string{"a": "v2", "b": "v1", "c": "v1"})
	if v := catalogVersion(t, s); v <= v1 {
		t.Errorf("catalog version after a changed plan = %d, want above %d", v, v1)
	}

	// A document without plans publishes nothing, and leaves nothing to wait for.
	if msgs := in.sync(t, `"e4"`); len(msgs) != 0 {
		t.Fatalf("sync of a document without plans published %d batches, want none", len(msgs))
	}
	if n := plansIn(t, in.sync(t, `"e5"`, a2, b, c)); n != 0 {
		t.Errorf("unchanged re-sync after a document without plans published %d plans, want none", n)
	}
}

// A sync that began to publish and is not confirmed (its batches still queued) makes
// the next sync publish every plan, even those the store holds as they are: an older
// batch applied before the new sync's would otherwise leave its values in place.
func testResyncAfterQueuedSync(t *testing.T, s Store) {
	in := newIngester(t, s, 10)
	deliver(t, s, in.sync(t, `"e1"`, doc("a", "v1"), doc("b", "v1"))...)
	queued := in.sync(t, `"e2"`, doc("a", "v2"), doc("b", "v1")) // not delivered yet
	msgs := in.sync(t, `"e3"`, doc("a", "v1"), doc("b", "v1"))
	if n := plansIn(t, msgs); n != 2 {
		t.Errorf("re-sync after a sync still queued published %d plans, want all 2", n)
	}
	deliver(t, s, queued...)
	deliver(t, s, msgs...)
	wantTitles(t, s, map[string]string{"a": "v1", "b": "v1"})
	wantConfirmed(t, s, in, `"e3"`)
}

// A sync whose publication broke after its first batch (a crash, a broker gone) makes
// the next sync publish every plan; its batch, applied later, leaves the next sync's
// values in place.
func testResyncAfterBrokenPublish(t *testing.T, s Store) {
	in := newIngester(t, s, 1)
	deliver(t, s, in.sync(t, `"e1"`, doc("a", "v1"), doc("b", "v1"))...)
	in.failAfter = 1
	sent, err := in.try(`"e2"`, doc("a", "v2"), doc("b", "v2"))
	if err == nil || len(sent) != 1 {
		t.Fatalf("sync with a publisher that fails after one batch: %d published, err %v; want 1 and an error", len(sent), err)
	}
	in.failAfter = 0
	msgs := in.sync(t, `"e3"`, doc("a", "v1"), doc("b", "v1"))
	if n := plansIn(t, msgs); n != 2 {
		t.Errorf("re-sync after a broken publication published %d plans, want all 2", n)
	}
	deliver(t, s, sent...)
	wantTitles(t, s, map[string]string{"a": "v2", "b": "v1"}) // the broken sync's batch is newer
	deliver(t, s, msgs...)
	wantTitles(t, s, map[string]string{"a": "v1", "b": "v1"})
	wantConfirmed(t, s, in, `"e3"`)
}

// A sync with a batch lost (dead-lettered) makes the next sync publish every plan; the
// lost batch, replayed after it, is late and leaves its values in place, and the sync
// after that is Settled again and leaves every plan out.
func testResyncAfterLostBatch(t *testing.T, s Store) {
	in := newIngester(t, s, 1)
	deliver(t, s, in.sync(t, `"e1"`, doc("a", "v1"), doc("b", "v1"))...)
	lossy := in.sync(t, `"e2"`, doc("a", "v2"), doc("b", "v2"))
	deliver(t, s, lossy[0]) // lossy[1] is dead-lettered
	msgs := in.sync(t, `"e3"`, doc("a", "v1"), doc("b", "v1"))
	if n := plansIn(t, msgs); n != 2 {
		t.Errorf("re-sync after a lost batch published %d plans, want all 2", n)
	}
	deliver(t, s, msgs...)
	deliver(t, s, lossy[1]) // replayed from the dead letters
	wantTitles(t, s, map[string]string{"a": "v1", "b": "v1"})
	wantConfirmed(t, s, in, `"e3"`)
	msgs = in.sync(t, `"e4"`, doc("a", "v1"), doc("b", "v1"))
	if n := plansIn(t, msgs); n != 0 {
		t.Errorf("re-sync once settled again published %d plans, want none", n)
	}
	deliver(t, s, msgs...)
	wantConfirmed(t, s, in, `"e4"`)
}

// A sync that left plans out publishes nothing when another sync began to publish after
// it read the stored plans (an ingest process that lost the lead meanwhile).
func testOvertakenSync(t *testing.T, s Store) {
	in, other := newIngester(t, s, 10), newIngester(t, s, 10)
	deliver(t, s, in.sync(t, `"e1"`, doc("a", "v1"))...)
	var overtaking []task.Message
	in.during = func() { overtaking = other.sync(t, `"e2"`, doc("a", "v2")) }
	sent, err := in.try(`"e3"`, doc("a", "v1"))
	if !errors.Is(err, ingest.ErrSuperseded) || len(sent) != 0 {
		t.Fatalf("overtaken sync: %d batches published, err %v; want none and ErrSuperseded", len(sent), err)
	}
	deliver(t, s, overtaking...)
	wantTitles(t, s, map[string]string{"a": "v2"})
}

// doc returns plan a of the ingester's documents with title.
func doc(plan, title string) catalog.Plan {
	return catalogtest.NewPlan("doc", plan, catalogtest.Title(title))
}

// ingester runs the syncs of provider fever with a Syncer on a store, serving each
// sync the plans it is given and keeping the batches it publishes.
type ingester struct {
	syncer    *ingest.Syncer
	plans     []catalog.Plan
	etag      string
	during    func() // called once the fetch began, before the plans stream; then cleared
	failAfter int    // when above 0, the publisher fails after that many batches of a sync
	last      ingest.Result

	mu   sync.Mutex // guards sent, published by the Syncer
	sent []task.Message
}

func newIngester(t *testing.T, s Store, batchSize int) *ingester {
	in := &ingester{}
	in.syncer = ingest.NewSyncer(in, in, nil, s, ingest.Config{Provider: "fever", BatchSize: batchSize,
		SpoolDir: t.TempDir()}, slog.New(slog.DiscardHandler))
	return in
}

// Fetch implements ingest.Source: the plans of the sync, as a document with validator etag.
func (in *ingester) Fetch(ctx context.Context, _ ingest.Validators, emit func(catalog.Plan) error) (ingest.Fetched, error) {
	if in.during != nil {
		during := in.during
		in.during = nil
		during()
	}
	for _, p := range in.plans {
		p.Provider = "fever"
		p.ID = catalog.NewID(p.Provider, p.BasePlanID, p.PlanID)
		if err := emit(p); err != nil {
			return ingest.Fetched{}, err
		}
	}
	return ingest.Fetched{Format: "planList", Parsed: len(in.plans), Validators: ingest.Validators{ETag: in.etag}}, nil
}

// Publish implements task.Publisher: it keeps the messages, up to failAfter of a sync.
func (in *ingester) Publish(_ context.Context, _ string, msgs ...task.Message) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, m := range msgs {
		if in.failAfter > 0 && len(in.sent) >= in.failAfter {
			return errors.New("broker gone")
		}
		in.sent = append(in.sent, m)
	}
	return nil
}

// try runs one sync of plans in a document with validator etag and returns the
// batches it published.
func (in *ingester) try(etag string, plans ...catalog.Plan) ([]task.Message, error) {
	in.plans, in.etag = plans, etag
	in.mu.Lock()
	in.sent = nil
	in.mu.Unlock()
	res, err := in.syncer.Sync(context.Background())
	in.last = res
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.sent, err
}

// sync is try for a sync that must succeed.
func (in *ingester) sync(t *testing.T, etag string, plans ...catalog.Plan) []task.Message {
	t.Helper()
	msgs, err := in.try(etag, plans...)
	if err != nil {
		t.Fatalf("sync %s: %v", etag, err)
	}
	return msgs
}

// deliver applies msgs in order, as a worker would.
func deliver(t *testing.T, s Store, msgs ...task.Message) {
	t.Helper()
	h := ingest.BatchHandler(s, nil)
	for _, m := range msgs {
		if err := h(t.Context(), m); err != nil {
			t.Fatalf("apply %s: %v", m.ID, err)
		}
	}
}

// plansIn returns how many plans the batches msgs carry.
func plansIn(t *testing.T, msgs []task.Message) int {
	t.Helper()
	n := 0
	for _, m := range msgs {
		b, err := ingest.DecodeBatch(m.Body)
		if err != nil {
			t.Fatalf("decode %s: %v", m.ID, err)
		}
		n += len(b.Plans)
	}
	return n
}

// wantConfirmed checks that the ingester's last sync is confirmed with etag and that
// the state is Settled, and returns the state.
func wantConfirmed(t *testing.T, s Store, in *ingester, etag string) ingest.SyncState {
	t.Helper()
	st, err := s.SyncState(t.Context(), "fever")
	if err != nil {
		t.Fatalf("SyncState(fever) = %v", err)
	}
	if id := strconv.FormatInt(st.Revision, 36); id != in.last.SyncID || st.Validators.ETag != etag || !st.Settled() {
		t.Fatalf("SyncState(fever) = %+v, want sync %s confirmed with ETag %s, and settled", st, in.last.SyncID, etag)
	}
	return st
}

// wantTitles checks the titles of the stored plans of the ingester's documents, by plan id.
func wantTitles(t *testing.T, s Store, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, p := range stored(t, s) {
		if p.Provider == "fever" && p.BasePlanID == "doc" {
			got[p.PlanID] = p.Title
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stored titles = %v, want %v", got, want)
	}
}

// catalogVersion returns the store's catalog version.
func catalogVersion(t *testing.T, s Store) int64 {
	t.Helper()
	ch, err := s.ChangedSince(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return ch.Version
}
