package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"boxoffice/catalog"
)

// discardWriter is a ResponseWriter that keeps nothing but the status and the byte
// count, so the benchmark measures the handler rather than a recorder.
type discardWriter struct {
	header http.Header
	status int
	n      int
}

func (d *discardWriter) Header() http.Header { return d.header }

func (d *discardWriter) Write(b []byte) (int, error) {
	d.n += len(b)
	return len(b), nil
}

func (d *discardWriter) WriteHeader(status int) { d.status = status }

// benchPlans returns n plans, one starting every hour from 2021-01-01, each two hours
// long, with zero to three zones.
func benchPlans(b *testing.B, n int) []catalog.Plan {
	start := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	prices := []string{"15.00", "30.00", "22.50"}
	plans := make([]catalog.Plan, n)
	for i := range plans {
		p := newPlan(b, strconv.Itoa(i), "Concierto de Camela en el Teatro "+strconv.Itoa(i),
			"2021-01-01 00:00:00", "2021-01-01 02:00:00", prices[:i%4]...)
		p.StartsAt = start.Add(time.Duration(i) * time.Hour)
		p.EndsAt = p.StartsAt.Add(2 * time.Hour)
		plans[i] = p
	}
	return plans
}

func BenchmarkSearch(b *testing.B) {
	ix := catalog.NewIndex(1, benchPlans(b, 10_000), EncodeEvent)
	h := New(fixedCatalog{ix: ix}, slog.New(slog.DiscardHandler), Config{})
	benchmarks := []struct {
		name  string
		query string
	}{
		{"narrow", "starts_at=2021-06-01T10:00:00Z&ends_at=2021-06-01T16:00:00Z"},      // 5 plans
		{"day", "starts_at=2021-06-01&ends_at=2021-06-01"},                             // 23 plans
		{"month", "starts_at=2021-06-01T00:00:00Z&ends_at=2021-07-01T00:00:00Z"},       // ~720 plans
		{"wide", "starts_at=2020-01-01T00:00:00Z&ends_at=2030-01-01T00:00:00%2B01:00"}, // all 10k
		{"no bounds", ""},                 // all 10k
		{"empty", "starts_at=2029-01-01"}, // none
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) { benchSearch(b, h, bm.query) })
	}
}

// benchSearch measures GET /search?query on h, which must answer 200.
func benchSearch(b *testing.B, h http.Handler, query string) {
	req := httptest.NewRequest(http.MethodGet, "/search?"+query, nil)
	w := &discardWriter{header: make(http.Header)}
	h.ServeHTTP(w, req)
	if w.status != http.StatusOK {
		b.Fatalf("GET /search?%s status = %d", query, w.status)
	}
	b.SetBytes(int64(w.n))
	b.ReportAllocs()
	for b.Loop() {
		w.n = 0
		clear(w.header)
		h.ServeHTTP(w, req)
	}
}

// BenchmarkSearchLimited is BenchmarkSearch's narrow window with rate limiting on, far
// above the load, and an in-flight cap: what the edge adds to a search.
func BenchmarkSearchLimited(b *testing.B) {
	ix := catalog.NewIndex(1, benchPlans(b, 10_000), EncodeEvent)
	h := New(fixedCatalog{ix: ix}, slog.New(slog.DiscardHandler), Config{
		RateLimits:  RateLimits{Search: Rate{PerSecond: 1e9, Burst: 1e6}},
		MaxInFlight: 1000,
	})
	benchSearch(b, h, "starts_at=2021-06-01T10:00:00Z&ends_at=2021-06-01T16:00:00Z")
}

// BenchmarkSearchPage compares a page of 100 deep in a 10k catalog, asked by its
// cursor, with a search whose window holds the same 100 plans: a page should cost what
// a search of its size does (a signed cursor and a binary search more).
func BenchmarkSearchPage(b *testing.B) {
	ix := catalog.NewIndex(1, benchPlans(b, 10_000), EncodeEvent)
	h := New(fixedCatalog{ix: ix}, slog.New(slog.DiscardHandler), Config{})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/search?limit=100&starts_at=2021-09-01T00:00:00Z", nil))
	var first struct {
		Data struct {
			NextCursor string `json:"next_cursor"`
		} `json:"data"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &first); err != nil || first.Data.NextCursor == "" {
		b.Fatalf("first page %s: %v", rec.Body, err)
	}
	b.Run("page by cursor", func(b *testing.B) {
		benchSearch(b, h, "limit=100&starts_at=2021-09-01T00:00:00Z&cursor="+first.Data.NextCursor)
	})
	// The same 100 plans as a window (one starts every hour from 2021-09-05T04:00),
	// streamed from the index each time as pages are: an L1 too small to keep it.
	uncached := New(fixedCatalog{ix: ix}, slog.New(slog.DiscardHandler), Config{L1MaxBytes: 256 << 10})
	b.Run("window of the same plans", func(b *testing.B) {
		benchSearch(b, uncached, "starts_at=2021-09-05T04:00:00Z&ends_at=2021-09-09T09:00:00Z")
	})
}
