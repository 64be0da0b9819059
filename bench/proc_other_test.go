//go:build bench && !linux

package bench

import (
	"os/exec"
	"time"
)

// dieWithParent does nothing off Linux: a run killed by its timeout may leave its
// servers running there.
func dieWithParent(*exec.Cmd) {}

// cpuTime is not known off Linux: the table shows no CPU time per request there.
func cpuTime(int) (time.Duration, bool) { return 0, false }

// memory is not known off Linux: the ingest table shows 0 MiB there.
func memory(int) (peak, rss int64) { return 0, 0 }
