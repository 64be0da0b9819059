package catalog

import (
	"bytes"
	"cmp"
	"iter"
	"math"
	"time"
	"unsafe"
)

// Encoder turns a plan into the bytes a search serves for it (the API's JSON object),
// once per change of the plan rather than once per request.
type Encoder func(Plan) []byte

// Index is an immutable, in-memory snapshot of the searchable catalog at one version,
// sorted by start then ID, holding each plan's pre-encoded document. Searches are a
// binary search and a scan; a new version is a new Index, so readers never lock.
//
// Its layout is compact and shared between versions (see Apply):
//
//   - The documents sit in slabs, large byte arrays that only grow at their end, so a
//     plan costs its document's bytes, not an allocation of its own. A version sees
//     each slab up to the length it had then; a newer version appends beyond it.
//   - The order is a table of chunks, runs of at most chunkMax entries of 40 bytes
//     (start, end, ID and where the document is), free of pointers, so the garbage
//     collector has a few thousand objects to look at rather than millions.
//   - A new version copies the chunks its changes touch, and the tables (a pointer per
//     chunk and per slab); it shares every other chunk and every slab with the version
//     it came from. Keeping a previous version costs what its successor replaced.
type Index struct {
	version  int64
	chunks   [][]entry // in search order; each non-empty, at most chunkMax long
	slabs    []slab    // the documents; an entry's loc names a slab and an offset
	n        int       // plans
	size     int       // bytes of the plans' documents
	bytes    int64     // bytes of the slabs and chunks referenced
	replaced int64     // bytes the previous version referenced and this one does not
	w        *writer   // how Apply extends this version
}

// entry is a plan in the index: where it sits in the search order, its end, and where
// its document is.
type entry struct {
	start, end int64 // Unix seconds of the provider wall clock
	id         ID
	loc        uint32 // slab<<offBits | offset/8
	n          uint32 // the document's length
}

// slab is a byte array of documents, each at an offset that is a multiple of 8, so two
// documents never share a machine word (one version reads a word while the next appends
// beside it).
type slab struct {
	b    []byte // the bytes this version uses; the capacity beyond is free
	live int    // bytes of this version's documents in b
}

const (
	chunkMax = 32      // entries of a chunk at most; beyond, it splits
	slabMax  = 1 << 20 // bytes of a slab, unless one document is larger
	offBits  = 17      // bits of loc for the offset in 8-byte units: slabMax/8
	maxSlabs = 1 << (32 - offBits)

	entrySize = int64(unsafe.Sizeof(entry{}))
	slabSize  = int64(unsafe.Sizeof(slab{}))
	chunkRef  = int64(unsafe.Sizeof([]entry{}))
)

func compareEntries(a, b *entry) int {
	if c := cmp.Compare(a.start, b.start); c != 0 {
		return c
	}
	return bytes.Compare(a.id[:], b.id[:])
}

func (e *entry) position() Position { return Position{Start: e.start, ID: e.id} }

// doc returns the document of e, capped at its length.
func (ix *Index) doc(e *entry) []byte {
	off := int(e.loc&(1<<offBits-1)) << 3
	end := off + int(e.n)
	return ix.slabs[e.loc>>offBits].b[off:end:end]
}

// NewIndex builds an index of plans at version.
func NewIndex(version int64, plans []Plan, encode Encoder) *Index {
	return (*Index)(nil).Apply(Changes{Plans: plans, Version: version}, encode)
}

// entryBytes is the memory of an index entry besides its document: the entry itself, at
// the chunks' fill of about three quarters, and its key in the writer's starts (see
// writer.keys).
const entryBytes = entrySize*4/3 + keyBytes

// keyBytes estimates a plan's share of the writer's starts: 24 bytes in the sorted
// array, half a byte to a byte of its table, and a share of the map of recent IDs, at
// most a sixteenth as large (see IDTable).
const keyBytes = 28

// docOverhead is what an encoded document takes besides its plan's title: the other
// fields and the JSON around them (see httpapi.EncodeEvent), and its alignment.
const docOverhead = 204

// Bytes estimates the index's memory: its slabs, chunks and tables, and the map of
// starts Apply keeps for the latest version. A nil index is 0.
func (ix *Index) Bytes() int64 {
	if ix == nil {
		return 0
	}
	return ix.bytes + ix.tableBytes() + int64(ix.n)*keyBytes
}

func (ix *Index) tableBytes() int64 {
	if ix == nil {
		return 0
	}
	return int64(cap(ix.chunks))*chunkRef + int64(cap(ix.slabs))*slabSize
}

// EstimateBytes estimates what indexing plans adds to an index's Bytes, before encoding
// them.
func EstimateBytes(plans []Plan) int64 {
	n := int64(len(plans)) * (entryBytes + docOverhead)
	for _, p := range plans {
		n += int64(len(p.Title))
	}
	return n
}

// Version is the catalog version the index was read at.
func (ix *Index) Version() int64 { return ix.version }

// Len is the number of plans in the index.
func (ix *Index) Len() int { return ix.n }

// Size is the number of bytes of the encoded documents.
func (ix *Index) Size() int { return ix.size }

// spot is a place in the index: entry i of chunk c. Spots are normal: i is inside the
// chunk, or the spot is the end, {len(chunks), 0}.
type spot struct{ c, i int }

func (s spot) before(t spot) bool { return s.c < t.c || s.c == t.c && s.i < t.i }

// next returns the spot after s, which is not the end.
func (ix *Index) next(s spot) spot {
	if s.i+1 < len(ix.chunks[s.c]) {
		return spot{s.c, s.i + 1}
	}
	return spot{s.c + 1, 0}
}

// run returns the entries of chunk c from lo to hi.
func (ix *Index) run(c int, lo, hi spot) []entry {
	es := ix.chunks[c]
	if c == hi.c {
		es = es[:hi.i]
	}
	if c == lo.c {
		es = es[lo.i:]
	}
	return es
}

// Search yields the documents of the plans inside w, ordered by start, then ID.
func (ix *Index) Search(w Window) iter.Seq[[]byte] {
	lo, hi := ix.bounds(w)
	to := windowEnd(w)
	return func(yield func([]byte) bool) {
		for c := lo.c; c < len(ix.chunks) && c <= hi.c; c++ {
			es := ix.run(c, lo, hi)
			for k := range es {
				if e := &es[k]; e.end <= to && !yield(ix.doc(e)) {
					return
				}
			}
		}
	}
}

// Measure returns the number of plans inside w and the bytes of their documents,
// without collecting them: a response states its length, then streams Search(w).
func (ix *Index) Measure(w Window) (n, size int) {
	lo, hi := ix.bounds(w)
	to := windowEnd(w)
	for c := lo.c; c < len(ix.chunks) && c <= hi.c; c++ {
		es := ix.run(c, lo, hi)
		for k := range es {
			if e := &es[k]; e.end <= to {
				n++
				size += int(e.n)
			}
		}
	}
	return n, size
}

// Position is a place in the order searches answer in, (start, ID): a paginated search
// resumes after the position of the last plan of the previous page.
type Position struct {
	Start int64 // the plan's start, in Unix seconds of the provider wall clock
	ID    ID
}

// PositionOf returns the position of plan p.
func PositionOf(p Plan) Position { return Position{Start: p.StartsAt.Unix(), ID: p.ID} }

// Compare orders positions as searches do: by start, then ID.
func (p Position) Compare(q Position) int {
	if c := cmp.Compare(p.Start, q.Start); c != 0 {
		return c
	}
	return bytes.Compare(p.ID[:], q.ID[:])
}

// Page appends to docs the documents of at most limit plans inside w that come after
// after (from the start of w when after is nil), in search order, and returns them
// with the position of the last one and whether more plans of w follow it. It finds
// its place by binary search, so a page costs what a search of its size does,
// wherever it is in the window; only the plans that start inside w and end after it
// are stepped over, as Search does.
func (ix *Index) Page(w Window, after *Position, limit int, docs [][]byte) (page [][]byte, last Position, more bool) {
	lo, hi := ix.bounds(w)
	if after != nil {
		if s := ix.seekPosition(*after); lo.before(s) {
			lo = s
		}
		if hi.before(lo) {
			lo = hi
		}
		if lo.before(hi) {
			if e := &ix.chunks[lo.c][lo.i]; e.start == after.Start && e.id == after.ID {
				lo = ix.next(lo) // resume after it
			}
		}
	}
	to := windowEnd(w)
	n := 0
	var end *entry // the last entry of the page
	for c := lo.c; c < len(ix.chunks) && c <= hi.c; c++ {
		es := ix.run(c, lo, hi)
		for k := range es {
			e := &es[k]
			if e.end > to {
				continue
			}
			if n == limit {
				if end != nil {
					last = end.position()
				}
				return docs, last, true
			}
			docs = append(docs, ix.doc(e))
			end = e
			n++
		}
	}
	if end != nil {
		last = end.position()
	}
	return docs, last, false
}

func windowEnd(w Window) int64 {
	if w.To.IsZero() {
		return math.MaxInt64
	}
	return floorUnix(w.To)
}

// bounds returns the spots of the first entry whose start is inside w and of the first
// after those. A plan never ends before it starts, so no plan starting after w.To can
// end inside w.
func (ix *Index) bounds(w Window) (lo, hi spot) {
	hi = spot{len(ix.chunks), 0}
	if !w.From.IsZero() {
		lo = ix.seekStart(ceilUnix(w.From))
	}
	if !w.To.IsZero() {
		hi = ix.seekStart(floorUnix(w.To) + 1)
	}
	if hi.before(lo) {
		hi = lo
	}
	return lo, hi
}

// seekStart returns the spot of the first entry starting at or after t.
func (ix *Index) seekStart(t int64) spot {
	cs := ix.chunks
	lo, hi := 0, len(cs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if es := cs[m]; es[len(es)-1].start < t {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(cs) {
		return spot{lo, 0}
	}
	es := cs[lo]
	i, j := 0, len(es)
	for i < j {
		m := int(uint(i+j) >> 1)
		if es[m].start < t {
			i = m + 1
		} else {
			j = m
		}
	}
	return spot{lo, i}
}

// seekPosition returns the spot of the first entry at or after p.
func (ix *Index) seekPosition(p Position) spot {
	c := searchChunks(ix.chunks, &entry{start: p.Start, id: p.ID})
	if c == len(ix.chunks) {
		return spot{c, 0}
	}
	es := ix.chunks[c]
	i, j := 0, len(es)
	for i < j {
		m := int(uint(i+j) >> 1)
		if es[m].position().Compare(p) < 0 {
			i = m + 1
		} else {
			j = m
		}
	}
	return spot{c, i}
}

// searchChunks returns the index of the first chunk whose last entry is at or after k,
// or len(cs).
func searchChunks(cs [][]entry, k *entry) int {
	lo, hi := 0, len(cs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if es := cs[m]; compareEntries(&es[len(es)-1], k) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

func floorUnix(t time.Time) int64 { return t.Unix() }
