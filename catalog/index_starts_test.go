package catalog

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestStartsAgreeWithAMap sets and reads the starts of plans in a random order, new
// plans and moved ones, across several merges, beside a map doing the same.
func TestStartsAgreeWithAMap(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	s := newStarts(nil)
	want := make(map[ID]int64)
	ids := make([]ID, 3*minRecent)
	for i := range ids {
		ids[i] = NewID("p", "b", strconv.Itoa(i))
	}
	merged := 0
	for round := range 8 {
		for range minRecent {
			id := ids[r.IntN(min(len(ids), (round+1)*minRecent/2))]
			start := r.Int64N(1 << 40)
			slot, _, _ := s.find(id)
			s.put(slot, id, start)
			want[id] = start
		}
		before := len(s.sorted)
		s.settle()
		if len(s.sorted) != before {
			merged++
		}
		for _, id := range ids {
			_, got, ok := s.find(id)
			w, wok := want[id]
			if got != w || ok != wok {
				t.Fatalf("round %d: find(%s) = %d, %v; want %d, %v", round, id, got, ok, w, wok)
			}
		}
		if len(s.sorted)+len(s.recent) != len(want) {
			t.Fatalf("round %d: %d sorted and %d recent IDs, want %d in all", round, len(s.sorted), len(s.recent), len(want))
		}
	}
	if merged < 2 {
		t.Errorf("%d merges, want several: the test exercises too little", merged)
	}

	// The starts of an index read back from it.
	ix := NewIndex(1, indexPlans(1000, 1), encodeDoc)
	from := newStarts(ix)
	for _, p := range indexPlans(1000, 1) {
		if _, got, ok := from.find(p.ID); !ok || got != p.StartsAt.Unix() {
			t.Fatalf("newStarts(index).find(%s) = %d, %v; want %d, true", p.ID, got, ok, p.StartsAt.Unix())
		}
	}
}
