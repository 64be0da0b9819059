package catalog_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"boxoffice/catalog"
	"boxoffice/catalog/catalogtest"
	"boxoffice/clock/clocktest"
	"boxoffice/httpapi"
	"boxoffice/memory"
	"boxoffice/sqlite"
	"boxoffice/testenv"
)

// countingStore counts the catalog reads.
type countingStore struct {
	catalog.Store
	reads atomic.Int32
}

func (c *countingStore) ChangedSince(ctx context.Context, v int64) (catalog.Changes, error) {
	c.reads.Add(1)
	return c.Store.ChangedSince(ctx, v)
}

func (c *countingStore) EachChange(ctx context.Context, v int64, limit int, fn func(catalog.Changes) error) (int64, error) {
	c.reads.Add(1)
	return c.Store.EachChange(ctx, v, limit, fn)
}

func newStore(t *testing.T, plans int) *countingStore {
	s, err := sqlite.Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	batch := make([]catalog.Plan, plans)
	for i := range batch {
		batch[i] = catalogtest.NewPlan(strconv.Itoa(i), "1")
	}
	if _, err := s.UpsertPlans(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	return &countingStore{Store: s}
}

func TestSearcherIndexBudget(t *testing.T) {
	store := newStore(t, 500)
	log := slog.New(slog.DiscardHandler)
	full := catalog.NewSearcher(store, httpapi.EncodeEvent, catalog.SearcherConfig{Poll: time.Hour}, log)
	if _, err := full.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	ix := full.Index()
	if ix == nil || ix.Len() != 500 || full.OverBudget() {
		t.Fatalf("without a budget: index %v, over budget %v", ix, full.OverBudget())
	}
	changes, err := store.ChangedSince(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if est, got := catalog.EstimateBytes(changes.Plans), ix.Bytes(); est < got*3/4 || est > got*5/4 {
		t.Errorf("EstimateBytes = %d for an index of %d bytes: off by more than a quarter", est, got)
	}

	fits := catalog.NewSearcher(store, httpapi.EncodeEvent, catalog.SearcherConfig{Poll: time.Hour, MaxBytes: ix.Bytes() * 2}, log)
	if _, err := fits.Refresh(t.Context()); err != nil || fits.Index() == nil || fits.OverBudget() {
		t.Errorf("within the budget: index %v, over %v, err %v", fits.Index(), fits.OverBudget(), err)
	}

	over := catalog.NewSearcher(store, httpapi.EncodeEvent, catalog.SearcherConfig{Poll: time.Hour, MaxBytes: ix.Bytes() / 2}, log)
	store.reads.Store(0)
	for range 3 {
		if _, err := over.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if over.Index() != nil || !over.OverBudget() {
		t.Errorf("over the budget: index %v, over %v; want no index and over", over.Index(), over.OverBudget())
	}
	if n := store.reads.Load(); n != 1 {
		t.Errorf("the catalog was read %d times over the budget, want once: it never shrinks", n)
	}
}

// change upserts a new revision of plan 0 of newStore's catalog with title, and returns
// the catalog version after it.
func change(t *testing.T, s catalog.Store, rev int64, title string) int64 {
	t.Helper()
	p := catalogtest.NewPlan("0", "1", catalogtest.Revision(rev), catalogtest.Title(title))
	v, err := s.UpsertPlans(t.Context(), []catalog.Plan{p})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// allDocs returns the documents of ix, concatenated.
func allDocs(ix *catalog.Index) string {
	var b strings.Builder
	for doc := range ix.Search(catalog.Window{}) {
		b.Write(doc)
	}
	return b.String()
}

func TestSearcherHistory(t *testing.T) {
	store := newStore(t, 50)
	s := catalog.NewSearcher(store, httpapi.EncodeEvent, catalog.SearcherConfig{Poll: time.Hour, History: 2}, slog.New(slog.DiscardHandler))
	v1, err := s.Refresh(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	docs := map[int64]string{v1: allDocs(s.Index())}
	versions := []int64{v1}
	for rev := int64(2); rev <= 4; rev++ {
		v := change(t, store, rev, "revision "+strconv.FormatInt(rev, 10))
		if got, err := s.Refresh(t.Context()); err != nil || got != v {
			t.Fatalf("Refresh() = %d, %v; want %d", got, err, v)
		}
		docs[v] = allDocs(s.Index())
		versions = append(versions, v)
	}
	// The current version and the two before it are kept, each as it was.
	for i, v := range versions {
		ix := s.IndexAt(v)
		if i == 0 {
			if ix != nil {
				t.Errorf("IndexAt(%d) = an index; want nil: three versions newer are kept", v)
			}
			continue
		}
		if ix == nil || ix.Version() != v || allDocs(ix) != docs[v] {
			t.Errorf("IndexAt(%d) = %v; want the index of that version, as it was", v, ix)
		}
	}
	if docs[versions[1]] == docs[versions[3]] {
		t.Fatalf("the versions' documents are the same: the test changes nothing")
	}
	if s.IndexAt(versions[3]+1) != nil {
		t.Errorf("IndexAt(a version not loaded) = an index, want nil")
	}
	if cur, all := s.Index().Bytes(), s.Bytes(); all <= cur {
		t.Errorf("Bytes() = %d with two previous versions kept, want more than the current index's %d", all, cur)
	}
}

func TestSearcherHistoryWithinBudget(t *testing.T) {
	// What the index and one previous version cost, measured on a twin of the store.
	twin := newStore(t, 200)
	probe := catalog.NewSearcher(twin, httpapi.EncodeEvent, catalog.SearcherConfig{Poll: time.Hour, History: 1}, slog.New(slog.DiscardHandler))
	if _, err := probe.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	size := probe.Index().Bytes()
	change(t, twin, 2, "revision 2")
	if _, err := probe.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	kept := probe.Bytes() - probe.Index().Bytes()
	if kept <= 0 {
		t.Fatalf("a previous version kept costs %d bytes, want more than 0", kept)
	}
	budget := size + kept*3/2

	// Room for the current index and about one previous version, not three.
	store := newStore(t, 200)
	s := catalog.NewSearcher(store, httpapi.EncodeEvent, catalog.SearcherConfig{Poll: time.Hour, History: 3, MaxBytes: budget}, slog.New(slog.DiscardHandler))
	if _, err := s.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	var versions []int64
	for rev := int64(2); rev <= 4; rev++ {
		versions = append(versions, change(t, store, rev, "revision "+strconv.FormatInt(rev, 10)))
		if _, err := s.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if s.OverBudget() || s.Index() == nil {
		t.Fatalf("over budget %v: the current index fits, the history must give way", s.OverBudget())
	}
	if got := s.Bytes(); got > budget {
		t.Errorf("Bytes() = %d, over the budget of %d", got, budget)
	}
	if s.IndexAt(versions[1]) == nil {
		t.Errorf("IndexAt(the previous version) = nil, want it kept: it fits")
	}
	if s.IndexAt(versions[0]) != nil {
		t.Errorf("IndexAt(two versions back) = an index, want it dropped for the budget")
	}
}

// TestSearcherLoadsInPages reads the catalog and a catch-up in pages of 7 plans: the
// indexes are those of one read of everything, and the version the catch-up replaced is
// kept as it was, its cost counted.
func TestSearcherLoadsInPages(t *testing.T) {
	store := newStore(t, 100)
	log := slog.New(slog.DiscardHandler)
	paged := catalog.NewSearcher(store, httpapi.EncodeEvent, catalog.SearcherConfig{Poll: time.Hour, History: 1, Page: 7}, log)
	whole := catalog.NewSearcher(store, httpapi.EncodeEvent, catalog.SearcherConfig{Poll: time.Hour, Page: 1000}, log)
	check := func(when string) {
		t.Helper()
		vp, err := paged.Refresh(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		vw, err := whole.Refresh(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if vp != vw || paged.Index().Len() != whole.Index().Len() || allDocs(paged.Index()) != allDocs(whole.Index()) {
			t.Errorf("%s: in pages of 7, version %d of %d plans; in one page, %d of %d; want the same index", when,
				vp, paged.Index().Len(), vw, whole.Index().Len())
		}
	}
	check("first load")
	v1, before := paged.Index().Version(), allDocs(paged.Index())

	var batch []catalog.Plan
	for i := range 30 {
		batch = append(batch, catalogtest.NewPlan(strconv.Itoa(i*3), "1", catalogtest.Revision(2), catalogtest.Title("changed")))
	}
	batch = append(batch, catalogtest.NewPlan("new", "1"))
	if _, err := store.UpsertPlans(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	check("catch-up of 31 plans")
	if ix := paged.IndexAt(v1); ix == nil || allDocs(ix) != before {
		t.Errorf("IndexAt(%d) after a catch-up in pages = %v, want the first load as it was", v1, ix)
	}
	if kept := paged.Bytes() - paged.Index().Bytes(); kept <= 0 {
		t.Errorf("keeping the version before a catch-up in pages costs %d bytes, want more than 0", kept)
	}
}

// failingStore fails EachChange after a number of pages, as a store whose connection
// breaks part-way, and reports what the Searcher serves while the pages come.
type failingStore struct {
	catalog.Store
	pages   int // pages before the failure
	during  func()
	refused error
}

func (f *failingStore) EachChange(ctx context.Context, v int64, limit int, fn func(catalog.Changes) error) (int64, error) {
	n := 0
	return f.Store.EachChange(ctx, v, limit, func(ch catalog.Changes) error {
		if n == f.pages {
			return f.refused
		}
		n++
		if err := fn(ch); err != nil {
			return err
		}
		f.during()
		return nil
	})
}

// TestSearcherServesOnlyWholeVersions breaks reads part-way: the Searcher never serves
// an index of part of the pages, keeps what it served before, and loads in full once
// the store answers.
func TestSearcherServesOnlyWholeVersions(t *testing.T) {
	store := newStore(t, 50)
	f := &failingStore{Store: store, pages: 3, refused: errors.New("connection reset")}
	s := catalog.NewSearcher(f, httpapi.EncodeEvent, catalog.SearcherConfig{Poll: time.Hour, Page: 5}, slog.New(slog.DiscardHandler))
	var served []string // the documents served while pages came
	f.during = func() {
		if ix := s.Index(); ix != nil {
			served = append(served, allDocs(ix))
		}
	}
	if _, err := s.Refresh(t.Context()); err == nil || s.Index() != nil || len(served) > 0 {
		t.Fatalf("first load broken after 3 pages: err %v, index %v, %d indexes served while loading; want an error and no index", err, s.Index(), len(served))
	}
	f.pages = 100
	v1, err := s.Refresh(t.Context())
	if err != nil || s.Index() == nil || s.Index().Len() != 50 || len(served) > 0 {
		t.Fatalf("first load: version %d, %v, index %v, %d indexes served while loading; want 50 plans, none before", v1, err, s.Index(), len(served))
	}
	before := allDocs(s.Index())

	var batch []catalog.Plan
	for i := range 40 {
		batch = append(batch, catalogtest.NewPlan(strconv.Itoa(i), "1", catalogtest.Revision(2), catalogtest.Title("changed")))
	}
	if _, err := store.UpsertPlans(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	f.pages = 2
	if v, err := s.Refresh(t.Context()); err == nil || v != v1 || allDocs(s.Index()) != before {
		t.Errorf("catch-up broken after 2 pages = %d, %v; want %d and an error, the index as it was", v, err, v1)
	}
	if len(served) != 2 {
		t.Errorf("%d pages of the catch-up went by, want 2", len(served))
	}
	for _, docs := range served {
		if docs != before {
			t.Errorf("served another index than the previous version while catching up")
		}
	}
	f.pages = 100
	if v, err := s.Refresh(t.Context()); err != nil || v <= v1 || strings.Count(allDocs(s.Index()), "changed") != 40 {
		t.Errorf("catch-up = %d, %v with %d changed plans served; want a version above %d with 40", v, err, strings.Count(allDocs(s.Index()), "changed"), v1)
	}
}

// flakyNotifier fails its first subscriptions, as Redis does while it is unreachable,
// then subscribes to Notifier.
type flakyNotifier struct {
	catalog.Notifier
	failures int          // subscriptions to fail
	calls    atomic.Int32 // Subscribe calls so far
}

func (f *flakyNotifier) Subscribe(ctx context.Context, fn func(int64)) error {
	if int(f.calls.Add(1)) <= f.failures {
		return errors.New("subscribe to catalog:version: connection refused")
	}
	return f.Notifier.Subscribe(ctx, fn)
}

// TestSearcherFollowSurvivesAFailedSubscription fails the first two subscriptions to
// the announcements, as at a start while Redis is unreachable: Follow must log each
// with its cause, pause on the Searcher's clock (100 ms, then 200 ms) before trying
// again, keep serving the index meanwhile, and refresh at an announcement once
// subscribed (the poll, an hour, never comes).
func TestSearcherFollowSurvivesAFailedSubscription(t *testing.T) {
	store := newStore(t, 10)
	clk := clocktest.NewManual(time.Now())
	var logs testenv.Logs
	s := catalog.NewSearcher(store, httpapi.EncodeEvent, catalog.SearcherConfig{Poll: time.Hour, Clock: clk},
		slog.New(slog.NewJSONHandler(&logs, nil)))
	v1, err := s.Refresh(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	n := &flakyNotifier{Notifier: memory.NewNotifier(), failures: 2}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	followed := make(chan error, 1)
	wg.Go(func() { s.Run(ctx) })
	wg.Go(func() { followed <- s.Follow(ctx, n) })
	defer func() { cancel(); wg.Wait() }()

	for i, pause := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond} {
		// Run's ticker, and Follow's pause after a failure.
		testenv.Poll(t, "the pause after failure "+strconv.Itoa(i+1), func() bool { return clk.Waiters() == 2 })
		if got := int(n.calls.Load()); got != i+1 {
			t.Fatalf("%d subscriptions before the pause %d ended, want %d", got, i+1, i+1)
		}
		if ix := s.Index(); ix == nil || ix.Version() != v1 {
			t.Fatalf("index %v while the subscription fails, want version %d served", ix, v1)
		}
		clk.Advance(pause)
	}
	testenv.Poll(t, "the third subscription", func() bool { return n.calls.Load() == 3 })
	v2 := change(t, store, 2, "After")
	testenv.Poll(t, "the announced version served", func() bool {
		if err := n.Publish(t.Context(), v2); err != nil { // until the subscription hears it
			t.Fatal(err)
		}
		return s.Index().Version() == v2
	})

	failed := logs.Lines(`"msg":"catalog versions: subscription failed`)
	if len(failed) != 2 {
		t.Fatalf("logged %d subscription failures, want 2:\n%s", len(failed), logs.String())
	}
	for i, line := range failed {
		for _, want := range []string{`"level":"WARN"`, `"err":"subscribe to catalog:version: connection refused"`,
			`"attempts":` + strconv.Itoa(i+1)} {
			if !strings.Contains(line, want) {
				t.Errorf("failure %d logged %s, want %s in it", i+1, line, want)
			}
		}
	}
	cancel()
	if err := <-followed; err != nil {
		t.Errorf("Follow() = %v after its context ended, want nil", err)
	}
}
