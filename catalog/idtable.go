package catalog

import (
	"encoding/binary"
	"math/bits"
	"sort"
)

// IDTable maps plan IDs to an int64 each in about 25 bytes a plan, where a Go map costs
// 56 as it grows: the index writer keeps each plan's start in one, and a re-sync the
// fingerprint of each stored plan (ingest's baseline).
//
// It is an array of (ID, value) sorted by ID, with a table of where each range of IDs
// begins: IDs are hashes, spread evenly, so a lookup is a read of the table and a few
// steps of binary search in a cache line or two. The array is kept in chunks of
// 65,536 entries (1.5 MiB), so that it never grows by copying itself into a larger
// array, which would leave the smaller one behind in the heap; the first chunk grows
// from a few entries, so that a small table takes little.
//
// A value changes in place (Find, then SetAt). A new ID is added one of two ways.
// SetAt puts it in a map of recent IDs, found at once; Settle merges that map into the
// array once it holds more than a sixteenth as many (and at least 32,768), so that each
// ID costs a sixteenth of a copy of the array. Append adds it to the end of the array,
// 24 bytes and no lookup, to be found after the next Settle, which sorts it in: the way
// to load many IDs at once.
//
// The zero IDTable is empty and ready to use. An IDTable is not safe for concurrent use.
type IDTable struct {
	chunks  [][]idValue  // of tableChunk entries each, the last one full or in part
	n       int          // entries in chunks
	sorted  int          // the first entries, sorted by ID and in buckets; the others are appended
	buckets []int32      // buckets[b]: the first place of an ID of bucket b or above among the sorted
	shift   uint         // an ID's bucket is its first half >> shift: its top 64-shift bits
	recent  map[ID]int64 // IDs set and not in chunks
}

// idValue is an ID, as two big-endian halves that compare as the ID's bytes do but
// faster, and its value.
type idValue struct {
	hi, lo uint64
	v      int64
}

// less reports whether a's ID orders before b's.
func (a idValue) less(b idValue) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func halves(id ID) (hi, lo uint64) {
	return binary.BigEndian.Uint64(id[:8]), binary.BigEndian.Uint64(id[8:])
}

const (
	tableChunkBits = 16
	tableChunk     = 1 << tableChunkBits // entries of a chunk of an IDTable
	firstChunk     = 64                  // entries of the first chunk at first
)

// minRecent is how many IDs the map of recent IDs holds at least before a merge, so that
// a small table is not merged at every Settle (32,768 IDs are about 2 MB of map).
const minRecent = 32768

// Len returns the number of IDs in the table, appended ones included.
func (t *IDTable) Len() int { return t.n + len(t.recent) }

// Get returns the value of id and whether the table has id. An appended ID is found
// once the table is settled.
func (t *IDTable) Get(id ID) (int64, bool) {
	_, v, ok := t.Find(id)
	return v, ok
}

// Find returns the place of id in the sorted array, or -1 when it is not there, and its
// value and whether the table has id. An appended ID is found once the table is
// settled.
func (t *IDTable) Find(id ID) (slot int, v int64, ok bool) {
	hi, lo := halves(id)
	if t.sorted > 0 {
		b := hi >> t.shift // 0 when shift is 64
		from, to := int(t.buckets[b]), int(t.buckets[b+1])
		for from < to { // a binary search for the first entry not below id
			m := int(uint(from+to) >> 1)
			if e := t.at(m); e.hi < hi || e.hi == hi && e.lo < lo {
				from = m + 1
			} else {
				to = m
			}
		}
		if from < t.sorted {
			if e := t.at(from); e.hi == hi && e.lo == lo {
				return from, e.v, true
			}
		}
	}
	v, ok = t.recent[id]
	return -1, v, ok
}

// SetAt sets the value of id to v, at slot as Find returned it for id: no Settle or
// Append comes between the two. An ID the table does not have is added.
func (t *IDTable) SetAt(slot int, id ID, v int64) {
	if slot >= 0 {
		t.at(slot).v = v
		return
	}
	if t.recent == nil {
		t.recent = make(map[ID]int64)
	}
	t.recent[id] = v
}

// Grow readies the table for n IDs to be added by SetAt before the next Settle: when
// none is waiting and n is large (an index built at once), the map of recent IDs is
// made that large at once, not grown step by step.
func (t *IDTable) Grow(n int) {
	if len(t.recent) == 0 && n >= minRecent {
		t.recent = make(map[ID]int64, n)
	}
}

// Append adds id, which the table does not have, with v, at the end of the array: it is
// found after the next Settle.
func (t *IDTable) Append(id ID, v int64) {
	hi, lo := halves(id)
	t.push(idValue{hi, lo, v})
}

// Settle makes every appended ID found, sorting them in, and merges the map of recent IDs
// into the array when it holds more than a sixteenth as many (and minRecent), so that
// a lookup stays a few steps and a map lookup in a small map.
func (t *IDTable) Settle() {
	if t.sorted == t.n && len(t.recent) <= max(minRecent, t.n/16) {
		return
	}
	if t.sorted == 0 { // nothing to merge with: sort everything in place
		from := t.n
		t.extend(t.n + len(t.recent))
		t.fill(from, t.recent)
		t.sortRange(0, t.n)
	} else {
		t.merge()
	}
	t.sorted, t.recent = t.n, nil
	t.index()
}

// merge merges the appended and recent IDs into the sorted ones, from the back, in
// place: the array grows by whole chunks, never by a copy.
func (t *IDTable) merge() {
	var add IDTable
	add.extend(t.n - t.sorted + len(t.recent))
	for i := t.sorted; i < t.n; i++ {
		*add.at(i - t.sorted) = *t.at(i)
	}
	add.fill(t.n-t.sorted, t.recent)
	add.sortRange(0, add.n)
	t.extend(t.sorted + add.n)
	i, j := t.sorted-1, add.n-1
	for k := t.n - 1; j >= 0; k-- { // k > i: t.at(i) is read before it is written over
		if a := add.at(j); i < 0 || !a.less(*t.at(i)) {
			*t.at(k) = *a
			j--
		} else {
			*t.at(k) = *t.at(i)
			i--
		}
	}
}

// fill writes the IDs and values of m from the entry from on.
func (t *IDTable) fill(from int, m map[ID]int64) {
	for id, v := range m {
		hi, lo := halves(id)
		*t.at(from) = idValue{hi, lo, v}
		from++
	}
}

// at returns the ith entry.
func (t *IDTable) at(i int) *idValue { return &t.chunks[i>>tableChunkBits][i&(tableChunk-1)] }

// push appends e to the array.
func (t *IDTable) push(e idValue) {
	if c := len(t.chunks); c > 0 && len(t.chunks[c-1]) < cap(t.chunks[c-1]) {
		t.chunks[c-1] = append(t.chunks[c-1], e)
		t.n++
		return
	}
	t.extend(t.n + 1)
	*t.at(t.n - 1) = e
}

// extend makes the array n entries long, at least its length: a full chunk is followed
// by a new one, whole, and the first one doubles until it is whole.
func (t *IDTable) extend(n int) {
	for t.n < n {
		c := t.n >> tableChunkBits
		if c == len(t.chunks) {
			size := tableChunk
			if c == 0 {
				size = min(max(firstChunk, n), tableChunk)
			}
			t.chunks = append(t.chunks, make([]idValue, 0, size))
		}
		want := min(n-c<<tableChunkBits, tableChunk) // entries of chunk c when done
		if es := t.chunks[c]; want > cap(es) {
			t.chunks[c] = make([]idValue, len(es), min(max(want, 2*cap(es)), tableChunk))
			copy(t.chunks[c], es)
		}
		t.chunks[c] = t.chunks[c][:want]
		t.n = c<<tableChunkBits + want
	}
}

// index rebuilds the table of buckets for the sorted entries: about eight IDs to a
// bucket, half a byte to a byte an ID.
func (t *IDTable) index() {
	b := bits.Len(uint(t.n / 8))
	t.shift = uint(64 - b)
	t.buckets = make([]int32, 1<<b+1)
	k, i := 0, 0
	for _, es := range t.chunks {
		for _, e := range es {
			for ; uint64(k) <= e.hi>>t.shift; k++ {
				t.buckets[k] = int32(i)
			}
			i++
		}
	}
	for ; k < len(t.buckets); k++ {
		t.buckets[k] = int32(i)
	}
}

// sortRange sorts the entries [from, to) by ID, in place. IDs are hashes, spread evenly:
// a pass counts the IDs of each range of their top bits, a second moves each ID to its
// range, swapping it with the one there (an American flag sort), and an insertion sort
// orders each range of about eight IDs, in about three passes where a comparison sort
// takes twenty at a million; the counts take a byte an ID while it runs. A range of
// more than maxInsertion IDs, which uneven IDs make, is sorted by comparisons.
func (t *IDTable) sortRange(from, to int) {
	b := bits.Len(uint((to - from) / 8))
	shift := uint(64 - b)
	next := make([]int32, 1<<b) // next[k]: the next place of range k to fill, from from
	end := make([]int32, 1<<b)  // end[k]: where range k ends
	for i := from; i < to; i++ {
		end[t.at(i).hi>>shift]++
	}
	var sum int32
	for k := range end {
		next[k] = sum
		sum += end[k]
		end[k] = sum
	}
	for k := range next {
		for next[k] < end[k] {
			e := *t.at(from + int(next[k]))
			for r := e.hi >> shift; r != uint64(k); r = e.hi >> shift {
				p := t.at(from + int(next[r]))
				next[r]++
				e, *p = *p, e
			}
			*t.at(from + int(next[k])) = e
			next[k]++
		}
	}
	first := from
	for _, e := range end {
		last := from + int(e)
		if last-first > maxInsertion {
			sort.Sort(entries{t, first, last - first})
		} else {
			t.insertionSort(first, last)
		}
		first = last
	}
}

// maxInsertion is the most IDs sortRange sorts by insertion: about a hundred moves.
const maxInsertion = 24

// insertionSort sorts the entries [from, to) by ID.
func (t *IDTable) insertionSort(from, to int) {
	for i := from + 1; i < to; i++ {
		e := *t.at(i)
		j := i
		for ; j > from && e.less(*t.at(j - 1)); j-- {
			*t.at(j) = *t.at(j - 1)
		}
		*t.at(j) = e
	}
}

// entries is n entries of an IDTable from the entry from on, sorted by ID by sort.Sort.
type entries struct {
	t       *IDTable
	from, n int
}

func (s entries) Len() int           { return s.n }
func (s entries) Less(i, j int) bool { return s.t.at(s.from + i).less(*s.t.at(s.from + j)) }
func (s entries) Swap(i, j int)      { a, b := s.t.at(s.from+i), s.t.at(s.from+j); *a, *b = *b, *a }
