package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"boxoffice/catalog"
	"boxoffice/ingest"
)

// Alike postgres/syncs.go in shape only: SQLite's SQL and driver, and adapters never import each other.
var (
	_ ingest.BatchStore = (*Store)(nil)
	_ ingest.SyncLog    = (*Store)(nil)
	_ ingest.Baseline   = (*Store)(nil)
)

// ApplyBatch upserts b.Plans like UpsertPlans and, in the same immediate transaction,
// records a tracked batch in its sync; see ingest.BatchStore.
func (s *Store) ApplyBatch(ctx context.Context, b ingest.Batch) (int64, error) {
	if !b.Tracked() {
		return s.UpsertPlans(ctx, b.Plans)
	}
	v, err := s.upsert(ctx, observe(b.Plans), &b)
	if err != nil {
		return 0, fmt.Errorf("apply batch %d of sync %s/%s: %w", b.Seq, b.Provider, b.SyncID, err)
	}
	return v, nil
}

// recordBatch records batch b as applied, inside tx, and confirms its sync when it was
// the last one missing.
func recordBatch(ctx context.Context, tx *sql.Tx, b *ingest.Batch) error {
	var confirmed int64
	err := tx.QueryRowContext(ctx, `SELECT revision FROM provider_syncs WHERE provider = ?`, b.Provider).Scan(&confirmed)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("read confirmed sync: %w", err)
	case b.Revision <= confirmed:
		return nil // its sync can no longer be confirmed, nor matter
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO sync_batches (provider, sync_id, seq, revision) VALUES (?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, b.Provider, b.SyncID, b.Seq, b.Revision); err != nil {
		return fmt.Errorf("record batch: %w", err)
	}
	var applied int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sync_batches WHERE provider = ? AND sync_id = ?`,
		b.Provider, b.SyncID).Scan(&applied); err != nil {
		return fmt.Errorf("count applied batches: %w", err)
	}
	if applied < b.Batches {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO provider_syncs
		(provider, sync_id, revision, batches, etag, last_modified, confirmed_at)
		VALUES (?, ?, ?, ?, ?, ?, CAST(unixepoch('subsec') * 1000000 AS INTEGER))
		ON CONFLICT (provider) DO UPDATE SET sync_id = excluded.sync_id, revision = excluded.revision,
		batches = excluded.batches, etag = excluded.etag, last_modified = excluded.last_modified,
		confirmed_at = excluded.confirmed_at WHERE provider_syncs.revision < excluded.revision`,
		b.Provider, b.SyncID, b.Revision, b.Batches, b.Validators.ETag, b.Validators.LastModified); err != nil {
		return fmt.Errorf("confirm sync: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM sync_batches WHERE provider = ? AND revision <= ?`,
		b.Provider, b.Revision); err != nil {
		return fmt.Errorf("drop the batches of confirmed syncs: %w", err)
	}
	return nil
}

// SyncState returns what the store holds of provider's syncs; see ingest.SyncLog.
func (s *Store) SyncState(ctx context.Context, provider string) (ingest.SyncState, error) {
	st, err := s.syncState(ctx, provider)
	if err != nil {
		return ingest.SyncState{}, fmt.Errorf("sync state of %s: %w", provider, err)
	}
	return st, nil
}

func (s *Store) syncState(ctx context.Context, provider string) (ingest.SyncState, error) {
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return ingest.SyncState{}, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	var st ingest.SyncState
	err = tx.QueryRowContext(ctx, `SELECT revision, etag, last_modified FROM provider_syncs WHERE provider = ?`,
		provider).Scan(&st.Revision, &st.Validators.ETag, &st.Validators.LastModified)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return ingest.SyncState{}, err
	}
	if st.Latest, err = latestSync(ctx, tx, provider); err != nil {
		return ingest.SyncState{}, err
	}
	err = tx.QueryRowContext(ctx, `SELECT revision FROM sync_publications WHERE provider = ?`, provider).Scan(&st.Published)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return ingest.SyncState{}, err
	}
	return st, nil
}

// StoredPlans calls fn with the ID, fingerprint and ever-online flag of each stored plan
// of provider; see ingest.Baseline.
func (s *Store) StoredPlans(ctx context.Context, provider string, fn func(id catalog.ID, fingerprint int64, everOnline bool) error) error {
	rows, err := s.read.QueryContext(ctx, `SELECT id, fingerprint, ever_online FROM plans WHERE provider = ?`, provider)
	if err != nil {
		return fmt.Errorf("stored plans of %s: %w", provider, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id          sql.RawBytes
			fingerprint int64
			everOnline  int64
		)
		if err := rows.Scan(&id, &fingerprint, &everOnline); err != nil {
			return fmt.Errorf("stored plans of %s: %w", provider, err)
		}
		if err := fn(catalog.ID(id), fingerprint, everOnline != 0); err != nil {
			return fmt.Errorf("stored plans of %s: %w", provider, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("stored plans of %s: %w", provider, err)
	}
	return nil
}

// BeginPublish records that provider's sync at revision begins to publish, unless a
// sync above after did; see ingest.Baseline. SQLite has one writer at a time, so two
// syncs that begin at once take turns.
func (s *Store) BeginPublish(ctx context.Context, provider string, revision, after int64) error {
	res, err := s.write.ExecContext(ctx, `INSERT INTO sync_publications (provider, revision) VALUES (?, ?)
		ON CONFLICT (provider) DO UPDATE SET revision = excluded.revision WHERE sync_publications.revision <= ?`,
		provider, revision, after)
	if err != nil {
		return fmt.Errorf("begin to publish sync of %s: %w", provider, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("begin to publish sync of %s: %w", provider, err)
	} else if n == 0 {
		return fmt.Errorf("begin to publish sync of %s at revision %d: %w", provider, revision, ingest.ErrSuperseded)
	}
	return nil
}

// RecordSync keeps rec as its provider's last sync; see ingest.SyncLog.
func (s *Store) RecordSync(ctx context.Context, rec ingest.SyncRecord) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO provider_status (provider, sync_id, started_at, finished_at,
			outcome, error, format, parsed, skipped, batches, attempts, next_at, last_success_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CASE WHEN ? <> 'failed' THEN ? END)
		ON CONFLICT (provider) DO UPDATE SET sync_id = excluded.sync_id, started_at = excluded.started_at,
			finished_at = excluded.finished_at, outcome = excluded.outcome, error = excluded.error,
			format = excluded.format, parsed = excluded.parsed, skipped = excluded.skipped,
			batches = excluded.batches, attempts = excluded.attempts, next_at = excluded.next_at,
			last_success_at = coalesce(excluded.last_success_at, provider_status.last_success_at)`,
		rec.Provider, rec.SyncID, rec.StartedAt.UnixMicro(), rec.FinishedAt.UnixMicro(), rec.Outcome, rec.Error,
		rec.Format, rec.Parsed, rec.Skipped, rec.Batches, rec.Attempts, rec.NextAt.UnixMicro(),
		rec.Outcome, rec.FinishedAt.UnixMicro())
	if err != nil {
		return fmt.Errorf("record sync %s of %s: %w", rec.SyncID, rec.Provider, err)
	}
	return nil
}

// ProviderSyncs returns the last sync of every provider that has one, by name.
func (s *Store) ProviderSyncs(ctx context.Context) ([]ingest.SyncRecord, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT provider, sync_id, started_at, finished_at, outcome, error, format,
		parsed, skipped, batches, attempts, next_at, last_success_at FROM provider_status ORDER BY provider`)
	if err != nil {
		return nil, fmt.Errorf("read provider syncs: %w", err)
	}
	defer rows.Close()
	var out []ingest.SyncRecord
	for rows.Next() {
		var (
			r                       ingest.SyncRecord
			started, finished, next int64
			lastSuccess             sql.NullInt64
		)
		if err := rows.Scan(&r.Provider, &r.SyncID, &started, &finished, &r.Outcome, &r.Error, &r.Format,
			&r.Parsed, &r.Skipped, &r.Batches, &r.Attempts, &next, &lastSuccess); err != nil {
			return nil, fmt.Errorf("read provider syncs: %w", err)
		}
		r.StartedAt, r.FinishedAt, r.NextAt = time.UnixMicro(started).UTC(), time.UnixMicro(finished).UTC(), time.UnixMicro(next).UTC()
		if lastSuccess.Valid {
			r.LastSuccessAt = time.UnixMicro(lastSuccess.Int64).UTC()
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read provider syncs: %w", err)
	}
	return out, nil
}

// latestSync returns the highest revision of a sync of provider that is confirmed or
// had a batch applied, inside tx: SyncState's Latest, and the floor of catalog.Decide.
func latestSync(ctx context.Context, q queryer, provider string) (int64, error) {
	var latest sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT max(revision) FROM (
		SELECT revision FROM provider_syncs WHERE provider = ?
		UNION ALL SELECT max(revision) FROM sync_batches WHERE provider = ?)`, provider, provider).Scan(&latest); err != nil {
		return 0, fmt.Errorf("read latest sync: %w", err)
	}
	return latest.Int64, nil
}
