//go:build unix

package bench

import (
	"os"
	"path/filepath"
	"syscall"

	"github.com/shmkit/shmkit/shm"
)

// FlockLock is the lock workload (see locks.go) with flock(2) on the
// segment file as the lock.
var FlockLock = Register(&Workload{
	Name:  "flock.lock",
	Setup: func(seg *shm.Segment) error { return setupLocked(seg, func() error { return nil }) },
	Prepare: func(seg *shm.Segment) (func(int), func(), error) {
		// Each process opens the file itself: flock locks belong to an
		// open file description, which inherited descriptors share.
		f, err := os.Open(filepath.Join(shm.DefaultDir, seg.Name()))
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
