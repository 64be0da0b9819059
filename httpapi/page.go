package httpapi

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"

	"boxoffice/catalog"
)

// The paginated search response around the events' documents and the next cursor.
const (
	pageCursorPrefix = `],"next_cursor":`
	pageSuffix       = `},"error":null}`
	nullCursor       = "null"
)

// Snapshots is a Catalog that also keeps the indexes of a few previous catalog
// versions, so that a paginated search reads every page at the version its first page
// was read at while newer versions land. *catalog.Searcher implements it; with a
// Catalog that does not, a cursor outlives only its own version.
type Snapshots interface {
	// IndexAt returns the index of the catalog at version, or nil when it is not kept.
	IndexAt(version int64) *catalog.Index
}

var _ Snapshots = (*catalog.Searcher)(nil)

// PageStore is a Store that also reads a page of a window, for paginated searches of
// a catalog without an index. sqlite.Store and postgres.Store implement it.
//
// SearchPage returns at most limit ever-online plans inside w after the position
// after (from the start of w when nil), ordered by start, then ID, with the catalog
// version they were read at, from one consistent snapshot, and whether more follow.
type PageStore interface {
	SearchPage(ctx context.Context, w catalog.Window, after *catalog.Position, limit int) (catalog.Page, error)
}

// searchPage answers a paginated search: at most pr.limit documents of the window
// after the cursor's position, read at the cursor's catalog version (the current one
// for a first page), and the cursor of the next page, or null on the last. The page is
// found by binary search in the index of that version, the current one or a kept
// previous one (Snapshots); a version no longer kept is 410, a version this process
// has not loaded yet (another instance made the cursor) 503. Without an index it reads
// the store (servePageFromStore). Pages are not cached: a page costs what a search of
// its size does.
func (h *Handler) searchPage(w http.ResponseWriter, r *http.Request, win catalog.Window, pr pageRequest) {
	ix := h.catalog.Index()
	if ix == nil {
		h.servePageFromStore(w, r, win, pr)
		return
	}
	var after *catalog.Position
	if pr.cur != nil {
		after = &pr.cur.after
		if v := pr.cur.version; v != ix.Version() {
			if v > ix.Version() {
				h.writeError(w, r, fmt.Errorf("%w: catalog version %d of the cursor not loaded by this instance yet", errNotLoaded, v))
				return
			}
			ix = nil
			if snap, ok := h.catalog.(Snapshots); ok {
				ix = snap.IndexAt(v)
			}
			if ix == nil {
				h.writeError(w, r, expired(v))
				return
			}
		}
	}
	bufs := h.buffers.Get().(*searchBuffers)
	defer h.putBuffers(bufs)
	bufs.etag = appendPageETag(bufs.etag[:0], ix.Version(), win, pr)
	if h.matchETag(w, r, bufs.etag) {
		return
	}
	var last catalog.Position
	var more bool
	bufs.docs, last, more = ix.Page(win, after, pr.limit, bufs.docs)
	bufs.next = h.nextCursor(bufs.next[:0], ix.Version(), win, last, more)
	h.writePage(w, r, bufs)
}

// expired is the error of a cursor whose catalog version is gone.
func expired(version int64) error {
	return fmt.Errorf("%w: catalog version %d, which this cursor pages through, is no longer available; %s",
		errCursorExpired, version, cursorAdvice)
}

// nextCursor appends the cursor of the page after last to b, or null when there is no
// more.
func (h *Handler) nextCursor(b []byte, version int64, win catalog.Window, last catalog.Position, more bool) []byte {
	if !more {
		return append(b, nullCursor...)
	}
	k := newSearchKey(version, win)
	b = append(b, '"')
	b = h.cursors.appendCursor(b, cursor{version: version, from: k.from, to: k.to, after: last})
	return append(b, '"')
}

// appendPageETag appends the ETag of a page to b: W/"<version>.<from>.<to>.<limit>",
// then ".<start>.<id>" of the cursor's position, in base 36 and hexadecimal; these
// determine the page's body.
func appendPageETag(b []byte, version int64, win catalog.Window, pr pageRequest) []byte {
	b = append(b, `W/"`...)
	b = newSearchKey(version, win).appendText(b)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(pr.limit), 36)
	if pr.cur != nil {
		b = append(b, '.')
		b = strconv.AppendInt(b, pr.cur.after.Start, 36)
		b = append(b, '.')
		b = hex.AppendEncode(b, pr.cur.after.ID[:])
	}
	return append(b, '"')
}

// writePage answers with a page: the documents in bufs.docs and the next cursor (JSON:
// a string or null) in bufs.next, copied through the pooled buffer, with the ETag in
// bufs.etag. Pages are never gzipped.
func (h *Handler) writePage(w http.ResponseWriter, r *http.Request, bufs *searchBuffers) {
	docs := bufs.docs
	size := len(eventsPrefix) + max(len(docs)-1, 0) + len(pageCursorPrefix) + len(bufs.next) + len(pageSuffix)
	for _, doc := range docs {
		size += len(doc)
	}
	hd := w.Header()
	h.setCacheHeaders(hd, []string{string(bufs.etag)})
	hd["Content-Length"] = []string{strconv.Itoa(size)}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	out := chunkWriter{w: w, buf: bufs.out[:0]}
	out.writeString(eventsPrefix)
	for i, doc := range docs {
		if i > 0 {
			out.writeString(",")
		}
		out.write(doc)
	}
	out.writeString(pageCursorPrefix)
	out.write(bufs.next)
	out.writeString(pageSuffix)
	out.flush()
}

// servePageFromStore answers a paginated search of a catalog without an index from the
// store: a keyset query (PageStore) after the cursor's position, under the search
// deadline and the bound on store reads at once. The store holds its current version
// only, so a cursor of any other version is 410: paging a catalog beyond the index's
// budget survives no sync.
func (h *Handler) servePageFromStore(w http.ResponseWriter, r *http.Request, win catalog.Window, pr pageRequest) {
	ps, ok := h.store.(PageStore)
	if !ok {
		h.writeError(w, r, errNotLoaded)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeouts[classSearch])
	defer cancel()
	r = r.WithContext(ctx) // writeError tells the deadline from other errors by it
	var after *catalog.Position
	if pr.cur != nil {
		after = &pr.cur.after
	}
	select {
	case h.storeSem <- struct{}{}:
	case <-ctx.Done():
		h.writeError(w, r, fmt.Errorf("wait for a store read: %w", ctx.Err()))
		return
	}
	page, err := ps.SearchPage(ctx, win, after, pr.limit)
	<-h.storeSem
	if err != nil {
		h.writeError(w, r, fmt.Errorf("%w: search store: %w", errUnavailable, err))
		return
	}
	if pr.cur != nil && page.Version != pr.cur.version {
		h.writeError(w, r, expired(pr.cur.version))
		return
	}
	bufs := h.buffers.Get().(*searchBuffers)
	defer h.putBuffers(bufs)
	bufs.etag = appendPageETag(bufs.etag[:0], page.Version, win, pr)
	if h.matchETag(w, r, bufs.etag) {
		return
	}
	var last catalog.Position
	for _, p := range page.Plans {
		bufs.docs = append(bufs.docs, EncodeEvent(p))
		last = catalog.PositionOf(p)
	}
	bufs.next = h.nextCursor(bufs.next[:0], page.Version, win, last, page.More)
	h.writePage(w, r, bufs)
}
