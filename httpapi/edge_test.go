package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"boxoffice/catalog"
	"boxoffice/pricing"
	"boxoffice/testenv"
)

// heldStore is a Store whose searches wait: for release to be closed, or for their
// context to end. It records how each ended.
type heldStore struct {
	release chan struct{}
	waiting chan struct{} // receives once per search that started waiting

	mu   sync.Mutex // guards errs
	errs []error    // the context's error of each search that ended by its context
}

func newHeldStore() *heldStore {
	return &heldStore{release: make(chan struct{}), waiting: make(chan struct{}, 16)}
}

func (s *heldStore) ChangedSince(context.Context, int64) (catalog.Changes, error) {
	return catalog.Changes{Version: 1}, nil
}

func (s *heldStore) SearchPlans(ctx context.Context, _ catalog.Window) ([]catalog.Plan, error) {
	s.waiting <- struct{}{}
	select {
	case <-s.release:
		return nil, nil
	case <-ctx.Done():
		s.mu.Lock()
		s.errs = append(s.errs, ctx.Err())
		s.mu.Unlock()
		return nil, ctx.Err()
	}
}

// TestDeadlineIs504 checks that a search waiting on the store past its deadline gets
// 504 in the error format, and that the store's work was told to stop (its context
// ended with the deadline).
func TestDeadlineIs504(t *testing.T) {
	store := newHeldStore()
	h := New(fixedCatalog{}, slog.New(slog.DiscardHandler), Config{Store: store, Timeouts: Timeouts{Search: 50 * time.Millisecond}})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/search?starts_at=2021-01-01", nil))
	checkJSON(t, rec, http.StatusGatewayTimeout)
	if got := decodeError(t, rec); got.Error.Code != "timeout" {
		t.Errorf("error = %+v, want code timeout", got.Error)
	}
	if got := rec.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	// The read itself runs under a deadline of its own, from when it started (see
	// readWindow): it stops as well.
	testenv.Poll(t, "the store's search to stop", func() bool {
		store.mu.Lock()
		defer store.mu.Unlock()
		return len(store.errs) > 0
	})
	store.mu.Lock()
	defer store.mu.Unlock()
	if len(store.errs) != 1 || store.errs[0] != context.DeadlineExceeded {
		t.Errorf("the store's searches ended with %v, want one context.DeadlineExceeded", store.errs)
	}
}

// TestClientGoneIsNotAnError checks that a search whose client leaves while it waits on
// the store is not reported as a failure of the server.
func TestClientGoneIsNotAnError(t *testing.T) {
	store := newHeldStore()
	h := New(fixedCatalog{}, slog.New(slog.DiscardHandler), Config{Store: store})
	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-store.waiting; cancel() }()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/search", nil).WithContext(ctx))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503", rec.Code)
	}
}

// TestShedsPastMaxInFlight checks that, with MaxInFlight requests in flight, the next
// is answered 503 with Retry-After at once, /health still answers, and requests are
// admitted again once the others end.
func TestShedsPastMaxInFlight(t *testing.T) {
	store := newHeldStore()
	h := New(fixedCatalog{}, slog.New(slog.DiscardHandler), Config{Store: store, MaxInFlight: 2, Timeouts: Timeouts{Search: time.Hour}})
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range 2 {
		wg.Go(func() {
			rec := httptest.NewRecorder()
			// Distinct windows: identical ones would share one store read.
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, fmt.Sprintf("/search?starts_at=202%d-01-01", i), nil))
			codes[i] = rec.Code
		})
	}
	<-store.waiting
	<-store.waiting // both are in flight

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/search", nil))
	checkJSON(t, rec, http.StatusServiceUnavailable)
	if got := decodeError(t, rec); got.Error.Code != "overloaded" {
		t.Errorf("error = %+v, want code overloaded", got.Error)
	}
	if got := rec.Header().Get("Retry-After"); got == "" {
		t.Error("a shed request has no Retry-After")
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("GET /openapi.json at the cap = %d, want 503", rec.Code)
	}
	for _, target := range []string{"/health", "/metrics"} { // never shed
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s at the cap = %d, want 200", target, rec.Code)
		}
	}

	close(store.release)
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("admitted request %d = %d, want 200", i, c)
		}
	}
	testenv.Poll(t, "a request to be admitted after the others end", func() bool {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
		return rec.Code == http.StatusOK
	})
}

// heldPricing is a Pricing whose quotes wait for their context to end.
type heldPricing struct{ Pricing }

func (heldPricing) Quote(ctx context.Context, _ pricing.Request) ([]byte, error) {
	<-ctx.Done()
	return nil, fmt.Errorf("read product: %w", ctx.Err())
}

func TestQuoteDeadlineIs504(t *testing.T) {
	h := New(nil, slog.New(slog.DiscardHandler), Config{Pricing: heldPricing{}, Timeouts: Timeouts{Quote: 20 * time.Millisecond}})
	req := httptest.NewRequest(http.MethodPost, "/api/v1/price", strings.NewReader(`{"product_id":"6a5e7fc8-bd5e-51f7-a156-7b3e1c5d0f2a","user_location":"madrid"}`))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	checkJSON(t, rec, http.StatusGatewayTimeout)
	if got := decodeError(t, rec); got.Error.Code != "timeout" {
		t.Errorf("error = %+v, want code timeout", got.Error)
	}
}

// countingStore is a heldStore that also counts its searches and the most that ran at
// once.
type countingStore struct {
	*heldStore
	calls, running, most atomic.Int64
}

func (s *countingStore) SearchPlans(ctx context.Context, w catalog.Window) ([]catalog.Plan, error) {
	s.calls.Add(1)
	n := s.running.Add(1)
	defer s.running.Add(-1)
	for {
		m := s.most.Load()
		if n <= m || s.most.CompareAndSwap(m, n) {
			break
		}
	}
	return s.heldStore.SearchPlans(ctx, w)
}

// TestStoreReadsAreShared checks that concurrent searches of one window, with no index,
// make one store read between them.
func TestStoreReadsAreShared(t *testing.T) {
	store := &countingStore{heldStore: newHeldStore()}
	h := New(fixedCatalog{}, slog.New(slog.DiscardHandler), Config{Store: store, Timeouts: Timeouts{Search: time.Hour}})
	const n = 10
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Go(func() {
			rec := getFrom(h, "/search?starts_at=2021-01-01", "192.0.2.1:1")
			codes[i] = rec.Code
		})
	}
	testenv.Poll(t, "every search to wait on the store", func() bool { return h.storeWaiters.Load() == n })
	close(store.release)
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("search %d = %d, want 200", i, c)
		}
	}
	if got := store.calls.Load(); got != 1 {
		t.Errorf("%d identical searches made %d store reads, want 1", n, got)
	}
}

// TestStoreReadsAreBounded checks that searches of distinct windows, with no index, run
// at most Config.StoreReads store reads at once, and all get their answer.
func TestStoreReadsAreBounded(t *testing.T) {
	store := &countingStore{heldStore: newHeldStore()}
	h := New(fixedCatalog{}, slog.New(slog.DiscardHandler), Config{Store: store, StoreReads: 2, Timeouts: Timeouts{Search: time.Hour}})
	const n = 10
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Go(func() {
			codes[i] = getFrom(h, fmt.Sprintf("/search?starts_at=2021-01-%02d", i+1), "192.0.2.1:1").Code
		})
	}
	testenv.Poll(t, "two store reads to run and the rest to wait", func() bool {
		return store.running.Load() == 2 && h.storeWaiters.Load() == n
	})
	close(store.release)
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("search %d = %d, want 200", i, c)
		}
	}
	if got, most := store.calls.Load(), store.most.Load(); got != n || most != 2 {
		t.Errorf("%d distinct searches made %d store reads, at most %d at once; want %d, at most 2", n, got, most, n)
	}
}
