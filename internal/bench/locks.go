package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/shmkit/shmkit/internal/futex"
	"github.com/shmkit/shmkit/semaphore"
	"github.com/shmkit/shmkit/shm"
)

// Lock workloads: each operation is lock; counter++; unlock, where counter
// is a plain (not atomic) int64 in the segment, so that only the lock makes
// the count right. The baselines are Drepper's three-state futex mutex
// ("Futexes Are Tricky", 2011), the least a correct futex mutex does;
// flock(2) on the segment file (flock_unix.go), what processes without
// shared memory use; and sync.Mutex among goroutines of one process.
var (
	MutexLock = Register(&Workload{
		Name: "mutex.lock",
		Setup: func(seg *shm.Segment) error {
			return setupLocked(seg, func() error { _, err := semaphore.NewMutex(seg, "mu"); return err })
		},
		Prepare: func(seg *shm.Segment) (func(int) error, func(), error) {
			mu, err := semaphore.OpenMutex(seg, "mu")
			if err != nil {
				return nil, nil, err
			}
			return lockedLoop(seg, mu.Lock, mu.Unlock)
		},
	})

	SemaphoreAcquire = Register(&Workload{
		Name: "sema.acquire",
		Setup: func(seg *shm.Segment) error {
			return setupLocked(seg, func() error { _, err := semaphore.NewSemaphore(seg, "sem", 1); return err })
		},
		Prepare: func(seg *shm.Segment) (func(int) error, func(), error) {
			s, err := semaphore.OpenSemaphore(seg, "sem")
			if err != nil {
				return nil, nil, err
			}
			ctx := context.Background()
			return lockedLoop(seg, func() { s.Acquire(ctx) }, func() { s.Release() })
		},
	})

	DrepperLock = Register(&Workload{
		Name: "drepper.lock",
		Setup: func(seg *shm.Segment) error {
			return setupLocked(seg, func() error {
				_, err := seg.Alloc(shm.ObjectSpec{Name: "drepper", Kind: "raw", Size: 4})
				return err
			})
		},
		Prepare: func(seg *shm.Segment) (func(int) error, func(), error) {
			o, err := seg.Lookup("drepper")
			if err != nil {
				return nil, nil, err
			}
			w := (*uint32)(unsafe.Pointer(&o.Bytes[0]))
			return lockedLoop(seg, func() { drepperLock(w) }, func() { drepperUnlock(w) })
		},
	})

	GoMutex = Register(&Workload{
		Name:       "go.mutex",
		Goroutines: true,
		Setup:      func(*shm.Segment) error { return nil },
		Prepare: func(seg *shm.Segment) (func(int) error, func(), error) {
			return func(n int) error {
				for range n {
					goLocked.mu.Lock()
					goLocked.n++
					goLocked.mu.Unlock()
				}
				return nil
			}, func() {}, nil
		},
	})
)

// goLocked is what GoMutex's goroutines share.
var goLocked struct {
	mu sync.Mutex
	n  int64
}

// setupLocked creates the shared counter and then the lock.
func setupLocked(seg *shm.Segment, newLock func() error) error {
	if _, err := seg.Alloc(shm.ObjectSpec{Name: "counter.plain", Kind: "raw", Size: 8}); err != nil {
		return err
	}
	return newLock()
}

// lockedLoop returns a loop doing lock; counter++; unlock.
func lockedLoop(seg *shm.Segment, lock, unlock func()) (func(int) error, func(), error) {
	o, err := seg.Lookup("counter.plain")
	if err != nil {
		return nil, nil, fmt.Errorf("bench: %w", err)
	}
	counter := (*int64)(unsafe.Pointer(&o.Bytes[0]))
	return func(n int) error {
		for range n {
			lock()
			*counter++
			unlock()
		}
		return nil
	}, func() {}, nil
}

// drepperLock and drepperUnlock are "mutex3" from Drepper's paper: the word
// is 0 when free, 1 when held, 2 when held with possible waiters.
func drepperLock(w *uint32) {
	if atomic.CompareAndSwapUint32(w, 0, 1) {
		return
	}
	c := atomic.LoadUint32(w)
	if c != 2 {
		c = atomic.SwapUint32(w, 2)
	}
	for c != 0 {
		futex.Wait(w, 2, 0)
		c = atomic.SwapUint32(w, 2)
	}
}

func drepperUnlock(w *uint32) {
	if atomic.AddUint32(w, ^uint32(0)) != 0 {
		atomic.StoreUint32(w, 0)
		futex.Wake(w, 1)
	}
}
