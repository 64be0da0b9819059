package ingest

import (
	"context"
	"errors"
	"time"

	"boxoffice/catalog"
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
	// Published is the highest revision of a sync that began to publish its batches
	// (Baseline.BeginPublish); 0 when none did, or the store is no Baseline.
	Published int64
}

// Settled reports whether every sync of the provider that began to publish or had a
// batch applied is confirmed. Then no batch can still write values over a stored plan
// (a batch of an older sync is late, and a redelivered batch of the confirmed sync
// writes what it wrote), so a new sync may leave out of its batches the plans it finds
// as stored (see Baseline).
func (s SyncState) Settled() bool {
	return s.Revision > 0 && s.Latest <= s.Revision && s.Published <= s.Revision
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

// Baseline lets a sync publish only the plans it changes: when the state of its
// provider's syncs is Settled, a Syncer reads the stored plans before it fetches, and
// leaves out of its batches each plan whose values the store holds already (the same
// catalog fingerprint), unless the plan is online and the stored one not yet
// ever-online. A tracked batch would write nothing for it (catalog.Decide), so the
// store ends as if the plan had been published, provided that no other batch writes
// values over it before the sync's own batches apply: BeginPublish guarantees that. A
// sync that leaves out every plan publishes one batch without plans, so that it is
// confirmed like any other. A provider with more stored plans than
// Config.BaselinePlans publishes every plan, so that the ingest's memory stays
// bounded. The Syncer finds a Baseline on its SyncLog by type assertion;
// implementations: sqlite.Store and postgres.Store (from the primary).
//
// StoredPlans calls fn with the ID, fingerprint and ever-online flag of each stored
// plan of provider, in any order; an error of fn stops the read, and StoredPlans
// returns it, wrapped.
//
// BeginPublish records that the sync of provider at revision is about to publish its
// batches, unless a sync with a revision above after began to publish already: then
// it returns ErrSuperseded and the sync must publish nothing. A sync that left plans
// out passes the Published of the Settled state it read, so that a sync that began
// since (another ingest process that lost the lead, or a clock ahead) stops one of the
// two; any other passes revision-1. A sync records itself before it publishes its first
// batch, so a crash between the two leaves a Published above the confirmed revision:
// the state is not Settled until a newer sync is confirmed.
//
// Errors are the store's own, fn's, and ErrSuperseded.
type Baseline interface {
	StoredPlans(ctx context.Context, provider string, fn func(id catalog.ID, fingerprint int64, everOnline bool) error) error
	BeginPublish(ctx context.Context, provider string, revision, after int64) error
}

// ErrSuperseded is BeginPublish's error for a sync that another sync of its provider
// overtook: it publishes nothing, and the next sync runs at the next interval.
var ErrSuperseded = errors.New("a newer sync of the provider began to publish")
