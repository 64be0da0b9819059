// Package sqlite implements boxoffice's stores on SQLite, the embedded default: one
// database file, boxoffice.db, in the data directory (DATA_DIR); and the embedded task
// broker, a durable queue in a file of its own beside it, queue.db (see Broker).
//
// SQLite lets one connection write at a time. A Store writes through a single
// connection whose transactions all begin with BEGIN IMMEDIATE, so writers queue in the
// process for that connection instead of failing with SQLITE_BUSY when a deferred
// transaction tries to upgrade its lock, and it reads through a separate pool of
// query-only connections that WAL lets run beside the writer: heavy reads never starve
// the writer and a long write never blocks a read. Every commit is durable when it
// returns (PRAGMA synchronous=FULL): what boxoffice acknowledged survives a power loss.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"boxoffice/catalog"
)

// FileName is the name of the database file in the data directory.
const FileName = "boxoffice.db"

// busyTimeoutMillis is how long a connection waits for a lock that another process
// holds (boxoffice migrate beside a running server) before it reports SQLITE_BUSY.
// Inside one process, writers queue for the single write connection instead.
const busyTimeoutMillis = 5000

//go:embed migrations/*.sql
var migrations embed.FS

// Store keeps boxoffice's data in one SQLite database. It is safe for concurrent use.
// One type implements the ports of several domains, each in files of its own:
// catalog.Store (plans.go), ingest.BatchStore and ingest.SyncLog (syncs.go),
// pricing.Store (pricing.go), task.Records (tasks.go); the catalog and the pricing
// meet in products.go alone.
type Store struct {
	path  string
	write *sql.DB // exactly one connection; every transaction is BEGIN IMMEDIATE
	read  *sql.DB // query-only connections, WAL readers beside the writer
	ckpt  *checkpointer
	// lock is the data directory's, shared (LockFileName); nil for Restore's own files.
	lock *dirLock
}

var _ catalog.Store = (*Store)(nil)

// Stats returns the statistics of the write connection's pool and of the read pool.
func (s *Store) Stats() (write, read sql.DBStats) { return s.write.Stats(), s.read.Stats() }

// ReportPools calls report with the connection counts of the write and the read pools
// ("sqlite_write", "sqlite_read"): for /metrics.
func (s *Store) ReportPools(report func(pool string, idle, inUse, total, maxConns int)) {
	for _, p := range []struct {
		name string
		st   sql.DBStats
	}{{"sqlite_write", s.write.Stats()}, {"sqlite_read", s.read.Stats()}} {
		report(p.name, p.st.Idle, p.st.InUse, p.st.OpenConnections, p.st.MaxOpenConnections)
	}
}

// Open opens, creating them when missing, the data directory dataDir and the database
// in it, in WAL mode. It does not change the schema: call Migrate before the first use
// of a new database (boxoffice migrate does, and so does boxoffice run in embedded
// mode). Errors name the database file: `open sqlite store data/boxoffice.db: …`. The
// store holds the data directory's lock, shared, until Close (see LockFileName): while a
// restore runs there, Open fails with ErrInUse.
func Open(ctx context.Context, dataDir string) (*Store, error) {
	path := filepath.Join(dataDir, FileName)
	s, err := openLocked(dataDir, func() (*Store, error) { return open(ctx, dataDir, path, durable) })
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	return s, nil
}

func open(ctx context.Context, dataDir, path, sync string) (*Store, error) {
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	write, err := openWriter(ctx, abs, sync, "_pragma=cache_size(-65536)") // 64 MiB: the batch's B-tree pages stay cached
	if err != nil {
		return nil, err
	}
	// 8 MiB each: what the readers serve from the store is an index refresh's sequential
	// read of the plans a batch changed, point lookups and, beyond the index's budget,
	// window scans, none of which a larger cache keeps warm, while each connection of the
	// pool fills its cache in time. At 16 MiB, `run`'s peak RSS at 1M was about 25 MiB
	// higher (716-724 against 693-698 MiB, alternated) for the same served time; at 4 MiB
	// it was 25 MiB lower again, for a few seconds more CPU (BENCHMARKS "the readers' page
	// caches").
	read, err := openReaders(ctx, abs, max(4, runtime.GOMAXPROCS(0)), "_pragma=cache_size(-8192)")
	if err != nil {
		write.Close()
		return nil, err
	}
	// The store has no logger: failed checkpoints show in ReportCheckpoints.
	ckpt, err := startCheckpointer(ctx, abs, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, errors.Join(err, read.Close(), write.Close())
	}
	return &Store{path: path, write: write, read: read, ckpt: ckpt}, nil
}

// ReportCheckpoints calls report with the database's checkpoints that failed since
// Open and the commits not yet checkpointed ("sqlite_store"): for /metrics.
func (s *Store) ReportCheckpoints(report func(db string, failed, behind int64)) {
	s.ckpt.report(func(failed, behind int64) { report("sqlite_store", failed, behind) })
}

// durable is the write connections' PRAGMA synchronous. FULL makes every commit
// durable when it returns (the WAL is fsynced at each commit), so what boxoffice
// acknowledged (a 202, a batch acked to the broker, a published message) survives a
// power loss; NORMAL would survive a crash of the process but lose the last commits to
// a power loss. The price is one fsync per transaction: BenchmarkUpsertPlans measures
// it (insert/synchronous=NORMAL and =FULL, make bench-micro).
const durable = "FULL"

// openWriter opens the single write connection of the database file at the absolute
// path: every transaction BEGIN IMMEDIATE, WAL, PRAGMA synchronous=sync (durable but
// in benchmarks), foreign keys on, checkpoints left to a checkpointer up to
// walCapPages, with the driver parameters params.
func openWriter(ctx context.Context, abs, sync string, params ...string) (*sql.DB, error) {
	write, err := sql.Open("sqlite", dsn(abs, append([]string{
		"_txlock=immediate",
		"_journal_mode=WAL",
		"_synchronous=" + sync,
		"_foreign_keys=1",
		fmt.Sprintf("_pragma=wal_autocheckpoint(%d)", walCapPages),
	}, params...)...))
	if err != nil {
		return nil, err
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	// The first connection creates the file and switches it to WAL, which readers need.
	var mode string
	if err := write.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		write.Close()
		return nil, err
	}
	if !strings.EqualFold(mode, "wal") {
		write.Close()
		return nil, fmt.Errorf("journal mode is %q, want wal (does the file system support shared memory?)", mode)
	}
	return write, nil
}

// openReaders opens a pool of n query-only connections to the database file at the
// absolute path, WAL readers beside the writer. query_only rather than mode=ro: a
// read-only connection cannot recreate the -shm and -wal files once the last writer
// closed them.
func openReaders(ctx context.Context, abs string, n int, params ...string) (*sql.DB, error) {
	read, err := sql.Open("sqlite", dsn(abs, append([]string{"_query_only=1"}, params...)...))
	if err != nil {
		return nil, err
	}
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	read.SetConnMaxLifetime(0)
	read.SetConnMaxIdleTime(0)
	if err := read.PingContext(ctx); err != nil {
		read.Close()
		return nil, err
	}
	return read, nil
}

// dsn returns the modernc.org/sqlite data source name of the database file at the
// absolute path with the driver's parameters. The path goes in a file: URI, escaped,
// so that a '?' or '#' in a directory name is not taken for parameters.
func dsn(path string, params ...string) string {
	params = append(params, fmt.Sprintf("_busy_timeout=%d", busyTimeoutMillis))
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), OmitHost: true}
	return u.String() + "?" + strings.Join(params, "&")
}

// Migrate applies the embedded migrations (migrations/*.sql) that the database lacks,
// in order, each in its own transaction, then gives products to the ever-online plans
// of a database that had them before products existed. It changes nothing on an
// up-to-date database, so every start may call it.
//
// Alike postgres's Migrate in shape only: goose on another dialect and driver; adapters never import each other.
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.migrate(ctx); err != nil {
		return fmt.Errorf("migrate sqlite store %s: %w", s.path, err)
	}
	return nil
}

func (s *Store) migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, s.write, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return err
	}
	return s.backfillProducts(ctx)
}

// Ping reports whether the store can serve reads: the database answers and has its
// schema. It uses a read connection only, so a long write never delays it.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.ping(ctx); err != nil {
		return fmt.Errorf("ping sqlite store %s: %w", s.path, err)
	}
	return nil
}

func (s *Store) ping(ctx context.Context) error {
	var tables int
	if err := s.read.QueryRowContext(ctx,
		`SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'catalog_version'`).Scan(&tables); err != nil {
		return err
	}
	if tables == 0 {
		return errors.New("schema not migrated")
	}
	_, err := readVersion(ctx, s.read)
	return err
}

// Close closes the database, waiting for the queries in flight. Calling it again does
// nothing.
func (s *Store) Close() error {
	// The checkpointer and the readers first: the writer closes the last connection,
	// which checkpoints the WAL into the database file.
	defer s.lock.release()
	if err := errors.Join(s.ckpt.close(), s.read.Close(), s.write.Close()); err != nil {
		return fmt.Errorf("close sqlite store %s: %w", s.path, err)
	}
	return nil
}
