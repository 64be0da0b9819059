package catalog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"boxoffice/clock"
)

// Searcher serves searches from an in-memory Index of the store and keeps that index at
// the store's latest version: it refreshes when told the version may have moved
// (Notify) and at least every poll interval. When the store is unreachable it keeps
// serving the last index it loaded.
//
// The index has a memory budget (SearcherConfig.MaxBytes). A catalog whose index would
// exceed it is not indexed: the Searcher drops its index, reports OverBudget, and stops
// reading the catalog, and searches read the store instead (through the response caches; see
// httpapi.Config.Store). The searchable catalog never shrinks (ever-online is sticky),
// so a catalog over the budget stays over it until the budget is raised.
//
// Besides the current index it keeps the indexes of a few previous versions
// (SearcherConfig.History), so that a paginated search started at one version reads
// every page from that version while newer ones land. Indexes share what they have in common
// (see Index): a kept version costs what its successor replaced, the runs of entries
// its changes touched (at most 32 entries of 40 bytes each) and the documents moved
// out of compacted slabs. They count against the budget, and the oldest is dropped
// first when the current index and those kept would exceed it.
type Searcher struct {
	store    Store
	encode   Encoder
	poll     time.Duration
	clock    clock.Clock
	log      *slog.Logger
	maxBytes int64 // 0: no budget
	keep     int   // previous versions kept besides the current one
	page     int   // plans a refresh reads and applies at a time

	index   atomic.Pointer[Index]
	history atomic.Pointer[[]*Index] // previous indexes, newest first; never modified once stored
	over    atomic.Bool              // the catalog is beyond maxBytes
	loading atomic.Int64             // bytes the refresh in progress added beyond the current index
	notify  chan struct{}            // buffered(1): a pending refresh request
}

// SearcherConfig tunes a Searcher. The zero value polls every second, without a budget
// or history.
type SearcherConfig struct {
	// Poll is how often Run reads the store for a new catalog version when no Notify
	// came; 0 is a second. In one process the worker calls Notify at once; across
	// processes Pub/Sub does, and the poll covers a missed announcement.
	Poll time.Duration
	// MaxBytes is the index's memory budget, in bytes (INDEX_MAX_BYTES); 0 means none.
	MaxBytes int64
	// History is how many previous versions' indexes are kept beside the current one
	// for paginated searches in flight (INDEX_HISTORY); 0 keeps none.
	History int
	// Page is how many changed plans a refresh reads and applies at a time; 0 is 5000.
	// A whole catalog is read a page at a time, in the memory of one page of plans.
	Page int
	// Clock makes the poll's ticker and Follow's pauses before subscribing again; nil
	// is clock.System.
	Clock clock.Clock
}

// defaultPage is SearcherConfig.Page's default: the batch size of an ingest, and a page
// whose plans and documents are small beside the headroom of the process's memory limit
// (cmd/boxoffice).
const defaultPage = 5000

// NewSearcher returns a Searcher over store that encodes documents with encode. It
// panics on a nil store or encode, or a negative setting: a programming mistake.
func NewSearcher(store Store, encode Encoder, cfg SearcherConfig, log *slog.Logger) *Searcher {
	if store == nil || encode == nil || log == nil {
		panic("catalog: NewSearcher: a nil store, encoder or log")
	}
	if cfg.Poll < 0 || cfg.MaxBytes < 0 || cfg.History < 0 || cfg.Page < 0 {
		panic(fmt.Sprintf("catalog: NewSearcher: negative Poll %v, MaxBytes %d, History %d or Page %d", cfg.Poll, cfg.MaxBytes, cfg.History, cfg.Page))
	}
	return &Searcher{store: store, encode: encode, poll: cmp.Or(cfg.Poll, time.Second), clock: clock.Or(cfg.Clock), log: log,
		maxBytes: cfg.MaxBytes, keep: cfg.History, page: cmp.Or(cfg.Page, defaultPage), notify: make(chan struct{}, 1)}
}

// IndexAt returns the index of the catalog at version: the current one or a kept
// previous one, or nil when it is neither (dropped, or not loaded yet).
func (s *Searcher) IndexAt(version int64) *Index {
	if ix := s.index.Load(); ix != nil && ix.Version() == version {
		return ix
	}
	if h := s.history.Load(); h != nil {
		for _, ix := range *h {
			if ix.Version() == version {
				return ix
			}
		}
	}
	return nil
}

// Bytes estimates the memory of the current index and of the previous ones kept.
func (s *Searcher) Bytes() int64 {
	cur := s.index.Load()
	n := cur.Bytes()
	if h := s.history.Load(); h != nil && cur != nil {
		n += historyBytes(cur, *h)
	}
	return n
}

// Loading estimates the memory a refresh in progress has added beyond the current
// index (all of the index it builds, before the first is installed), 0 between refreshes:
// with Bytes, what the process's memory limit must leave room for.
func (s *Searcher) Loading() int64 { return s.loading.Load() }

// historyBytes estimates what keeping the previous indexes prev (newest first) costs
// beside cur: for each one, what its successor replaced (see Index.Apply).
func historyBytes(cur *Index, prev []*Index) int64 {
	var n int64
	newer := cur
	for _, ix := range prev {
		n += newer.replaced
		newer = ix
	}
	return n
}

// install makes next the current index and keeps the one it replaces in the history,
// dropping the oldest beyond the History count or beyond the budget. The history is
// stored first, so that a version is always either current or kept while it moves.
func (s *Searcher) install(cur, next *Index) {
	var prev []*Index
	if cur != nil && s.keep > 0 && cur.Version() != next.Version() {
		prev = append(prev, cur)
		if h := s.history.Load(); h != nil {
			prev = append(prev, *h...)
		}
		prev = prev[:min(len(prev), s.keep)]
		for s.maxBytes > 0 && len(prev) > 0 && next.Bytes()+historyBytes(next, prev) > s.maxBytes {
			prev = prev[:len(prev)-1]
		}
	} else if h := s.history.Load(); h != nil {
		prev = *h
	}
	s.history.Store(&prev)
	s.index.Store(next)
}

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
//
// It reads the changes in pages (SearcherConfig.Page) and applies each to the index it
// builds as it comes, so a whole catalog (a start, a restart, a long catch-up) costs the
// memory of the index and one page of plans, never of every plan at once. The index it
// builds is installed only once the last page is in: the pages all come from one
// snapshot (see Store.EachChange), so it serves exactly one catalog version, never part
// of one.
func (s *Searcher) Refresh(ctx context.Context) (int64, error) {
	if s.over.Load() {
		return 0, nil
	}
	cur := s.index.Load()
	var since int64
	if cur != nil {
		since = cur.Version()
	}
	next, pages := cur, 0
	var over int64 // the estimate beyond the budget that stopped the read
	version, err := s.store.EachChange(ctx, since, s.page, func(ch Changes) error {
		// Estimate before encoding, so a catalog far beyond the budget is never indexed.
		if est := next.Bytes() + EstimateBytes(ch.Plans); s.maxBytes > 0 && est > s.maxBytes {
			over = est
			return errOverBudget
		}
		next = next.Apply(ch, s.encode)
		pages++
		if s.maxBytes > 0 && next.Bytes() > s.maxBytes {
			over = next.Bytes()
			return errOverBudget
		}
		s.loading.Store(max(0, next.Bytes()-cur.Bytes()))
		return nil
	})
	s.loading.Store(0)
	switch {
	case errors.Is(err, errOverBudget):
		return s.overBudget(over)
	case err != nil:
		return since, fmt.Errorf("refresh catalog index from version %d: %w", since, err)
	case pages == 0 && cur != nil && version <= since:
		return since, nil
	case pages == 0:
		next = cur.Apply(Changes{Version: version}, s.encode)
	case pages > 1:
		next.replaced = next.replacedSince(cur) // each Apply counted against the page before
	}
	s.install(cur, next)
	return next.Version(), nil
}

// errOverBudget stops a refresh's read when the index would exceed the budget.
var errOverBudget = errors.New("the catalog is beyond the index's memory budget")

func (s *Searcher) overBudget(bytes int64) (int64, error) {
	s.over.Store(true)
	s.history.Store(nil)
	s.index.Store(nil)
	s.log.Warn("the catalog is beyond the index's memory budget: searches read the store through the response caches",
		"index_bytes", bytes, "index_max_bytes", s.maxBytes)
	return 0, nil
}

// Run refreshes the index until ctx is done; it returns nil then. Refresh errors are
// logged and retried at the next poll: searches keep the last good index meanwhile.
func (s *Searcher) Run(ctx context.Context) error {
	t := s.clock.NewTicker(s.poll)
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
		case <-t.C():
		case <-s.notify:
		}
	}
	<-ctx.Done()
	return nil
}

// Follow refreshes the index at each version n announces (Notify), until ctx is done;
// it returns nil then. A subscription that fails (Redis unreachable, or its
// confirmation lost, at start) is logged and tried again, pausing as clock.Retry does
// by default, for as long as the process runs: announcements are hints, and meanwhile
// searches are served from the index, which Run's poll keeps fresh.
func (s *Searcher) Follow(ctx context.Context, n Notifier) error {
	clock.Retry(ctx, s.clock, clock.Backoff{}, func(ctx context.Context) error {
		return n.Subscribe(ctx, func(int64) { s.Notify() })
	}, func(err error, attempts int, pause time.Duration) {
		s.log.Warn("catalog versions: subscription failed; searches are served from memory, refreshed by the poll; subscribing again",
			"err", err, "attempts", attempts, "pause", pause, "poll", s.poll)
	})
	return nil
}
