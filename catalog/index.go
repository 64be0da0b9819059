package catalog

import (
	"bytes"
	"cmp"
	"iter"
	"math"
	"slices"
	"time"
	"unsafe"
)

// Encoder turns a plan into the bytes a search serves for it (the API's JSON object),
// once per change of the plan rather than once per request.
type Encoder func(Plan) []byte

// Index is an immutable, in-memory snapshot of the searchable catalog at one version,
// sorted by start then ID, holding each plan's pre-encoded document. Searches are a
// binary search and a scan; a new version is a new Index, so readers never lock.
type Index struct {
	version  int64
	entries  []entry
	size     int   // bytes of all docs
	replaced int64 // bytes of the previous index's docs that this one replaced
}

type entry struct {
	start, end int64 // Unix seconds of the provider wall clock
	id         ID
	doc        []byte
}

func compareEntries(a, b entry) int {
	if c := cmp.Compare(a.start, b.start); c != 0 {
		return c
	}
	return bytes.Compare(a.id[:], b.id[:])
}

// NewIndex builds an index of plans at version.
func NewIndex(version int64, plans []Plan, encode Encoder) *Index {
	return (&Index{}).Apply(Changes{Plans: plans, Version: version}, encode)
}

// Apply returns a new index with the changes applied: changed plans replace their old
// entries, new ones are added. ix is left as it was; a nil ix is empty.
func (ix *Index) Apply(ch Changes, encode Encoder) *Index {
	fresh := make([]entry, 0, len(ch.Plans))
	changed := make(map[ID]struct{}, len(ch.Plans))
	for _, p := range ch.Plans {
		if _, dup := changed[p.ID]; dup {
			continue
		}
		changed[p.ID] = struct{}{}
		fresh = append(fresh, entry{start: p.StartsAt.Unix(), end: p.EndsAt.Unix(), id: p.ID, doc: encode(p)})
	}
	slices.SortFunc(fresh, compareEntries)

	var old []entry
	if ix != nil {
		old = ix.entries
	}
	next := &Index{version: ch.Version, entries: make([]entry, 0, len(old)+len(fresh))}
	i, j := 0, 0
	for i < len(old) || j < len(fresh) {
		if i < len(old) {
			if _, ok := changed[old[i].id]; ok {
				next.replaced += int64(len(old[i].doc))
				i++
				continue
			}
		}
		var e entry
		if j >= len(fresh) || (i < len(old) && compareEntries(old[i], fresh[j]) < 0) {
			e, i = old[i], i+1
		} else {
			e, j = fresh[j], j+1
		}
		next.entries = append(next.entries, e)
		next.size += len(e.doc)
	}
	if ix != nil && ch.Version < ix.version {
		next.version = ix.version
	}
	return next
}

// entryBytes is the memory of an index entry besides its document: the entry itself
// and its share of the slice (Go's append leaves up to a quarter spare).
const entryBytes = int64(unsafe.Sizeof(entry{})) * 5 / 4

// docOverhead is what an encoded document takes besides its plan's title: the other
// fields and the JSON around them (see httpapi.EncodeEvent).
const docOverhead = 200

// Bytes estimates the index's memory: its documents and entries. A nil index is 0.
func (ix *Index) Bytes() int64 {
	if ix == nil {
		return 0
	}
	return int64(ix.size) + int64(len(ix.entries))*entryBytes
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
func (ix *Index) Len() int { return len(ix.entries) }

// Size is the number of bytes of the encoded documents.
func (ix *Index) Size() int { return ix.size }

// Search yields the documents of the plans inside w, ordered by start, then ID.
func (ix *Index) Search(w Window) iter.Seq[[]byte] {
	lo, hi := ix.bounds(w)
	to := int64(math.MaxInt64)
	if !w.To.IsZero() {
		to = floorUnix(w.To)
	}
	return func(yield func([]byte) bool) {
		for _, e := range ix.entries[lo:hi] {
			if e.end <= to && !yield(e.doc) {
				return
			}
		}
	}
}

// Measure returns the number of plans inside w and the bytes of their documents,
// without collecting them: a response states its length, then streams Search(w).
func (ix *Index) Measure(w Window) (n, size int) {
	for doc := range ix.Search(w) {
		n++
		size += len(doc)
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
		k, _ := slices.BinarySearchFunc(ix.entries[lo:hi], *after, func(e entry, p Position) int {
			return Position{Start: e.start, ID: e.id}.Compare(p)
		})
		lo += k
		if lo < hi && ix.entries[lo].start == after.Start && ix.entries[lo].id == after.ID {
			lo++ // resume after it
		}
	}
	to := int64(math.MaxInt64)
	if !w.To.IsZero() {
		to = floorUnix(w.To)
	}
	n := 0
	for _, e := range ix.entries[lo:hi] {
		if e.end > to {
			continue
		}
		if n == limit {
			return docs, last, true
		}
		docs = append(docs, e.doc)
		last = Position{Start: e.start, ID: e.id}
		n++
	}
	return docs, last, false
}

// bounds returns the range of entries whose start is inside w. A plan never ends before
// it starts, so no plan starting after w.To can end inside w.
func (ix *Index) bounds(w Window) (lo, hi int) {
	hi = len(ix.entries)
	if !w.From.IsZero() {
		from := ceilUnix(w.From)
		lo, _ = slices.BinarySearchFunc(ix.entries, from, func(e entry, t int64) int { return cmp.Compare(e.start, t) })
	}
	if !w.To.IsZero() {
		to := floorUnix(w.To)
		hi, _ = slices.BinarySearchFunc(ix.entries, to+1, func(e entry, t int64) int { return cmp.Compare(e.start, t) })
	}
	return lo, max(lo, hi)
}

func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

func floorUnix(t time.Time) int64 { return t.Unix() }
