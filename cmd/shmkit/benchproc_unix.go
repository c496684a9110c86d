//go:build unix

package main

import (
	"os/exec"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ownProcessGroup makes cmd's process lead a new process group, and
// makes the cancelling of cmd's context kill the whole group.
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		killProcessGroup(cmd.Process.Pid)
		return nil
	}
}

// killProcessGroup kills the process group led by pid, whatever is left
// of it.
func killProcessGroup(pid int) { syscall.Kill(-pid, syscall.SIGKILL) }

// describeMachine describes this machine, with the versions of Python and
// Redis that env ran.
func describeMachine(env *rowEnv) machineInfo {
	m := machineInfo{
		CPUs:     runtime.NumCPU(),
		CPUModel: cpuModel(),
		Go:       runtime.Version(),
		Python:   env.pythonVersion,
		Redis:    env.redisVersion,
		Date:     time.Now().UTC().Format(time.RFC3339),
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:])
	}
	return m
}
