package catalog

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// Searcher serves searches from an in-memory Index of the store and keeps that index at
// the store's latest version: it refreshes when told the version may have moved
// (Notify) and at least every poll interval. When the store is unreachable it keeps
// serving the last index it loaded.
//
// The index has a memory budget (SetMaxBytes). A catalog whose index would exceed it
// is not indexed: the Searcher drops its index, reports OverBudget, and stops reading
// the catalog, and searches read the store instead (through the response caches; see
// httpapi.Config.Store). The searchable catalog never shrinks (ever-online is sticky),
// so a catalog over the budget stays over it until the budget is raised.
type Searcher struct {
	store    Store
	encode   Encoder
	poll     time.Duration
	log      *slog.Logger
	maxBytes int64 // 0: no budget

	index  atomic.Pointer[Index]
	over   atomic.Bool   // the catalog is beyond maxBytes
	notify chan struct{} // buffered(1): a pending refresh request
}

// NewSearcher returns a Searcher over store that encodes documents with encode and
// polls the store every poll interval.
func NewSearcher(store Store, encode Encoder, poll time.Duration, log *slog.Logger) *Searcher {
	return &Searcher{store: store, encode: encode, poll: poll, log: log, notify: make(chan struct{}, 1)}
}

// SetMaxBytes sets the index's memory budget, in bytes (INDEX_MAX_BYTES); 0 means none.
// Call it before Refresh or Run.
func (s *Searcher) SetMaxBytes(n int64) { s.maxBytes = n }

// Index returns the current index, or nil before the first successful load and when the
// catalog is over the budget.
func (s *Searcher) Index() *Index { return s.index.Load() }

// OverBudget reports whether the catalog was found beyond the index's memory budget, so
// that searches read the store.
func (s *Searcher) OverBudget() bool { return s.over.Load() }

// Notify asks for a refresh soon. It never blocks; several calls before a refresh
// coalesce into one.
func (s *Searcher) Notify() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Refresh reads the changes since the current index's version and installs a new index
// when there are any. It returns the version now served.
// Over the budget it does nothing.
func (s *Searcher) Refresh(ctx context.Context) (int64, error) {
	if s.over.Load() {
		return 0, nil
	}
	cur := s.index.Load()
	var since int64
	if cur != nil {
		since = cur.Version()
	}
	ch, err := s.store.ChangedSince(ctx, since)
	if err != nil {
		return since, fmt.Errorf("refresh catalog index from version %d: %w", since, err)
	}
	if cur != nil && len(ch.Plans) == 0 && ch.Version <= since {
		return since, nil
	}
	// Estimate before encoding, so a catalog far beyond the budget is never indexed.
	if est := cur.Bytes() + EstimateBytes(ch.Plans); s.maxBytes > 0 && est > s.maxBytes {
		return s.overBudget(est)
	}
	next := cur.Apply(ch, s.encode)
	if s.maxBytes > 0 && next.Bytes() > s.maxBytes {
		return s.overBudget(next.Bytes())
	}
	s.index.Store(next)
	return next.Version(), nil
}

func (s *Searcher) overBudget(bytes int64) (int64, error) {
	s.over.Store(true)
	s.index.Store(nil)
	s.log.Warn("the catalog is beyond the index's memory budget: searches read the store through the response caches",
		"index_bytes", bytes, "index_max_bytes", s.maxBytes)
	return 0, nil
}

// Run refreshes the index until ctx is done; it returns nil then. Refresh errors are
// logged and retried at the next poll: searches keep the last good index meanwhile.
func (s *Searcher) Run(ctx context.Context) error {
	t := time.NewTicker(s.poll)
	defer t.Stop()
	failing := false
	for !s.over.Load() {
		if v, err := s.Refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !failing {
				s.log.Warn("catalog index refresh", "err", err)
			}
			failing = true
		} else if failing {
			s.log.Info("catalog index refresh recovered", "version", v)
			failing = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.notify:
		}
	}
	<-ctx.Done()
	return nil
}
