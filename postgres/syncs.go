package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"boxoffice/catalog"
	"boxoffice/ingest"
)

var (
	_ ingest.BatchStore = (*Store)(nil)
	_ ingest.SyncLog    = (*Store)(nil)
	_ ingest.Baseline   = (*Store)(nil)
)

// ApplyBatch upserts b.Plans like UpsertPlans and, in the same transaction on the
// primary, records a tracked batch in its sync; see ingest.BatchStore. Batches take
// turns on the catalog_version row, so two batches of a sync never both miss the
// other when they count the sync's applied batches.
func (s *Store) ApplyBatch(ctx context.Context, b ingest.Batch) (int64, error) {
	if !b.Tracked() {
		return s.UpsertPlans(ctx, b.Plans)
	}
	obs, err := observe(b.Plans)
	if err != nil {
		return 0, fmt.Errorf("apply batch %d of sync %s/%s: %w", b.Seq, b.Provider, b.SyncID, err)
	}
	v, err := s.upsert(ctx, obs, &b)
	if err != nil {
		return 0, fmt.Errorf("apply batch %d of sync %s/%s: %w", b.Seq, b.Provider, b.SyncID, err)
	}
	return v, nil
}

// recordBatch records batch b as applied, inside tx, and confirms its sync when it was
// the last one missing.
func recordBatch(ctx context.Context, tx pgx.Tx, b *ingest.Batch) error {
	var confirmed int64
	err := tx.QueryRow(ctx, `SELECT revision FROM provider_syncs WHERE provider = $1`, b.Provider).Scan(&confirmed)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return fmt.Errorf("read confirmed sync: %w", err)
	case b.Revision <= confirmed:
		return nil // its sync can no longer be confirmed, nor matter
	}
	var applied int
	if err := tx.QueryRow(ctx, `WITH recorded AS (
			INSERT INTO sync_batches (provider, sync_id, seq, revision) VALUES ($1, $2, $3, $4)
			ON CONFLICT DO NOTHING RETURNING 1)
		SELECT (SELECT count(*) FROM sync_batches WHERE provider = $1 AND sync_id = $2) + (SELECT count(*) FROM recorded)`,
		b.Provider, b.SyncID, b.Seq, b.Revision).Scan(&applied); err != nil {
		return fmt.Errorf("record batch: %w", err)
	}
	if applied < b.Batches {
		return nil
	}
	if _, err := tx.Exec(ctx, `INSERT INTO provider_syncs
		(provider, sync_id, revision, batches, etag, last_modified, confirmed_at) VALUES ($1, $2, $3, $4, $5, $6, now())
		ON CONFLICT (provider) DO UPDATE SET sync_id = excluded.sync_id, revision = excluded.revision,
		batches = excluded.batches, etag = excluded.etag, last_modified = excluded.last_modified,
		confirmed_at = excluded.confirmed_at WHERE provider_syncs.revision < excluded.revision`,
		b.Provider, b.SyncID, b.Revision, b.Batches, b.Validators.ETag, b.Validators.LastModified); err != nil {
		return fmt.Errorf("confirm sync: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM sync_batches WHERE provider = $1 AND revision <= $2`,
		b.Provider, b.Revision); err != nil {
		return fmt.Errorf("drop the batches of confirmed syncs: %w", err)
	}
	return nil
}

// SyncState returns what the store holds of provider's syncs, read from the primary
// (a replica may not have replayed the last batches); see ingest.SyncLog.
func (s *Store) SyncState(ctx context.Context, provider string) (ingest.SyncState, error) {
	var st ingest.SyncState
	err := s.primary.QueryRow(ctx, `SELECT coalesce(c.revision, 0), coalesce(c.etag, ''), coalesce(c.last_modified, ''),
			`+latestSyncSQL+`, coalesce((SELECT revision FROM sync_publications WHERE provider = $1), 0)
		FROM (SELECT 1) AS one LEFT JOIN provider_syncs AS c ON c.provider = $1`, provider).
		Scan(&st.Revision, &st.Validators.ETag, &st.Validators.LastModified, &st.Latest, &st.Published)
	if err != nil {
		return ingest.SyncState{}, fmt.Errorf("sync state of %s on postgres primary %s: %w", provider, s.primaryAddr, err)
	}
	return st, nil
}

// StoredPlans calls fn with the ID, fingerprint and ever-online flag of each stored plan
// of provider, read from the primary (a replica may lag behind the syncs it follows);
// see ingest.Baseline.
func (s *Store) StoredPlans(ctx context.Context, provider string, fn func(id catalog.ID, fingerprint int64, everOnline bool) error) error {
	rows, err := s.primary.Query(ctx, `SELECT id, fingerprint, ever_online FROM plans WHERE provider = $1`, provider)
	if err != nil {
		return fmt.Errorf("stored plans of %s on postgres primary %s: %w", provider, s.primaryAddr, err)
	}
	defer rows.Close()
	var (
		id          catalog.ID
		fingerprint int64
		everOnline  bool
	)
	_, err = pgx.ForEachRow(rows, []any{(*[16]byte)(&id), &fingerprint, &everOnline}, func() error {
		return fn(id, fingerprint, everOnline)
	})
	if err != nil {
		return fmt.Errorf("stored plans of %s on postgres primary %s: %w", provider, s.primaryAddr, err)
	}
	return nil
}

// BeginPublish records, on the primary, that provider's sync at revision begins to
// publish, unless a sync above after did; see ingest.Baseline. The row's lock orders
// two syncs that begin at once: the second sees the first's revision.
func (s *Store) BeginPublish(ctx context.Context, provider string, revision, after int64) error {
	tag, err := s.primary.Exec(ctx, `INSERT INTO sync_publications (provider, revision) VALUES ($1, $2)
		ON CONFLICT (provider) DO UPDATE SET revision = excluded.revision WHERE sync_publications.revision <= $3`,
		provider, revision, after)
	if err != nil {
		return fmt.Errorf("begin to publish sync of %s on postgres primary %s: %w", provider, s.primaryAddr, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("begin to publish sync of %s at revision %d: %w", provider, revision, ingest.ErrSuperseded)
	}
	return nil
}

// RecordSync keeps rec as its provider's last sync, on the primary; see ingest.SyncLog.
func (s *Store) RecordSync(ctx context.Context, rec ingest.SyncRecord) error {
	var lastSuccess *time.Time
	if rec.Outcome != ingest.OutcomeFailed {
		lastSuccess = &rec.FinishedAt
	}
	_, err := s.primary.Exec(ctx, `INSERT INTO provider_status (provider, sync_id, started_at, finished_at,
			outcome, error, format, parsed, skipped, batches, attempts, next_at, last_success_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (provider) DO UPDATE SET sync_id = excluded.sync_id, started_at = excluded.started_at,
			finished_at = excluded.finished_at, outcome = excluded.outcome, error = excluded.error,
			format = excluded.format, parsed = excluded.parsed, skipped = excluded.skipped,
			batches = excluded.batches, attempts = excluded.attempts, next_at = excluded.next_at,
			last_success_at = coalesce(excluded.last_success_at, provider_status.last_success_at)`,
		rec.Provider, rec.SyncID, rec.StartedAt, rec.FinishedAt, rec.Outcome, rec.Error, rec.Format,
		rec.Parsed, rec.Skipped, rec.Batches, rec.Attempts, rec.NextAt, lastSuccess)
	if err != nil {
		return fmt.Errorf("record sync %s of %s on postgres primary %s: %w", rec.SyncID, rec.Provider, s.primaryAddr, err)
	}
	return nil
}

// ProviderSyncs returns the last sync of every provider that has one, by name, read
// from the replica when there is one.
func (s *Store) ProviderSyncs(ctx context.Context) ([]ingest.SyncRecord, error) {
	var out []ingest.SyncRecord
	err := s.read(ctx, func(ctx context.Context, pool *pgxpool.Pool) error {
		out = out[:0]
		rows, err := pool.Query(ctx, `SELECT provider, sync_id, started_at, finished_at, outcome, error, format,
			parsed, skipped, batches, attempts, next_at, last_success_at FROM provider_status ORDER BY provider`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				r           ingest.SyncRecord
				lastSuccess *time.Time
			)
			if err := rows.Scan(&r.Provider, &r.SyncID, &r.StartedAt, &r.FinishedAt, &r.Outcome, &r.Error, &r.Format,
				&r.Parsed, &r.Skipped, &r.Batches, &r.Attempts, &r.NextAt, &lastSuccess); err != nil {
				return err
			}
			r.StartedAt, r.FinishedAt, r.NextAt = r.StartedAt.UTC(), r.FinishedAt.UTC(), r.NextAt.UTC()
			if lastSuccess != nil {
				r.LastSuccessAt = lastSuccess.UTC()
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read provider syncs: %w", err)
	}
	return out, nil
}

// latestSyncSQL is the highest revision of a sync of provider $1 that is confirmed or
// had a batch applied: SyncState's Latest, and the floor of catalog.Decide.
const latestSyncSQL = `greatest(coalesce((SELECT revision FROM provider_syncs WHERE provider = $1), 0),
	coalesce((SELECT max(revision) FROM sync_batches WHERE provider = $1), 0))`

// latestSync reads latestSyncSQL inside tx.
func latestSync(ctx context.Context, tx pgx.Tx, provider string) (int64, error) {
	var latest int64
	if err := tx.QueryRow(ctx, `SELECT `+latestSyncSQL, provider).Scan(&latest); err != nil {
		return 0, fmt.Errorf("read latest sync: %w", err)
	}
	return latest, nil
}
