package sqlite

import (
	"context"
	"path/filepath"
)

// OpenSynchronous opens a store like Open, but with PRAGMA synchronous=sync on its write
// connection, for BenchmarkUpsertPlans to measure what durable commits cost: the store
// itself always runs FULL.
func OpenSynchronous(ctx context.Context, dataDir, sync string) (*Store, error) {
	return open(ctx, dataDir, filepath.Join(dataDir, FileName), sync)
}
