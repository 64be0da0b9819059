package catalog

import (
	"cmp"
	"encoding/binary"
	"math/bits"
	"slices"
)

// starts maps the ID of each plan of an index to its start, for the writer to find the
// entry a change replaces. It is a sorted array of (ID, start), 24 bytes a plan, and a
// map of the IDs added since the array was last merged, which is merged into the array
// once it holds more than a sixteenth as many: a Go map of every plan costs 56 bytes a
// plan as it grows. A table of where each range of IDs begins in the array (IDs are
// hashes, spread evenly) makes a lookup a few steps of binary search. A start that
// changes is changed in place.
type starts struct {
	sorted  []idStart    // by ID
	buckets []int32      // buckets[b]: the first place in sorted of an ID of bucket b or above
	shift   uint         // an ID's bucket is its first half >> shift: its top 64-shift bits
	recent  map[ID]int64 // IDs not in sorted
}

// idStart is a plan's ID, as two big-endian halves that compare as the ID's bytes do
// but faster, and its start.
type idStart struct {
	hi, lo uint64
	start  int64
}

func halves(id ID) (hi, lo uint64) {
	return binary.BigEndian.Uint64(id[:8]), binary.BigEndian.Uint64(id[8:])
}

func compareIDStarts(a, b idStart) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

// minRecent is how many IDs recent holds at least before a merge, so that a small
// index is not merged at every batch (32768 IDs are about 2 MB of map).
const minRecent = 32768

// newStarts returns the starts of the plans of ix; a nil ix has none.
func newStarts(ix *Index) *starts {
	s := &starts{recent: make(map[ID]int64)}
	if ix != nil {
		s.sorted = make([]idStart, 0, ix.n)
		for _, es := range ix.chunks {
			for _, e := range es {
				hi, lo := halves(e.id)
				s.sorted = append(s.sorted, idStart{hi, lo, e.start})
			}
		}
		s.sorted = sortIDStarts(s.sorted, len(s.sorted)+len(s.sorted)/8)
	}
	s.index()
	return s
}

// index rebuilds the table of buckets: about eight IDs to a bucket.
func (s *starts) index() {
	b := bits.Len(uint(len(s.sorted) / 8))
	s.shift = uint(64 - b)
	s.buckets = make([]int32, 1<<b+1)
	i := 0
	for k := range s.buckets {
		for i < len(s.sorted) && (b == 0 && k > 0 || b > 0 && s.sorted[i].hi>>s.shift < uint64(k)) {
			i++
		}
		s.buckets[k] = int32(i)
	}
}

// find returns the place of the plan id in sorted, or -1 when it is not there, and its
// start and whether it has one.
func (s *starts) find(id ID) (slot int, start int64, ok bool) {
	hi, lo := halves(id)
	b := hi >> s.shift // 0 when shift is 64
	from, to := int(s.buckets[b]), int(s.buckets[b+1])
	if i, ok := slices.BinarySearchFunc(s.sorted[from:to], idStart{hi: hi, lo: lo}, compareIDStarts); ok {
		return from + i, s.sorted[from+i].start, true
	}
	start, ok = s.recent[id]
	return -1, start, ok
}

// expect readies recent for a batch of n plans, when it is empty and the batch is large
// (an index built at once), so that the map does not grow step by step.
func (s *starts) expect(n int) {
	if len(s.recent) == 0 && n >= minRecent {
		s.recent = make(map[ID]int64, n)
	}
}

// put records start as the start of the plan id, at slot as find returned it: find
// and put are never separated by a settle.
func (s *starts) put(slot int, id ID, start int64) {
	if slot >= 0 {
		s.sorted[slot].start = start
		return
	}
	s.recent[id] = start
}

// settle merges recent into sorted when it has grown to more than a sixteenth of it (and
// minRecent), so that a lookup stays a few steps and a map lookup in a small map, and
// merging costs each plan a sixteenth of a copy of the array.
func (s *starts) settle() {
	if len(s.recent) <= max(minRecent, len(s.sorted)/16) {
		return
	}
	add := make([]idStart, 0, len(s.recent))
	for id, start := range s.recent {
		hi, lo := halves(id)
		add = append(add, idStart{hi, lo, start})
	}
	n := len(s.sorted) + len(add)
	if len(s.sorted) == 0 { // the first batch of a new index: nothing to merge with
		s.sorted, s.recent = sortIDStarts(add, n+n/8), make(map[ID]int64)
		s.index()
		return
	}
	add = sortIDStarts(add, len(add))
	// Merge from the back, in place when the array has room: it is given room for about
	// the next merge when it grows (1.5 bytes a plan on average), so that about every
	// other merge allocates nothing.
	merged := s.sorted[:len(s.sorted):cap(s.sorted)]
	if n > cap(s.sorted) {
		merged = make([]idStart, len(s.sorted), n+n/8)
		copy(merged, s.sorted)
	}
	merged = merged[:n]
	i, j := len(s.sorted)-1, len(add)-1
	for k := n - 1; j >= 0; k-- { // k > i: merged[i] is read before it is written over
		if i >= 0 && compareIDStarts(merged[i], add[j]) > 0 {
			merged[k] = merged[i]
			i--
		} else {
			merged[k] = add[j]
			j--
		}
	}
	s.sorted, s.recent = merged, make(map[ID]int64)
	s.index()
}

// sortIDStarts returns es sorted by ID, in a new array of the given capacity, at least
// len(es). IDs are hashes, spread evenly: a counting pass
// on their top bits puts each in a bucket of a few, and an insertion sort orders the
// buckets, in about two passes over es where a comparison sort takes twenty at a
// million. Uneven IDs are sorted as well, only slower.
func sortIDStarts(es []idStart, capacity int) []idStart {
	b := bits.Len(uint(len(es) / 4))
	shift := uint(64 - b)
	at := make([]int32, 1<<b+1) // at[k+1]: the IDs in bucket k, then where bucket k+1 begins
	for _, e := range es {
		at[e.hi>>shift+1]++
	}
	for k := 1; k < len(at); k++ {
		at[k] += at[k-1]
	}
	out := make([]idStart, len(es), max(len(es), capacity))
	for _, e := range es {
		k := e.hi >> shift
		out[at[k]] = e
		at[k]++
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && compareIDStarts(out[j], out[j-1]) < 0; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
