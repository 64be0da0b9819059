package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"modernc.org/sqlite"
)

// ApplicationID marks a backup made by Backup: SQLite's application_id header field
// ("boxo"). Restore takes only files that carry it.
const ApplicationID = 0x626f786f

// backupStepPages is how many pages one step of the online backup copies: 4 MiB of
// 4 KiB pages between two progress reports.
const backupStepPages = 1024

// Progress is told how far a long operation has come: step names what it does ("copy",
// "check"), done of total its units (pages or bytes); total is 0 for a step that cannot
// measure itself. It is called from the operation's goroutine.
type Progress func(step string, done, total int64)

// Summary describes a store file.
type Summary struct {
	Schema         int64 // the version of its last migration
	CatalogVersion int64
	Plans          int64 // every plan stored
	Searchable     int64 // the ever-online ones, which searches return
}

// BackupOptions tune Backup. The zero value refuses to replace an existing file and
// reports no progress.
type BackupOptions struct {
	Replace  bool     // replace dst if it exists (only once the new backup is complete and checked)
	Progress Progress // nil for none
}

// BackupInfo describes a backup that Backup wrote.
type BackupInfo struct {
	Summary
	Bytes int64 // the size of the file
}

// Backup writes a consistent copy of the store in dataDir to the file dst, while the
// store is in use: boxoffice run may go on ingesting and serving meanwhile. The copy is
// SQLite's online backup, taken page by page inside one read transaction, so it is the
// store as one commit left it (every batch applied whole, or not at all) however many
// commits land while it runs, and it never blocks them (WAL readers do not). The copy
// is a single self-contained file (journal mode DELETE, no -wal beside it) marked with
// ApplicationID, and it must pass PRAGMA integrity_check before it takes the name dst:
// dst appears complete and checked, or not at all.
//
// Backup holds the data directory's lock, shared, like Open: it runs beside boxoffice
// run but never during a restore. Only the store is copied, not the broker's queue
// (messages in flight, dead letters): see Restore for why.
func Backup(ctx context.Context, dataDir, dst string, opts BackupOptions) (BackupInfo, error) {
	info, err := backup(ctx, dataDir, dst, backupStepPages, opts)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("backup %s to %s: %w", filepath.Join(dataDir, FileName), dst, err)
	}
	return info, nil
}

func backup(ctx context.Context, dataDir, dst string, step int32, opts BackupOptions) (BackupInfo, error) {
	src, err := filepath.Abs(filepath.Join(dataDir, FileName))
	if err != nil {
		return BackupInfo{}, err
	}
	if _, err := os.Stat(src); err != nil {
		return BackupInfo{}, fmt.Errorf("no store to back up: %w", err)
	}
	if !opts.Replace {
		if _, err := os.Lstat(dst); err == nil {
			return BackupInfo{}, fmt.Errorf("%s exists; choose another name or replace it (--force)", dst)
		}
	}
	lock, err := lockDataDir(dataDir, false)
	if err != nil {
		return BackupInfo{}, err
	}
	defer lock.release()

	tmp, err := createTemp(filepath.Dir(dst), filepath.Base(dst)+".tmp-*")
	if err != nil {
		return BackupInfo{}, err
	}
	defer removeDB(tmp) // once renamed, nothing is left under the temporary name
	sum, err := copyOnline(ctx, src, tmp, step, opts.Progress)
	if err != nil {
		return BackupInfo{}, err
	}
	if err := seal(ctx, tmp, opts.Progress); err != nil {
		return BackupInfo{}, err
	}
	size, err := syncFile(tmp)
	if err != nil {
		return BackupInfo{}, err
	}
	if opts.Replace {
		err = os.Rename(tmp, dst)
	} else {
		err = os.Link(tmp, dst) // fails rather than replace a file that appeared meanwhile
	}
	if err != nil {
		return BackupInfo{}, err
	}
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return BackupInfo{}, err
	}
	return BackupInfo{Summary: sum, Bytes: size}, nil
}

// backuper is the modernc.org/sqlite connection's online backup.
type backuper interface {
	NewBackup(dstURI string) (*sqlite.Backup, error)
}

// copyOnline copies the database file src to the file dst (empty or missing) with
// SQLite's online backup, inside one read transaction on src, and returns the summary
// of what it copied, read in that same transaction.
func copyOnline(ctx context.Context, src, dst string, step int32, progress Progress) (Summary, error) {
	db, err := sql.Open("sqlite", dsn(src, "_query_only=1"))
	if err != nil {
		return Summary{}, err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return Summary{}, err
	}
	defer conn.Close()
	// The backup steps run inside this read transaction: each sees the snapshot it
	// began with, so commits of other connections neither restart the copy nor show in
	// it. (Without it each step would take a snapshot of its own, and a commit between
	// two steps would restart the copy from the first page.)
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return Summary{}, err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") //nolint:errcheck // ends a read transaction: nothing to lose
	sum, err := summarize(ctx, conn)
	if err != nil {
		return Summary{}, err
	}
	err = conn.Raw(func(dc any) error {
		bc, ok := dc.(backuper)
		if !ok {
			return fmt.Errorf("the SQLite driver's connection (%T) has no online backup", dc)
		}
		b, err := bc.NewBackup(dsn(dst))
		if err != nil {
			return err
		}
		for more := true; more; {
			if err := ctx.Err(); err != nil {
				return errors.Join(err, b.Finish())
			}
			if more, err = b.Step(step); err != nil {
				return errors.Join(err, b.Finish())
			}
			if progress != nil {
				total := int64(b.PageCount())
				progress("copy", total-int64(b.Remaining()), total)
			}
		}
		return b.Finish()
	})
	return sum, err
}

// seal turns the copy at path into a backup: a single self-contained file (journal mode
// DELETE), marked with ApplicationID, and sound (PRAGMA integrity_check).
func seal(ctx context.Context, path string, progress Progress) error {
	db, err := openFile(path)
	if err != nil {
		return err
	}
	defer db.Close()
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode = DELETE").Scan(&mode); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "delete") {
		return fmt.Errorf("journal mode of the copy is %q, want delete", mode)
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d", ApplicationID)); err != nil {
		return err
	}
	if progress != nil {
		progress("check", 0, 0)
	}
	if err := checkIntegrity(ctx, db); err != nil {
		return fmt.Errorf("the copy: %w", err)
	}
	return db.Close()
}

// openFile opens one connection to the SQLite file at path for Backup's and Restore's
// own work on files no other connection uses.
func openFile(path string) (*sql.DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", dsn(abs))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// checkIntegrity runs PRAGMA integrity_check and fails with its first findings unless
// the database is sound.
func checkIntegrity(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check(10)")
	if err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	defer rows.Close()
	var found []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return fmt.Errorf("integrity check: %w", err)
		}
		found = append(found, s)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	if len(found) != 1 || found[0] != "ok" {
		return fmt.Errorf("integrity check failed: %s", strings.Join(found, "; "))
	}
	return nil
}

// querier is a connection, a transaction or a pool.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// summarize reads the summary of a store; the caller decides in which snapshot.
func summarize(ctx context.Context, q querier) (Summary, error) {
	var s Summary
	if err := q.QueryRowContext(ctx, `SELECT coalesce(max(version_id), 0) FROM goose_db_version WHERE is_applied`).Scan(&s.Schema); err != nil {
		return Summary{}, fmt.Errorf("read the schema version: %w", err)
	}
	if err := q.QueryRowContext(ctx, `SELECT version FROM catalog_version WHERE id = 1`).Scan(&s.CatalogVersion); err != nil {
		return Summary{}, fmt.Errorf("read the catalog version: %w", err)
	}
	if err := q.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(ever_online), 0) FROM plans`).Scan(&s.Plans, &s.Searchable); err != nil {
		return Summary{}, fmt.Errorf("count the plans: %w", err)
	}
	return s, nil
}

// SchemaVersion returns the version of the last migration this binary knows: a store
// (or a backup) with a higher one was written by a newer boxoffice.
func SchemaVersion() (int64, error) {
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		return 0, err
	}
	var last int64
	for _, e := range entries {
		prefix, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.ParseInt(prefix, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("migration %s: no version number", e.Name())
		}
		last = max(last, v)
	}
	return last, nil
}

// createTemp creates an empty file named after pattern in dir, readable by its owner
// only, and returns its path.
func createTemp(dir, pattern string) (string, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	return f.Name(), f.Close()
}

// removeDB removes the database file path with its journal, WAL and shared memory, if
// any. Errors are of no consequence: it removes temporary files only.
func removeDB(path string) {
	for _, suffix := range []string{"", "-journal", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
}

// syncFile flushes the file at path to stable storage and returns its size.
func syncFile(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0) //nolint:gosec // G304: a file Backup or Restore created
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), f.Close()
}

// syncDir flushes the directory dir, so that the names created or renamed in it are on
// stable storage.
func syncDir(dir string) error {
	f, err := os.Open(dir) //nolint:gosec // G304: the operator names the directory (DATA_DIR, FILE's)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
