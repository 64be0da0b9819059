package postgres_test

import (
	"strconv"
	"testing"
	"time"

	"boxoffice/catalog"
	"boxoffice/catalog/catalogtest"
	"boxoffice/ingest"
)

// benchBatch returns size plans of base plan base, at revision, titled title, each with
// three zones, starting a minute apart.
func benchBatch(base string, first, size int, revision int64, title string) []catalog.Plan {
	batch := make([]catalog.Plan, size)
	for i := range batch {
		n := first + i
		batch[i] = catalogtest.NewPlan(base, strconv.Itoa(n),
			catalogtest.Revision(revision), catalogtest.Title(title),
			catalogtest.At(catalogtest.Epoch.Add(time.Duration(n)*time.Minute), 90*time.Minute),
			catalogtest.Zones(
				catalog.Zone{ZoneID: "1", Name: "Platea", Capacity: 100, Price: catalog.Money(1000 + n%500)},
				catalog.Zone{ZoneID: "2", Name: "Anfiteatro", Capacity: 50, Price: 2500},
				catalog.Zone{ZoneID: "2", Name: "Anfiteatro lateral", Capacity: 20, Price: 900, Numbered: true},
			))
	}
	return batch
}

// BenchmarkUpsertPlans upserts batches of 1000 plans on the primary: new plans, newer
// observations that change every plan, newer observations of the same values (a sync
// that finds nothing new: only revisions move) and redeliveries that change nothing.
func BenchmarkUpsertPlans(b *testing.B) {
	const size = 1000
	s, _ := migrated(b)
	upsert := func(b *testing.B, batch []catalog.Plan) {
		if _, err := s.UpsertPlans(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
	}
	report := func(b *testing.B) {
		b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "plans/s")
	}

	b.Run("new", func(b *testing.B) {
		first := 0
		for b.Loop() {
			b.StopTimer()
			batch := benchBatch("new", first, size, 1, "New")
			first += size
			b.StartTimer()
			upsert(b, batch)
		}
		report(b)
	})
	b.Run("changed", func(b *testing.B) {
		upsert(b, benchBatch("changed", 0, size, 1, "Revision 1"))
		rev := int64(1)
		for b.Loop() {
			b.StopTimer()
			rev++
			batch := benchBatch("changed", 0, size, rev, "Revision "+strconv.FormatInt(rev, 10))
			b.StartTimer()
			upsert(b, batch)
		}
		report(b)
	})
	b.Run("resynced", func(b *testing.B) {
		upsert(b, benchBatch("resynced", 0, size, 1, "Same"))
		rev := int64(1)
		for b.Loop() {
			b.StopTimer()
			rev++
			batch := benchBatch("resynced", 0, size, rev, "Same")
			b.StartTimer()
			upsert(b, batch)
		}
		report(b)
	})
	b.Run("resynced-tracked", func(b *testing.B) { // the same, as the batches of a sync: nothing is written
		upsert(b, benchBatch("resynced-tracked", 0, size, 1, "Same"))
		seq := 0
		for b.Loop() {
			b.StopTimer()
			sync := ingest.Batch{Schema: 1, Provider: catalogtest.Provider, SyncID: "s2", Revision: 2, Seq: seq, Batches: 1 << 30,
				Plans: benchBatch("resynced-tracked", 0, size, 2, "Same")}
			seq++
			b.StartTimer()
			if _, err := s.ApplyBatch(b.Context(), sync); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("redelivered", func(b *testing.B) {
		batch := benchBatch("redelivered", 0, size, 1, "Same")
		upsert(b, batch)
		for b.Loop() {
			upsert(b, batch)
		}
		report(b)
	})
}

// BenchmarkChangedSince reads a catalog of 10000 plans: all of it, as a process starting
// does, and the changes since the latest version, none, as a poll that finds nothing.
func BenchmarkChangedSince(b *testing.B) {
	const plans, size = 10000, 1000
	s, _ := migrated(b)
	var v int64
	for first := 0; first < plans; first += size {
		var err error
		if v, err = s.UpsertPlans(b.Context(), benchBatch("cs", first, size, 1, "Plan")); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("all", func(b *testing.B) {
		for b.Loop() {
			ch, err := s.ChangedSince(b.Context(), 0)
			if err != nil || len(ch.Plans) != plans {
				b.Fatalf("ChangedSince(0) = %d plans, %v; want %d", len(ch.Plans), err, plans)
			}
		}
		b.ReportMetric(float64(b.N*plans)/b.Elapsed().Seconds(), "plans/s")
	})
	b.Run("none", func(b *testing.B) {
		for b.Loop() {
			if ch, err := s.ChangedSince(b.Context(), v); err != nil || len(ch.Plans) != 0 {
				b.Fatalf("ChangedSince(%d) = %d plans, %v; want none", v, len(ch.Plans), err)
			}
		}
	})
}
