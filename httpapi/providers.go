package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"boxoffice/ingest"
)

// ProviderLog is what GET /api/v1/providers reads: the last sync of each provider, as
// the ingest leader recorded it in the store (ingest.SyncLog), so that every API process
// answers it whichever process ran the syncs. Implementations: sqlite.Store and
// postgres.Store. ProviderSyncs returns one record a provider, by name; its errors are
// the store's own.
type ProviderLog interface {
	ProviderSyncs(ctx context.Context) ([]ingest.SyncRecord, error)
}

// providerJSON is one provider in the response of GET /api/v1/providers.
type providerJSON struct {
	Name          string     `json:"name"`
	SyncID        string     `json:"sync_id"`
	StartedAt     time.Time  `json:"started_at"`
	FinishedAt    time.Time  `json:"finished_at"`
	DurationMS    int64      `json:"duration_ms"`
	Outcome       string     `json:"outcome"`
	Error         *string    `json:"error"`
	Format        *string    `json:"format"`
	PlansParsed   int        `json:"plans_parsed"`
	PlansSkipped  int        `json:"plans_skipped"`
	Batches       int        `json:"batches"`
	Attempts      int        `json:"attempts"`
	LastSuccessAt *time.Time `json:"last_success_at"`
	NextSyncAt    time.Time  `json:"next_sync_at"`
}

// providers answers GET /api/v1/providers:
//
//	{"providers":[{"name":"fever","sync_id":"…","started_at":"…","finished_at":"…",
//	"duration_ms":12,"outcome":"ok","error":null,"format":"planList","plans_parsed":4,
//	"plans_skipped":0,"batches":1,"attempts":1,"last_success_at":"…","next_sync_at":"…"}]}
//
// One entry a provider that ever synced, by name, including one no longer configured
// (its next_sync_at stays in the past). Times are RFC 3339 in UTC; error is null unless
// the sync failed, format null when no document was read, last_success_at null before
// the first sync that did not fail.
func (h *Handler) providers(w http.ResponseWriter, r *http.Request) {
	recs, err := h.providerLog.ProviderSyncs(r.Context())
	if err != nil {
		h.writeError(w, r, fmt.Errorf("providers: %w", err))
		return
	}
	out := struct {
		Providers []providerJSON `json:"providers"`
	}{Providers: make([]providerJSON, 0, len(recs))}
	for _, rec := range recs {
		p := providerJSON{Name: rec.Provider, SyncID: rec.SyncID, StartedAt: rec.StartedAt.UTC(), FinishedAt: rec.FinishedAt.UTC(),
			DurationMS: rec.FinishedAt.Sub(rec.StartedAt).Milliseconds(), Outcome: rec.Outcome,
			PlansParsed: rec.Parsed, PlansSkipped: rec.Skipped, Batches: rec.Batches, Attempts: rec.Attempts,
			NextSyncAt: rec.NextAt.UTC()}
		if rec.Error != "" {
			p.Error = &rec.Error
		}
		if rec.Format != "" {
			p.Format = &rec.Format
		}
		if !rec.LastSuccessAt.IsZero() {
			t := rec.LastSuccessAt.UTC()
			p.LastSuccessAt = &t
		}
		out.Providers = append(out.Providers, p)
	}
	b, err := json.Marshal(out)
	if err != nil {
		h.writeError(w, r, fmt.Errorf("providers: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, b)
}
