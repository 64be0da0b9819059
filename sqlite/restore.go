package sqlite

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"boxoffice/task"
)

// ErrNotBackup is returned by Restore for a file it will not restore: not a backup made
// by Backup, unsound (PRAGMA integrity_check), or of a schema newer than this binary's.
var ErrNotBackup = errors.New("not a usable boxoffice backup")

// RestoreOptions tune Restore. The zero value reports no progress, publishes nothing to
// the new queue and names the previous files' directory after time.Now.
type RestoreOptions struct {
	Progress Progress // nil for none
	// Prepare, when set, is called with the restored store (migrated to this binary's
	// schema) and its new, empty queue before they take their places: what it publishes
	// to the queue is there when boxoffice run starts on them. An error stops the
	// restore, which then changes nothing.
	Prepare func(ctx context.Context, s *Store, q *Broker) error
	Now     func() time.Time
}

// RestoreInfo describes what Restore did.
type RestoreInfo struct {
	Summary // of the restored store
	// Previous is the directory that now holds the store and queue the data directory
	// had before (boxoffice.db, queue.db: a data directory of its own); "" when it had
	// neither.
	Previous string
}

// Restore replaces the store in dataDir with the backup src (a file Backup wrote), and
// the broker's queue with an empty one.
//
// It refuses, changing nothing, while any boxoffice process has the data directory's
// store or queue open (it takes the data directory's lock exclusively: ErrInUse), and
// for a file that is not a backup, fails PRAGMA integrity_check, or has a schema newer
// than this binary's (ErrNotBackup). It never writes to src: it copies it into the data
// directory under a temporary name, checks and migrates the copy there, builds the new
// queue beside it, flushes both to stable storage, and only then swaps each into place
// with rename(2), the store first. At every moment the data directory holds a whole
// store, the previous or the restored one; if anything fails before the swap the data
// directory is as it was. The previous store and queue are kept, with their write-ahead
// logs checkpointed into them, in a directory of their own inside the data directory
// (RestoreInfo.Previous): they are a data directory that boxoffice can open, so its
// dead letters can still be listed there, and moving the files back undoes the restore.
//
// The restored store's catalog version is set above every version the replaced store
// served, when the backup's is not already: versions name search responses (their
// ETags, the response caches), and a version served before with other plans must not
// name the restored catalog. A client revalidating a response of the replaced store then
// gets the restored catalog, not a 304.
//
// Why the queue is not restored, and not kept: its messages belong to the store they
// were published beside. Plan batches in flight are re-derived by the next sync, whose
// fetch is unconditional while the restored store records a sync it did not complete;
// kept, they would re-apply syncs (or parts of syncs) newer than the backup. Recalculation
// tasks that the restored store had not finished would lose their messages: Prepare
// publishes them again (see UnfinishedTasks). A crash between the two renames leaves the
// restored store beside the previous queue; its plan batches are then safe (plans only
// move to newer revisions) and its tasks unknown to the restored store are
// dead-lettered, and running Restore again completes it.
func Restore(ctx context.Context, dataDir, src string, opts RestoreOptions) (RestoreInfo, error) {
	info, err := restore(ctx, dataDir, src, opts)
	if err != nil {
		return RestoreInfo{}, fmt.Errorf("restore %s into %s: %w", src, dataDir, err)
	}
	return info, nil
}

func restore(ctx context.Context, dataDir, src string, opts RestoreOptions) (RestoreInfo, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := readHeader(src); err != nil {
		return RestoreInfo{}, err
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return RestoreInfo{}, err
	}
	lock, err := lockDataDir(dataDir, true)
	if err != nil {
		return RestoreInfo{}, err
	}
	defer lock.release()

	store, err := createTemp(dataDir, FileName+".restore-*")
	if err != nil {
		return RestoreInfo{}, err
	}
	defer removeDB(store) // once renamed, nothing is left under the temporary name
	queue, err := createTemp(dataDir, QueueFileName+".restore-*")
	if err != nil {
		return RestoreInfo{}, err
	}
	defer removeDB(queue)

	if err := copyFile(ctx, src, store, opts.Progress); err != nil {
		return RestoreInfo{}, err
	}
	sum, err := verify(ctx, store, opts.Progress)
	if err != nil {
		return RestoreInfo{}, err
	}
	served, err := servedVersion(ctx, filepath.Join(dataDir, FileName))
	if err != nil {
		return RestoreInfo{}, fmt.Errorf("the data directory's %s: %w (set the data directory's files aside by hand, then restore into it)", FileName, err)
	}
	if sum.CatalogVersion <= served {
		sum.CatalogVersion = served + 1
	}
	if err := prepare(ctx, dataDir, store, queue, sum.CatalogVersion, opts.Prepare); err != nil {
		return RestoreInfo{}, err
	}
	for _, f := range []string{store, queue} {
		if _, err := syncFile(f); err != nil {
			return RestoreInfo{}, err
		}
	}

	// The swap. Until the first rename the data directory is as it was.
	prev, err := setAside(ctx, dataDir, opts.Now())
	if err != nil {
		return RestoreInfo{}, err
	}
	if err := swap(dataDir, prev, store, FileName); err != nil {
		return RestoreInfo{}, err
	}
	if err := swap(dataDir, prev, queue, QueueFileName); err != nil {
		return RestoreInfo{}, fmt.Errorf("the restored store is in place, but the previous queue stays beside it: %w", err)
	}
	if prev != "" {
		if err := syncDir(prev); err != nil {
			return RestoreInfo{}, err
		}
	}
	return RestoreInfo{Summary: sum, Previous: prev}, nil
}

// sqliteMagic opens every SQLite database file.
var sqliteMagic = []byte("SQLite format 3\x00")

// readHeader checks the header of the file at path: an SQLite database in rollback
// journal mode (a backup carries no write-ahead log) marked with ApplicationID.
func readHeader(path string) error {
	f, err := os.Open(path) //nolint:gosec // G304: the operator names the backup
	if err != nil {
		return err
	}
	defer f.Close()
	h := make([]byte, 100)
	if _, err := io.ReadFull(f, h); err != nil || !bytes.Equal(h[:16], sqliteMagic) {
		return fmt.Errorf("%w: %s is not an SQLite database", ErrNotBackup, path)
	}
	if id := binary.BigEndian.Uint32(h[68:72]); id != ApplicationID {
		return fmt.Errorf("%w: %s is an SQLite database but not a boxoffice backup (application_id %#x, want %#x): make backups with boxoffice backup",
			ErrNotBackup, path, id, ApplicationID)
	}
	if h[18] != 1 || h[19] != 1 {
		return fmt.Errorf("%w: %s is in write-ahead-log mode, as a live store is, not a backup: make backups with boxoffice backup",
			ErrNotBackup, path)
	}
	return nil
}

// copyFile copies the file src over the file dst and flushes it.
func copyFile(ctx context.Context, src, dst string, progress Progress) error {
	in, err := os.Open(src) //nolint:gosec // G304: the operator names the backup
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_TRUNC, 0) //nolint:gosec // G304: a file Restore created
	if err != nil {
		return err
	}
	defer out.Close()
	buf := make([]byte, 4<<20)
	var done int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, rerr := in.Read(buf)
		if n > 0 {
			if _, err := out.Write(buf[:n]); err != nil {
				return err
			}
			done += int64(n)
			if progress != nil {
				progress("copy", done, fi.Size())
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if err := out.Sync(); err != nil {
		return err
	}
	return out.Close()
}

// verify checks the copy of a backup at path: its header, PRAGMA integrity_check, and
// a schema this binary knows; and returns its summary.
func verify(ctx context.Context, path string, progress Progress) (Summary, error) {
	if err := readHeader(path); err != nil {
		return Summary{}, err
	}
	known, err := SchemaVersion()
	if err != nil {
		return Summary{}, err
	}
	db, err := openFile(path)
	if err != nil {
		return Summary{}, err
	}
	defer db.Close()
	if progress != nil {
		progress("check", 0, 0)
	}
	if err := checkIntegrity(ctx, db); err != nil {
		return Summary{}, fmt.Errorf("%w: %w", ErrNotBackup, err)
	}
	sum, err := summarize(ctx, db)
	if err != nil {
		return Summary{}, fmt.Errorf("%w: not a boxoffice store: %w", ErrNotBackup, err)
	}
	if sum.Schema > known {
		return Summary{}, fmt.Errorf("%w: its schema is at migration %d, and this boxoffice knows migrations up to %d: restore it with the boxoffice that made it, or a newer one",
			ErrNotBackup, sum.Schema, known)
	}
	return sum, db.Close()
}

// servedVersion returns the catalog version of the store at path: 0 when there is none.
func servedVersion(ctx context.Context, path string) (int64, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	db, err := openFile(path)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var tables int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'catalog_version'`).Scan(&tables); err != nil || tables == 0 {
		return 0, err // a store never migrated has served nothing
	}
	return readVersion(ctx, db)
}

// prepare opens the copy of the backup at storePath as a store, migrates it and sets its
// catalog version to version, and the empty file at queuePath as the broker's queue,
// and calls fn (if set) with both; it closes them, which checkpoints their write-ahead
// logs into the files.
func prepare(ctx context.Context, dataDir, storePath, queuePath string, version int64, fn func(context.Context, *Store, *Broker) error) error {
	s, err := open(ctx, dataDir, storePath, durable)
	if err != nil {
		return err
	}
	q, err := openBroker(ctx, dataDir, queuePath, BrokerConfig{}, nil)
	if err != nil {
		return errors.Join(err, s.Close())
	}
	err = s.Migrate(ctx)
	if err == nil {
		_, err = s.write.ExecContext(ctx, `UPDATE catalog_version SET version = ? WHERE id = 1`, version)
	}
	if err == nil && fn != nil {
		err = fn(ctx, s, q)
	}
	if err := errors.Join(err, q.Close(), s.Close()); err != nil {
		return err
	}
	for _, f := range []string{storePath, queuePath} {
		if fi, err := os.Stat(f + "-wal"); err == nil && fi.Size() > 0 {
			return fmt.Errorf("%s-wal was not checkpointed on close", f)
		}
	}
	return nil
}

// setAside checkpoints the data directory's store and queue, if it has them, and
// creates the directory that will keep them, named after now; it returns "" when there
// is nothing to keep. It renames nothing.
func setAside(ctx context.Context, dataDir string, now time.Time) (string, error) {
	found := false
	for _, name := range []string{FileName, QueueFileName} {
		path := filepath.Join(dataDir, name)
		if _, err := os.Stat(path); err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				return "", err
			}
			// No database, but a stray write-ahead log would be applied to the new one.
			if _, err := os.Stat(path + "-wal"); err == nil {
				found = true
			}
			continue
		}
		found = true
		if err := checkpoint(ctx, path); err != nil {
			return "", fmt.Errorf("the data directory's %s: %w (set the data directory's files aside by hand, then restore into it)", name, err)
		}
	}
	if !found {
		return "", nil
	}
	base := "pre-restore-" + now.UTC().Format("20060102T150405Z")
	for i := 1; ; i++ {
		dir := filepath.Join(dataDir, base)
		if i > 1 {
			dir = fmt.Sprintf("%s-%d", dir, i)
		}
		err := os.Mkdir(dir, 0o750)
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return "", err
		}
	}
}

// checkpoint copies the write-ahead log of the database file at path into it and
// removes it, so that the file alone holds every commit.
func checkpoint(ctx context.Context, path string) error {
	db, err := openFile(path)
	if err != nil {
		return err
	}
	defer db.Close()
	var busy, logged, done int
	if err := db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logged, &done); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if busy != 0 {
		return errors.New("checkpoint: another connection holds the database")
	}
	if err := db.Close(); err != nil {
		return err
	}
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > 0 {
		return errors.New("its write-ahead log is still in use after a checkpoint: another program has it open")
	}
	return nil
}

// swap moves the data directory's file name (with what is left of its sidecars) into
// prev and the temporary file tmp into its place. The file itself is hard-linked into
// prev first and then replaced by rename(2), so that the data directory never lacks it.
func swap(dataDir, prev, tmp, name string) error {
	path := filepath.Join(dataDir, name)
	if prev != "" {
		for _, suffix := range []string{"-wal", "-shm", "-journal"} {
			if err := os.Rename(path+suffix, filepath.Join(prev, name+suffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		if err := os.Link(path, filepath.Join(prev, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dataDir)
}

// UnfinishedTasks returns the ids of the tasks of kind that have not ended (pending or
// running), oldest first: after a restore their messages are gone with the queue they
// were in, and they must be published again.
func (s *Store) UnfinishedTasks(ctx context.Context, kind string) ([]string, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id FROM tasks WHERE kind = ? AND state IN (?, ?) ORDER BY gen`,
		kind, string(task.Pending), string(task.Running))
	ids, err := taskIDs(rows, err)
	if err != nil {
		return nil, fmt.Errorf("unfinished %s tasks: %w", kind, err)
	}
	return ids, nil
}
