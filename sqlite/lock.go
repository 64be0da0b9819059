package sqlite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// LockFileName is the advisory lock file in the data directory. Every process that has
// the store or the queue open (Open, OpenBroker, Backup: boxoffice run, migrate, backup,
// dead-letters) holds a shared lock on it for as long as it has them open; Restore holds
// it exclusively while it replaces them. So a restore never replaces files that a
// running boxoffice has open, and nothing opens them halfway through a restore. The
// lock is flock(2)'s: the kernel drops it when its process exits, however it ends, so a
// process killed with SIGKILL leaves no stale lock behind. The file itself is never
// removed (removing it would let two processes lock two different files).
const LockFileName = "boxoffice.lock"

// ErrInUse is returned by Restore when a boxoffice process has the data directory's
// store or queue open, and by Open, OpenBroker and Backup while a restore runs there.
var ErrInUse = errors.New("data directory in use")

// dirLock is a lock on a data directory's LockFileName, held until release.
type dirLock struct {
	f *os.File
}

// lockDataDir takes the lock of dataDir, shared or exclusive, without waiting: when
// another process holds it in a conflicting mode the error wraps ErrInUse and says who
// holds it.
func lockDataDir(dataDir string, exclusive bool) (*dirLock, error) {
	path := filepath.Join(dataDir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600) //nolint:gosec // G304: the operator names DATA_DIR
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := flock(f, exclusive); err != nil {
		f.Close()
		if errors.Is(err, errWouldBlock) {
			if exclusive {
				return nil, fmt.Errorf("%w: a boxoffice process (run, migrate, backup or dead-letters) has %s open and holds %s; stop it first",
					ErrInUse, dataDir, path)
			}
			return nil, fmt.Errorf("%w: boxoffice restore is replacing the store in %s (it holds %s); try again when it has finished",
				ErrInUse, dataDir, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &dirLock{f: f}, nil
}

// release drops the lock. Calling it again, or on a nil lock, does nothing.
func (l *dirLock) release() {
	if l != nil {
		// Closing the descriptor drops the flock, even when close reports an error: there
		// is nothing written to lose.
		l.f.Close()
	}
}

// lockable is a database of the data directory that holds its lock while open.
type lockable interface {
	setLock(l *dirLock)
	Close() error
}

func (s *Store) setLock(l *dirLock)  { s.lock = l }
func (b *Broker) setLock(l *dirLock) { b.lock = l }

// openLocked creates dataDir when missing, takes its lock shared, and opens a database
// in it with open; the database releases the lock when it closes.
func openLocked[T lockable](dataDir string, open func() (T, error)) (T, error) {
	var zero T
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return zero, err
	}
	l, err := lockDataDir(dataDir, false)
	if err != nil {
		return zero, err
	}
	db, err := open()
	if err != nil {
		l.release()
		return zero, err
	}
	db.setLock(l)
	return db, nil
}
