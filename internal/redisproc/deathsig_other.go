//go:build !linux

package redisproc

import "os/exec"

// setDeathSignal does nothing: only Linux has a parent-death signal.
func setDeathSignal(cmd *exec.Cmd) {}
