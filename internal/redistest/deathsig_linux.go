//go:build linux

package redistest

import (
	"os/exec"
	"syscall"
)

// setDeathSignal has the kernel kill cmd's process if the thread that
// starts it exits, so that a test process that dies without running its
// cleanups does not leave the server running.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
