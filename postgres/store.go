// Package postgres implements boxoffice's stores on PostgreSQL, the distributed mode:
// writes go to the primary (DATABASE_WRITE_URL), reads to a streaming hot-standby replica
// (DATABASE_READ_URL) when there is one.
//
// Writers serialize on the one row of catalog_version, which they lock before anything
// else, so catalog versions are assigned in commit order and a reader that has seen
// version n has seen every change up to n. Readers take the version and the plans from
// one snapshot, so data read from a lagging replica is labelled with the version that
// replica had replayed, never a newer one.
//
// While the replica is unreachable, reads fall back to the primary; a background probe
// returns them to the replica once it answers again (see Store.Stats and Store.Checks).
//
// The tables live in the first schema of the connection's search_path, which a URL may
// set (`?search_path=boxoffice`); the schema must exist.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"boxoffice/catalog"
	"boxoffice/redact"
)

// Connection timeouts applied when a URL sets no connect_timeout. The replica's is short:
// reads have the primary to fall back to, so waiting longer only delays them.
const (
	primaryConnectTimeout = 10 * time.Second
	replicaConnectTimeout = 2 * time.Second
)

// Re-probing an unreachable replica: the first probe after probeMinWait, then twice the
// wait after each failure, up to probeMaxWait; each probe gives up after probeTimeout.
const (
	probeMinWait = 100 * time.Millisecond
	probeMaxWait = 5 * time.Second
	probeTimeout = 2 * time.Second
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store keeps boxoffice's data in PostgreSQL. It is safe for concurrent use.
// One type implements the ports of several domains, each in files of its own:
// catalog.Store (plans.go), ingest.BatchStore and ingest.SyncLog (syncs.go),
// pricing.Store (pricing.go), task.Records (tasks.go); the catalog and the pricing
// meet in products.go alone.
//
// Reads (SearchPlans, ChangedSince, EventProducts, Task, and Product and Market unless
// asked for the primary) go to the replica. One that fails there because the
// replica is unreachable (refused, reset or timed-out connections, a server shutting
// down or starting up) runs again on the primary, and so do the reads after it, without
// trying the replica, while a goroutine probes it with a growing wait (100ms up to 5s).
// Once a probe succeeds the goroutine ends and reads return to the replica; Close also
// ends it. Each transition is logged once. A read the replica can't serve just now (a
// conflict with recovery canceled it, or the schema is not replayed yet) runs again on
// the primary, alone. A read that fails for its own sake (the caller's context is done,
// an SQL error) is not retried.
type Store struct {
	log         *slog.Logger
	primary     *pgxpool.Pool
	primaryAddr string        // host:port/database, for messages: never the password
	replica     *pgxpool.Pool // nil when reads go to the primary
	replicaAddr string

	replicaDown  atomic.Bool  // reads skip the replica while a probe goroutine runs
	replicaReads atomic.Int64 // reads the replica served
	primaryReads atomic.Int64 // reads the primary served

	ctx    context.Context // canceled by Close: stops the probe goroutine
	cancel context.CancelFunc

	mu     sync.Mutex     // guards closed and the start of probe goroutines
	closed bool           // Close was called: no more goroutines start
	probes sync.WaitGroup // the probe goroutine, while the replica is down
}

var _ catalog.Store = (*Store)(nil)

// Open connects a pool to the primary at writeURL and, unless readURL is empty or the
// same, a pool to the replica at readURL, which serves the reads (see Store). It
// fails when a URL is malformed or the primary does not answer; an unreachable replica
// only sends reads to the primary until it answers. It does not change the schema: call
// Migrate before the first use of a new database. log receives the replica's transitions
// between reachable and not; nil discards them.
//
// The URLs take pgx's parameters: pool_max_conns (default: 4 or the number of CPUs,
// whichever is more), connect_timeout (default: 10s for the primary, 2s for the replica,
// which reads can do without), search_path, sslmode and the others.
//
// Errors name the server, never the password: `open postgres primary 127.0.0.1:5432/boxoffice: …`.
// opts add instrumentation (WithTracing).
func Open(ctx context.Context, writeURL, readURL string, log *slog.Logger, opts ...Option) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var o options
	for _, apply := range opts {
		apply(&o)
	}
	tracer := o.queryTracer()
	s := &Store{log: log}
	var err error
	s.primary, s.primaryAddr, err = openPool(ctx, writeURL, primaryConnectTimeout, tracer)
	if err != nil {
		return nil, fmt.Errorf("open postgres primary%s: %w", prefixSpace(s.primaryAddr), err)
	}
	if err := s.primary.Ping(ctx); err != nil {
		s.primary.Close()
		return nil, fmt.Errorf("open postgres primary %s: %w", s.primaryAddr, err)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if readURL == "" || readURL == writeURL {
		return s, nil
	}
	s.replica, s.replicaAddr, err = openPool(ctx, readURL, replicaConnectTimeout, tracer)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open postgres replica%s: %w", prefixSpace(s.replicaAddr), err)
	}
	if err := s.pingReplica(ctx); err != nil && ctx.Err() == nil {
		s.markReplicaDown(err) //nolint:contextcheck // the probe it starts outlives Open: it stops with the Store
	}
	return s, nil
}

// openPool parses url and returns a pool for it with the server's address, connecting
// lazily, its connections traced by tracer unless it is nil. The address is empty when
// url does not parse.
func openPool(ctx context.Context, url string, connectTimeout time.Duration, tracer pgx.QueryTracer) (*pgxpool.Pool, string, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx masks the password as far as it can tell, which a malformed URL defeats:
		// quote the URL redacted by the one rule, with pgx's reason only.
		reason := "malformed"
		if msg := err.Error(); strings.Contains(msg, "`: ") {
			reason = msg[strings.LastIndex(msg, "`: ")+len("`: "):]
		}
		return nil, "", fmt.Errorf("cannot parse %s: %s", redact.URL(url), reason)
	}
	cc := cfg.ConnConfig
	addr := net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))) + "/" + cc.Database
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = connectTimeout
	}
	if tracer != nil {
		cc.Tracer = tracer
	}
	// A caller's deadline or cancellation stops its query on the server (a cancel
	// request), not only the wait for it; the connection is cut a second later if the
	// server does not answer.
	cc.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: time.Second}
	}
	cfg.PrepareConn = prepareStatementTimeout
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, addr, err
	}
	return pool, addr, nil
}

// statementTimeoutKey is where a connection's CustomData keeps the statement_timeout,
// in whole seconds, that prepareStatementTimeout last set (absent: the server's).
const statementTimeoutKey = "boxoffice.statement_timeout"

// prepareStatementTimeout, the pools' PrepareConn, gives a connection acquired for a
// context with a deadline a statement_timeout of the time left, rounded up to whole
// seconds, and one acquired without a deadline the server's default (RESET). So a query
// whose caller gave up ends on the server even if the cancel request is lost. It sets
// the timeout only when it changes: requests of one route class share a deadline, so a
// connection mostly keeps its value, and acquiring it costs no round trip.
func prepareStatementTimeout(ctx context.Context, c *pgx.Conn) (bool, error) {
	var want int64 // seconds; 0: the server's default
	if dl, ok := ctx.Deadline(); ok {
		want = max(1, int64(math.Ceil(time.Until(dl).Seconds())))
	}
	data := c.PgConn().CustomData()
	if have, _ := data[statementTimeoutKey].(int64); have == want {
		return true, nil
	}
	if err := ctx.Err(); err != nil {
		return true, err // the connection is fine; the caller is gone
	}
	sql := "RESET statement_timeout"
	if want > 0 {
		sql = "SET statement_timeout = " + strconv.FormatInt(want*1000, 10)
	}
	if _, err := c.Exec(ctx, sql); err != nil {
		delete(data, statementTimeoutKey)
		return false, fmt.Errorf("set statement_timeout: %w", err)
	}
	data[statementTimeoutKey] = want
	return true, nil
}

func prefixSpace(s string) string {
	if s == "" {
		return ""
	}
	return " " + s
}

// Close stops the replica probe, if one runs, and closes both pools, waiting for the
// connections in use to be released. Calling it again does nothing.
func (s *Store) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.probes.Wait()
	if s.replica != nil {
		s.replica.Close()
	}
	s.primary.Close()
}

// Migrate applies the embedded migrations (migrations/*.sql) that the schema lacks, in
// order, each in its own transaction, on the primary, then gives products to the
// ever-online plans stored without them (before migration 0002). It does nothing on an
// up-to-date schema, so every start may call it. Processes migrating the same schema at once take
// turns on an advisory lock; ctx bounds the wait.
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.migrate(ctx); err != nil {
		return fmt.Errorf("migrate postgres %s: %w", s.primaryAddr, err)
	}
	if err := s.backfillProducts(ctx); err != nil {
		return fmt.Errorf("migrate postgres %s: %w", s.primaryAddr, err)
	}
	return nil
}

func (s *Store) migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	// A connection of its own, closed at the end, so that a session lock can never
	// outlive the migration inside a pooled connection.
	db := stdlib.OpenDB(*s.primary.Config().ConnConfig)
	defer db.Close()
	db.SetMaxOpenConns(1)
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithDisableGlobalRegistry(true),
		goose.WithSessionLocker(schemaLocker{}),
	)
	if err != nil {
		return err
	}
	_, err = p.Up(ctx)
	return err
}

// schemaLocker makes migrations of one schema take turns, across processes, with a
// session-level advisory lock keyed by the schema's name: migrations of other schemas
// (a test's own, say) do not wait. pg_advisory_lock blocks until the holder is done,
// where goose's own lock.NewPostgresSessionLocker polls, one second at the least.
type schemaLocker struct{}

var _ lock.SessionLocker = schemaLocker{}

// migrateLockKey is the advisory lock key of the current schema.
const migrateLockKey = `hashtextextended('boxoffice migrate ' || coalesce(current_schema(), ''), 0)`

// SessionLock waits for the schema's migration lock, or for ctx to be done.
func (schemaLocker) SessionLock(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(`+migrateLockKey+`)`); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	return nil
}

// SessionUnlock releases the schema's migration lock.
func (schemaLocker) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	var released bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_advisory_unlock(`+migrateLockKey+`)`).Scan(&released); err != nil {
		return fmt.Errorf("release migration lock: %w", err)
	}
	if !released {
		return errors.New("release migration lock: not held")
	}
	return nil
}

// Ping reports whether the primary answers and has the schema; it is the store's
// readiness. The replica has a check of its own in Checks.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := readVersion(ctx, s.primary); err != nil {
		return fmt.Errorf("ping postgres primary %s: %w", s.primaryAddr, err)
	}
	return nil
}

func (s *Store) pingReplica(ctx context.Context) error {
	if _, err := readVersion(ctx, s.replica); err != nil {
		return fmt.Errorf("ping postgres replica %s: %w", s.replicaAddr, err)
	}
	return nil
}

// Checks returns a health check per server, for a readiness report that names each
// dependency and times it: "postgres_primary", and "postgres_replica" when reads have a
// replica. A failing replica check means reads are served by the primary meanwhile, not
// that they fail.
func (s *Store) Checks() map[string]func(context.Context) error {
	checks := map[string]func(context.Context) error{"postgres_primary": s.Ping}
	if s.replica != nil {
		checks["postgres_replica"] = s.pingReplica
	}
	return checks
}

// Stats are the state of a Store's pools and of its read routing, for metrics.
type Stats struct {
	Primary *pgxpool.Stat // the primary's pool
	Replica *pgxpool.Stat // the replica's pool; nil when reads go to the primary

	ReplicaReads int64 // reads the replica served
	PrimaryReads int64 // reads the primary served: all without a replica, else fallbacks
	ReplicaDown  bool  // the replica is unreachable and reads go to the primary
}

// ReportPools calls report with the connection counts of the primary's pool and, when
// reads go to a replica, of the replica's: for /metrics.
func (s *Store) ReportPools(report func(pool string, idle, inUse, total, maxConns int)) {
	st := s.Stats()
	report("primary", int(st.Primary.IdleConns()), int(st.Primary.AcquiredConns()), int(st.Primary.TotalConns()), int(st.Primary.MaxConns()))
	if st.Replica != nil {
		report("replica", int(st.Replica.IdleConns()), int(st.Replica.AcquiredConns()), int(st.Replica.TotalConns()), int(st.Replica.MaxConns()))
	}
}

// ReplicaDown reports whether reads fall back to the primary now because the replica
// is unreachable.
func (s *Store) ReplicaDown() bool { return s.replicaDown.Load() }

// Stats returns the pools' statistics and the read counts so far.
func (s *Store) Stats() Stats {
	st := Stats{
		Primary:      s.primary.Stat(),
		ReplicaReads: s.replicaReads.Load(),
		PrimaryReads: s.primaryReads.Load(),
		ReplicaDown:  s.replicaDown.Load(),
	}
	if s.replica != nil {
		st.Replica = s.replica.Stat()
	}
	return st
}
