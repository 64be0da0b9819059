package ingest_test

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"boxoffice/catalog"
	"boxoffice/catalog/catalogtest"
	"boxoffice/ingest"
	"boxoffice/memory"
	"boxoffice/task"
)

// benchPlans returns n plans of fever in base plans of 100, each with two zones: the
// shape of the bench's synthetic catalog.
func benchPlans(n int) []catalog.Plan {
	plans := make([]catalog.Plan, n)
	for i := range plans {
		plans[i] = catalogtest.NewPlan(strconv.Itoa(i/100), strconv.Itoa(i),
			catalogtest.Title("Los Morancos & amigos "+strconv.Itoa(i/100)),
			catalogtest.At(catalogtest.Epoch.Add(time.Duration(i)*time.Minute), 90*time.Minute),
			catalogtest.Zones(
				catalog.Zone{ZoneID: "1", Name: "Platea", Capacity: 200, Price: catalog.Money(1500 + i%500)},
				catalog.Zone{ZoneID: "2", Name: "Anfiteatro", Capacity: 100, Price: 2500, Numbered: true},
			))
		plans[i].Provider = "fever"
		plans[i].ID = catalog.NewID("fever", plans[i].BasePlanID, plans[i].PlanID)
	}
	return plans
}

// benchSyncer returns a Syncer with cfg whose source emits plans, already parsed,
// and which publishes on pub; the store holds no sync.
func benchSyncer(plans []catalog.Plan, pub task.Publisher, cfg ingest.Config) *ingest.Syncer {
	src := planSource(plans)
	syncs := syncLogFunc(func(context.Context, string) (ingest.SyncState, error) { return ingest.SyncState{}, nil })
	return ingest.NewSyncer(src, pub, memory.NewLocker(nil), syncs, cfg, slog.New(slog.DiscardHandler))
}

// dropPublisher counts what a sync publishes and keeps nothing.
type dropPublisher struct{ msgs, bytes int }

func (p *dropPublisher) Publish(_ context.Context, _ string, msgs ...task.Message) error {
	for _, m := range msgs {
		p.msgs++
		p.bytes += len(m.Body)
	}
	return nil
}

// BenchmarkSync is a sync's own work on 100k plans, without the provider's parsing (the
// source hands over parsed plans) or a broker's: each plan encoded into the spool, the
// spool read back and each batch published to a publisher that drops it.
func BenchmarkSync(b *testing.B) {
	const n = 100_000
	plans := benchPlans(n)
	pub := &dropPublisher{}
	s := benchSyncer(plans, pub, ingest.Config{Provider: "fever", SpoolDir: b.TempDir()})
	b.ReportAllocs()
	for b.Loop() {
		if res, err := s.Sync(b.Context()); err != nil || res.Parsed != n {
			b.Fatalf("Sync = %+v, %v; want %d plans", res, err, n)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "plans/s")
	b.SetBytes(int64(pub.bytes / b.N)) // the batches published by one sync
}

// BenchmarkBatchHandler is a worker's work on a published batch besides its store:
// decoding and checking a batch of 1000 plans, and of 20 000 (the embedded broker's).
func BenchmarkBatchHandler(b *testing.B) {
	for _, n := range []int{1000, 20_000} {
		b.Run("plans="+strconv.Itoa(n), func(b *testing.B) {
			plans := benchPlans(n)
			pub := &bodies{}
			cfg := ingest.Config{Provider: "fever", SpoolDir: b.TempDir(), BatchSize: n, BatchBytes: 16 << 20}
			if _, err := benchSyncer(plans, pub, cfg).Sync(b.Context()); err != nil {
				b.Fatal(err)
			}
			if len(pub.msgs) != 1 {
				b.Fatalf("published %d batches, want 1", len(pub.msgs))
			}
			h := ingest.BatchHandler(nopBatchStore{}, nil)
			b.SetBytes(int64(len(pub.msgs[0].Body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := h(b.Context(), pub.msgs[0]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "plans/s")
		})
	}
}

// bodies keeps what a sync publishes.
type bodies struct{ msgs []task.Message }

func (p *bodies) Publish(_ context.Context, _ string, msgs ...task.Message) error {
	p.msgs = append(p.msgs, msgs...)
	return nil
}

// nopBatchStore applies nothing.
type nopBatchStore struct{}

func (nopBatchStore) ApplyBatch(context.Context, ingest.Batch) (int64, error) { return 1, nil }

// BenchmarkSyncUnchanged is BenchmarkSync when the store holds every plan as it is (a
// re-sync of an unchanged catalog, Settled): the stored plans read into memory, each
// plan fingerprinted and left out, and one batch without plans published.
func BenchmarkSyncUnchanged(b *testing.B) {
	const n = 100_000
	plans := benchPlans(n)
	held := newHeldPlans(plans)
	pub := &dropPublisher{}
	s := ingest.NewSyncer(planSource(plans), pub, memory.NewLocker(nil), held,
		ingest.Config{Provider: "fever", SpoolDir: b.TempDir()}, slog.New(slog.DiscardHandler))
	b.ReportAllocs()
	for b.Loop() {
		if res, err := s.Sync(b.Context()); err != nil || res.Unchanged != n || res.Batches != 1 {
			b.Fatalf("Sync = %+v, %v; want %d plans unchanged in 1 batch", res, err, n)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "plans/s")
}

// planSource is a Source that emits plans, already parsed.
func planSource(plans []catalog.Plan) ingest.Source {
	return sourceFunc(func(_ context.Context, _ ingest.Validators, emit func(catalog.Plan) error) (ingest.Fetched, error) {
		for _, p := range plans {
			if err := emit(p); err != nil {
				return ingest.Fetched{}, err
			}
		}
		return ingest.Fetched{Format: "planList", Parsed: len(plans)}, nil
	})
}

// heldPlans is a SyncLog and Baseline of a store that holds plans as they are, its
// provider's syncs Settled: ever-online, unless neverOnline.
type heldPlans struct {
	ids          []catalog.ID
	fingerprints []int64
	neverOnline  bool
}

func newHeldPlans(plans []catalog.Plan) *heldPlans {
	h := &heldPlans{}
	var f catalog.Fingerprinter
	for _, p := range plans {
		h.ids, h.fingerprints = append(h.ids, p.ID), append(h.fingerprints, f.Fingerprint(p))
	}
	return h
}

func (h *heldPlans) SyncState(context.Context, string) (ingest.SyncState, error) {
	return ingest.SyncState{Revision: 1, Latest: 1, Published: 1}, nil
}

func (h *heldPlans) RecordSync(context.Context, ingest.SyncRecord) error { return nil }

func (h *heldPlans) StoredPlans(_ context.Context, _ string, fn func(catalog.ID, int64, bool) error) error {
	for i, id := range h.ids {
		if err := fn(id, h.fingerprints[i], !h.neverOnline); err != nil {
			return err
		}
	}
	return nil
}

func (h *heldPlans) BeginPublish(context.Context, string, int64, int64) error { return nil }
