//go:build bench && !linux

package bench

import "os/exec"

// dieWithParent does nothing off Linux: a run killed by its timeout may leave its
// servers running there.
func dieWithParent(*exec.Cmd) {}
