package ingest

import (
	"context"
	"time"
)

// BatchStore applies plan batches for the worker (BatchHandler). Implementations:
// sqlite.Store and postgres.Store.
//
// ApplyBatch upserts b.Plans as catalog.Store.UpsertPlans does and returns the catalog
// version after it. A tracked batch differs in two ways (catalog.Decide): a newer
// observation of a plan's stored values writes nothing, not even the revision, so a
// re-sync of an unchanged catalog writes no plan row; and a batch whose revision is
// below that of a sync of its provider with a batch applied or confirmed (SyncState's
// Latest before it: a batch of an older sync, late) writes no values over a stored
// plan, which keeps the newer sync's observation. When b is tracked the same transaction
// records the batch as applied, and when that completes its sync (every batch of it,
// seq 0 to b.Batches-1, is recorded), it makes the sync's validators the confirmed
// validators of b.Provider, unless a sync with a higher Revision is confirmed already;
// the records of the batches of that sync and of older ones are then dropped. A batch
// of a sync no newer than the confirmed one is applied and not recorded: its sync
// cannot become confirmed any more. Applying a batch twice records it once.
//
// Errors are the store's own (a connection refused, a timeout); callers retry them.
type BatchStore interface {
	ApplyBatch(ctx context.Context, b Batch) (version int64, err error)
}

// SyncLog is what a Syncer reads of its provider's past syncs before each fetch, so
// that a conditional fetch relies only on what the store holds, whichever ingest
// process ran the syncs and whether or not it restarted since; and where it records
// each sync's outcome, so that every process (an api that runs no sync) can tell an
// operator how each provider's syncs go. Implementations: sqlite.Store and
// postgres.Store (from the primary).
//
// SyncState returns provider's state; a provider never synced has the zero state.
// RecordSync keeps rec as rec.Provider's last sync, replacing the one before, and
// rec.FinishedAt as its last success unless rec.Outcome is OutcomeFailed.
// Errors are the store's own.
type SyncLog interface {
	SyncState(ctx context.Context, provider string) (SyncState, error)
	RecordSync(ctx context.Context, rec SyncRecord) error
}

// The outcomes of a sync.
const (
	OutcomeOK          = "ok"           // the document parsed and its batches were published
	OutcomeNotModified = "not_modified" // the provider answered 304: nothing to do
	OutcomeFailed      = "failed"       // every attempt failed, or the document was malformed
)

// SyncRecord is a provider's last sync as the store keeps it (SyncLog.RecordSync), for
// GET /api/v1/providers. Parsed, Skipped and Batches are what the ingest process made
// of the document; the batches are applied by workers after it.
type SyncRecord struct {
	Provider   string
	SyncID     string
	StartedAt  time.Time
	FinishedAt time.Time
	Outcome    string // OutcomeOK, OutcomeNotModified or OutcomeFailed
	Error      string // why it failed, at most 1 KiB; "" unless failed
	Format     string // of the document: "planList", "eventList", "json"; "" when none was read
	Parsed     int
	Skipped    int
	Batches    int
	Attempts   int
	NextAt     time.Time // when the next sync is due
	// LastSuccessAt is when the provider's last sync that did not fail ended; zero
	// before the first. Stores keep it; RecordSync ignores it.
	LastSuccessAt time.Time
}

// SyncState is what the store holds of one provider's syncs.
type SyncState struct {
	// Revision and Validators are those of the confirmed sync: the newest sync whose
	// every batch was applied. Both are zero before the first.
	Revision   int64
	Validators Validators
	// Latest is the highest revision of a sync with at least one batch applied: the
	// confirmed sync, or a newer one that is in progress or lost a batch.
	Latest int64
}

// Since returns the validators a fetch may be conditional on: the confirmed sync's,
// unless a newer sync has had batches applied since. Then the store holds a mix of
// two documents that no validator describes, and the fetch must be unconditional.
func (s SyncState) Since() Validators {
	if s.Latest > s.Revision {
		return Validators{}
	}
	return s.Validators
}
