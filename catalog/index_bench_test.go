package catalog

import (
	"strconv"
	"testing"
	"time"
)

// indexPlans returns n plans a minute apart, each encoded by encodeDoc.
func indexPlans(n, rev int) []Plan {
	plans := make([]Plan, n)
	start := at("2021-01-01 00:00:00")
	for i := range plans {
		s := start.Add(time.Duration(i) * time.Minute)
		plans[i] = Plan{ID: NewID("p", strconv.Itoa(i/100), strconv.Itoa(i)), Provider: "p",
			BasePlanID: strconv.Itoa(i / 100), PlanID: strconv.Itoa(i), SellMode: Online,
			StartsAt: s, EndsAt: s.Add(90 * time.Minute), Title: "Plan " + strconv.Itoa(rev)}
	}
	return plans
}

// encodeDoc stands for the API's encoder: a document of about the API's 220 bytes.
func encodeDoc(p Plan) []byte {
	doc := make([]byte, 0, 224)
	doc = append(doc, `{"id":"`...)
	doc = p.ID.AppendText(doc)
	doc = append(doc, `","title":"`...)
	doc = append(doc, p.Title...)
	doc = append(doc, `","start_date":"2021-01-01","start_time":"20:00:00","end_date":"2021-01-01","end_time":"21:30:00","min_price":15.00,"max_price":25.00}`...)
	return doc
}

// BenchmarkIndexBuild builds the index of 100k plans at once, as an API starting on a
// full catalog does.
func BenchmarkIndexBuild(b *testing.B) {
	const n = 100_000
	plans := indexPlans(n, 1)
	b.ReportAllocs()
	for b.Loop() {
		if ix := NewIndex(1, plans, encodeDoc); ix.Len() != n {
			b.Fatalf("indexed %d plans, want %d", ix.Len(), n)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "plans/s")
}

// BenchmarkIndexApply applies a batch of 1000 changed plans to an index of 100k, as an
// API does after each batch a worker commits: each to the index the previous one made,
// the batches changing the same plans to two revisions in turn.
func BenchmarkIndexApply(b *testing.B) {
	const n, changed = 100_000, 1000
	ix := NewIndex(1, indexPlans(n, 1), encodeDoc)
	chs := [2]Changes{
		{Plans: indexPlans(n, 2)[n/2 : n/2+changed]},
		{Plans: indexPlans(n, 3)[n/2 : n/2+changed]},
	}
	b.ReportAllocs()
	v := int64(1)
	for b.Loop() {
		v++
		ch := chs[v%2]
		ch.Version = v
		if ix = ix.Apply(ch, encodeDoc); ix.Len() != n {
			b.Fatalf("indexed %d plans, want %d", ix.Len(), n)
		}
	}
	b.ReportMetric(float64(changed)*float64(b.N)/b.Elapsed().Seconds(), "plans/s")
}
