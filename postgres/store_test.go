package postgres_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5"

	"boxoffice/catalog"
	"boxoffice/catalog/catalogtest"
	"boxoffice/ingest/ingesttest"
	"boxoffice/postgres"
	"boxoffice/testenv"
)

// hangGuard bounds calls that would hang on a deadlock or a lost lock, so that the test
// fails with a message instead. It is not a timing assertion: the calls take milliseconds.
const hangGuard = time.Minute

// newSchema creates a schema of the test's own on the primary, dropped with everything
// in it when the test ends, and returns the primary's URL with the schema as search_path.
func newSchema(t testing.TB) string {
	t.Helper()
	admin := testenv.PostgresURL(t)
	schema := fmt.Sprintf("t_%016x", rand.Uint64())
	execSQL(t, admin, `CREATE SCHEMA `+schema)
	t.Cleanup(func() { execSQL(t, admin, `DROP SCHEMA `+schema+` CASCADE`) })
	return testenv.WithSearchPath(t, admin, schema)
}

// schemaOf returns the search_path of a URL from newSchema.
func schemaOf(t testing.TB, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("search_path")
}

// execSQL runs sql on its own connection to the server at rawURL. It may run in cleanup,
// when the test's context is done.
func execSQL(t testing.TB, rawURL, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	conn, err := pgx.Connect(ctx, rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// queryInt returns the integer that sql selects on the server at rawURL.
func queryInt(t testing.TB, rawURL, sql string, args ...any) int64 {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int64
	if err := conn.QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// openStore opens a store, closed when the test ends.
func openStore(t testing.TB, writeURL, readURL string, log *slog.Logger) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), writeURL, readURL, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// migrated returns a store over a new schema of its own, migrated, reading from the
// primary.
func migrated(t testing.TB) (*postgres.Store, string) {
	t.Helper()
	u := newSchema(t)
	s := openStore(t, u, "", nil)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s, u
}

// reopenable returns open, which returns a store over a new schema of its own,
// migrated, and reopen, which closes a store that open returned and opens its schema
// again, as a restart of the process would.
func reopenable() (open func(t *testing.T) *postgres.Store, reopen func(t *testing.T, s *postgres.Store) *postgres.Store) {
	var mu sync.Mutex
	urls := make(map[*postgres.Store]string) // the URL of each open store
	open = func(t *testing.T) *postgres.Store {
		s, u := migrated(t)
		mu.Lock()
		defer mu.Unlock()
		urls[s] = u
		return s
	}
	reopen = func(t *testing.T, s *postgres.Store) *postgres.Store {
		mu.Lock()
		u := urls[s]
		mu.Unlock()
		s.Close()
		return openStore(t, u, "", nil)
	}
	return open, reopen
}

func TestStore(t *testing.T) {
	open, reopen := reopenable()
	catalogtest.TestStore(t,
		func(t *testing.T) catalog.Store { return open(t) },
		catalogtest.Features{
			Reopen: func(t *testing.T, s catalog.Store) catalog.Store { return reopen(t, s.(*postgres.Store)) },
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
	t.Parallel()
	s, u := migrated(t)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	v, err := s.UpsertPlans(t.Context(), []catalog.Plan{catalogtest.NewPlan("m", "1")})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openStore(t, u, "", nil)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate of a schema with data: %v", err)
	}
	ch, err := s.ChangedSince(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Plans) != 1 || ch.Version != v {
		t.Errorf("after migrating again, ChangedSince(0) = %d plans at version %d, want 1 at %d", len(ch.Plans), ch.Version, v)
	}
	checkMigrationsApplied(t, u)
}

// TestMigrateConcurrently starts four stores at once on an empty schema, as several
// processes starting together would: each migrates, none fails, and the migrations ran
// once.
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	u := newSchema(t)
	const stores = 4
	errs := make([]error, stores)
	var wg sync.WaitGroup
	for i := range stores {
		s := openStore(t, u, "", nil)
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), hangGuard)
			defer cancel()
			errs[i] = s.Migrate(ctx)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("store %d: Migrate: %v", i, err)
		}
	}
	checkMigrationsApplied(t, u)

	s := openStore(t, u, "", nil)
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping after migrating: %v", err)
	}
	if v, err := s.UpsertPlans(t.Context(), []catalog.Plan{catalogtest.NewPlan("c", "1")}); err != nil || v != 1 {
		t.Errorf("UpsertPlans(one new plan) = %d, %v; want 1, nil", v, err)
	}
}

// checkMigrationsApplied checks that goose recorded each applied migration once.
func checkMigrationsApplied(t *testing.T, u string) {
	t.Helper()
	table := schemaOf(t, u) + ".goose_db_version"
	applied := queryInt(t, u, `SELECT count(*) FROM `+table+` WHERE version_id > 0`)
	distinct := queryInt(t, u, `SELECT count(DISTINCT version_id) FROM `+table+` WHERE version_id > 0`)
	if applied == 0 || applied != distinct {
		t.Errorf("goose_db_version: %d migrations applied, %d distinct; want each once", applied, distinct)
	}
}

func TestPingUnmigrated(t *testing.T) {
	t.Parallel()
	s := openStore(t, newSchema(t), "", nil)
	if err := s.Ping(t.Context()); err == nil {
		t.Error("Ping of an unmigrated schema = nil, want an error")
	}
}

// TestOpenErrors checks that Open fails with a message that names the server and never
// shows the password.
func TestOpenErrors(t *testing.T) {
	t.Parallel()
	primary := testenv.PostgresURL(t)
	const password = "s3cr3t-pa55word"
	tests := []struct {
		name      string
		writeURL  string
		readURL   string
		wantStart string
	}{
		{
			name:      "primary refuses connections",
			writeURL:  "postgres://boxoffice:" + password + "@127.0.0.1:1/boxoffice?sslmode=disable&connect_timeout=5",
			wantStart: "open postgres primary 127.0.0.1:1/boxoffice: ",
		},
		{
			name:      "primary URL malformed",
			writeURL:  "postgres://boxoffice:" + password + "@127.0.0.1:notaport/boxoffice",
			wantStart: "open postgres primary: ",
		},
		{
			name:      "password that breaks the URL",
			writeURL:  "postgres://boxoffice:" + password[:4] + "/" + password[4:] + "@127.0.0.1:5432/boxoffice",
			wantStart: "open postgres primary: ",
		},
		{
			name:      "at sign in the password",
			writeURL:  "postgres://boxoffice:" + password[:6] + "@" + password[6:] + "@127.0.0.1:x/boxoffice",
			wantStart: "open postgres primary: ",
		},
		{
			name:      "password in the query",
			writeURL:  "postgres://127.0.0.1:5432/boxoffice?password=" + password + "&sslmode=nonsense",
			wantStart: "open postgres primary: ",
		},
		{
			name:      "replica URL malformed",
			writeURL:  primary,
			readURL:   "postgres://boxoffice:" + password + "@127.0.0.1:5433/boxoffice?sslmode=nonsense",
			wantStart: "open postgres replica: ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := postgres.Open(t.Context(), tt.writeURL, tt.readURL, nil)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q, %q) = nil error, want one", tt.writeURL, tt.readURL)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, tt.wantStart) {
				t.Errorf("Open error = %q, want it to start with %q", msg, tt.wantStart)
			}
			if strings.Contains(msg, password) || strings.Contains(msg, password[4:]) || strings.Contains(msg, "pa55word") {
				t.Errorf("Open error = %q, shows the password", msg)
			}
		})
	}
}

// TestUpsertBatchOf5000 writes a batch of 5000 plans, redelivers it, then changes a few.
func TestUpsertBatchOf5000(t *testing.T) {
	t.Parallel()
	s, _ := migrated(t)
	const n = 5000
	batch := make([]catalog.Plan, n)
	for i := range batch {
		batch[i] = catalogtest.NewPlan("big", strconv.Itoa(i),
			catalogtest.At(catalogtest.Epoch.Add(time.Duration(i)*time.Minute), time.Hour),
			catalogtest.Zones(
				catalog.Zone{ZoneID: "1", Name: "Platea", Capacity: int64(i), Price: catalog.Money(1000 + i)},
				catalog.Zone{ZoneID: "1", Name: "Platea", Capacity: int64(i), Price: catalog.Money(1000 + i)},
			))
	}
	v1, err := s.UpsertPlans(t.Context(), batch)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.UpsertPlans(t.Context(), batch); err != nil || v != v1 {
		t.Errorf("UpsertPlans(the same %d plans again) = %d, %v; want %d, nil", n, v, err, v1)
	}
	ch, err := s.ChangedSince(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Plans) != n || ch.Version != v1 {
		t.Fatalf("ChangedSince(0) = %d plans at version %d, want %d at %d", len(ch.Plans), ch.Version, n, v1)
	}
	slices.SortFunc(ch.Plans, func(a, b catalog.Plan) int { return a.StartsAt.Compare(b.StartsAt) })
	for i, p := range ch.Plans {
		want := batch[i]
		want.EverOnline, want.Version = true, v1
		if samePlan(want, p) {
			continue // cmp.Diff is slow on thousands of plans under -race
		}
		if diff := cmp.Diff(want, p, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("ChangedSince(0): plan %d mismatch (-want +got):\n%s", i, diff)
		}
	}

	next := slices.Clone(batch)
	for i := range next {
		next[i].Revision = 2
	}
	for _, i := range []int{0, 2500, 4999} {
		next[i].Title = "Changed " + strconv.Itoa(i)
	}
	v2, err := s.UpsertPlans(t.Context(), next)
	if err != nil {
		t.Fatal(err)
	}
	ch, err = s.ChangedSince(t.Context(), v1)
	if err != nil {
		t.Fatal(err)
	}
	var titles []string
	for _, p := range ch.Plans {
		titles = append(titles, p.Title)
	}
	slices.Sort(titles)
	if want := []string{"Changed 0", "Changed 2500", "Changed 4999"}; v2 <= v1 || ch.Version != v2 || !slices.Equal(titles, want) {
		t.Errorf("after changing 3 of %d plans: version %d, ChangedSince(%d) = %q at version %d; want a version above %d, %q",
			n, v2, v1, titles, ch.Version, v1, want)
	}
}

// samePlan reports whether cmp.Diff would find no difference between a and b.
func samePlan(a, b catalog.Plan) bool {
	return a.ID == b.ID && a.Provider == b.Provider && a.BasePlanID == b.BasePlanID && a.PlanID == b.PlanID &&
		a.Title == b.Title && a.OrganizerCompanyID == b.OrganizerCompanyID && a.SellMode == b.SellMode &&
		a.StartsAt.Equal(b.StartsAt) && a.EndsAt.Equal(b.EndsAt) && a.SellFrom.Equal(b.SellFrom) && a.SellTo.Equal(b.SellTo) &&
		a.SoldOut == b.SoldOut && slices.Equal(a.Zones, b.Zones) &&
		a.Revision == b.Revision && a.EverOnline == b.EverOnline && a.Version == b.Version
}

// TestConcurrentUpsertsDoNotDeadlock has writers upsert the same large set of plans in
// opposite orders, with interleaved revisions: row locks taken in opposite orders would
// deadlock without the catalog version lock that orders the writers.
func TestConcurrentUpsertsDoNotDeadlock(t *testing.T) {
	t.Parallel()
	s, _ := migrated(t)
	const (
		writers = 4
		calls   = 8
		plans   = 1000
	)
	ctx, cancel := context.WithTimeout(t.Context(), hangGuard)
	defer cancel()
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range calls {
				r := int64(i*writers + g + 1)
				batch := make([]catalog.Plan, plans)
				for k := range plans {
					id := k
					if g%2 == 1 {
						id = plans - 1 - k
					}
					batch[k] = catalogtest.NewPlan("shared", strconv.Itoa(id), catalogtest.Revision(r), catalogtest.Title(fmt.Sprintf("rev %d", r)))
				}
				if _, err := s.UpsertPlans(ctx, batch); err != nil {
					errs[g] = fmt.Errorf("writer %d call %d: %w", g, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Errorf("UpsertPlans: %v", err)
		}
	}
	got, err := s.SearchPlans(t.Context(), catalog.Window{})
	if err != nil {
		t.Fatal(err)
	}
	const top = writers * calls
	for _, p := range got {
		if p.Revision != top || p.Title != fmt.Sprintf("rev %d", top) {
			t.Fatalf("plan %s: revision %d titled %q, want revision %d titled %q", p.PlanID, p.Revision, p.Title, top, fmt.Sprintf("rev %d", top))
		}
	}
	if len(got) != plans {
		t.Errorf("SearchPlans = %d plans, want %d", len(got), plans)
	}
}

// TestUnstorableText checks that text PostgreSQL refuses (a NUL byte) fails the batch
// with a message naming the plan and the field, and changes nothing. Invalid UTF-8 is
// not refused: catalog.Observe replaces it (catalogtest's InvalidUTF8Replaced).
func TestUnstorableText(t *testing.T) {
	t.Parallel()
	s, _ := migrated(t)
	tests := []struct {
		name    string
		give    catalog.Plan
		wantErr string
	}{
		{name: "NUL in title", give: catalogtest.NewPlan("bad", "1", catalogtest.Title("a\x00b")), wantErr: "title"},
		{name: "NUL in plan id", give: catalogtest.NewPlan("bad", "\x00"), wantErr: "plan_id"},
		{name: "NUL in zone name", give: catalogtest.NewPlan("bad", "2", catalogtest.Zones(catalog.Zone{ZoneID: "1", Name: "\x00"})), wantErr: "zone 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good := catalogtest.NewPlan("good", tt.name)
			_, err := s.UpsertPlans(t.Context(), []catalog.Plan{good, tt.give})
			if err == nil || !strings.Contains(err.Error(), tt.give.ID.String()) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("UpsertPlans(plan with %s) = %v, want an error naming plan %s and %q", tt.name, err, tt.give.ID, tt.wantErr)
			}
		})
	}
	if ch, err := s.ChangedSince(t.Context(), 0); err != nil || len(ch.Plans) != 0 {
		t.Errorf("ChangedSince(0) after refused batches = %d plans, %v; want none", len(ch.Plans), err)
	}
}

// TestWithoutReplica checks that a store without a read URL, or with the write URL as
// its read URL, reads from the primary and has no replica check.
func TestWithoutReplica(t *testing.T) {
	t.Parallel()
	_, u := migrated(t)
	for _, readURL := range []string{"", u} {
		s := openStore(t, u, readURL, nil)
		if _, err := s.SearchPlans(t.Context(), catalog.Window{}); err != nil {
			t.Fatal(err)
		}
		if st := s.Stats(); st.Primary == nil || st.Replica != nil || st.PrimaryReads != 1 || st.ReplicaReads != 0 {
			t.Errorf("read URL %q: Stats() = %+v, want a primary pool that served the read and no replica", readURL, st)
		}
		var names []string
		for name := range s.Checks() {
			names = append(names, name)
		}
		if want := []string{"postgres_primary"}; !slices.Equal(names, want) {
			t.Errorf("read URL %q: Checks() has %q, want %q", readURL, names, want)
		}
	}
}

func TestSyncs(t *testing.T) {
	open, reopen := reopenable()
	ingesttest.TestStore(t,
		func(t *testing.T) ingesttest.Store { return open(t) },
		ingesttest.Features{
			Reopen: func(t *testing.T, s ingesttest.Store) ingesttest.Store { return reopen(t, s.(*postgres.Store)) },
		})
}
