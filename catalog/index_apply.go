package catalog

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sync"
)

// writer extends a lineage of indexes, each derived from the one before: it knows
// where each plan of the latest one (head) starts, so a change finds the entry it
// replaces without a scan, and it owns the slab the latest version appends to.
type writer struct {
	mu        sync.Mutex // guards the fields below, held for a whole Apply
	head      *Index     // the latest version; keys and tail describe it
	keys      IDTable    // where each plan of head starts
	tail      int        // the slab head appends documents to, or -1: a new one
	compacted bool       // compacting slabs, until their dead bytes are down to an eighth
}

// Apply returns a new index with the changes applied: changed plans replace their old
// entries, new ones are added. ix is left as it was; a nil ix is empty.
//
// It costs what the changes touch, not what the index holds: the changed plans'
// documents are appended to the slabs, the chunks holding their old and new places are
// copied with the changes in, and the tables of chunks and slabs are copied (a few
// bytes per 50 plans). Replaced documents stay in their slabs, dead, until a slab is
// more than a quarter dead overall: then Apply moves the live documents of the
// deadest slabs to the newest one, a few at each call, in proportion to the bytes it
// appended, and drops those slabs. Applying to ix that is not the latest index derived
// from its ancestors (the lineage went on past it) first reads where each of its plans
// starts, which costs a pass over it.
func (ix *Index) Apply(ch Changes, encode Encoder) *Index {
	w := ix.writer()
	defer w.mu.Unlock()
	next := w.apply(ix, ch, encode)
	w.head = next
	return next
}

// replacedSince returns the bytes prev references and ix does not: what keeping prev
// beside ix costs, for ix derived from prev by several Applies (each counts its
// replaced bytes against the one before, which may be a version never kept). It costs
// a pass over the tables of chunks and slabs.
func (ix *Index) replacedSince(prev *Index) int64 {
	if prev == nil {
		return 0
	}
	shared := make(map[*entry]bool, len(ix.chunks)) // chunks by their first entry
	for _, es := range ix.chunks {
		shared[&es[0]] = true
	}
	n := prev.tableBytes()
	for _, es := range prev.chunks {
		if !shared[&es[0]] {
			n += int64(cap(es)) * entrySize
		}
	}
	for i, sl := range prev.slabs {
		if sl.b != nil && (i >= len(ix.slabs) || ix.slabs[i].b == nil || array(ix.slabs[i].b) != array(sl.b)) {
			n += int64(cap(sl.b))
		}
	}
	return n
}

// array returns the first byte of b's array; b has room for one.
func array(b []byte) *byte { return &b[:1][0] }

// writer returns the locked writer of ix's lineage, or of a new one when ix is not its
// lineage's latest version.
func (ix *Index) writer() *writer {
	if ix != nil {
		w := ix.w
		w.mu.Lock()
		if w.head == ix {
			return w
		}
		w.mu.Unlock()
	}
	w := &writer{tail: -1}
	if ix != nil {
		for _, es := range ix.chunks {
			for _, e := range es {
				w.keys.Append(e.id, e.start)
			}
		}
		w.keys.Settle()
	}
	w.mu.Lock()
	return w
}

func (w *writer) apply(ix *Index, ch Changes, encode Encoder) *Index {
	next := &Index{version: ch.Version, w: w}
	var old [][]entry
	if ix != nil {
		old = ix.chunks
		next.version = max(ix.version, ch.Version)
		next.slabs = slices.Clone(ix.slabs)
		next.n, next.size, next.bytes = ix.n, ix.size, ix.bytes
		next.replaced = ix.tableBytes()
	}

	fresh := make([]entry, 0, len(ch.Plans))
	slots := make([]int, 0, len(ch.Plans)) // where each of fresh is in w.keys
	w.keys.Grow(len(ch.Plans))
	var gone []entry
	appended := 0
	for k, p := range ch.Plans {
		slot, start, ok := w.keys.Find(p.ID)
		if ok && start == pending {
			continue // the first of a batch wins
		}
		if ok {
			gone = append(gone, entry{start: start, id: p.ID})
		}
		w.keys.SetAt(slot, p.ID, pending)
		doc := encode(p)
		appended += len(doc)
		fresh = append(fresh, entry{start: p.StartsAt.Unix(), end: p.EndsAt.Unix(), id: p.ID,
			loc: w.put(next, doc, (len(ch.Plans)-k)*(len(doc)+8)), n: uint32(len(doc))})
		slots = append(slots, slot)
	}
	for k, e := range fresh {
		w.keys.SetAt(slots[k], e.id, e.start)
	}
	w.keys.Settle()
	sortEntries(fresh)
	sortEntries(gone)
	next.chunks = w.merge(next, old, fresh, gone)
	next.n += len(fresh) - len(gone)
	w.compact(next, appended)
	return next
}

// pending marks in writer.keys a plan of the batch being applied, so that a later one
// with the same ID is skipped; no plan starts at it (its year is far before 0).
const pending = math.MinInt64

func sortEntries(es []entry) {
	slices.SortFunc(es, func(a, b entry) int { return compareEntries(&a, &b) })
}

// put appends doc to ix's tail slab, or to a new one when it has no room, and returns
// its loc. want is how many bytes are coming, to size a new slab.
func (w *writer) put(ix *Index, doc []byte, want int) uint32 {
	if w.tail < 0 || alignUp(len(ix.slabs[w.tail].b))+len(doc) > cap(ix.slabs[w.tail].b) {
		w.tail = ix.newSlab(max(len(doc), min(slabMax, max(want+want/16, ix.size/64))))
	}
	s := &ix.slabs[w.tail]
	off := alignUp(len(s.b))
	s.b = append(s.b[:off], doc...)
	s.live += len(doc)
	ix.size += len(doc)
	return uint32(w.tail)<<offBits | uint32(off>>3)
}

func alignUp(n int) int { return (n + 7) &^ 7 }

// newSlab adds a slab of size bytes to ix, in a free place of its table when there is
// one, and returns its number.
func (ix *Index) newSlab(size int) int {
	i := slices.IndexFunc(ix.slabs, func(s slab) bool { return s.b == nil })
	if i < 0 {
		i = len(ix.slabs)
		if i == maxSlabs {
			panic(fmt.Sprintf("catalog: an index of more than %d slabs of %d bytes", maxSlabs, slabMax))
		}
		ix.slabs = append(ix.slabs, slab{})
	}
	ix.slabs[i] = slab{b: make([]byte, 0, size)}
	ix.bytes += int64(size)
	return i
}

// merge returns the chunks old with the entries at the positions of gone removed and
// the entries fresh inserted, both sorted; every entry of gone is in old. It copies
// the chunks they touch, and shares the others.
func (w *writer) merge(ix *Index, old [][]entry, fresh, gone []entry) [][]entry {
	out := make([][]entry, 0, len(old)+len(fresh)/chunkMax+1)
	i := 0
	for len(fresh) > 0 || len(gone) > 0 {
		k := &entry{start: 1<<63 - 1}
		if len(fresh) > 0 {
			k = &fresh[0]
		}
		if len(gone) > 0 && compareEntries(&gone[0], k) < 0 {
			k = &gone[0]
		}
		j := i + searchChunks(old[i:], k)
		j = min(j, len(old)-1) // past the last chunk: into it
		if j < 0 {
			out = ix.rewrite(out, nil, fresh, nil)
			return out
		}
		out = append(out, old[i:j]...)
		f, g := len(fresh), len(gone)
		if j < len(old)-1 {
			last := &old[j][len(old[j])-1]
			f = countUpTo(fresh, last)
			g = countUpTo(gone, last)
		}
		out = ix.rewrite(out, old[j], fresh[:f], gone[:g])
		fresh, gone = fresh[f:], gone[g:]
		i = j + 1
	}
	return append(out, old[i:]...)
}

// countUpTo returns how many of the sorted es are at or before k.
func countUpTo(es []entry, k *entry) int {
	n := 0
	for n < len(es) && compareEntries(&es[n], k) <= 0 {
		n++
	}
	return n
}

// rewrite appends to out the chunks holding es with the entries at the positions of
// gone removed (each is in es) and fresh inserted: none when nothing is left, several
// of about equal length when they would be longer than chunkMax.
func (ix *Index) rewrite(out [][]entry, es, fresh, gone []entry) [][]entry {
	ix.bytes -= int64(cap(es)) * entrySize
	ix.replaced += int64(cap(es)) * entrySize
	total := len(es) + len(fresh) - len(gone)
	pieces := (total + chunkMax - 1) / chunkMax
	k := 0
	drop := func() { // skips the entries of es that gone names
		for k < len(es) && len(gone) > 0 && es[k].start == gone[0].start && es[k].id == gone[0].id {
			ix.slabs[es[k].loc>>offBits].live -= int(es[k].n)
			ix.size -= int(es[k].n)
			k++
			gone = gone[1:]
		}
	}
	for p := range pieces {
		c := make([]entry, total/pieces+min(1, max(0, total%pieces-p)))
		ix.bytes += int64(len(c)) * entrySize
		for x := range c {
			drop()
			if k < len(es) && (len(fresh) == 0 || compareEntries(&es[k], &fresh[0]) < 0) {
				c[x] = es[k]
				k++
			} else {
				c[x] = fresh[0]
				fresh = fresh[1:]
			}
		}
		out = append(out, c)
	}
	drop()
	if len(gone) > 0 || len(fresh) > 0 || k < len(es) {
		panic("catalog: index chunk rewritten inconsistently")
	}
	return out
}

// compact moves the live documents of the deadest slabs to the tail once more than a
// quarter of the slabs' bytes are dead, until an eighth are, copying at most four
// times the bytes this Apply appended (plus one slab) at each call, and drops those
// slabs. Only the chunks that point into them are copied.
func (w *writer) compact(ix *Index, appended int) {
	used, dead := 0, 0
	for i, s := range ix.slabs {
		used += len(s.b)
		if i != w.tail {
			dead += len(s.b) - s.live
		}
	}
	if dead*4 > used {
		w.compacted = true
	}
	if !w.compacted {
		return
	}
	order := make([]int, 0, len(ix.slabs))
	for i, s := range ix.slabs {
		if i != w.tail && s.b != nil && len(s.b) > s.live {
			order = append(order, i)
		}
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Compare(len(ix.slabs[b].b)-ix.slabs[b].live, len(ix.slabs[a].b)-ix.slabs[a].live)
	})
	budget := 4*appended + slabMax
	moving := make([]bool, len(ix.slabs))
	copies, dropped := 0, 0
	for _, i := range order {
		s := ix.slabs[i]
		if dead*8 <= used || s.live > 0 && copies+s.live > budget {
			break
		}
		moving[i] = true
		copies += s.live
		dead -= len(s.b) - s.live
		dropped++
	}
	if dead*8 <= used {
		w.compacted = false
	}
	if dropped == 0 {
		return
	}
	if copies > 0 {
		for c, es := range ix.chunks {
			if !slices.ContainsFunc(es, func(e entry) bool { return moving[e.loc>>offBits] }) {
				continue
			}
			moved := slices.Clone(es)
			for k := range moved {
				e := &moved[k]
				if !moving[e.loc>>offBits] {
					continue
				}
				doc := ix.doc(e)
				ix.slabs[e.loc>>offBits].live -= len(doc)
				ix.size -= len(doc)
				e.loc = w.put(ix, doc, copies)
				copies -= len(doc)
			}
			ix.chunks[c] = moved
			ix.replaced += int64(cap(es)) * entrySize
			ix.bytes += int64(cap(moved)-cap(es)) * entrySize
		}
	}
	for i, m := range moving {
		if m {
			ix.bytes -= int64(cap(ix.slabs[i].b))
			ix.replaced += int64(cap(ix.slabs[i].b))
			ix.slabs[i] = slab{}
		}
	}
}
