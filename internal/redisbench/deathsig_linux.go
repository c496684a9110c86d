//go:build linux

package redisbench

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill cmd's process when the thread that
// started it ends.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
