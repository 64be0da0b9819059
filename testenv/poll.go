package testenv

import (
	"testing"
	"time"
)

// PollTimeout bounds Poll: long enough for anything a test waits for on a loaded
// machine; reaching it means the condition will not come true.
const PollTimeout = 90 * time.Second

// Poll calls cond every few milliseconds until it returns true, and fails the test
// naming what it waited for when PollTimeout passes first.
func Poll(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(PollTimeout)
	pause := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", PollTimeout, what)
		}
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
}
