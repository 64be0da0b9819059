// Package ingest brings the provider's plans into the catalog.
//
// A sync fetches the provider's whole catalog once (a Source), streams its plans into
// batches, and publishes the batches on the broker topic TopicPlans, where a worker
// applies them to the catalog store (BatchHandler). Concepts:
//
//   - Revision: every plan of a sync carries the sync's start time, so the store can keep
//     the latest observation whatever order batches arrive in (for the plans a sync
//     finds unchanged, by the sync's place among its provider's syncs: BatchStore).
//   - Spooling: batches are written to a temporary file while the document streams in,
//     and published only once the whole document parsed. A document that turns out
//     malformed, or a connection that breaks half-way, publishes nothing: earlier data
//     stays exactly as it was, and memory stays constant whatever the document's size.
//   - Retries: transient failures (timeouts, 5xx, broken connections) are retried within
//     the sync with exponential backoff and jitter. A malformed document or a 4xx aborts
//     the sync; the next one runs at the next interval.
//   - Confirmation: each batch names its provider, its sync, its place in the sync and
//     the sync's number of batches. The store records each batch it applies and, once
//     a sync's batches are all in, confirms the sync's validators (BatchStore). A fetch
//     is conditional only on confirmed validators (SyncLog), so a batch that failed for
//     good makes the next fetch unconditional instead of losing its plans to a 304.
//   - Baseline: when every earlier sync of the provider is confirmed (SyncState.Settled),
//     a sync leaves out of its batches the plans the store holds as they are (the same
//     catalog fingerprint), publishing only the changes, and one empty batch when there
//     are none so that the sync is still confirmed. Each sync records itself in the
//     store before it publishes (Baseline.BeginPublish), which tells the next one whether
//     an older batch may still be in flight.
//   - Leadership: many ingest processes may run; a lock with an expiry lets one lead and
//     sync while the others stand by, and a standby takes over when the lock expires.
package ingest
