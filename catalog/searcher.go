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
type Searcher struct {
	store  Store
	encode Encoder
	poll   time.Duration
	log    *slog.Logger

	index  atomic.Pointer[Index]
	notify chan struct{} // buffered(1): a pending refresh request
}

// NewSearcher returns a Searcher over store that encodes documents with encode and
// polls the store every poll interval.
func NewSearcher(store Store, encode Encoder, poll time.Duration, log *slog.Logger) *Searcher {
	return &Searcher{store: store, encode: encode, poll: poll, log: log, notify: make(chan struct{}, 1)}
}

// Index returns the current index, or nil before the first successful load.
func (s *Searcher) Index() *Index { return s.index.Load() }

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
func (s *Searcher) Refresh(ctx context.Context) (int64, error) {
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
	next := cur.Apply(ch, s.encode)
	s.index.Store(next)
	return next.Version(), nil
}

// Run refreshes the index until ctx is done; it returns nil then. Refresh errors are
// logged and retried at the next poll: searches keep the last good index meanwhile.
func (s *Searcher) Run(ctx context.Context) error {
	t := time.NewTicker(s.poll)
	defer t.Stop()
	failing := false
	for {
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
}
