// Package proc identifies processes in a way that survives pid reuse, and
// finds the processes that use files.
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

// FileID identifies a file by its device and inode numbers, which stay the
// same for as long as the file exists, unlike its name.
type FileID struct{ Dev, Ino uint64 }

// FileUsers is the result of one scan of /proc (ScanUsers): which
// processes mapped or held open which files at the time.
type FileUsers struct {
	pids       map[FileID][]int
	incomplete bool // some processes could not be inspected
}

// Users returns, in increasing order, the pids of the processes that
// mapped the file identified by (dev, ino) or held it open, and whether
// some processes could not be inspected (their /proc entries were not
// readable), in which case the answer may be incomplete. The caller must
// not modify the slice.
func (u *FileUsers) Users(dev, ino uint64) (pids []int, incomplete bool) {
	return u.pids[FileID{Dev: dev, Ino: ino}], u.incomplete
}
