package httpapi

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"net/http"
	"strconv"
	"sync/atomic"

	"boxoffice/catalog"
)

// The search response around the events' documents.
const (
	eventsPrefix = `{"data":{"events":[`
	eventsSuffix = `]},"error":null}`
)

// searchBufferSize is the capacity of the pooled buffers search responses are copied
// through: large enough that most responses are one write, small enough to keep
// pooled.
const searchBufferSize = 32 << 10

// searchBuffers are the per-request buffers of a search, pooled.
type searchBuffers struct {
	docs [][]byte // a page's documents, in order (at most maxLimit); never written
	out  []byte   // searchBufferSize bytes the response is copied through
	next []byte   // a page's next cursor, as JSON
	etag []byte   // a page's ETag
}

// search answers GET /search: the pre-encoded documents of the plans inside the window,
// ordered by start, then id. It reads no database and encodes nothing: a response is
// the L1 cache's bytes, or the index's matching documents concatenated once and kept
// in L1 under the index's version (see serveFromStore for a catalog without an index).
// A small response is kept from its second use (see doorkeeper): on its first it is
// copied through a pooled buffer, as is a response too large for L1, so a one-off
// window allocates nothing, and a response of any size has an exact Content-Length and
// costs a bounded amount of memory: its length is measured in a first pass over the
// index, and its documents are streamed in a second. With limit (and cursor), it
// answers one page instead (see searchPage).
func (h *Handler) search(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	win, err := ParseWindow(q)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	pr, paged, err := h.cursors.parsePage(q, win)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if paged {
		h.searchPage(w, r, win, pr)
		return
	}
	ix := h.catalog.Index()
	if ix == nil {
		h.serveFromStore(w, r, win)
		return
	}
	key := newSearchKey(ix.Version(), win)
	gz, done := h.serveCached(w, r, key)
	if done {
		return
	}

	n, size := ix.Measure(win)
	size += len(eventsPrefix) + len(eventsSuffix) + max(n-1, 0) // commas
	if size > h.l1MaxEntry || size < eagerGzipBytes && !h.door.seen(key) {
		h.stream(w, r, key, ix.Search(win), size) // too large for L1, or small and maybe one-off
		return
	}
	// Large, or asked for again: worth compressing once and keeping.
	resp := h.newResponse(key, appendEvents(make([]byte, 0, size), ix.Search(win)), gz)
	h.l1.Set(key, resp)
	h.writeResponse(w, r, key, resp, gz)
}

// appendEvents appends the search response of docs to b.
func appendEvents(b []byte, docs iter.Seq[[]byte]) []byte {
	b = append(b, eventsPrefix...)
	first := true
	for doc := range docs {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, doc...)
	}
	return append(b, eventsSuffix...)
}

// writeResponse answers with resp, gzipped when gz is set and that is worth it. The
// gzipped form is made the first time a client accepts it, and kept in L1.
func (h *Handler) writeResponse(w http.ResponseWriter, r *http.Request, key searchKey, resp *response, gz bool) {
	if gz && !resp.gzipTried {
		resp = resp.withGzip(h.compress(resp.body))
		h.l1.Set(key, resp)
	}
	hd := w.Header()
	h.setCacheHeaders(hd, resp.etag)
	body, length := resp.body, resp.length
	if gz && resp.gzip != nil {
		hd["Content-Encoding"] = h.gzipEncoding
		body, length = resp.gzip, resp.gzipLength
	}
	hd["Content-Length"] = length
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body) // an error means the client went away: nothing is left to do
	}
}

// setCacheHeaders sets the headers every 200 and 304 of a search has: its type, ETag,
// Cache-Control and Vary. The slices are shared and never modified.
func (h *Handler) setCacheHeaders(hd http.Header, etag []string) {
	hd["Content-Type"] = h.contentType
	hd["Etag"] = etag
	hd["Cache-Control"] = h.cacheControl
	hd["Vary"] = h.vary
}

// notModified answers 304 and returns true when the request's If-None-Match matches
// the ETag of key. It needs no cached response: the ETag names the version and the
// window, which determine the body.
func (h *Handler) notModified(w http.ResponseWriter, r *http.Request, key searchKey) bool {
	if len(r.Header["If-None-Match"]) == 0 {
		return false
	}
	var buf [96]byte
	return h.matchETag(w, r, key.appendETag(buf[:0]))
}

// matchETag answers 304 and returns true when the request's If-None-Match matches
// etag.
func (h *Handler) matchETag(w http.ResponseWriter, r *http.Request, etag []byte) bool {
	for _, v := range r.Header["If-None-Match"] {
		if etagMatches(v, etag) {
			h.setCacheHeaders(w.Header(), []string{string(etag)})
			w.WriteHeader(http.StatusNotModified)
			return true
		}
	}
	return false
}

// stream answers with docs, size bytes in all, copied through a pooled buffer: the
// path of responses too large for L1, uncompressed, and of small one-off ones. It
// holds no more than the buffer, whatever the size.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, key searchKey, docs iter.Seq[[]byte], size int) {
	hd := w.Header()
	h.setCacheHeaders(hd, []string{string(key.appendETag(nil))})
	hd.Set("Content-Length", strconv.Itoa(size))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}

	bufs := h.buffers.Get().(*searchBuffers)
	defer h.putBuffers(bufs)
	out := chunkWriter{w: w, buf: bufs.out[:0]}
	out.writeString(eventsPrefix)
	first := true
	for doc := range docs {
		if !first {
			out.writeString(",")
		}
		first = false
		out.write(doc)
		if out.err != nil {
			break
		}
	}
	out.writeString(eventsSuffix)
	out.flush()
}

// serveCached answers a search of key when the client's copy is current (304) or L1
// holds it, and reports whether it did, and whether the client takes gzip.
func (h *Handler) serveCached(w http.ResponseWriter, r *http.Request, key searchKey) (gz, done bool) {
	if h.notModified(w, r, key) {
		return false, true
	}
	gz = acceptsGzip(r.Header["Accept-Encoding"])
	if resp, ok := h.l1.GetIfPresent(key); ok {
		h.metrics.l1Hit.Inc()
		h.writeResponse(w, r, key, resp, gz)
		return gz, true
	}
	h.metrics.l1Miss.Inc()
	return gz, false
}

// serveFromStore answers a search when the catalog has no index: from L1, else from
// L2, else from the store, filling both. The catalog version is read first, so a
// response is never labelled with a version newer than the data it holds (a replica
// only moves forward). With the store down it still serves the windows cached at the
// last version it read; others get 503.
func (h *Handler) serveFromStore(w http.ResponseWriter, r *http.Request, win catalog.Window) {
	if h.store == nil {
		h.writeError(w, r, errNotLoaded)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeouts[classSearch])
	defer cancel()
	orig := r
	r = r.WithContext(ctx) // writeError tells the deadline from other errors by it
	version, storeErr := h.storeVersion(ctx)
	if storeErr != nil && version < 0 {
		h.writeError(w, r, fmt.Errorf("%w: %w", errUnavailable, storeErr))
		return
	}
	key := newSearchKey(version, win)
	gz, done := h.serveCached(w, r, key)
	if done {
		return
	}

	l2Key := string(key.appendText(nil))
	if body, ok := h.l2Get(ctx, l2Key); ok {
		resp := h.newResponse(key, body, gz)
		if len(body) <= h.l1MaxEntry {
			h.l1.Set(key, resp)
		}
		h.writeResponse(w, r, key, resp, gz)
		return
	}
	if storeErr != nil {
		h.writeError(w, r, fmt.Errorf("%w: %w", errUnavailable, storeErr))
		return
	}
	body, err := h.readWindow(ctx, l2Key, win)
	if errors.Is(err, errLargeWindow) {
		cancel() // the stream has a deadline of its own
		h.streamFromStore(w, orig, key, win, gz)
		return
	}
	if err != nil {
		h.writeError(w, r, fmt.Errorf("%w: search store: %w", errUnavailable, err))
		return
	}
	resp := h.newResponse(key, body, gz)
	h.l1.Set(key, resp)
	h.writeResponse(w, r, key, resp, gz)
}

// errLargeWindow stops the read of a window whose response is larger than L1 keeps:
// it is streamed instead (see streamFromStore).
var errLargeWindow = errors.New("window larger than an L1 entry")

// readWindow returns the response body of the window win, named l2Key, from the store,
// or errLargeWindow as soon as the body would be larger than L1 keeps (l1MaxEntry):
// such a window is streamed instead, so no search holds more than an L1 entry of a
// window's plans. Concurrent
// searches of one window share one read (singleflight), and at most
// Config.StoreReads reads run at once (a semaphore): a burst of searches cannot take
// every database connection, and the same hot window is read once, not once per
// client. The read runs under a deadline of its own (the search deadline, from when
// it starts), so a caller that gives up does not fail the others; each caller waits
// for it within its own deadline. The body is stored in L2 once, by the read.
func (h *Handler) readWindow(ctx context.Context, l2Key string, win catalog.Window) ([]byte, error) {
	h.storeWaiters.Add(1)
	defer h.storeWaiters.Add(-1)
	ch := h.flights.DoChan(l2Key, func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.timeouts[classSearch])
		defer cancel()
		select {
		case h.storeSem <- struct{}{}:
		case <-rctx.Done():
			return nil, fmt.Errorf("wait for a store read: %w", rctx.Err())
		}
		defer func() { <-h.storeSem }()
		body := append([]byte(nil), eventsPrefix...)
		err := h.eachPlan(rctx, win, func(p catalog.Plan) error {
			doc := EncodeEvent(p)
			if len(body)+1+len(doc)+len(eventsSuffix) > h.l1MaxEntry {
				return errLargeWindow
			}
			if len(body) > len(eventsPrefix) {
				body = append(body, ',')
			}
			body = append(body, doc...)
			return nil
		})
		if err != nil {
			return nil, err
		}
		body = append(body, eventsSuffix...)
		h.l2Set(rctx, l2Key, body)
		return body, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.([]byte), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// StreamStore is a Store that also hands a window's plans over one at a time, as it
// reads them, so that a window of any size is searched in bounded memory (see
// streamFromStore). sqlite.Store and postgres.Store implement it.
//
// EachPlan calls fn with each ever-online plan inside w, ordered by start, then ID,
// from one query; an error from fn stops it and is returned as it is.
type StreamStore interface {
	EachPlan(ctx context.Context, w catalog.Window, fn func(catalog.Plan) error) error
}

// eachPlan calls fn with the plans of win in the store, one at a time as the store
// reads them when it is a StreamStore, else from SearchPlans' list.
func (h *Handler) eachPlan(ctx context.Context, win catalog.Window, fn func(catalog.Plan) error) error {
	if ss, ok := h.store.(StreamStore); ok {
		return ss.EachPlan(ctx, win, fn)
	}
	plans, err := h.store.SearchPlans(ctx, win)
	if err != nil {
		return err
	}
	for _, p := range plans {
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

// errHeadOnly stops the read of a streamed window once a HEAD request has its headers.
var errHeadOnly = errors.New("head request")

// streamFromStore answers a search of a window too large for L1 from the store as it
// reads it: each plan's document goes to the response (gzipped when the client takes
// it) through a pooled buffer, flushed to the client every buffer, so a response
// holds no more than a buffer of the window whatever its size, and the client has its
// first bytes before the store has read the last plan. The body is the bytes any other
// path answers; it goes without a Content-Length, which is known only at its end.
//
// The search deadline bounds the wait for the first plan (a read that has not started
// by then is a 504, as any search's); a read that has started lasts as long as the
// client takes the response, within the server's write timeout, and ends when the
// client goes away. A store error part-way aborts the response, so the client sees it
// cut, never a shorter document that parses. These reads count against StoreReads.
// A stream reads at the store's version then, never older than its ETag's (a replica
// only moves forward), as the store path's other reads.
func (h *Handler) streamFromStore(w http.ResponseWriter, r *http.Request, key searchKey, win catalog.Window, gz bool) {
	dctx, dcancel := context.WithTimeout(r.Context(), h.timeouts[classSearch])
	defer dcancel()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	var started atomic.Bool
	stopDeadline := context.AfterFunc(dctx, func() {
		if !started.Load() {
			cancel()
		}
	})
	defer stopDeadline()
	h.storeWaiters.Add(1)
	select {
	case h.storeSem <- struct{}{}:
		h.storeWaiters.Add(-1)
	case <-dctx.Done():
		h.storeWaiters.Add(-1)
		h.writeError(w, r.WithContext(dctx), fmt.Errorf("%w: wait for a store read: %w", errUnavailable, dctx.Err()))
		return
	}
	defer func() { <-h.storeSem }()

	bufs := h.buffers.Get().(*searchBuffers)
	defer h.putBuffers(bufs)
	sink := &streamSink{w: w, rc: http.NewResponseController(w)}
	out := chunkWriter{w: sink, buf: bufs.out[:0]}
	begin := func() error {
		started.Store(true)
		hd := w.Header()
		h.setCacheHeaders(hd, []string{string(key.appendETag(nil))})
		if gz {
			hd["Content-Encoding"] = h.gzipEncoding
			sink.zw = h.gzips.Get().(*gzip.Writer)
			sink.zw.Reset(w)
		}
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodHead {
			return errHeadOnly
		}
		out.writeString(eventsPrefix)
		return nil
	}
	err := h.eachPlan(ctx, win, func(p catalog.Plan) error {
		if !started.Load() {
			if err := begin(); err != nil {
				return err
			}
		} else {
			out.writeString(",")
		}
		out.write(EncodeEvent(p))
		return out.err
	})
	switch {
	case errors.Is(err, errHeadOnly):
		return
	case err != nil && !started.Load():
		h.writeError(w, r.WithContext(dctx), fmt.Errorf("%w: search store: %w", errUnavailable, err))
		return
	case err != nil && out.err != nil:
		return // the client went away
	case err != nil:
		h.log.Warn("search stream cut: the store failed part-way", "err", err)
		panic(http.ErrAbortHandler) // net/http drops the connection: the client sees the body cut
	case !started.Load(): // the window emptied since it was found large
		if begin() != nil {
			return
		}
	}
	out.writeString(eventsSuffix)
	out.flush()
	if sink.zw != nil && out.err == nil {
		if sink.zw.Close() == nil {
			h.gzips.Put(sink.zw)
		}
	}
}

// streamSink passes each chunk of a streamed response to the client at once: through
// gzip with a sync flush when zw is set, then through the connection's buffer.
type streamSink struct {
	w  io.Writer
	zw *gzip.Writer
	rc *http.ResponseController
}

func (s *streamSink) Write(p []byte) (int, error) {
	var n int
	var err error
	if s.zw != nil {
		if n, err = s.zw.Write(p); err == nil {
			err = s.zw.Flush()
		}
	} else {
		n, err = s.w.Write(p)
	}
	if err == nil {
		if ferr := s.rc.Flush(); ferr != nil && !errors.Is(ferr, http.ErrNotSupported) {
			err = ferr
		}
	}
	return n, err
}

// storeVersion reads the store's catalog version. When the store fails it returns the
// last version it read (-1 if none) with the error, so that cached windows still serve.
func (h *Handler) storeVersion(ctx context.Context) (int64, error) {
	ch, err := h.store.ChangedSince(ctx, math.MaxInt64)
	if err != nil {
		return h.lastVersion.Load(), fmt.Errorf("read catalog version: %w", err)
	}
	h.lastVersion.Store(ch.Version)
	return ch.Version, nil
}

// l2Get looks key up in L2, within l2Timeout. A failing L2 counts as a miss and is
// logged once, when it starts failing, and once when it recovers.
func (h *Handler) l2Get(ctx context.Context, key string) ([]byte, bool) {
	if h.l2 == nil {
		return nil, false
	}
	cctx, cancel := context.WithTimeout(ctx, h.l2Timeout)
	defer cancel()
	body, ok, err := h.l2.Get(cctx, key)
	if ctx.Err() == nil { // not the client going away
		h.l2Status(err)
	}
	if !ok || err != nil {
		h.metrics.l2Miss.Inc()
		return nil, false
	}
	h.metrics.l2Hit.Inc()
	return body, true
}

// l2Set stores body under key in L2 for the cache TTL, within l2Timeout; a failure
// only means the next instance reads the store too.
func (h *Handler) l2Set(ctx context.Context, key string, body []byte) {
	if h.l2 == nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, h.l2Timeout)
	defer cancel()
	if err := h.l2.Set(cctx, key, body, h.cacheTTL); ctx.Err() == nil {
		h.l2Status(err)
	}
}

// l2Status logs the L2 going down and coming back, once each.
func (h *Handler) l2Status(err error) {
	switch {
	case err != nil && h.l2Down.CompareAndSwap(false, true):
		h.log.Warn("search cache L2 failing; serving from L1 and the store", "err", err)
	case err == nil && h.l2Down.Load() && h.l2Down.CompareAndSwap(true, false):
		h.log.Info("search cache L2 recovered")
	}
}

// newBuffers returns empty search buffers, for the pool.
func newBuffers() any {
	return &searchBuffers{out: make([]byte, 0, searchBufferSize)}
}

// putBuffers returns b to the pool, dropping its references to documents so that an
// index replaced since can be collected.
func (h *Handler) putBuffers(b *searchBuffers) {
	clear(b.docs)
	b.docs = b.docs[:0]
	h.buffers.Put(b)
}

// chunkWriter copies small writes into buf and passes buf to w when it is full, so a
// response of many documents is a few large writes. It never grows buf: a document
// larger than buf goes to w directly. After an error from w, which means the client
// went away, it drops everything.
type chunkWriter struct {
	w   io.Writer
	buf []byte
	err error
}

func (c *chunkWriter) write(p []byte) {
	if len(c.buf)+len(p) > cap(c.buf) {
		c.flush()
		if len(p) > cap(c.buf) {
			if c.err == nil {
				_, c.err = c.w.Write(p)
			}
			return
		}
	}
	c.buf = append(c.buf, p...)
}

func (c *chunkWriter) writeString(s string) {
	if len(c.buf)+len(s) > cap(c.buf) {
		c.flush()
	}
	c.buf = append(c.buf, s...) // short constants: never more than cap(buf)
}

// flush passes what buf holds to w.
func (c *chunkWriter) flush() {
	if len(c.buf) > 0 && c.err == nil {
		_, c.err = c.w.Write(c.buf)
	}
	c.buf = c.buf[:0]
}
