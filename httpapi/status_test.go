package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"boxoffice/catalog"
)

// fakeStatus is a StatusSource with fixed answers that counts its reads.
type fakeStatus struct {
	pricing    int64
	pricingErr error
	dead       map[string]int
	deadErr    error
	reads      atomic.Int64
}

func (f *fakeStatus) PricingVersion(context.Context) (int64, error) {
	f.reads.Add(1)
	return f.pricing, f.pricingErr
}

func (f *fakeStatus) DeadLetters(context.Context) (map[string]int, error) {
	return f.dead, f.deadErr
}

// versionStore is a Store at a catalog version, with no plans.
type versionStore int64

func (v versionStore) ChangedSince(context.Context, int64) (catalog.Changes, error) {
	return catalog.Changes{Version: int64(v)}, nil
}

func (versionStore) SearchPlans(context.Context, catalog.Window) ([]catalog.Plan, error) {
	return nil, nil
}

// statusBody is the body of GET /api/v1/status, decoded.
type statusBody struct {
	Data  statusDoc `json:"data"`
	Error any       `json:"error"`
}

func getStatus(t *testing.T, h http.Handler) statusBody {
	t.Helper()
	c := newContract(t)
	req := httptest.NewRequest(http.MethodGet, "/api/v1/status", nil)
	in := c.input(t, req)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	checkJSON(t, rec, http.StatusOK)
	c.validateResponse(t, in, rec)
	if got := rec.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	var got statusBody
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("status body %s: %v", rec.Body, err)
	}
	return got
}

func TestStatus(t *testing.T) {
	plans := testPlans(t)
	list := make([]catalog.Plan, 0, len(plans))
	for _, p := range plans {
		list = append(list, p)
	}
	src := &fakeStatus{pricing: 3, dead: map[string]int{"catalog.plans": 2, "pricing.recalculate": 1}}
	h := New(fixedCatalog{ix: catalog.NewIndex(7, list, EncodeEvent)}, slog.New(slog.DiscardHandler), Config{Status: src})
	got := getStatus(t, h)
	n := len(plans)
	want := statusBody{Data: statusDoc{
		Catalog:     &catalogStatus{Version: 7, Indexed: true, Plans: &n},
		Pricing:     &pricingStatus{Version: 3},
		DeadLetters: &deadLettersStatus{Total: 3, Topics: map[string]int{"catalog.plans": 2, "pricing.recalculate": 1}},
		Unavailable: []string{},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GET /api/v1/status (-want +got):\n%s", diff)
	}
}

// TestStatusUnavailable checks that a part that cannot be read is null and named, and
// that why is logged, not shown.
func TestStatusUnavailable(t *testing.T) {
	var logs bytes.Buffer
	src := &fakeStatus{pricingErr: errors.New("replica at 10.0.0.7 refused"), deadErr: errors.New("broker at 10.0.0.8 closed")}
	h := New(fixedCatalog{}, slog.New(slog.NewJSONHandler(&logs, nil)), Config{Status: src})
	got := getStatus(t, h)
	want := statusBody{Data: statusDoc{Unavailable: []string{sectionCatalog, sectionPricing, sectionDeadLetters}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GET /api/v1/status with nothing readable (-want +got):\n%s", diff)
	}
	for _, want := range []string{"10.0.0.7", "10.0.0.8"} {
		if !bytes.Contains(logs.Bytes(), []byte(want)) {
			t.Errorf("logs lack %q:\n%s", want, &logs)
		}
	}
}

// TestStatusFromStore checks the catalog part without an index: the store's version,
// no plan count.
func TestStatusFromStore(t *testing.T) {
	h := New(fixedCatalog{}, slog.New(slog.DiscardHandler), Config{Store: versionStore(5)})
	got := getStatus(t, h)
	want := statusBody{Data: statusDoc{
		Catalog:     &catalogStatus{Version: 5},
		Unavailable: []string{sectionPricing, sectionDeadLetters},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GET /api/v1/status without an index (-want +got):\n%s", diff)
	}
}

// TestStatusIsAtMostASecondOld checks that requests within a second share one read of
// the sources, concurrent ones included, and that the next second reads them again.
func TestStatusIsAtMostASecondOld(t *testing.T) {
	src := &fakeStatus{pricing: 1}
	h := New(fixedCatalog{}, slog.New(slog.DiscardHandler), Config{Status: src})
	clock := &fakeClock{}
	h.now = func() time.Time { return time.Unix(0, clock.now()) }
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if rec := serve(h, http.MethodGet, "/api/v1/status"); rec.Code != http.StatusOK {
				t.Errorf("GET /api/v1/status = %d", rec.Code)
			}
		})
	}
	wg.Wait()
	if got := src.reads.Load(); got != 1 {
		t.Errorf("20 requests within a second read the sources %d times, want 1", got)
	}
	clock.advance(statusMaxAge)
	src.pricing = 2 // read by the handler only after the clock moved, under its lock
	if got := getStatus(t, h); got.Data.Pricing == nil || got.Data.Pricing.Version != 2 {
		t.Errorf("a second later: pricing %+v, want version 2", got.Data.Pricing)
	}
	if got := src.reads.Load(); got != 2 {
		t.Errorf("a request a second later: %d reads in all, want 2", got)
	}
}

// TestStatusNotOnOperationsAPI checks that the roles that serve no searches have no
// status and no console.
func TestStatusNotOnOperationsAPI(t *testing.T) {
	h := New(nil, slog.New(slog.DiscardHandler), Config{})
	for _, path := range []string{"/api/v1/status", "/", "/console/console.js"} {
		if rec := serve(h, http.MethodGet, path); rec.Code != http.StatusNotFound {
			t.Errorf("operations API: GET %s = %d, want 404", path, rec.Code)
		}
	}
}
