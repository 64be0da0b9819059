package main

import (
	"context"
	"runtime/debug"
	runtimemetrics "runtime/metrics"
	"time"

	"boxoffice/catalog"
)

// memoryHeadroom is what an API process's heap may grow by beyond what it holds
// before the garbage collector must run: request buffers, a refresh's page of plans,
// L1's growth, the garbage between collections.
const memoryHeadroom = 64 << 20

// memoryLimit is the Go runtime's soft memory limit for a process whose search index
// (with the versions it keeps) takes index bytes and whose heap was live at live
// bytes after the last collection (the index, L1 and everything else): the larger of
// the two, plus memoryHeadroom. Without a limit the collector lets the heap grow to
// twice what is live (GOGC=100), and an API's live heap is mostly its index, which
// changes little and holds no pointers: the headroom doubled the index's memory for
// garbage that a few cheap collections clear. The limit follows the live heap, so it
// never falls below what the process holds (the other roles of `run`), and the
// collector never runs back to back; the index, with what a refresh in progress built
// beside it, is a floor for the moment after a large refresh, before a collection
// measured it.
func memoryLimit(index, live int64) int64 {
	return max(index, live) + memoryHeadroom
}

// limitMemory keeps the runtime's soft memory limit at memoryLimit for s's index, with
// what a refresh in progress has built beside it, every interval, until ctx is done; it
// returns nil then. The first load of a catalog is bounded too: a refresh builds its
// index a page at a time, and the limit follows it. Before a refresh starts building,
// and beyond the index's budget, it leaves the limit as it is. It runs unless GOMEMLIMIT
// is set, in which case the runtime keeps the operator's limit.
func limitMemory(ctx context.Context, s *catalog.Searcher, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	live := []runtimemetrics.Sample{{Name: "/gc/heap/live:bytes"}}
	for {
		if index := s.Bytes() + s.Loading(); index > 0 {
			runtimemetrics.Read(live)
			debug.SetMemoryLimit(memoryLimit(index, int64(live[0].Value.Uint64())))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
