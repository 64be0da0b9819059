package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"

	"boxoffice/ingest"
)

// providerLogFunc adapts a function to ProviderLog.
type providerLogFunc func(ctx context.Context) ([]ingest.SyncRecord, error)

func (f providerLogFunc) ProviderSyncs(ctx context.Context) ([]ingest.SyncRecord, error) {
	return f(ctx)
}

func TestProviders(t *testing.T) {
	at := time.Date(2026, 12, 4, 22, 0, 0, 250_000_000, time.UTC)
	recs := []ingest.SyncRecord{
		{Provider: "acme", SyncID: "s2", StartedAt: at, FinishedAt: at.Add(4 * time.Second), Outcome: ingest.OutcomeFailed,
			Error: "sync s2: attempt 4: provider: GET https://acme.example/feed: 503 Service Unavailable", Attempts: 4,
			NextAt: at.Add(time.Minute), LastSuccessAt: at.Add(-time.Minute)},
		{Provider: "fever", SyncID: "s1", StartedAt: at, FinishedAt: at.Add(1500 * time.Millisecond), Outcome: ingest.OutcomeOK,
			Format: "planList", Parsed: 4, Skipped: 1, Batches: 1, Attempts: 1, NextAt: at.Add(5 * time.Minute), LastSuccessAt: at.Add(1500 * time.Millisecond)},
		{Provider: "new", SyncID: "s3", StartedAt: at, FinishedAt: at, Outcome: ingest.OutcomeFailed, Error: "x", Attempts: 1, NextAt: at},
	}
	h := New(nil, slog.New(slog.DiscardHandler), Config{Providers: providerLogFunc(func(context.Context) ([]ingest.SyncRecord, error) {
		return recs, nil
	})})
	c := newContract(t)
	req := httptest.NewRequest(http.MethodGet, "/api/v1/providers", nil)
	in := c.input(t, req)
	if err := openapi3filter.ValidateRequest(t.Context(), in); err != nil {
		t.Fatalf("request breaks the spec: %v", err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	c.validateResponse(t, in, rec)
	want := `{"providers":[` +
		`{"name":"acme","sync_id":"s2","started_at":"2026-12-04T22:00:00.25Z","finished_at":"2026-12-04T22:00:04.25Z","duration_ms":4000,"outcome":"failed","error":"sync s2: attempt 4: provider: GET https://acme.example/feed: 503 Service Unavailable","format":null,"plans_parsed":0,"plans_skipped":0,"batches":0,"attempts":4,"last_success_at":"2026-12-04T21:59:00.25Z","next_sync_at":"2026-12-04T22:01:00.25Z"},` +
		`{"name":"fever","sync_id":"s1","started_at":"2026-12-04T22:00:00.25Z","finished_at":"2026-12-04T22:00:01.75Z","duration_ms":1500,"outcome":"ok","error":null,"format":"planList","plans_parsed":4,"plans_skipped":1,"batches":1,"attempts":1,"last_success_at":"2026-12-04T22:00:01.75Z","next_sync_at":"2026-12-04T22:05:00.25Z"},` +
		`{"name":"new","sync_id":"s3","started_at":"2026-12-04T22:00:00.25Z","finished_at":"2026-12-04T22:00:00.25Z","duration_ms":0,"outcome":"failed","error":"x","format":null,"plans_parsed":0,"plans_skipped":0,"batches":0,"attempts":1,"last_success_at":null,"next_sync_at":"2026-12-04T22:00:00.25Z"}]}`
	if rec.Code != http.StatusOK || rec.Body.String() != want {
		t.Errorf("GET /api/v1/providers = %d\n%s\nwant 200\n%s", rec.Code, rec.Body, want)
	}
	if got := rec.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store: sync states change", got)
	}

	recs = nil
	rec = serve(h, http.MethodGet, "/api/v1/providers")
	if rec.Code != http.StatusOK || rec.Body.String() != `{"providers":[]}` {
		t.Errorf("GET /api/v1/providers without syncs = %d %s, want an empty list", rec.Code, rec.Body)
	}

	broken := New(nil, slog.New(slog.DiscardHandler), Config{Providers: providerLogFunc(func(context.Context) ([]ingest.SyncRecord, error) {
		return nil, errors.New("connection refused")
	})})
	if rec := serve(broken, http.MethodGet, "/api/v1/providers"); rec.Code != http.StatusInternalServerError {
		t.Errorf("GET /api/v1/providers on a failing store = %d %s, want 500", rec.Code, rec.Body)
	}
	if rec := serve(New(nil, slog.New(slog.DiscardHandler), Config{}), http.MethodGet, "/api/v1/providers"); rec.Code != http.StatusNotFound {
		t.Errorf("GET /api/v1/providers without Config.Providers = %d, want 404", rec.Code)
	}
}
