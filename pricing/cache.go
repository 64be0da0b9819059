package pricing

import (
	"context"
	"time"
)

// Cache keeps encoded quotes for a time, each valid for one pricing version.
// Implementations: redis.PriceCache (distributed) and memory.PriceCache (embedded).
// A cache's versions are the store's plus one (cacheVersion), so that its 0, a cache
// that knows no version (new, or flushed), is below every version the store has.
type Cache interface {
	// Get returns the entry under key when it was stored for the current pricing
	// version, and the current version as the cache knows it (0 when it does not).
	Get(ctx context.Context, key string) (entry []byte, current int64, err error)
	// Set stores entry under key for version, for ttl.
	Set(ctx context.Context, key string, version int64, entry []byte, ttl time.Duration) error
	// SetVersion makes version current unless a higher one already is.
	SetVersion(ctx context.Context, version int64) error
}

// cacheVersion is the cache's name for the store's pricing version v.
func cacheVersion(v int64) int64 { return v + 1 }
