//go:build bench

package bench

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver: the embedded store's sync state

	"boxoffice/providersim"
)

// ingestRow is one line of the ingest table: one mode and catalog size, from nothing.
type ingestRow struct {
	mode, size string
	plans      int
	served     time.Duration // from the first process's start until the API's index held every plan
	sync       time.Duration // the ingest role's first sync: fetch, parse, spool, publish
	store      int64         // bytes of the store's tables and indexes (SQLite: its files)
	unchanged  resync        // a re-sync of the same document
	changed    resync        // a re-sync with 1 % of the plans changed
	procs      []procUsage
	load       [2]string // /proc/loadavg before and after
}

// procUsage is what one process used during a cold ingest.
type procUsage struct {
	name     string
	peak     int64         // VmHWM: the highest resident memory, bytes
	rss      int64         // VmRSS once every plan was served, bytes
	cpu      time.Duration // user + system CPU time until then
	indexed  int64         // boxoffice_search_index_bytes of an API, else 0
	hasIndex bool
}

// TestBenchIngest is the ingest table of `make bench`: for each mode and each size of
// BENCH_INGEST_SIZES, boxoffice starts on an empty store and the synthetic catalog, and
// the test measures the time from the first process's start until the API's search
// index holds every plan (its boxoffice_search_index_plans gauge, polled every 100 ms,
// then confirmed by a full /search), the bytes the store takes, and each process's peak
// resident memory (VmHWM), resident memory then and CPU time. The distributed mode runs
// once for each worker count of BENCH_INGEST_WORKERS. Each mode re-syncs twice after the
// cold ingest (measureResync): the same document, then 1 % of the plans changed.
func TestBenchIngest(t *testing.T) {
	s, err := loadSettings()
	if err != nil {
		t.Fatal(err)
	}
	sizes, err := parseSizes(env("BENCH_INGEST_SIZES", "10k,100k,1m"))
	if err != nil {
		t.Fatalf("BENCH_INGEST_SIZES: %v", err)
	}
	var workers []int
	for w := range strings.SplitSeq(env("BENCH_INGEST_WORKERS", "1,2"), ",") {
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n < 1 || n > 8 {
			t.Fatalf("BENCH_INGEST_WORKERS: want worker counts from 1 to 8, such as 1,2: %q", os.Getenv("BENCH_INGEST_WORKERS"))
		}
		workers = append(workers, n)
	}
	type setup struct {
		mode, label string
		workers     int // distributed: worker processes
	}
	var setups []setup
	for _, mode := range s.modes {
		if mode == "embedded" {
			setups = append(setups, setup{mode, mode, 0})
			continue
		}
		for _, w := range workers {
			label := mode
			if w > 1 {
				label = fmt.Sprintf("%s, %d workers", mode, w)
			}
			setups = append(setups, setup{mode, label, w})
		}
	}
	bin := buildBinary(t, s)
	var rows []ingestRow
	var skipped []string
	for _, su := range setups {
		for _, n := range sizes {
			name := strings.ReplaceAll(su.label, ", ", "-") + "/" + sizeName(n)
			t.Run(name, func(t *testing.T) {
				before := loadavg()
				start := time.Now()
				var procs []server
				var api, ingester server
				var primary string
				var startRole func(role string) (server, func())
				var stopIngester func()
				skipFirst := func() {}
				switch su.mode {
				case "embedded":
					var stop func()
					api, stop = startEmbeddedOn(t, bin, resyncConfig(n), t.TempDir())
					api.name = "run"
					procs, ingester = []server{api}, api
					// A re-sync restarts run on its data directory, syncing the bench's
					// provider instead of its built-in simulator: the same catalog under
					// the same provider name, whose next answers are the document run
					// synced, then 1 % of the plans changed.
					provider := newResyncProvider(n)
					t.Cleanup(provider.Close)
					url := serveProvider(t, provider)
					skipFirst = provider.skipFirst
					startRole = func(string) (server, func()) {
						srv, stop := startEmbeddedOn(t, bin, resyncConfig(n), api.dataDir, "EXTERNAL_API_URL="+url)
						srv.name = "run"
						return srv, stop
					}
					stopIngester = stop
				default:
					var replica, redisURL, brokerURL string
					var err error
					primary, replica, redisURL, brokerURL, err = distributedServices()
					if err != nil {
						skipped = append(skipped, fmt.Sprintf("%s: services not reachable (%v)", name, err))
						t.Skipf("services not reachable: %v", err)
					}
					roles := []string{"worker", "api"}
					for range su.workers - 1 {
						roles = append(roles, "worker")
					}
					provider := newResyncProvider(n)
					t.Cleanup(provider.Close)
					procs, startRole = startRolesOn(t, bin, provider, nil, roles, primary, replica, redisURL, brokerURL)
					api = procs[1]
					ingester, stopIngester = startRole("ingest")
					procs = append(procs, ingester)
				}
				c := simConfig(n)
				want := c.BasePlans * c.Plans
				served := waitIndexed(t, api.base, want, start, s.ingestTimeout)
				row := ingestRow{mode: su.label, size: sizeName(want), plans: want, served: served}
				for i, p := range procs {
					u := procUsage{name: p.name}
					u.peak, u.rss = memory(p.pid)
					u.cpu, _ = cpuTime(p.pid)
					if su.mode == "embedded" || i == 1 { // run, or the api
						u.indexed, u.hasIndex = int64(metricValue(t, api.base, "boxoffice_search_index_bytes")), true
					}
					row.procs = append(row.procs, u)
				}
				row.store = storeBytes(t, api, primary)
				row.sync = time.Duration(metricValue(t, ingester.base, "boxoffice_sync_duration_seconds_sum") * float64(time.Second))
				// Served means a client gets every plan: count them in a full response.
				if got, err := countPlans(t.Context(), api.base); err != nil || got != want {
					t.Fatalf("index holds %d plans, but /search serves %d (%v)", want, got, err)
				}
				t.Logf("%s: %d plans served %.1f s after start", name, want, served.Seconds())
				// The provider's next answer is the same document, then one with 1 %
				// of the plans' prices changed; each is the first sync of a new
				// ingest process (run, embedded), which the provider answers in full.
				skipFirst()
				var next func()
				row.unchanged, next = measureResync(t, startRole, stopIngester, api, primary)
				row.changed, next = measureResync(t, startRole, next, api, primary)
				next()
				row.load = [2]string{before, loadavg()}
				rows = append(rows, row)
			})
		}
	}
	table := ingestReport(rows, skipped)
	fmt.Println()
	fmt.Print(table)
	if out := os.Getenv("BENCH_INGEST_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(table), 0o644); err != nil {
			t.Error(err)
		}
	}
	if len(rows) > 0 {
		writeCharts(t, ingestChartFiles(rows))
	}
}

// resync is what a re-sync of the catalog took, from the start of a new ingest process
// (run, embedded) until its sync was confirmed (every batch applied) and the API served
// the store's catalog version then.
type resync struct {
	done      time.Duration
	afterSync time.Duration // from the sync's start (provider_status) until done; 0 if unknown
	sync      time.Duration // the ingest process's fetch, parse, spool and publish
	versions  int64         // catalog versions the re-sync added
	peak      int64         // the new ingest process's peak RSS
}

// resyncProvider serves the synthetic catalog of n plans with 1 % of the plans' prices
// changing from one call to the next, and answers every request in full (it drops the
// conditional headers, like a provider without validators): the first request gets
// call 1, the second the same document again, the third call 2 (1 % changed), and so on.
type resyncProvider struct {
	first, again *providersim.Server
	calls        atomic.Int64
}

func newResyncProvider(n int) *resyncProvider {
	c := resyncConfig(n)
	return &resyncProvider{first: providersim.New(c), again: providersim.New(c)}
}

// resyncConfig is the synthetic catalog of n plans whose prices change for 1 % of the
// plans from one call to the next. Its first call serves the cold ingest: a single call,
// churn plays no part in it.
func resyncConfig(n int) providersim.Config {
	c := simConfig(n)
	c.PriceChangeRate = 0.01
	return c
}

func (p *resyncProvider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Header.Del("If-None-Match")
	r.Header.Del("If-Modified-Since")
	if p.calls.Add(1) == 2 {
		p.again.ServeHTTP(w, r) // its call 1: what the first request got
		return
	}
	p.first.ServeHTTP(w, r)
}

func (p *resyncProvider) Close() { p.first.Close(); p.again.Close() }

// skipFirst answers the first request into the void: for a run whose cold ingest synced
// its built-in simulator, which served the same document.
func (p *resyncProvider) skipFirst() {
	p.ServeHTTP(discard{header: http.Header{}}, httptest.NewRequest(http.MethodGet, providersim.Path, nil))
}

// discard is a ResponseWriter that drops what it is given.
type discard struct{ header http.Header }

func (d discard) Header() http.Header       { return d.header }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

// syncTimes is when the last sync of the bench's provider started and finished, and when
// every batch of the confirmed sync was applied.
type syncTimes struct{ started, finished, confirmed time.Time }

// syncReader reads a store's sync state: its newest confirmed sync's revision and the
// catalog version, and the times of the last sync.
type syncReader struct {
	state func() (revision, version int64)
	times func() (syncTimes, error)
	close func()
}

// openSyncReader reads api's store: its SQLite database, read-only (embedded), or its
// schema on the primary.
func openSyncReader(t *testing.T, api server, primary string) syncReader {
	t.Helper()
	ctx := t.Context()
	const stateSQL = `SELECT coalesce((SELECT max(revision) FROM %[1]sprovider_syncs), 0), (SELECT version FROM %[1]scatalog_version)`
	const timesSQL = `SELECT s.started_at, s.finished_at, c.confirmed_at
		FROM %[1]sprovider_status AS s JOIN %[1]sprovider_syncs AS c USING (provider, sync_id)`
	if api.dataDir != "" {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(api.dataDir, "boxoffice.db")+"?mode=ro&_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		return syncReader{
			state: func() (revision, version int64) {
				if err := db.QueryRowContext(ctx, fmt.Sprintf(stateSQL, "")).Scan(&revision, &version); err != nil {
					t.Fatalf("read sync state: %v", err)
				}
				return revision, version
			},
			times: func() (syncTimes, error) {
				var started, finished, confirmed int64 // Unix microseconds
				err := db.QueryRowContext(ctx, fmt.Sprintf(timesSQL, "")).Scan(&started, &finished, &confirmed)
				return syncTimes{time.UnixMicro(started), time.UnixMicro(finished), time.UnixMicro(confirmed)}, err
			},
			close: func() { db.Close() },
		}
	}
	conn, err := pgx.Connect(ctx, primary)
	if err != nil {
		t.Fatal(err)
	}
	prefix := api.schema + "."
	return syncReader{
		state: func() (revision, version int64) {
			if err := conn.QueryRow(ctx, fmt.Sprintf(stateSQL, prefix)).Scan(&revision, &version); err != nil {
				t.Fatalf("read sync state: %v", err)
			}
			return revision, version
		},
		times: func() (syncTimes, error) {
			var st syncTimes
			err := conn.QueryRow(ctx, fmt.Sprintf(timesSQL, prefix)).Scan(&st.started, &st.finished, &st.confirmed)
			return st, err
		},
		close: func() { conn.Close(context.WithoutCancel(ctx)) },
	}
}

// measureResync stops the ingest process (stop), starts a new one, which syncs at once,
// and measures that sync; it returns the function that stops the new process. In the
// embedded mode the new process is a run on api's data directory, and serves itself:
// its time includes loading the stored catalog into its index, which it does while its
// sync runs, so afterSync tells the sync's own part.
func measureResync(t *testing.T, startRole func(role string) (server, func()), stop func(), api server, primary string) (resync, func()) {
	t.Helper()
	ctx := t.Context()
	store := openSyncReader(t, api, primary)
	defer store.close()
	confirmed, before := store.state()
	stop()
	start := time.Now()
	ing, next := startRole("ingest")
	if api.dataDir != "" {
		api = ing
	}
	var r resync
	for {
		rev, v := store.state()
		if rev > confirmed {
			served, err := metric(ctx, api.base, "boxoffice_catalog_version")
			if err == nil && int64(served) >= v {
				r.done, r.versions = time.Since(start), v-before
				break
			}
		}
		if time.Since(start) > 30*time.Minute {
			t.Fatal("re-sync: not confirmed and served after 30 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	doneAt := start.Add(r.done)
	r.sync = time.Duration(metricValue(t, ing.base, "boxoffice_sync_duration_seconds_sum") * float64(time.Second))
	r.peak, _ = memory(ing.pid)
	// Where the time went: the ingest's start and leader lock, its sync (fetch, parse,
	// publish), then the worker's batches until the confirmation.
	if st, err := store.times(); err == nil {
		r.afterSync = doneAt.Sub(st.started)
		t.Logf("re-sync: the sync started %.1f s after the ingest process, took %.1f s, and was confirmed %.1f s after it ended",
			st.started.Sub(start).Seconds(), st.finished.Sub(st.started).Seconds(), st.confirmed.Sub(st.finished).Seconds())
	}
	t.Logf("re-sync: confirmed and served %.1f s after the ingest process started (%.1f s after its sync started); %d versions",
		r.done.Seconds(), r.afterSync.Seconds(), r.versions)
	return r, next
}

// storeBytes returns the bytes srv's store takes: the files of its SQLite database
// (boxoffice.db and its WAL), or its PostgreSQL schema's tables with their indexes and
// TOAST, on the primary.
func storeBytes(t *testing.T, srv server, primary string) int64 {
	t.Helper()
	if srv.dataDir != "" {
		var n int64
		files, _ := filepath.Glob(filepath.Join(srv.dataDir, "boxoffice.db*"))
		for _, f := range files {
			if fi, err := os.Stat(f); err == nil {
				n += fi.Size()
			}
		}
		return n
	}
	conn, err := pgx.Connect(t.Context(), primary)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	var n int64
	if err := conn.QueryRow(t.Context(), `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
		FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
		WHERE ns.nspname = $1 AND c.relkind = 'r'`, srv.schema).Scan(&n); err != nil {
		t.Fatalf("size of schema %s: %v", srv.schema, err)
	}
	return n
}

// waitIndexed polls base's boxoffice_search_index_plans until it is want and returns
// how long that took from start.
func waitIndexed(t *testing.T, base string, want int, start time.Time, timeout time.Duration) time.Duration {
	t.Helper()
	deadline := start.Add(timeout)
	last, lastLog := -1.0, time.Now()
	for {
		got, err := metric(t.Context(), base, "boxoffice_search_index_plans")
		if err == nil && int(got) == want {
			return time.Since(start)
		}
		if got != last && time.Since(lastLog) > 10*time.Second {
			t.Logf("ingest: %.0f of %d plans indexed after %s (err %v)", got, want, time.Since(start).Round(time.Second), err)
			last, lastLog = got, time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingest: %.0f of %d plans indexed after %s", got, want, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// metricValue returns the sum of the series of metric name on base's /metrics.
func metricValue(t *testing.T, base, name string) float64 {
	t.Helper()
	v, err := metric(t.Context(), base, name)
	if err != nil {
		t.Fatalf("%s/metrics: %v", base, err)
	}
	return v
}

// metric returns the sum of the series of metric name on base's /metrics (whatever
// their labels), or 0 when it has none.
func metric(ctx context.Context, base, name string) (float64, error) {
	body, err := getOK(ctx, base+"/metrics")
	if err != nil {
		return 0, err
	}
	defer body.Close()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	sum := 0.0
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || (k != name && !strings.HasPrefix(k, name+"{")) {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", k, err)
		}
		sum += f
	}
	return sum, sc.Err()
}

// ingestReport writes the ingest table as Markdown.
func ingestReport(rows []ingestRow, skipped []string) string {
	var b strings.Builder
	b.WriteString("| mode | plans | served after | plans/s | first sync | store | process | peak RSS | RSS once served | CPU | index |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|\n")
	mib := func(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }
	for _, r := range rows {
		for i, p := range r.procs {
			lead := "| | | | | | |"
			if i == 0 {
				lead = fmt.Sprintf("| %s | %s | %.1f s | %.0f | %.1f s | %s (%.0f B/plan) |", r.mode, r.size, r.served.Seconds(),
					float64(r.plans)/r.served.Seconds(), r.sync.Seconds(), mib(r.store), float64(r.store)/float64(r.plans))
			}
			index := ""
			if p.hasIndex {
				index = fmt.Sprintf("%s (%.0f B/plan)", mib(p.indexed), float64(p.indexed)/float64(r.plans))
			}
			fmt.Fprintf(&b, "%s %s | %s | %s | %.1f s | %s |\n", lead, p.name, mib(p.peak), mib(p.rss), p.cpu.Seconds(), index)
		}
	}
	b.WriteString("\nServed after: from the first process's start until the API's search index held every plan (a full /search then returned them all). First sync: the ingest role's fetch, parse, spool and publish. Store: the SQLite database's files, or the PostgreSQL schema's tables with their indexes. CPU: user + system time of the process until then.\n")
	resyncs := false
	for _, r := range rows {
		resyncs = resyncs || r.unchanged.done > 0
	}
	if resyncs {
		b.WriteString("\n| mode | plans | re-sync | confirmed and served after | from the sync's start | sync | catalog versions added | peak RSS of the ingest (run) |\n")
		b.WriteString("|---|--:|---|--:|--:|--:|--:|--:|\n")
		for _, r := range rows {
			for _, rs := range []struct {
				name string
				r    resync
			}{{"unchanged", r.unchanged}, {"1 % changed", r.changed}} {
				if rs.r.done > 0 {
					fmt.Fprintf(&b, "| %s | %s | %s | %.1f s | %.1f s | %.1f s | %d | %s |\n", r.mode, r.size, rs.name,
						rs.r.done.Seconds(), rs.r.afterSync.Seconds(), rs.r.sync.Seconds(), rs.r.versions, mib(rs.r.peak))
				}
			}
		}
		b.WriteString("\nRe-sync: a new ingest process (embedded: run, restarted on its data directory) syncs a provider that answers in full (no 304); the time runs from its start until its sync is confirmed (every batch applied) and the API serves the store's catalog version, and from the sync's start (its provider_status row) until then. A restarted run loads its stored catalog into its index while its sync runs.\n")
	}
	for _, r := range rows {
		fmt.Fprintf(&b, "- %s %s: load average %s before, %s after.\n", r.mode, r.size, r.load[0], r.load[1])
	}
	for _, sk := range skipped {
		fmt.Fprintf(&b, "- skipped %s\n", sk)
	}
	return b.String()
}
