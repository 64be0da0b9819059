package catalog_test

import (
	"context"
	"log/slog"
	"strconv"
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
	full := catalog.NewSearcher(store, httpapi.EncodeEvent, time.Hour, log)
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

	fits := catalog.NewSearcher(store, httpapi.EncodeEvent, time.Hour, log)
	fits.SetMaxBytes(ix.Bytes() * 2)
	if _, err := fits.Refresh(t.Context()); err != nil || fits.Index() == nil || fits.OverBudget() {
		t.Errorf("within the budget: index %v, over %v, err %v", fits.Index(), fits.OverBudget(), err)
	}

	over := catalog.NewSearcher(store, httpapi.EncodeEvent, time.Hour, log)
	over.SetMaxBytes(ix.Bytes() / 2)
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
