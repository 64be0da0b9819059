package catalog

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
)

// tableIDs returns n IDs of plans, hashes as the catalog's are.
func tableIDs(n int) []ID {
	ids := make([]ID, n)
	for i := range ids {
		ids[i] = NewID("p", "b", strconv.Itoa(i))
	}
	return ids
}

// checkTable fails t unless tab holds every ID of want with its value, and no other.
func checkTable(t *testing.T, tab *IDTable, want map[ID]int64, absent []ID) {
	t.Helper()
	for id, w := range want {
		if got, ok := tab.Get(id); !ok || got != w {
			t.Fatalf("Get(%s) = %d, %v; want %d, true", id, got, ok, w)
		}
	}
	for _, id := range absent {
		if _, ok := want[id]; ok {
			continue
		}
		if got, ok := tab.Get(id); ok {
			t.Fatalf("Get(%s) = %d, true; want none", id, got)
		}
	}
	if tab.Len() != len(want) {
		t.Fatalf("Len() = %d, want %d", tab.Len(), len(want))
	}
}

// TestIDTableAgreesWithAMap sets the values of IDs in a random order, new IDs and set
// ones, across several merges of the map of recent IDs, beside a map doing the same, as
// the index writer does.
func TestIDTableAgreesWithAMap(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var tab IDTable
	want := make(map[ID]int64)
	ids := tableIDs(3 * minRecent)
	merged := 0
	for round := range 8 {
		for range minRecent {
			id := ids[r.IntN(min(len(ids), (round+1)*minRecent/2))]
			v := r.Int64N(1 << 40)
			slot, got, ok := tab.Find(id)
			if w, wok := want[id]; got != w || ok != wok {
				t.Fatalf("round %d: Find(%s) = %d, %v; want %d, %v", round, id, got, ok, w, wok)
			}
			tab.SetAt(slot, id, v)
			want[id] = v
		}
		before := tab.sorted
		tab.Settle()
		if tab.sorted != before {
			merged++
		}
		checkTable(t, &tab, want, ids)
	}
	if merged < 2 {
		t.Errorf("%d merges, want several: the test exercises too little", merged)
	}
}

// TestIDTableAppend appends IDs, sets some of them and adds others to its map, then
// appends more to the settled table, as a load does: the sizes cross the first chunk's
// growth and the boundaries of chunks.
func TestIDTableAppend(t *testing.T) {
	tests := []struct {
		name       string
		give, more int // IDs appended, then appended after a Settle
	}{
		{name: "none", give: 0, more: 0},
		{name: "one", give: 1, more: 0},
		{name: "first chunk's first size", give: firstChunk, more: 1},
		{name: "first chunk grown", give: firstChunk + 1, more: 100},
		{name: "a chunk", give: tableChunk, more: 0},
		{name: "into a second chunk", give: tableChunk - 1, more: 2},
		{name: "a second chunk", give: tableChunk + 1, more: tableChunk},
		{name: "a few chunks", give: 3*tableChunk + 5, more: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids := tableIDs(tt.give + tt.more + 10)
			var tab IDTable
			want := make(map[ID]int64)
			for i, id := range ids[:tt.give] {
				tab.Append(id, int64(i))
				want[id] = int64(i)
			}
			tab.Settle()
			checkTable(t, &tab, want, ids)
			for i, id := range ids[tt.give/2 : tt.give+5] { // set ones and new ones
				slot, _, _ := tab.Find(id)
				tab.SetAt(slot, id, -int64(i))
				want[id] = -int64(i)
			}
			for i, id := range ids[tt.give+5 : tt.give+5+tt.more] {
				tab.Append(id, int64(i)<<32)
				want[id] = int64(i) << 32
			}
			tab.Settle()
			checkTable(t, &tab, want, ids)
			if tt.more > 0 && (tab.sorted != tab.n || len(tab.recent) != 0) {
				t.Errorf("settled: %d of %d sorted, %d recent; want every ID sorted", tab.sorted, tab.n, len(tab.recent))
			}
		})
	}
}

// TestIDTableChunks appends IDs one by one and checks that the array is in whole chunks
// but the last: growing never copied it into a larger array.
func TestIDTableChunks(t *testing.T) {
	var tab IDTable
	for i, id := range tableIDs(2*tableChunk + 3) {
		tab.Append(id, int64(i))
	}
	tab.Settle()
	if len(tab.chunks) != 3 {
		t.Fatalf("%d chunks, want 3", len(tab.chunks))
	}
	for i, es := range tab.chunks[:2] {
		if len(es) != tableChunk || cap(es) != tableChunk {
			t.Errorf("chunk %d: %d entries, room for %d; want %d", i, len(es), cap(es), tableChunk)
		}
	}
	if last := tab.chunks[2]; len(last) != 3 || cap(last) != tableChunk {
		t.Errorf("last chunk: %d entries, room for %d; want 3, %d", len(last), cap(last), tableChunk)
	}
}

// TestIDTableUnevenIDs sorts IDs that share their first half and IDs that are not
// hashes (all in a few of the ranges a sort counts), which are found all the same.
func TestIDTableUnevenIDs(t *testing.T) {
	var tab IDTable
	want := make(map[ID]int64)
	var absent []ID
	r := rand.New(rand.NewPCG(1, 1))
	for i := range 5000 {
		var id ID
		binary.BigEndian.PutUint64(id[:8], uint64(i%3)<<60)
		binary.BigEndian.PutUint64(id[8:], r.Uint64())
		if i%10 == 0 {
			absent = append(absent, id)
			continue
		}
		tab.Append(id, int64(i))
		want[id] = int64(i)
	}
	tab.Settle()
	checkTable(t, &tab, want, absent)
}

// TestIndexWriterReadsStarts applies to an index that is not the latest of its lineage:
// the new writer reads each plan's start back from it.
func TestIndexWriterReadsStarts(t *testing.T) {
	plans := indexPlans(1000, 1)
	ix := NewIndex(1, plans, encodeDoc)
	ix.Apply(Changes{Version: 2}, encodeDoc)
	w := ix.writer()
	defer w.mu.Unlock()
	if w.head == ix {
		t.Fatal("writer() of an index the lineage went past = its lineage's writer, want a new one")
	}
	for _, p := range plans {
		if got, ok := w.keys.Get(p.ID); !ok || got != p.StartsAt.Unix() {
			t.Fatalf("keys.Get(%s) = %d, %v; want %d, true", p.ID, got, ok, p.StartsAt.Unix())
		}
	}
}

// FuzzIDTable runs a sequence of operations on an IDTable and a map: each pair of bytes
// sets, appends or settles an ID of 16,384, of which half are hashes and half share
// their first half with many others, and every ID the table is to find is checked
// after each operation.
func FuzzIDTable(f *testing.F) {
	f.Add([]byte{0, 1, 0, 2, 2, 3, 3, 0, 0, 3, 6, 9, 3, 0, 1, 1})
	f.Add([]byte{2, 1, 2, 2, 2, 3, 2, 4, 3, 0, 2, 7, 0, 1, 0, 9, 3, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		var tab IDTable
		want := make(map[ID]int64)
		appended := make(map[ID]bool) // since the last Settle: not found before the next
		for i := 0; i+1 < len(ops); i += 2 {
			id := fuzzID(uint16(ops[i]>>2)<<8 | uint16(ops[i+1]))
			v := int64(i) - 1000
			switch ops[i] & 3 {
			case 0, 1:
				if appended[id] {
					continue
				}
				slot, got, ok := tab.Find(id)
				if w, wok := want[id]; got != w || ok != wok {
					t.Fatalf("op %d: Find(%s) = %d, %v; want %d, %v", i/2, id, got, ok, w, wok)
				}
				tab.SetAt(slot, id, v)
				want[id] = v
			case 2:
				if _, ok := want[id]; ok {
					continue
				}
				tab.Append(id, v)
				want[id], appended[id] = v, true
			case 3:
				tab.Settle()
				clear(appended)
			}
			for id, w := range want {
				if got, ok := tab.Get(id); !appended[id] && (!ok || got != w) {
					t.Fatalf("op %d: Get(%s) = %d, %v; want %d, true", i/2, id, got, ok, w)
				}
			}
		}
		tab.Settle()
		for k := range 1 << 14 {
			id := fuzzID(uint16(k))
			w, wok := want[id]
			if got, ok := tab.Get(id); got != w || ok != wok {
				t.Fatalf("settled: Get(%s) = %d, %v; want %d, %v", id, got, ok, w, wok)
			}
		}
		if tab.Len() != len(want) {
			t.Fatalf("settled: Len() = %d, want %d", tab.Len(), len(want))
		}
	})
}

// fuzzID returns the ID k of FuzzIDTable's: a hash when k is odd, else an ID whose first
// half is one of 16.
func fuzzID(k uint16) ID {
	if k%2 == 1 {
		return NewID("p", "b", strconv.Itoa(int(k)))
	}
	var id ID
	id[0] = byte(k >> 10)
	binary.BigEndian.PutUint16(id[14:], k)
	return id
}

// BenchmarkIDTableLoad appends the IDs of n plans in a random order and settles the
// table, as a re-sync reads its stored plans, and reports the heap the table holds
// once settled (after a collection) and the bytes allocated during the load, garbage
// included, per plan.
func BenchmarkIDTableLoad(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("plans=%d", n), func(b *testing.B) {
			ids := tableIDs(n)
			var ms runtime.MemStats
			var tab IDTable
			var held, allocated uint64
			for b.Loop() {
				tab = IDTable{}
				runtime.GC()
				runtime.ReadMemStats(&ms)
				heap, total := ms.HeapAlloc, ms.TotalAlloc
				for i, id := range ids {
					tab.Append(id, int64(i))
				}
				tab.Settle()
				runtime.ReadMemStats(&ms)
				allocated = ms.TotalAlloc - total
				runtime.GC()
				runtime.ReadMemStats(&ms)
				held = ms.HeapAlloc - heap
			}
			if tab.Len() != n {
				b.Fatalf("Len() = %d, want %d", tab.Len(), n)
			}
			b.ReportMetric(float64(held)/float64(n), "held-B/plan")
			b.ReportMetric(float64(allocated)/float64(n), "alloc-B/plan")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/plan")
		})
	}
}

// BenchmarkIDTableFind looks up IDs of a settled table of 1M plans, half of them there.
func BenchmarkIDTableFind(b *testing.B) {
	const n = 1_000_000
	ids := tableIDs(2 * n)
	var tab IDTable
	for i, id := range ids[:n] {
		tab.Append(id, int64(i))
	}
	tab.Settle()
	r := rand.New(rand.NewPCG(3, 4))
	found := 0
	for b.Loop() {
		if _, ok := tab.Get(ids[r.IntN(len(ids))]); ok {
			found++
		}
	}
	if found == 0 {
		b.Fatal("no ID found")
	}
}
