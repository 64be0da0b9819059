package httpapi

import (
	"io"
	"net/http"
	"strconv"
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

// maxPooledDocs bounds the list of matching documents a pooled searchBuffers keeps
// between requests (8 bytes of pointer and 16 of length and capacity each).
const maxPooledDocs = 16 << 10

// searchBuffers are the per-request buffers of a search, pooled.
type searchBuffers struct {
	docs [][]byte // the matching documents, in order; shared with the index, never written
	out  []byte   // searchBufferSize bytes the response is copied through
}

// search answers GET /search: the pre-encoded documents of the plans inside the window,
// ordered by start, then id. It reads no database and encodes nothing: it collects the
// matching documents, measures them, and copies them through a pooled buffer, so a
// response of any size has an exact Content-Length and costs a bounded amount of
// memory.
func (h *Handler) search(w http.ResponseWriter, r *http.Request) {
	win, err := ParseWindow(r.URL.Query())
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	ix := h.catalog.Index()
	if ix == nil {
		h.writeError(w, r, errNotLoaded)
		return
	}

	bufs := h.buffers.Get().(*searchBuffers)
	defer h.putBuffers(bufs)
	for doc := range ix.Search(win) {
		bufs.docs = append(bufs.docs, doc)
	}
	size := len(eventsPrefix) + len(eventsSuffix) + max(len(bufs.docs)-1, 0) // commas
	for _, doc := range bufs.docs {
		size += len(doc)
	}
	hd := w.Header()
	hd["Content-Type"] = h.contentType
	hd.Set("Content-Length", strconv.Itoa(size))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}

	out := chunkWriter{w: w, buf: bufs.out[:0]}
	out.writeString(eventsPrefix)
	for i, doc := range bufs.docs {
		if i > 0 {
			out.writeString(",")
		}
		out.write(doc)
		if out.err != nil {
			break
		}
	}
	out.writeString(eventsSuffix)
	out.flush()
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
	if cap(b.docs) > maxPooledDocs {
		b.docs = nil
	}
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
