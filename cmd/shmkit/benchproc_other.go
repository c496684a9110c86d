//go:build !unix

package main

import (
	"os/exec"
	"runtime"
	"time"
)

// Without process groups, the interpreter alone is killed.
func ownProcessGroup(*exec.Cmd) {}
func killProcessGroup(int)      {}

func describeMachine(env *rowEnv) machineInfo {
	return machineInfo{CPUs: runtime.NumCPU(), Kernel: runtime.GOOS, Go: runtime.Version(),
		Python: env.pythonVersion, Redis: env.redisVersion, Date: time.Now().UTC().Format(time.RFC3339)}
}
