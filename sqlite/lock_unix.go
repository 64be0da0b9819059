//go:build unix

package sqlite

import (
	"errors"
	"os"
	"syscall"
)

// errWouldBlock is flock's answer when another open file holds a conflicting lock.
var errWouldBlock = syscall.EWOULDBLOCK

// flock locks f with flock(2), shared or exclusive, failing with errWouldBlock rather
// than waiting.
func flock(f *os.File, exclusive bool) error {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
