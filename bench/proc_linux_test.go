//go:build bench

package bench

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill cmd when this test process dies, so a run
// killed by its timeout or ^C leaves no server behind holding a port.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
