package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"boxoffice/catalog"
	"boxoffice/catalog/catalogtest"
	"boxoffice/ingest"
	"boxoffice/ingest/ingesttest"
	"boxoffice/sqlite"
)

// openStore opens and migrates a store in dir, closed when the test ends.
func openStore(t testing.TB, dir string) *sqlite.Store {
	t.Helper()
	return openStoreSynchronous(t, dir, "FULL")
}

// openStoreSynchronous opens a store whose write connection runs with PRAGMA
// synchronous=sync, migrated, closed by t.Cleanup.
func openStoreSynchronous(t testing.TB, dir, sync string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.OpenSynchronous(context.Background(), dir, sync)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// reopenable returns open, which opens a store in a new directory of the test's own,
// and reopen, which closes a store that open returned and opens its directory again,
// as a restart of the process would.
func reopenable() (open func(t *testing.T) *sqlite.Store, reopen func(t *testing.T, s *sqlite.Store) *sqlite.Store) {
	var mu sync.Mutex
	dirs := make(map[*sqlite.Store]string) // the data directory of each open store
	openIn := func(t *testing.T, dir string) *sqlite.Store {
		s := openStore(t, dir)
		mu.Lock()
		defer mu.Unlock()
		dirs[s] = dir
		return s
	}
	open = func(t *testing.T) *sqlite.Store { return openIn(t, t.TempDir()) }
	reopen = func(t *testing.T, s *sqlite.Store) *sqlite.Store {
		mu.Lock()
		dir := dirs[s]
		mu.Unlock()
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		return openIn(t, dir)
	}
	return open, reopen
}

func TestStore(t *testing.T) {
	open, reopen := reopenable()
	catalogtest.TestStore(t,
		func(t *testing.T) catalog.Store { return open(t) },
		catalogtest.Features{
			Reopen: func(t *testing.T, s catalog.Store) catalog.Store { return reopen(t, s.(*sqlite.Store)) },
		})
}

func TestPages(t *testing.T) {
	open, _ := reopenable()
	catalogtest.TestPages(t, func(t *testing.T) catalog.Store { return open(t) })
}

func TestStream(t *testing.T) {
	open, _ := reopenable()
	catalogtest.TestStream(t, func(t *testing.T) catalog.Store { return open(t) })
}

func TestMigrateTwice(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	v, err := s.UpsertPlans(t.Context(), []catalog.Plan{catalogtest.NewPlan("m", "1")})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, dir) // migrates a third time, on a database with data
	ch, err := s.ChangedSince(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Plans) != 1 || ch.Version != v {
		t.Errorf("after migrating again, ChangedSince(0) = %d plans at version %d, want 1 at %d", len(ch.Plans), ch.Version, v)
	}
}

func TestOpenCreatesDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "data dir?#%20")
	s := openStore(t, dir)
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, sqlite.FileName)); err != nil {
		t.Errorf("database file: %v", err)
	}
}

func TestOpenUnwritable(t *testing.T) {
	t.Run("data dir under a file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		checkOpenError(t, filepath.Join(file, "data"))
	})
	t.Run("read-only data dir", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root writes to read-only directories")
		}
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o700) })
		checkOpenError(t, dir)
	})
}

func checkOpenError(t *testing.T, dir string) {
	t.Helper()
	s, err := sqlite.Open(t.Context(), dir)
	if err == nil {
		s.Close()
		t.Fatalf("Open(%q) = nil error, want one", dir)
	}
	prefix := "open sqlite store " + filepath.Join(dir, sqlite.FileName) + ": "
	if !strings.HasPrefix(err.Error(), prefix) {
		t.Errorf("Open(%q) = %q, want it to start with %q", dir, err, prefix)
	}
}

func TestUnmigrated(t *testing.T) {
	s, err := sqlite.Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(t.Context()); err == nil || !strings.HasSuffix(err.Error(), ": schema not migrated") {
		t.Errorf("Ping before Migrate = %v, want an error ending in %q", err, ": schema not migrated")
	}
	if _, err := s.UpsertPlans(t.Context(), []catalog.Plan{catalogtest.NewPlan("u", "1")}); err == nil {
		t.Errorf("UpsertPlans before Migrate = nil error, want one")
	}
}

// TestReadsDuringWrites checks that readers see whole batches while batches commit: every
// ChangedSince holds exactly the plans of the version it reports, and the versions a
// reader sees never go back.
func TestReadsDuringWrites(t *testing.T) {
	s := openStore(t, t.TempDir())
	const (
		batches = 8
		size    = 300
		readers = 2
	)
	done := make(chan struct{})
	errs := make(chan error, readers+1)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for i := range batches {
			batch := make([]catalog.Plan, size)
			for j := range batch {
				batch[j] = catalogtest.NewPlan("b"+strconv.Itoa(i), strconv.Itoa(j))
			}
			if _, err := s.UpsertPlans(t.Context(), batch); err != nil {
				errs <- err
				return
			}
		}
	})
	for range readers {
		wg.Go(func() {
			var last int64
			for {
				select {
				case <-done:
					return
				default:
				}
				ch, err := s.ChangedSince(t.Context(), 0)
				if err != nil {
					errs <- err
					return
				}
				// This adapter advances the version by one per changing batch.
				if len(ch.Plans) != int(ch.Version)*size || ch.Version < last {
					errs <- fmt.Errorf("ChangedSince(0) = %d plans at version %d after version %d, want %d plans",
						len(ch.Plans), ch.Version, last, int(ch.Version)*size)
					return
				}
				last = ch.Version
				if _, err := s.SearchPlans(t.Context(), catalog.Window{From: catalogtest.Epoch}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkUpsertPlans(b *testing.B) {
	const size = 1000
	batch := func(i int, rev int64, title string) []catalog.Plan {
		plans := make([]catalog.Plan, size)
		for j := range plans {
			plans[j] = catalogtest.NewPlan(strconv.Itoa(i), strconv.Itoa(j), catalogtest.Revision(rev), catalogtest.Title(title),
				catalogtest.At(catalogtest.Epoch.Add(time.Duration(i*size+j)*time.Minute), time.Hour),
				catalogtest.Zones(
					catalog.Zone{ZoneID: "1", Name: "Platea", Capacity: 200, Price: catalog.Money(1500 + j)},
					catalog.Zone{ZoneID: "2", Name: "Anfiteatro", Capacity: 100, Price: 2500, Numbered: true},
					catalog.Zone{ZoneID: "2", Name: "Anfiteatro lateral", Capacity: 50, Price: 900},
				))
		}
		return plans
	}
	report := func(b *testing.B, n int) {
		b.ReportMetric(float64(n*size)/b.Elapsed().Seconds(), "plans/s")
	}

	// What durable commits cost: new plans in batches of 1000 (an ingest batch) and one
	// at a time (a transaction per write, as a market event or a task record), with the
	// WAL synced at every commit (FULL, what the store runs with) or only at checkpoints
	// (NORMAL, which a power loss can roll back).
	for _, sync := range []string{"NORMAL", "FULL"} {
		b.Run("insert/synchronous="+sync, func(b *testing.B) {
			s := openStoreSynchronous(b, b.TempDir(), sync)
			n := 0
			for b.Loop() {
				b.StopTimer()
				plans := batch(n, 1, "Plan")
				b.StartTimer()
				if _, err := s.UpsertPlans(b.Context(), plans); err != nil {
					b.Fatal(err)
				}
				n++
			}
			report(b, n)
		})
		b.Run("insert-one/synchronous="+sync, func(b *testing.B) {
			s := openStoreSynchronous(b, b.TempDir(), sync)
			n := 0
			for b.Loop() {
				p := catalogtest.NewPlan("one", strconv.Itoa(n), catalogtest.At(catalogtest.Epoch.Add(time.Duration(n)*time.Minute), time.Hour))
				if _, err := s.UpsertPlans(b.Context(), []catalog.Plan{p}); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "plans/s")
		})
	}
	b.Run("update", func(b *testing.B) {
		s := openStore(b, b.TempDir())
		for i := range 20 {
			if _, err := s.UpsertPlans(b.Context(), batch(i, 1, "Plan")); err != nil {
				b.Fatal(err)
			}
		}
		n := 0
		for b.Loop() {
			b.StopTimer()
			plans := batch(n%20, int64(n+2), "Plan "+strconv.Itoa(n))
			b.StartTimer()
			if _, err := s.UpsertPlans(b.Context(), plans); err != nil {
				b.Fatal(err)
			}
			n++
		}
		report(b, n)
	})
	b.Run("resync", func(b *testing.B) { // the next sync: a newer revision, the same values
		s := openStore(b, b.TempDir())
		for i := range 20 {
			if _, err := s.UpsertPlans(b.Context(), batch(i, 1, "Plan")); err != nil {
				b.Fatal(err)
			}
		}
		n := 0
		for b.Loop() {
			b.StopTimer()
			plans := batch(n%20, int64(n+2), "Plan")
			b.StartTimer()
			if _, err := s.UpsertPlans(b.Context(), plans); err != nil {
				b.Fatal(err)
			}
			n++
		}
		report(b, n)
	})
	b.Run("resync-tracked", func(b *testing.B) { // the same, as the batches of a sync: nothing is written
		s := openStore(b, b.TempDir())
		for i := range 20 {
			if _, err := s.UpsertPlans(b.Context(), batch(i, 1, "Plan")); err != nil {
				b.Fatal(err)
			}
		}
		n := 0
		for b.Loop() {
			b.StopTimer()
			sync := ingest.Batch{Schema: 1, Provider: catalogtest.Provider, SyncID: "s2", Revision: 2, Seq: n, Batches: 1 << 30,
				Plans: batch(n%20, 2, "Plan")}
			b.StartTimer()
			if _, err := s.ApplyBatch(b.Context(), sync); err != nil {
				b.Fatal(err)
			}
			n++
		}
		report(b, n)
	})
	b.Run("redelivery", func(b *testing.B) {
		s := openStore(b, b.TempDir())
		plans := batch(0, 1, "Plan")
		if _, err := s.UpsertPlans(b.Context(), plans); err != nil {
			b.Fatal(err)
		}
		n := 0
		for b.Loop() {
			if _, err := s.UpsertPlans(b.Context(), plans); err != nil {
				b.Fatal(err)
			}
			n++
		}
		report(b, n)
	})
}

// BenchmarkColdIngest fills one store with the bench's catalog (make bench-ingest), a
// sync's batch of new plans per iteration, 20 000 as on the embedded broker (BENCH_BATCH
// to change it): 100 plans of each base plan, two zones each, starting at scattered
// times. Each batch lands in a larger store than the one before, so the figure falls
// with -benchtime (15x: 300k plans) as the B-trees outgrow the cache. It also reports
// the bytes the process wrote per plan (Linux), the WAL's, the checkpoints' and any
// temporary file's.
func BenchmarkColdIngest(b *testing.B) {
	size := benchBatch()
	s := openStore(b, b.TempDir())
	n := 0
	written := writtenBytes()
	for b.Loop() {
		b.StopTimer()
		plans := make([]catalog.Plan, size)
		for j := range plans {
			i := n*size + j
			base := strconv.Itoa(i / 100)
			start := catalogtest.Epoch.Add(time.Duration(uint64(i)*0x9e3779b97f4a7c15%(730*48)) * 30 * time.Minute)
			plans[j] = catalogtest.NewPlan(base, strconv.Itoa(i%100), catalogtest.At(start, time.Hour),
				catalogtest.Zones(
					catalog.Zone{ZoneID: "1", Name: "Platea", Capacity: 200, Price: catalog.Money(1500 + j)},
					catalog.Zone{ZoneID: "2", Name: "Anfiteatro", Capacity: 100, Price: 2500, Numbered: true},
				))
		}
		sync := ingest.Batch{Schema: 1, Provider: catalogtest.Provider, SyncID: "s1", Revision: 1, Seq: n, Batches: 1 << 30,
			Plans: plans}
		b.StartTimer()
		if _, err := s.ApplyBatch(b.Context(), sync); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n*size)/b.Elapsed().Seconds(), "plans/s")
	if w := writtenBytes(); w > 0 {
		b.ReportMetric(float64(w-written)/float64(n*size), "B-written/plan")
	}
}

// writtenBytes returns what this process has written so far, by write(2) and its kin
// (wchar in /proc/self/io), on Linux; 0 elsewhere.
func writtenBytes() int64 {
	raw, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

func BenchmarkChangedSince(b *testing.B) {
	const size, batches = 1000, 50
	s := openStore(b, b.TempDir())
	for i := range batches {
		plans := make([]catalog.Plan, size)
		for j := range plans {
			plans[j] = catalogtest.NewPlan(strconv.Itoa(i), strconv.Itoa(j), catalogtest.Zones(
				catalog.Zone{ZoneID: "1", Name: "Platea", Capacity: 200, Price: 1500},
				catalog.Zone{ZoneID: "2", Name: "Anfiteatro", Capacity: 100, Price: 2500, Numbered: true},
				catalog.Zone{ZoneID: "2", Name: "Anfiteatro lateral", Capacity: 50, Price: 900},
			))
		}
		if _, err := s.UpsertPlans(b.Context(), plans); err != nil {
			b.Fatal(err)
		}
	}
	n := 0
	for b.Loop() {
		ch, err := s.ChangedSince(b.Context(), 0)
		if err != nil {
			b.Fatal(err)
		}
		if len(ch.Plans) != size*batches {
			b.Fatal(errors.New("short read"))
		}
		n++
	}
	b.ReportMetric(float64(n*size*batches)/b.Elapsed().Seconds(), "plans/s")
}

func TestSyncs(t *testing.T) {
	open, reopen := reopenable()
	ingesttest.TestStore(t,
		func(t *testing.T) ingesttest.Store { return open(t) },
		ingesttest.Features{
			Reopen: func(t *testing.T, s ingesttest.Store) ingesttest.Store { return reopen(t, s.(*sqlite.Store)) },
		})
}

// benchBatch is BenchmarkColdIngest's batch: BENCH_BATCH plans, 20000 (the embedded
// broker's) when unset.
func benchBatch() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_BATCH")); err == nil && n > 0 {
		return n
	}
	return 20000
}
