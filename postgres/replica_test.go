package postgres_test

import (
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"boxoffice/catalog"
	"boxoffice/catalog/catalogtest"
	"boxoffice/postgres"
	"boxoffice/testenv"
)

// poll calls f until it reports done, and fails the test with f's last status if that
// takes longer than hangGuard.
func poll(t testing.TB, f func() (done bool, status string)) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		done, status := f()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still not done after %s: %s", hangGuard, status)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("test ended while waiting: %s", status)
		case <-tick.C:
		}
	}
}

// replicated returns the URL of the replica with the search_path of primaryURL (from
// newSchema), once the replica has replayed its migration. It fails the test unless the
// replica is a hot standby.
func replicated(t *testing.T, primaryURL string) string {
	t.Helper()
	schema := schemaOf(t, primaryURL)
	u := testenv.WithSearchPath(t, testenv.ReplicaURL(t), schema)
	if queryInt(t, u, `SELECT pg_is_in_recovery()::int`) != 1 {
		t.Fatalf("the replica at %s is not in recovery: not a standby", testenv.ReplicaURL(t))
	}
	poll(t, func() (bool, string) {
		n := queryInt(t, u, `SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = 'catalog_version'`, schema)
		return n == 1, "the replica has not replayed the migration"
	})
	return u
}

// servedBy runs read and tells which server served it, by the store's read counts. The
// store must not serve other reads meanwhile.
func servedBy(s *postgres.Store, read func() error) (string, error) {
	before := s.Stats()
	err := read()
	after := s.Stats()
	switch {
	case after.ReplicaReads > before.ReplicaReads:
		return "replica", err
	case after.PrimaryReads > before.PrimaryReads:
		return "primary", err
	}
	return "none", err
}

// searchable returns a copy of p as a store returns it, last changed at version.
func searchable(version int64, p catalog.Plan) catalog.Plan {
	p.EverOnline, p.Version = true, version
	return p
}

// waitForReplica polls until a ChangedSince(0) served by the replica returns want.
func waitForReplica(t *testing.T, s *postgres.Store, want catalog.Changes) {
	t.Helper()
	poll(t, func() (bool, string) {
		var ch catalog.Changes
		by, err := servedBy(s, func() (err error) {
			ch, err = s.ChangedSince(t.Context(), 0)
			return err
		})
		if err != nil {
			t.Fatalf("ChangedSince(0): %v", err)
		}
		diff := cmp.Diff(want, ch, cmpopts.EquateEmpty())
		return by == "replica" && diff == "", fmt.Sprintf("ChangedSince(0) served by the %s, mismatch (-want +got):\n%s", by, diff)
	})
}

// TestReplicaServesReads writes through the primary and polls reads from the real
// replica until they show the write.
func TestReplicaServesReads(t *testing.T) {
	t.Parallel()
	primaryURL := newSchema(t)
	migrated := openStore(t, primaryURL, "", nil)
	if err := migrated.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, primaryURL, replicated(t, primaryURL), nil)

	a := catalogtest.NewPlan("rep", "a")
	v, err := s.UpsertPlans(t.Context(), []catalog.Plan{a, catalogtest.NewPlan("rep", "off", catalogtest.Offline)})
	if err != nil {
		t.Fatal(err)
	}
	waitForReplica(t, s, catalog.Changes{Plans: []catalog.Plan{searchable(v, a)}, Version: v})

	var got []catalog.Plan
	by, err := servedBy(s, func() (err error) {
		got, err = s.SearchPlans(t.Context(), catalog.Window{From: catalogtest.Epoch})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]catalog.Plan{searchable(v, a)}, got, cmpopts.EquateEmpty()); diff != "" || by != "replica" {
		t.Errorf("SearchPlans served by the %s, want the replica; mismatch (-want +got):\n%s", by, diff)
	}
	if st := s.Stats(); st.Replica == nil || st.ReplicaDown || st.PrimaryReads != 0 {
		t.Errorf("Stats() = %+v, want a replica pool, up, that served every read", st)
	}
	for name, check := range s.Checks() {
		if err := check(t.Context()); err != nil {
			t.Errorf("check %s: %v", name, err)
		}
	}
}

// TestReplicaSnapshotsAreConsistent reads from the replica while the primary commits
// batches: every read returns exactly the plans of the version it reports. Batch i adds
// plan i, the only change, so version i has plans 1..i.
func TestReplicaSnapshotsAreConsistent(t *testing.T) {
	t.Parallel()
	primaryURL := newSchema(t)
	w := openStore(t, primaryURL, "", nil)
	if err := w.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := openStore(t, primaryURL, replicated(t, primaryURL), nil)

	const batches = 30
	writeErr := make(chan error, 1)
	go func() {
		for i := int64(1); i <= batches; i++ {
			v, err := w.UpsertPlans(t.Context(), []catalog.Plan{catalogtest.NewPlan("snap", strconv.FormatInt(i, 10))})
			if err == nil && v != i {
				err = fmt.Errorf("batch %d committed as version %d", i, v)
			}
			if err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	}()

	reads := 0
	poll(t, func() (bool, string) {
		ch, err := r.ChangedSince(t.Context(), 0)
		if err != nil {
			t.Fatalf("ChangedSince(0): %v", err)
		}
		reads++
		if len(ch.Plans) != int(ch.Version) {
			t.Fatalf("ChangedSince(0) = %d plans at version %d, want %d", len(ch.Plans), ch.Version, ch.Version)
		}
		for _, p := range ch.Plans {
			if n, _ := strconv.ParseInt(p.PlanID, 10, 64); p.Version != n || n > ch.Version {
				t.Fatalf("ChangedSince(0) at version %d: plan %s at version %d, want plan i at version i <= %d", ch.Version, p.PlanID, p.Version, ch.Version)
			}
		}
		return ch.Version == batches, fmt.Sprintf("the replica is at version %d of %d", ch.Version, batches)
	})
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	if st := r.Stats(); st.ReplicaReads < int64(reads) {
		t.Errorf("the replica served %d of %d reads, want all", st.ReplicaReads, reads)
	}
}

// TestReplicaFallback takes the replica away behind a proxy: reads keep working from the
// primary, the transition is logged once, and reads return to the replica when it is
// back.
func TestReplicaFallback(t *testing.T) {
	t.Parallel()
	primaryURL, proxied, p := migratedBehindProxy(t)
	var logs testenv.Logs
	s := openStore(t, primaryURL, proxied, slog.New(slog.NewTextHandler(&logs, nil)))

	a := catalogtest.NewPlan("fb", "a")
	v, err := s.UpsertPlans(t.Context(), []catalog.Plan{a})
	if err != nil {
		t.Fatal(err)
	}
	want := catalog.Changes{Plans: []catalog.Plan{searchable(v, a)}, Version: v}
	waitForReplica(t, s, want)

	p.Cut()
	by, err := servedBy(s, func() error {
		got, err := s.ChangedSince(t.Context(), 0)
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); err == nil && diff != "" {
			t.Errorf("ChangedSince(0) with the replica down mismatch (-want +got):\n%s", diff)
		}
		return err
	})
	if err != nil || by != "primary" {
		t.Fatalf("ChangedSince(0) with the replica down: served by the %s, %v; want the primary, nil", by, err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if got, err := s.SearchPlans(t.Context(), catalog.Window{}); err != nil || len(got) != 1 {
				t.Errorf("SearchPlans with the replica down = %d plans, %v; want 1, nil", len(got), err)
			}
		})
	}
	wg.Wait()
	if !s.Stats().ReplicaDown {
		t.Error("Stats().ReplicaDown = false with the replica down, want true")
	}
	checks := s.Checks()
	if err := checks["postgres_replica"](t.Context()); err == nil {
		t.Error("check postgres_replica with the replica down = nil, want an error")
	}
	if err := checks["postgres_primary"](t.Context()); err != nil {
		t.Errorf("check postgres_primary with the replica down: %v", err)
	}

	p.Restore()
	waitForReplica(t, s, want)
	if s.Stats().ReplicaDown {
		t.Error("Stats().ReplicaDown = true once reads are back on the replica, want false")
	}
	for msg, want := range map[string]int{"postgres replica unavailable": 1, "postgres replica available again": 1} {
		if n := logs.Count(`msg="` + msg); n != want {
			t.Errorf("log has %q %d times, want %d:\n%s", msg, n, want, logs.String())
		}
	}
}

// TestReplicaDownAtOpen opens a store whose replica does not answer: Open succeeds, the
// primary serves reads, and the replica takes over once it answers.
func TestReplicaDownAtOpen(t *testing.T) {
	t.Parallel()
	primaryURL := newSchema(t)
	proxied, p := proxiedReplica(t, testenv.WithSearchPath(t, testenv.ReplicaURL(t), schemaOf(t, primaryURL)))
	p.Cut()
	s := openStore(t, primaryURL, proxied, nil)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	a := catalogtest.NewPlan("dao", "a")
	v, err := s.UpsertPlans(t.Context(), []catalog.Plan{a})
	if err != nil {
		t.Fatal(err)
	}
	by, err := servedBy(s, func() error {
		_, err := s.SearchPlans(t.Context(), catalog.Window{})
		return err
	})
	if err != nil || by != "primary" {
		t.Errorf("SearchPlans with the replica down since Open: served by the %s, %v; want the primary, nil", by, err)
	}
	p.Restore()
	waitForReplica(t, s, catalog.Changes{Plans: []catalog.Plan{searchable(v, a)}, Version: v})
}

// migratedBehindProxy migrates a new schema of its own and returns the primary's URL
// and the replica's through a proxy (see proxiedReplica), once the replica has
// replayed the migration.
func migratedBehindProxy(t *testing.T) (primaryURL, replicaURL string, p *testenv.Proxy) {
	t.Helper()
	primaryURL = newSchema(t)
	if err := openStore(t, primaryURL, "", nil).Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	replicaURL, p = proxiedReplica(t, replicated(t, primaryURL))
	return primaryURL, replicaURL, p
}

// proxiedReplica starts a proxy in front of the replica at replicaURL and returns the
// URL that goes through it.
func proxiedReplica(t *testing.T, replicaURL string) (string, *testenv.Proxy) {
	t.Helper()
	u, err := url.Parse(replicaURL)
	if err != nil {
		t.Fatal(err)
	}
	p := testenv.StartProxy(t, u.Host)
	u.Host = p.Addr()
	return u.String(), p
}

// TestReplicaCutDuringEachChange reads a catalog from the replica in pages and cuts the
// replica after the first page: the read fails rather than go on from the primary,
// whose snapshot is another one, and the next read is served by the primary in full.
func TestReplicaCutDuringEachChange(t *testing.T) {
	t.Parallel()
	primaryURL, proxied, p := migratedBehindProxy(t)
	w := openStore(t, primaryURL, "", nil)
	s := openStore(t, primaryURL, proxied, nil)

	// Far more bytes than the socket buffers hold, so the rows after the first page are
	// still on the replica's side when it is cut.
	const n = 2000
	batch := make([]catalog.Plan, n)
	want := catalog.Changes{Plans: make([]catalog.Plan, n)}
	for i := range batch {
		batch[i] = catalogtest.NewPlan("cut", strconv.Itoa(i), catalogtest.Title(strings.Repeat("x", 2000)))
	}
	v, err := w.UpsertPlans(t.Context(), batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, pl := range batch {
		want.Plans[i] = searchable(v, pl)
	}
	want.Version = v
	waitForReplica(t, s, want)

	pages := 0
	by, err := servedBy(s, func() error {
		_, err := s.EachChange(t.Context(), 0, 100, func(catalog.Changes) error {
			if pages++; pages == 1 {
				p.Cut()
			}
			return nil
		})
		return err
	})
	if err == nil || pages >= n/100 || by == "primary" {
		t.Fatalf("EachChange with the replica cut after the first page: %d pages served by the %s, %v; want an error before the last page and no read from the primary", pages, by, err)
	}
	got := catalog.Changes{}
	by, err = servedBy(s, func() (err error) {
		got.Version, err = s.EachChange(t.Context(), 0, 100, func(ch catalog.Changes) error {
			got.Plans = append(got.Plans, ch.Plans...)
			return nil
		})
		return err
	})
	if err != nil || by != "primary" || len(got.Plans) != n || got.Version != v {
		t.Errorf("EachChange with the replica down = %d plans at version %d served by the %s, %v; want %d at %d from the primary", len(got.Plans), got.Version, by, err, n, v)
	}
}
