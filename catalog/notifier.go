package catalog

import "context"

// Notifier announces new catalog versions between the processes that share a store:
// the worker that commits a version publishes it, and every API process subscribed
// refreshes its Searcher at once instead of at its next poll. Implementations:
// redis.Notifier (across processes) and memory.Notifier (in one process);
// catalogtest.TestNotifier is its contract.
//
// Announcements are hints, not a log: a subscriber that starts late or is reconnecting
// misses what was published meanwhile, and a slow one may see only the newest of a
// burst. Subscribers keep polling the store's catalog version and treat an
// announcement as "look now".
type Notifier interface {
	// Publish announces version to the subscriptions open now, or returns why it
	// could not (ctx done, the service unreachable).
	Publish(ctx context.Context, version int64) error
	// Subscribe calls fn with the versions announced until ctx is done, and returns nil
	// then; an error only when it cannot subscribe at all, which a caller that must
	// keep listening retries (Searcher.Follow). fn runs on one goroutine, one call at a
	// time.
	Subscribe(ctx context.Context, fn func(version int64)) error
}
