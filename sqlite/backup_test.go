package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"boxoffice/catalog"
	"boxoffice/catalog/catalogtest"
	"boxoffice/sqlite"
	"boxoffice/task"
)

// fillStore upserts batches of n plans each into s, base plan "<prefix><i>" for batch i.
func fillStore(t *testing.T, s *sqlite.Store, prefix string, batches, n int) {
	t.Helper()
	for i := range batches {
		batch := make([]catalog.Plan, n)
		for j := range batch {
			batch[j] = catalogtest.NewPlan(prefix+strconv.Itoa(i), strconv.Itoa(j))
		}
		if _, err := s.UpsertPlans(t.Context(), batch); err != nil {
			t.Fatal(err)
		}
	}
}

// openDataDir opens the store of dataDir (Open, which locks it), migrated; the caller closes it.
func openDataDir(t *testing.T, dataDir string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		s.Close()
		t.Fatal(err)
	}
	return s
}

// query answers a one-row query on the database file path, opened for the test alone.
func query(t *testing.T, path, q string, dest ...any) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRowContext(t.Context(), q).Scan(dest...); err != nil {
		t.Fatalf("%s on %s: %v", q, path, err)
	}
}

func plansIn(t *testing.T, dataDir string) int {
	t.Helper()
	var n int
	query(t, filepath.Join(dataDir, sqlite.FileName), "SELECT count(*) FROM plans", &n)
	return n
}

func messagesIn(t *testing.T, dataDir, table string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, sqlite.QueueFileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(t.Context(), "SELECT id FROM "+table+" ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// backupOf makes a data directory with a store of batches×n plans and returns it with
// a backup of it.
func backupOf(t *testing.T, batches, n int) (dataDir, file string) {
	t.Helper()
	dataDir = t.TempDir()
	s := openDataDir(t, dataDir)
	fillStore(t, s, "b", batches, n)
	file = filepath.Join(t.TempDir(), "backup.db")
	if _, err := sqlite.Backup(t.Context(), dataDir, file, sqlite.BackupOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dataDir, file
}

// progressLog records the reports of a Progress.
type progressLog struct {
	steps []string
	last  map[string][2]int64
	back  bool // done went back within a step
}

func (p *progressLog) report(step string, done, total int64) {
	if p.last == nil {
		p.last = map[string][2]int64{}
	}
	if len(p.steps) == 0 || p.steps[len(p.steps)-1] != step {
		p.steps = append(p.steps, step)
	}
	if prev, ok := p.last[step]; ok && done < prev[0] {
		p.back = true
	}
	p.last[step] = [2]int64{done, total}
}

func (p *progressLog) check(t *testing.T, want []string) {
	t.Helper()
	if !slices.Equal(p.steps, want) {
		t.Errorf("progress steps %q, want %q", p.steps, want)
	}
	if c := p.last["copy"]; c[0] != c[1] || c[1] == 0 || p.back {
		t.Errorf("copy progress ended at %d of %d (going back: %v), want all of a non-zero total, never back", c[0], c[1], p.back)
	}
}

// TestBackupRestore backs a store up, changes the store, and restores the backup into
// its data directory: the data directory holds the backup's catalog, a new queue with
// what Prepare published in it, and the previous store and queue whole in a directory
// of their own, which boxoffice can open as a data directory.
func TestBackupRestore(t *testing.T) {
	ctx := t.Context()
	dataDir := t.TempDir()
	s := openDataDir(t, dataDir)
	fillStore(t, s, "b", 3, 100)
	pending, err := s.CreateTask(ctx, "recalculate", "api", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	q, err := sqlite.OpenBroker(ctx, dataDir, sqlite.BrokerConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Publish(ctx, "catalog.plans", task.Message{ID: "in-flight"}); err != nil {
		t.Fatal(err)
	}

	file := filepath.Join(t.TempDir(), "boxoffice.backup")
	var backupProgress progressLog
	info, err := sqlite.Backup(ctx, dataDir, file, sqlite.BackupOptions{Progress: backupProgress.report})
	if err != nil {
		t.Fatal(err)
	}
	backupProgress.check(t, []string{"copy", "check"})
	known, err := sqlite.SchemaVersion()
	if err != nil {
		t.Fatal(err)
	}
	if info.Plans != 300 || info.Searchable != 300 || info.CatalogVersion != 3 || info.Schema != known || info.Bytes == 0 {
		t.Errorf("Backup = %+v, want 300 plans, all searchable, at catalog version 3 and schema %d", info, known)
	}
	if _, err := sqlite.Backup(ctx, dataDir, file, sqlite.BackupOptions{}); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("Backup over an existing file = %v, want a refusal naming it", err)
	}
	if _, err := sqlite.Backup(ctx, dataDir, file, sqlite.BackupOptions{Replace: true}); err != nil {
		t.Errorf("Backup with Replace over an existing file: %v", err)
	}

	// The store moves on after the backup: the restore must bring back the backup's.
	fillStore(t, s, "after", 1, 50)
	if err := s.SaveTask(ctx, finished(pending), 0); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(q.Close(), s.Close()); err != nil {
		t.Fatal(err)
	}

	var restoreProgress progressLog
	var requeued []string
	ri, err := sqlite.Restore(ctx, dataDir, file, sqlite.RestoreOptions{
		Progress: restoreProgress.report,
		Now:      func() time.Time { return time.Date(2026, 12, 4, 10, 15, 0, 0, time.UTC) },
		Prepare: func(ctx context.Context, s *sqlite.Store, q *sqlite.Broker) error {
			ids, err := s.UnfinishedTasks(ctx, "recalculate")
			if err != nil {
				return err
			}
			requeued = ids
			for _, id := range ids {
				if err := q.Publish(ctx, "pricing.recalculate", task.Message{ID: id}); err != nil {
					return err
				}
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	restoreProgress.check(t, []string{"copy", "check"})
	// The replaced store served versions up to 4, the backup's is 3: the restored
	// catalog takes 5, a version that never named other plans.
	want := info.Summary
	want.CatalogVersion = 5
	if ri.Summary != want {
		t.Errorf("Restore summary %+v, want the backup's with catalog version 5: %+v", ri.Summary, want)
	}
	if want := filepath.Join(dataDir, "pre-restore-20261204T101500Z"); ri.Previous != want {
		t.Errorf("previous files kept in %q, want %q", ri.Previous, want)
	}
	if !slices.Equal(requeued, []string{pending.ID}) {
		t.Errorf("Prepare saw unfinished tasks %q, want the one pending at the backup, %q", requeued, pending.ID)
	}

	if n := plansIn(t, dataDir); n != 300 {
		t.Errorf("restored store has %d plans, want the backup's 300", n)
	}
	if got := messagesIn(t, dataDir, "messages"); !slices.Equal(got, []string{pending.ID}) {
		t.Errorf("restored queue holds %q, want only the requeued task %q", got, pending.ID)
	}
	if n := plansIn(t, ri.Previous); n != 350 {
		t.Errorf("previous store has %d plans, want 350", n)
	}
	if got := messagesIn(t, ri.Previous, "messages"); !slices.Equal(got, []string{"in-flight"}) {
		t.Errorf("previous queue holds %q, want the message in flight", got)
	}
	entries, err := os.ReadDir(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{sqlite.FileName, sqlite.LockFileName, filepath.Base(ri.Previous), sqlite.QueueFileName}; !slices.Equal(names, want) {
		t.Errorf("data directory holds %q after the restore, want %q", names, want)
	}

	// The restored store opens and serves; the previous one does as a data directory.
	s = openDataDir(t, dataDir)
	defer s.Close()
	ch, err := s.ChangedSince(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Plans) != 300 || ch.Version != 5 {
		t.Errorf("restored store: %d plans at version %d, want 300 at 5", len(ch.Plans), ch.Version)
	}
	old := openDataDir(t, ri.Previous)
	defer old.Close()
	if ch, err := old.ChangedSince(ctx, 0); err != nil || len(ch.Plans) != 350 || ch.Version != 4 {
		t.Errorf("previous store: %d plans at version %d (%v), want 350 at 4", len(ch.Plans), ch.Version, err)
	}
}

func finished(r task.Record) task.Record {
	r.State, r.FinishedAt = task.Succeeded, time.Now()
	return r
}

// TestRestoreIntoEmptyDataDir restores into a directory that does not exist yet: there
// is nothing to keep.
func TestRestoreIntoEmptyDataDir(t *testing.T) {
	_, file := backupOf(t, 2, 10)
	dataDir := filepath.Join(t.TempDir(), "new")
	ri, err := sqlite.Restore(t.Context(), dataDir, file, sqlite.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ri.Previous != "" || ri.Plans != 20 || ri.CatalogVersion != 2 {
		t.Errorf("Restore = %+v, want 20 plans at the backup's catalog version 2, and no previous files", ri)
	}
	if n := plansIn(t, dataDir); n != 20 {
		t.Errorf("restored store has %d plans, want 20", n)
	}
}

// TestRestoreRefusesInUse checks the lock: a restore refuses while a store or a queue
// of the data directory is open, in this process or another, and succeeds once they
// are closed; a store or a backup cannot open the data directory while it is locked.
func TestRestoreRefusesInUse(t *testing.T) {
	_, file := backupOf(t, 1, 10)
	dataDir := t.TempDir()
	s := openDataDir(t, dataDir)
	fillStore(t, s, "live", 1, 5)
	if _, err := sqlite.Restore(t.Context(), dataDir, file, sqlite.RestoreOptions{}); !errors.Is(err, sqlite.ErrInUse) {
		t.Errorf("Restore beside an open store = %v, want ErrInUse", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	q, err := sqlite.OpenBroker(t.Context(), dataDir, sqlite.BrokerConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.Restore(t.Context(), dataDir, file, sqlite.RestoreOptions{}); !errors.Is(err, sqlite.ErrInUse) {
		t.Errorf("Restore beside an open queue = %v, want ErrInUse", err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if n := plansIn(t, dataDir); n != 5 {
		t.Errorf("after refused restores the store has %d plans, want its own 5", n)
	}
	if _, err := sqlite.Restore(t.Context(), dataDir, file, sqlite.RestoreOptions{}); err != nil {
		t.Errorf("Restore once closed: %v", err)
	}
}

// TestRestoreRefusesBadFiles offers Restore files it must refuse: each leaves the data
// directory as it was, without temporary files.
func TestRestoreRefusesBadFiles(t *testing.T) {
	_, good := backupOf(t, 4, 100)
	storeDir, _ := backupOf(t, 1, 1)
	tests := []struct {
		name string
		make func(t *testing.T, path string)
		want string
	}{
		{"text", func(t *testing.T, path string) { write(t, path, []byte("plans,and,prices\n")) }, "not an SQLite database"},
		{"empty", func(t *testing.T, path string) { write(t, path, nil) }, "not an SQLite database"},
		{"missing", func(*testing.T, string) {}, "no such file"},
		{"other database", func(t *testing.T, path string) { execSQL(t, path, "CREATE TABLE t (x)") }, "not a boxoffice backup"},
		{"live store", func(t *testing.T, path string) {
			write(t, path, read(t, filepath.Join(storeDir, sqlite.FileName)))
		}, "not a boxoffice backup"},
		{"write-ahead log", func(t *testing.T, path string) {
			write(t, path, read(t, good))
			execSQL(t, path, "PRAGMA journal_mode = WAL")
		}, "write-ahead-log mode"},
		{"marked, not a store", func(t *testing.T, path string) {
			execSQL(t, path, fmt.Sprintf("PRAGMA application_id = %d; CREATE TABLE t (x)", sqlite.ApplicationID))
		}, "not a boxoffice store"},
		{"newer schema", func(t *testing.T, path string) {
			write(t, path, read(t, good))
			execSQL(t, path, "INSERT INTO goose_db_version (version_id, is_applied) VALUES (999, 1)")
		}, "schema is at migration 999"},
		{"corrupt", func(t *testing.T, path string) {
			b := read(t, good)
			page := len(b) / 4096 / 2 * 4096 // a page in the middle: the plans' B-trees
			for i := page + 8; i < page+4096; i++ {
				b[i] = 0x5a
			}
			write(t, path, b)
		}, "integrity check"},
		{"truncated", func(t *testing.T, path string) { write(t, path, read(t, good)[:len(read(t, good))/2]) }, "integrity check"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := t.TempDir()
			s := openDataDir(t, dataDir)
			fillStore(t, s, "mine", 1, 7)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			before := listDir(t, dataDir)
			file := filepath.Join(t.TempDir(), "offered.db")
			tt.make(t, file)

			_, err := sqlite.Restore(t.Context(), dataDir, file, sqlite.RestoreOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Restore = %v, want an error containing %q", err, tt.want)
			}
			if tt.name != "missing" && !errors.Is(err, sqlite.ErrNotBackup) {
				t.Errorf("Restore = %v, want ErrNotBackup", err)
			}
			if after := listDir(t, dataDir); !slices.Equal(after, before) {
				t.Errorf("data directory holds %q after a refused restore, want %q as before", after, before)
			}
			if n := plansIn(t, dataDir); n != 7 {
				t.Errorf("store has %d plans after a refused restore, want its own 7", n)
			}
		})
	}
}

// TestRestoreFailureChangesNothing fails the restore in Prepare, after the copy and its
// checks: the data directory stays as it was.
func TestRestoreFailureChangesNothing(t *testing.T) {
	dataDir, file := backupOf(t, 1, 10)
	s := openDataDir(t, dataDir)
	fillStore(t, s, "later", 1, 3)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := listDir(t, dataDir)
	boom := errors.New("boom")
	_, err := sqlite.Restore(t.Context(), dataDir, file, sqlite.RestoreOptions{
		Prepare: func(context.Context, *sqlite.Store, *sqlite.Broker) error { return boom },
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Restore = %v, want Prepare's error", err)
	}
	if after := listDir(t, dataDir); !slices.Equal(after, before) {
		t.Errorf("data directory holds %q after a failed restore, want %q", after, before)
	}
	if n := plansIn(t, dataDir); n != 13 {
		t.Errorf("store has %d plans after a failed restore, want 13", n)
	}
}

// TestBackupNoStore refuses to back up a data directory without a store, and creates none.
func TestBackupNoStore(t *testing.T) {
	dataDir := t.TempDir()
	file := filepath.Join(t.TempDir(), "b.db")
	if _, err := sqlite.Backup(t.Context(), dataDir, file, sqlite.BackupOptions{}); err == nil || !strings.Contains(err.Error(), "no store to back up") {
		t.Errorf("Backup of an empty data directory = %v, want a refusal", err)
	}
	if names := listDir(t, dataDir); len(names) != 0 {
		t.Errorf("data directory holds %q, want nothing", names)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("backup file: %v, want none", err)
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func execSQL(t *testing.T, path, stmts string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range strings.Split(stmts, ";") {
		if _, err := db.ExecContext(t.Context(), stmt); err != nil {
			t.Fatalf("%s on %s: %v", stmt, path, err)
		}
	}
}
