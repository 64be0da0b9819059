package sqlite

import (
	"database/sql"
	"errors"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"boxoffice/catalog"
	"boxoffice/catalog/catalogtest"
	"boxoffice/testenv"
)

// TestBackupDuringWrites backs the store up a few pages at a time while batches commit, and
// makes sure that batches commit between the pages of each copy: every backup still
// holds whole batches only (each batch's plans all or none), its catalog version counts
// exactly the batches it holds, and it passes the integrity check. A copy that took a
// snapshot per step would restart at each commit or mix two states.
func TestBackupDuringWrites(t *testing.T) {
	const size = 100 // plans per batch
	dataDir := t.TempDir()
	s, err := Open(t.Context(), dataDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writeErr error
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			batch := make([]catalog.Plan, size)
			for j := range batch {
				batch[j] = catalogtest.NewPlan("w"+strconv.Itoa(i), strconv.Itoa(j))
			}
			if _, err := s.UpsertPlans(t.Context(), batch); err != nil {
				writeErr = err
				return
			}
		}
	})
	defer func() {
		close(stop)
		wg.Wait()
		if writeErr != nil {
			t.Errorf("writer: %v", writeErr)
		}
	}()
	version := func() int64 {
		v, err := readVersion(t.Context(), s.read)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	testenv.Poll(t, "the first batches", func() bool { return version() >= 2 })

	for n := range 2 {
		file := filepath.Join(t.TempDir(), "b.db")
		var seen int64 = -1
		progress := func(step string, done, total int64) {
			if step == "copy" && seen < 0 { // after the first page: wait for a commit
				seen = version()
				testenv.Poll(t, "a commit during the copy", func() bool { return version() > seen })
			}
		}
		info, err := backup(t.Context(), dataDir, file, 16, BackupOptions{Progress: progress})
		if err != nil {
			t.Fatalf("backup %d: %v", n, err)
		}
		if info.CatalogVersion > seen {
			t.Errorf("backup %d: catalog version %d, but the copy began at %d: it holds a commit made during the copy", n, info.CatalogVersion, seen)
		}
		checkWholeBatches(t, file, size, info.CatalogVersion)
	}
}

// checkWholeBatches checks that the backup file holds version batches of size plans
// each, whole.
func checkWholeBatches(t *testing.T, file string, size int, version int64) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+file)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := checkIntegrity(t.Context(), db); err != nil {
		t.Error(err)
	}
	rows, err := db.QueryContext(t.Context(), `SELECT base_plan_id, count(*) FROM plans GROUP BY base_plan_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var batches int64
	for rows.Next() {
		var base string
		var n int
		if err := rows.Scan(&base, &n); err != nil {
			t.Fatal(err)
		}
		if n != size {
			t.Errorf("backup holds %d plans of batch %s, want all %d or none", n, base, size)
		}
		batches++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if batches != version {
		t.Errorf("backup holds %d batches at catalog version %d, want one version per batch", batches, version)
	}
}

// TestLockedDuringRestore holds the data directory's lock as a restore does: nothing
// opens the store or the queue meanwhile, and no second restore starts.
func TestLockedDuringRestore(t *testing.T) {
	dataDir := t.TempDir()
	l, err := lockDataDir(dataDir, true)
	if err != nil {
		t.Fatal(err)
	}
	defer l.release()
	if s, err := Open(t.Context(), dataDir); !errors.Is(err, ErrInUse) {
		if err == nil {
			s.Close()
		}
		t.Errorf("Open during a restore = %v, want ErrInUse", err)
	}
	if b, err := OpenBroker(t.Context(), dataDir, BrokerConfig{}, nil); !errors.Is(err, ErrInUse) {
		if err == nil {
			b.Close()
		}
		t.Errorf("OpenBroker during a restore = %v, want ErrInUse", err)
	}
	if _, err := lockDataDir(dataDir, true); !errors.Is(err, ErrInUse) {
		t.Errorf("a second restore = %v, want ErrInUse", err)
	}
}
