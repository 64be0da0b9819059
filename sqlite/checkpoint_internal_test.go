package sqlite

import (
	"fmt"
	"os"
	"strconv"
	"testing"

	"boxoffice/catalog"
	"boxoffice/catalog/catalogtest"
	"boxoffice/testenv"
)

// walCommits is how many transactions each WAL test commits: each writes a few pages,
// so that a WAL never checkpointed ends many times larger than one reused.
const walCommits = 150

// walFileSize returns the size of the store's WAL file: its largest extent since the
// store opened, since SQLite reuses it from the start after a complete checkpoint.
func walFileSize(t *testing.T, s *Store) int64 {
	t.Helper()
	fi, err := os.Stat(s.path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// commitPlans commits walCommits transactions of new plans on s, prefixed, calling
// after (if set) after each.
func commitPlans(t *testing.T, s *Store, prefix string, after func()) {
	t.Helper()
	for i := range walCommits {
		plans := make([]catalog.Plan, 20)
		for j := range plans {
			plans[j] = catalogtest.NewPlan(prefix+strconv.Itoa(i), strconv.Itoa(j))
		}
		if _, err := s.UpsertPlans(t.Context(), plans); err != nil {
			t.Fatal(err)
		}
		if after != nil {
			after()
		}
	}
}

// openWALTest opens a migrated store whose writer checkpoints once its WAL holds
// autocheckpoint pages (0: never), and whose checkpointer is stopped unless
// checkpointer.
func openWALTest(t *testing.T, autocheckpoint int, checkpointer bool) *Store {
	t.Helper()
	s := openInternal(t)
	if _, err := s.write.ExecContext(t.Context(), fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", autocheckpoint)); err != nil {
		t.Fatal(err)
	}
	if !checkpointer {
		if err := s.ckpt.close(); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// behind returns the commits of s that its checkpointer has not copied yet.
func behind(s *Store) int64 {
	var n int64
	s.ckpt.report(func(_, b int64) { n = b })
	return n
}

// TestCheckpointerBoundsTheWAL commits many transactions on a writer that never
// checkpoints itself: the checkpointer copies each, so the writer reuses the WAL from
// its start and it stays about one commit large, where without the checkpointer it
// holds them all.
func TestCheckpointerBoundsTheWAL(t *testing.T) {
	s := openWALTest(t, 0, true)
	commitPlans(t, s, "c", func() {
		testenv.Poll(t, "the checkpointer to copy the commit", func() bool { return behind(s) == 0 })
	})
	copied := walFileSize(t, s)

	none := openWALTest(t, 0, false)
	commitPlans(t, none, "c", nil)
	kept := walFileSize(t, none)
	if copied*10 > kept {
		t.Errorf("WAL after %d commits copied by the checkpointer = %d bytes, want under a tenth of the %d bytes without checkpoints",
			walCommits, copied, kept)
	}
	var failed int64
	s.ckpt.report(func(f, _ int64) { failed = f })
	if failed != 0 {
		t.Errorf("failed checkpoints = %d, want 0", failed)
	}
}

// TestWriterCheckpointsAtTheCap stops the checkpointer, as one that cannot keep up: the
// writer checkpoints itself once the WAL holds its wal_autocheckpoint pages, so the WAL
// stays about that large plus one commit.
func TestWriterCheckpointsAtTheCap(t *testing.T) {
	const capPages = 100
	none := openWALTest(t, 0, false)
	commitPlans(t, none, "c", nil)
	kept := walFileSize(t, none)
	perCommit := kept / walCommits

	s := openWALTest(t, capPages, false)
	commitPlans(t, s, "c", nil)
	got := walFileSize(t, s)
	const frame = 24 + 4096 // a WAL frame: its header and a page
	if limit := 32 + capPages*frame + 2*perCommit; got > limit {
		t.Errorf("WAL after %d commits with the writer checkpointing at %d pages = %d bytes, want at most %d (%d bytes without checkpoints)",
			walCommits, capPages, got, limit, kept)
	}
}
