// Package bench is `make bench`: an end-to-end load benchmark of the read path. It is
// test code behind the `bench` build tag (but for its chart writer, svg.go), so
// `go test ./...` and `make test` never run it; scripts/bench.sh does:
//
//	go test -tags bench -run TestBench -v -timeout 90m ./bench
//
// TestBench starts boxoffice on loopback with a synthetic catalog from the provider
// simulator (churn off, so the catalog is stable), waits until /search serves every
// plan, and loads it with wrk (peak throughput) and vegeta (latency at a fixed rate)
// for hot windows (a few distinct queries), random windows (every request
// distinct) and pages of 100 (64 pages deep in the catalog, each asked by the cursor
// a client paging from a random start would send: a signed cursor, a binary search
// and 100 pre-encoded documents). Each figure stands beside a trivial net/http handler that serves the same
// response bytes, measured in the same run, and the ratio between the two; so does the
// server process's CPU time per request (Linux: /proc/<pid>/stat), the server time a
// request costs, which the machine's noise moves far less than latency. It runs the
// embedded mode (`boxoffice run`) and, when PostgreSQL, Redis and RabbitMQ answer, the
// distributed one (`api`, `worker` and `ingest` processes in a schema and namespace of
// their own, dropped afterwards). It reports timings; it never asserts them.
//
// TestBenchIngest, also part of `make bench` (alone: `make bench-ingest`), measures cold
// ingest: for each mode and each size of BENCH_INGEST_SIZES it starts boxoffice on an
// empty store and the same synthetic catalog, and reports the time from the first
// process's start until the API's search index holds every plan (its
// boxoffice_search_index_plans gauge, polled every 100 ms, then confirmed by a full
// /search), the ingest role's first sync, the bytes the store takes, and each process's
// peak resident memory (VmHWM from /proc/<pid>/status), resident memory then and CPU
// time. The distributed mode runs with one worker process and with two. Each mode then
// re-syncs twice, each time from a new ingest process (embedded: run, restarted on its
// data directory) and a provider that answers in full (no 304): the same document, then
// one with 1 % of the plans' prices changed, each timed until the sync is confirmed and
// the API serves the store's version, from the process's start and from the sync's.
//
// TestBenchRestart, not part of `make bench` (BENCH_RUN='^TestBenchRestart$'
// ./scripts/bench.sh), measures an API process starting on a stored catalog: the
// distributed mode ingests BENCH_RESTART_SIZE plans, then an api process of each binary
// of BENCH_RESTART_BINS starts in turn on it, timed until its index holds every plan,
// with its peak resident memory (VmHWM), its resident memory then and the bytes of the
// JSON it serves. Several binaries in one run compare builds on the same stored catalog.
//
// TestBenchLimiter, also part of `make bench`, measures the HTTP edge's rate limiter:
// two embedded servers on one 10k-plan catalog, limiting off and limiting on far above
// the load, their hot windows loaded with wrk in turn; it reports the ratio on/off
// (target: at least 0.95).
//
// Both draw their results as SVG charts into BENCH_CHARTS (docs/bench by default, which
// docs/BENCHMARKS.md shows): TestBench the ratio of boxoffice's peak throughput to the
// trivial handler's per workload and mode, TestBenchIngest the time until served and
// each process's peak RSS against the catalog's size. The SVG writer (svg.go) is plain
// code with no dependency, outside the build tag, so that `make test` runs its unit
// test. TestCharts (`make bench-charts`) measures nothing: it redraws the charts from
// the tables in docs/BENCHMARKS.md.
//
// TestSoak is `make soak`: SOAK_DURATION of mixed traffic at SOAK_RATE on each mode
// (searches, quotes, market events, other reads; syncs with churn every 10 s),
// reporting each process's goroutines, open file descriptors and resident memory at
// the start and the end; it fails when goroutines or descriptors more than doubled.
//
// Settings, all from the environment:
//
//	BENCH_SIZES              catalog sizes, e.g. 10k,1m (default 10k,1m)
//	BENCH_MODES              embedded,distributed (default both)
//	BENCH_DISTRIBUTED_SIZES  the sizes of BENCH_SIZES the distributed mode runs (default all of them)
//	BENCH_DURATION           each load run (default 10s)
//	BENCH_REPEAT             runs of each figure, alternating servers; the median is kept (default 1)
//	BENCH_GZIP               1: the load sends Accept-Encoding: gzip; 0: it does not (default 1)
//	BENCH_RATE               vegeta's fixed rate per second (default 10000)
//	BENCH_WRK_THREADS        wrk threads (default 2)
//	BENCH_WRK_CONNECTIONS    wrk connections (default 64)
//	BENCH_INGEST_TIMEOUT     how long to wait for ingest per catalog (default 40m)
//	BENCH_INGEST_SIZES       TestBenchIngest's catalog sizes, in both modes (default 10k,100k,1m)
//	BENCH_INGEST_WORKERS     TestBenchIngest's distributed runs: worker processes of each (default 1,2)
//	BENCH_INGEST_OUT         a file to write TestBenchIngest's table to
//	BENCH_RESTART_SIZE       TestBenchRestart's catalog size (default 1m)
//	BENCH_RESTART_BINS       TestBenchRestart's api binaries, comma-separated (default BENCH_BIN or the one built)
//	BENCH_BIN                the boxoffice binary (default: built into a temporary dir)
//	BENCH_OUT                a file to write the Markdown results table to
//	BENCH_LIMITER_OUT        a file to write TestBenchLimiter's table to
//	BENCH_CHARTS             the directory of the SVG charts (default: the repository's docs/bench)
//	SOAK_DURATION            the soak's length per mode (default 10m)
//	SOAK_RATE                the soak's requests a second (default 200)
//	SOAK_OUT                 a file to write the soak's table to
//	TEST_DATABASE_WRITE_URL, TEST_DATABASE_READ_URL, TEST_REDIS_URL, TEST_BROKER_URL
//	                         the distributed services (see testenv)
package bench
