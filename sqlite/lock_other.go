//go:build !unix

package sqlite

import (
	"errors"
	"fmt"
	"os"
)

// errWouldBlock is never returned where flock(2) does not exist.
var errWouldBlock = errors.New("would block")

// flock takes no lock where flock(2) does not exist: a shared lock succeeds (the store
// works as before), an exclusive one fails, so Restore refuses to run rather than
// replace files that a process might have open.
func flock(_ *os.File, exclusive bool) error {
	if exclusive {
		return fmt.Errorf("restore needs flock(2), which this system lacks: %w", errors.ErrUnsupported)
	}
	return nil
}
