package catalog_test

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"boxoffice/catalog"
	"boxoffice/catalog/catalogtest"
	"boxoffice/httpapi"
	"boxoffice/sqlite"
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
