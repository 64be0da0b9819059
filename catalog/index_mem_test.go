package catalog

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// ingestPlans returns n plans as the bench's synthetic catalog has them (n/100 base
// plans of 100 plans, each starting on one of 730 days at one of 27 half hours), in
// the random order of their starts that a provider's document has.
func ingestPlans(n int, rev int) []Plan {
	r := rand.New(rand.NewPCG(1, 2))
	plans := make([]Plan, n)
	day0 := at("2021-01-01 00:00:00")
	for i := range plans {
		base, id := strconv.Itoa(i/100), strconv.Itoa(i)
		s := day0.Add(time.Duration(r.IntN(730))*24*time.Hour + 10*time.Hour + time.Duration(r.IntN(27))*30*time.Minute)
		plans[i] = Plan{ID: NewID("p", base, id), Provider: "p", BasePlanID: base, PlanID: id, SellMode: Online,
			StartsAt: s, EndsAt: s.Add(90 * time.Minute), Title: "Synthetic show number " + base + " rev " + strconv.Itoa(rev)}
	}
	return plans
}

// BenchmarkIndexIngest applies a catalog of n plans to an empty index in batches of
// 5000, as an API does during a cold ingest, keeping the 4 previous versions a
// Searcher keeps for paginated searches, and reports the time per plan, the documents'
// bytes per plan, the live heap per plan once done (after a GC, with the history
// still kept) and the largest heap in use seen after an apply (the GC's headroom
// included).
func BenchmarkIndexIngest(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("plans=%d", n), func(b *testing.B) {
			plans := ingestPlans(n, 1)
			const batch, keep = 5000, 4
			var ix *Index
			var history []*Index
			var peak uint64
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			base := ms.HeapAlloc // the plans
			for b.Loop() {
				ix, history = nil, nil
				runtime.GC()
				for i := 0; i < n; i += batch {
					next := ix.Apply(Changes{Plans: plans[i:min(i+batch, n)], Version: int64(i/batch + 1)}, encodeDoc)
					if ix != nil {
						history = append([]*Index{ix}, history...)[:min(len(history)+1, keep)]
					}
					ix = next
					runtime.ReadMemStats(&ms)
					peak = max(peak, ms.HeapInuse)
				}
			}
			if ix.Len() != n {
				b.Fatalf("indexed %d plans, want %d", ix.Len(), n)
			}
			runtime.GC()
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/plan")
			b.ReportMetric(float64(ix.Size())/float64(n), "doc-B/plan")
			b.ReportMetric(float64(ms.HeapAlloc-base)/float64(n), "live-B/plan")
			b.ReportMetric(float64(peak-base)/float64(n), "peak-B/plan")
			runtime.KeepAlive(ix)
			runtime.KeepAlive(history)
			runtime.KeepAlive(plans)
		})
	}
}
