//go:build linux

package redisproc

import (
	"os/exec"
	"syscall"
)

// setDeathSignal has the kernel kill cmd's process if the thread that
// starts it exits, so that a program or test that dies without stopping
// the server does not leave it running.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
