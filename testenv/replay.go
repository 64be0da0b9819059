package testenv

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// PauseReplay pauses the streaming replica's WAL replay, so that it stays behind the
// primary, and returns a function that resumes it. The test's cleanup resumes it too,
// whatever happened, so a failing test never leaves the shared replica paused.
//
// Pauses are serialized across tests and test processes (other packages, other
// checkouts): each holds an exclusive flock on a file in the temporary directory from
// its pause to its resume, so that one test's resume never ends another's pause. Keep
// a pause short: every test reading the replica waits for it meanwhile.
func PauseReplay(t testing.TB) (resume func()) {
	t.Helper()
	replica := ReplicaURL(t)
	unlock, err := lockFile(filepath.Join(os.TempDir(), "boxoffice-replica-replay.lock"))
	if err != nil {
		t.Fatalf("serialize the replica's pause: %v", err)
	}
	if err := execAdmin(replica, "SELECT pg_wal_replay_pause()"); err != nil {
		unlock()
		t.Fatalf("pause the replica's replay: %v", err)
	}
	var once sync.Once
	resume = func() {
		once.Do(func() {
			defer unlock()
			if err := execAdmin(replica, "SELECT pg_wal_replay_resume()"); err != nil {
				t.Errorf("resume the replica's replay: %v", err)
			}
		})
	}
	t.Cleanup(resume)
	return resume
}
