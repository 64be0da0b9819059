package main

import (
	"context"
	"runtime/debug"
	runtimemetrics "runtime/metrics"
	"time"

	"boxoffice/catalog"
)

// memoryHeadroom is what an API process's heap may hold beyond its search index and L1
// before the garbage collector must run: request buffers, a refresh's plans, the Go
// runtime, and garbage between collections.
const memoryHeadroom = 64 << 20

// memoryLimit is the Go runtime's soft memory limit for a process whose search index
// (with the versions it keeps) takes index bytes, whose L1 may take l1, and whose heap
// was live at live bytes after the last collection: the larger of the index with L1
// and the live heap, plus memoryHeadroom. Without a limit the collector lets the heap
// grow to twice what is live (GOGC=100), and an API's live heap is mostly its index,
// which changes rarely and holds no pointers: the headroom would double the index's
// memory for garbage that a few cheap collections clear. The live heap term keeps the
// limit above what the process holds when that is more (a refresh reading a whole
// catalog, other work in the same process), so the collector never runs back to back.
func memoryLimit(index, l1, live int64) int64 {
	return max(index+l1, live) + memoryHeadroom
}

// limitMemory keeps the runtime's soft memory limit at memoryLimit for s's index, every
// interval, until ctx is done; it returns nil then. Before an index is loaded, and
// beyond its budget, it leaves the limit as it is. It runs unless GOMEMLIMIT is set, in
// which case the runtime keeps the operator's limit.
func limitMemory(ctx context.Context, s *catalog.Searcher, l1 int64, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	live := []runtimemetrics.Sample{{Name: "/gc/heap/live:bytes"}}
	for {
		if s.Index() != nil {
			runtimemetrics.Read(live)
			debug.SetMemoryLimit(memoryLimit(s.Bytes(), l1, int64(live[0].Value.Uint64())))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
