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

// ConsumerLockFileName is the lock file of the queue's one consumer: Broker.Recover takes
// it exclusively and the broker holds it until Close, so a second `boxoffice run` on the
// same data directory refuses to start instead of handing out the first one's deliveries
// a second time (and running a second ingest leader beside the first's in-process lock).
const ConsumerLockFileName = "consumer.lock"

// ErrInUse is returned by Restore when a boxoffice process has the data directory's
// store or queue open, by Open, OpenBroker and Backup while a restore runs there, and by
// Broker.Recover when another process consumes the queue.
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
	l, err := lockFile(path, exclusive)
	if err != nil {
		if errors.Is(err, errWouldBlock) {
			if exclusive {
				return nil, fmt.Errorf("%w: a boxoffice process (run, migrate, backup or dead-letters) has %s open and holds %s; stop it first",
					ErrInUse, dataDir, path)
			}
			return nil, fmt.Errorf("%w: boxoffice restore is replacing the store in %s (it holds %s); try again when it has finished",
				ErrInUse, dataDir, path)
		}
		return nil, err
	}
	return l, nil
}

// lockConsumer takes the exclusive lock of the queue's consumer in dataDir, without
// waiting: when another process holds it the error wraps ErrInUse and names the file.
func lockConsumer(dataDir string) (*dirLock, error) {
	path := filepath.Join(dataDir, ConsumerLockFileName)
	l, err := lockFile(path, true)
	if errors.Is(err, errWouldBlock) {
		return nil, fmt.Errorf("%w: another boxoffice run consumes the queue in %s (it holds %s); stop it, or give this one another DATA_DIR",
			ErrInUse, dataDir, path)
	}
	return l, err
}

// lockFile opens (creating it when missing) and locks path, shared or exclusive, without
// waiting: a conflicting holder gives an error wrapping errWouldBlock.
func lockFile(path string, exclusive bool) (*dirLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600) //nolint:gosec // G304: the operator names DATA_DIR
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := flock(f, exclusive); err != nil {
		f.Close()
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
