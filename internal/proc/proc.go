// Package proc identifies processes in a way that survives pid reuse, and
// finds the processes that use a file.
//
// A pid alone is not an identity: pids are recycled, and on a machine with
// pid_max 32768 a busy system wraps around in minutes. The pair (pid, start
// time) is: the kernel records when each process started, in clock ticks
// since boot, and two processes that hold the same pid at different times
// started at different ticks. Segments live in tmpfs and do not survive a
// reboot, so the pair stays unique for as long as anything can refer to it.
package proc

import "errors"

// ID identifies a process for its whole life.
type ID struct {
	Pid   int
	Start uint64 // start time in clock ticks since boot (field 22 of /proc/PID/stat)
}

// ErrNotSupported reports that the platform has no /proc to read.
var ErrNotSupported = errors.New("proc: not supported on this platform")
