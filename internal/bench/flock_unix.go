//go:build unix

package bench

import (
	"fmt"
	"os"
	"syscall"

	"github.com/shmkit/shmkit/shm"
)

// FlockLock is the lock workload (see locks.go) with flock(2) on the
// segment file as the lock.
var FlockLock = Register(&Workload{
	Name:  "flock.lock",
	Setup: func(seg *shm.Segment) error { return setupLocked(seg, func() error { return nil }) },
	Prepare: func(seg *shm.Segment) (func(int) error, func(), error) {
		// Each process opens the segment's file anew: flock locks belong
		// to an open file description, which inherited descriptors share.
		dup, err := seg.File()
		if err != nil {
			return nil, nil, err
		}
		f, err := os.Open(fmt.Sprintf("/proc/self/fd/%d", dup.Fd()))
		dup.Close()
		if err != nil {
			return nil, nil, err
		}
		fd := int(f.Fd())
		loop, cleanup, err := lockedLoop(seg,
			func() { syscall.Flock(fd, syscall.LOCK_EX) },
			func() { syscall.Flock(fd, syscall.LOCK_UN) })
		return loop, func() { cleanup(); f.Close() }, err
	},
})
