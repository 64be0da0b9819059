package catalog

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Window is a search range. A plan is in it when it starts at or after From and ends at
// or before To. A zero bound is open.
type Window struct {
	From time.Time
	To   time.Time
}

// ErrInvertedWindow is returned for a window whose From is after its To.
var ErrInvertedWindow = errors.New("starts_at is after ends_at")

// Validate reports an inverted window.
func (w Window) Validate() error {
	if !w.From.IsZero() && !w.To.IsZero() && w.From.After(w.To) {
		return ErrInvertedWindow
	}
	return nil
}

// Contains reports whether plan p is inside the window.
func (w Window) Contains(p Plan) bool {
	return (w.From.IsZero() || !p.StartsAt.Before(w.From)) && (w.To.IsZero() || !p.EndsAt.After(w.To))
}

// Store keeps plans. Implementations: sqlite.Store (embedded) and postgres.Store.
//
// UpsertPlans applies one batch atomically and returns the catalog version after it.
// For each plan, a higher Revision than the stored one replaces the stored values; an
// equal or lower one leaves them as they are (a redelivered or late batch never
// regresses a plan), except that EverOnline is sticky: it becomes true when any
// observation, late or not, is Online. Inside one batch the first occurrence of a plan
// ID wins over later ones with the same Revision. The version advances only when a
// searchable plan changed, so a sync that changes nothing keeps caches warm.
//
// SearchPlans returns the ever-online plans inside w, ordered by start, then ID.
//
// ChangedSince returns the ever-online plans whose Version is above version, and the
// catalog version they were read at, from one consistent snapshot. ChangedSince(ctx, 0)
// returns the whole searchable catalog.
//
// EachChange reads what ChangedSince returns in pages: it calls fn with pages of at
// most limit of those plans, in no particular order, each carrying the catalog version
// they were read at, and returns that version. Every page comes from the same snapshot,
// so the pages together are exactly what one ChangedSince at that version returns,
// never a mix of versions, and a whole catalog is read in the memory of a page. fn is
// never called with an empty page: when nothing changed, EachChange only returns the
// version. fn must not keep the page's slice after it returns (the store reuses it); an
// error from fn stops the read and is returned as it is. A read that fails after a
// page went to fn is not retried: the caller drops what it took from the pages.
//
// Plans read back carry EverOnline (always true for these) and Version; the values a
// caller sets in those fields when upserting are ignored. Text that is not valid UTF-8
// is read back with each invalid byte replaced by U+FFFD (see Observe), never refused.
//
// Errors are the store's own (a connection refused, a timeout); callers retry them.
type Store interface {
	UpsertPlans(ctx context.Context, batch []Plan) (version int64, err error)
	SearchPlans(ctx context.Context, w Window) ([]Plan, error)
	ChangedSince(ctx context.Context, version int64) (Changes, error)
	EachChange(ctx context.Context, version int64, limit int, fn func(Changes) error) (int64, error)
}

// Changes are the searchable plans changed after a version, read at Version.
type Changes struct {
	Plans   []Plan
	Version int64
}

// Page is a page of a window's plans, read at Version, for a paginated search without
// an index; More says whether plans of the window follow the last one.
type Page struct {
	Plans   []Plan
	Version int64
	More    bool
}

// NewPage returns the page of at most limit plans read at version from plans, the
// answer of a keyset query for limit+1: a plan beyond limit only says that more follow.
func NewPage(plans []Plan, version int64, limit int) Page {
	if len(plans) > limit {
		return Page{Plans: plans[:limit], Version: version, More: true}
	}
	return Page{Plans: plans, Version: version}
}

// Rows are a database query's result rows, as drivers have them: Next moves to the
// next row and reports whether there is one; Err is the error that ended them.
type Rows interface {
	Next() bool
	Err() error
}

// EachPage calls fn with the plans of rows, each read by scan from the current row and
// all read at version, in pages of at most limit, reusing one slice for them, as a
// store's EachChange gives them: it stops at the first error of scan, rows or fn, and
// returns it as it is. It panics on a limit below 1.
func EachPage(rows Rows, scan func() (Plan, error), version int64, limit int, fn func(Changes) error) error {
	if limit < 1 {
		panic(fmt.Sprintf("catalog: EachPage: a page limit of %d", limit))
	}
	var page []Plan
	for rows.Next() {
		p, err := scan()
		if err != nil {
			return err
		}
		page = append(page, p)
		if len(page) == limit {
			if err := fn(Changes{Plans: page, Version: version}); err != nil {
				return err
			}
			clear(page) // let the collector have the plans fn is done with
			page = page[:0]
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(page) == 0 {
		return nil
	}
	return fn(Changes{Plans: page, Version: version})
}
