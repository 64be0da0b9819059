//go:build !unix

package testenv

// lockFile serializes nothing where flock(2) does not exist: tests that pause the
// replica must not run concurrently there.
func lockFile(string) (unlock func(), err error) { return func() {}, nil }
