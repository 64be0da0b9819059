package catalog

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// refSearch is the reference for Index.Search: the plans inside w, by start then ID,
// each encoded.
func refSearch(plans map[ID]Plan, w Window, encode Encoder) []string {
	var in []Plan
	for _, p := range plans {
		if (w.From.IsZero() || p.StartsAt.Unix() >= ceilUnix(w.From)) && (w.To.IsZero() || p.EndsAt.Unix() <= floorUnix(w.To)) {
			in = append(in, p)
		}
	}
	slices.SortFunc(in, func(a, b Plan) int { return PositionOf(a).Compare(PositionOf(b)) })
	var docs []string
	for _, p := range in {
		docs = append(docs, string(encode(p)))
	}
	return docs
}

// randomPlan returns plan number id of the random catalog at revision rev: few starts,
// so that many plans tie on one, and a document whose length varies.
func randomPlan(r *rand.Rand, id, rev int) Plan {
	s := at("2021-01-01 00:00:00").Add(time.Duration(r.IntN(40)) * time.Hour)
	return Plan{ID: NewID("p", "b", strconv.Itoa(id)), Provider: "p", BasePlanID: "b", PlanID: strconv.Itoa(id),
		SellMode: Online, StartsAt: s, EndsAt: s.Add(time.Duration(1+r.IntN(5)) * time.Hour),
		Title: fmt.Sprintf("%d rev %d %s", id, rev, string(make([]byte, r.IntN(300))))}
}

// randomPlans returns plans 0 to n-1 of the random catalog at revision 0.
func randomPlans(r *rand.Rand, n int) []Plan {
	plans := make([]Plan, n)
	for id := range plans {
		plans[id] = randomPlan(r, id, 0)
	}
	return plans
}

// randomWindows returns windows over the random catalog's 40 hours, and the open one.
func randomWindows(r *rand.Rand) []Window {
	ws := []Window{{}}
	for range 3 {
		from := at("2021-01-01 00:00:00").Add(time.Duration(r.IntN(45*60)) * time.Minute)
		ws = append(ws, Window{From: from}, Window{To: from}, Window{From: from, To: from.Add(time.Duration(r.IntN(20*60)) * time.Minute)})
	}
	return ws
}

// TestIndexApplyDifferential applies random batches of upserts (new plans, changed
// ones, moved ones, duplicates inside a batch) one after the other, and checks after
// each that the index answers every search and every page as a fresh build of the same
// catalog and as a reference filtering a map; and that every earlier version it keeps
// still answers as it did when it was built, although later versions were applied on
// top of it and slabs were compacted meanwhile; and that no more than a quarter of the
// slabs' bytes are dead documents.
func TestIndexApplyDifferential(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 0))
			encode := func(p Plan) []byte { return []byte(p.ID.String()[:8] + " " + p.Title) }
			catalog := map[ID]Plan{}
			type kept struct {
				ix      *Index
				answers map[int][]string // by window
			}
			var history []kept
			var ix *Index
			windows := randomWindows(r)
			for step := range 40 {
				var batch []Plan
				for range 1 + r.IntN(200) {
					id := r.IntN(1500)
					p := randomPlan(r, id, step)
					if old, ok := catalog[p.ID]; ok && r.IntN(3) > 0 {
						p.StartsAt, p.EndsAt = old.StartsAt, old.EndsAt // changed in place
					}
					batch = append(batch, p)
				}
				if r.IntN(4) == 0 {
					batch = append(batch, batch[r.IntN(len(batch))]) // a later duplicate loses
				}
				inBatch := map[ID]bool{}
				for _, p := range batch {
					if !inBatch[p.ID] {
						catalog[p.ID] = p
						inBatch[p.ID] = true
					}
				}
				ix = ix.Apply(Changes{Plans: batch, Version: int64(step + 1)}, encode)

				all := make([]Plan, 0, len(catalog))
				for _, p := range catalog {
					all = append(all, p)
				}
				fresh := NewIndex(int64(step+1), all, encode)
				if ix.Len() != len(catalog) || ix.Size() != fresh.Size() || ix.Version() != int64(step+1) {
					t.Fatalf("step %d: Len, Size, Version = %d, %d, %d; want %d, %d, %d", step,
						ix.Len(), ix.Size(), ix.Version(), len(catalog), fresh.Size(), step+1)
				}
				used, dead := 0, 0
				for i, sl := range ix.slabs {
					used += len(sl.b)
					if i != ix.w.tail {
						dead += len(sl.b) - sl.live
					}
				}
				if dead*4 > used {
					t.Fatalf("step %d: %d of the slabs' %d bytes are dead, more than a quarter: no compaction", step, dead, used)
				}
				answers := map[int][]string{}
				for i, w := range windows {
					want := refSearch(catalog, w, encode)
					answers[i] = want
					if got := search(ix, w); !slices.Equal(got, want) {
						t.Fatalf("step %d: Search(%v) after Apply (-reference +got):\n%s", step, w, cmp.Diff(want, got))
					}
					if got := search(fresh, w); !slices.Equal(got, want) {
						t.Fatalf("step %d: Search(%v) of a fresh build (-reference +got):\n%s", step, w, cmp.Diff(want, got))
					}
					if n, size := ix.Measure(w); n != len(want) || size != len(strings.Join(want, "")) {
						t.Fatalf("step %d: Measure(%v) = %d, %d; want %d, %d", step, w, n, size, len(want), len(strings.Join(want, "")))
					}
					limit := 1 + r.IntN(50)
					if got := slices.Concat(pageThrough(t, ix, w, limit)...); len(got) != len(want) || !slices.Equal(got, want) {
						t.Fatalf("step %d: pages of %v at limit %d (-reference +got):\n%s", step, w, limit, cmp.Diff(want, got))
					}
				}
				history = append(history, kept{ix, answers})
				if len(history) > 5 {
					history = history[1:]
				}
				for _, h := range history {
					for i, w := range windows {
						if got := search(h.ix, w); !slices.Equal(got, h.answers[i]) {
							t.Fatalf("step %d: the index of version %d changed: Search(%v) (-then +now):\n%s", step, h.ix.Version(), w, cmp.Diff(h.answers[i], got))
						}
					}
				}
			}
		})
	}
}

// TestIndexApplyBranches applies two different batches to the same index, and a third
// to the first result: each answers as a fresh build of its catalog, and the index
// they came from is unchanged, although the second and third append documents from
// the same starting point (the second must not write where the first's documents are).
func TestIndexApplyBranches(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	encode := func(p Plan) []byte { return []byte(p.Title) }
	base := randomPlans(r, 300)
	batch := func(rev int) []Plan {
		var b []Plan
		for range 100 {
			b = append(b, randomPlan(r, r.IntN(400), rev))
		}
		return b
	}
	upsert := func(plans []Plan, batch []Plan) []Plan {
		byID := map[ID]int{}
		for i, p := range plans {
			byID[p.ID] = i
		}
		out := slices.Clone(plans)
		inBatch := map[ID]bool{}
		for _, p := range batch {
			if inBatch[p.ID] {
				continue // the first of a batch wins
			}
			inBatch[p.ID] = true
			if i, ok := byID[p.ID]; ok {
				out[i] = p
			} else {
				byID[p.ID] = len(out)
				out = append(out, p)
			}
		}
		return out
	}
	ix := NewIndex(1, base, encode)
	before := search(ix, Window{})
	a, b := batch(1), batch(2)
	ixA := ix.Apply(Changes{Plans: a, Version: 2}, encode)
	ixB := ix.Apply(Changes{Plans: b, Version: 3}, encode)
	c := batch(3)
	ixAC := ixA.Apply(Changes{Plans: c, Version: 4}, encode)
	for _, tt := range []struct {
		name  string
		ix    *Index
		plans []Plan
	}{
		{"base", ix, base},
		{"base+a", ixA, upsert(base, a)},
		{"base+b", ixB, upsert(base, b)},
		{"base+a+c", ixAC, upsert(upsert(base, a), c)},
	} {
		if want, got := search(NewIndex(1, tt.plans, encode), Window{}), search(tt.ix, Window{}); !slices.Equal(got, want) {
			t.Errorf("%s: Search() (-fresh build +got):\n%s", tt.name, cmp.Diff(want, got))
		}
	}
	if got := search(ix, Window{}); !slices.Equal(got, before) {
		t.Errorf("the index applied to changed (-before +after):\n%s", cmp.Diff(before, got))
	}
}

// TestIndexReadWhileApplying searches an index while versions are applied on top of
// it, as requests do while the Searcher refreshes; under -race it shows that a reader
// and the writer appending to a shared slab never touch the same memory.
func TestIndexReadWhileApplying(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	encode := func(p Plan) []byte { return []byte(p.Title) }
	ix := NewIndex(1, randomPlans(r, 500), encode)
	want := search(ix, Window{})
	done := make(chan struct{})
	read := make(chan []string)
	go func() {
		for {
			got := search(ix, Window{})
			select {
			case <-done:
				read <- got
				return
			default:
				if !slices.Equal(got, want) {
					read <- got
					return
				}
			}
		}
	}()
	next := ix
	for rev := 1; rev <= 50; rev++ {
		next = next.Apply(Changes{Plans: []Plan{randomPlan(r, r.IntN(600), rev), randomPlan(r, r.IntN(600), rev)}, Version: int64(rev + 1)}, encode)
	}
	close(done)
	if got := <-read; !slices.Equal(got, want) {
		t.Errorf("a search while applying (-before +during):\n%s", cmp.Diff(want, got))
	}
}
