//go:build linux

package semaphore_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/internal/lock"
	"github.com/shmkit/shmkit/internal/proc"
	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/semaphore"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/value"
)

func TestMain(m *testing.M) { shmtest.Main(m) }

// job tells a worker where its objects are and what to do.
type job struct {
	Segment string
	Iters   int
	Worker  int
}

// plainCounter returns a non-atomic int64 in the segment: only a lock
// makes increments of it exact.
func plainCounter(seg *shm.Segment, create bool) (*int64, error) {
	var obj shm.Object
	var err error
	if create {
		obj, err = seg.Alloc(shm.ObjectSpec{Name: "plain", Kind: "raw", Size: 8})
	} else {
		obj, err = seg.Lookup("plain")
	}
	if err != nil {
		return nil, err
	}
	return (*int64)(unsafe.Pointer(&obj.Bytes[0])), nil
}

// inside returns the cell a worker sets once it is where the test wants to
// kill it.
func inside(seg *shm.Segment) *value.Cell[int64] {
	c, err := value.Open[int64](seg, "inside")
	if err != nil {
		panic(err)
	}
	return c
}

func withSegment(j job, f func(seg *shm.Segment) (int, error)) (int, error) {
	seg, err := shm.Open(j.Segment)
	if err != nil {
		return 0, err
	}
	defer seg.Close()
	return f(seg)
}

var (
	// lockIncrement does lock; counter++; unlock, with a non-atomic
	// increment, j.Iters times.
	lockIncrement = process.Register("semaphore_test.lockIncrement", func(ctx context.Context, j job) (int, error) {
		return withSegment(j, func(seg *shm.Segment) (int, error) {
			mu, err := semaphore.OpenMutex(seg, "mu")
			if err != nil {
				return 0, err
			}
			n, err := plainCounter(seg, false)
			if err != nil {
				return 0, err
			}
			if err := shmtest.Await(seg); err != nil {
				return 0, err
			}
			for range j.Iters {
				mu.Lock()
				*n++
				mu.Unlock()
			}
			return 0, nil
		})
	})

	// holdAndHang locks the mutex, says so, and waits to be killed.
	holdAndHang = process.Register("semaphore_test.holdAndHang", func(ctx context.Context, j job) (int, error) {
		return withSegment(j, func(seg *shm.Segment) (int, error) {
			mu, err := semaphore.OpenMutex(seg, "mu")
			if err != nil {
				return 0, err
			}
			if err := mu.LockContext(ctx); err != nil && !errors.Is(err, semaphore.ErrOwnerDead) {
				return 0, err
			}
			inside(seg).Add(1)
			select {}
		})
	})

	// lockOnce waits for the mutex with LockContext, counts itself in,
	// unlocks (repairing if told to) and reports what LockContext said and
	// when it returned.
	lockOnce = process.Register("semaphore_test.lockOnce", func(ctx context.Context, j job) (locked, error) {
		var l locked
		_, err := withSegment(j, func(seg *shm.Segment) (int, error) {
			mu, err := semaphore.OpenMutex(seg, "mu")
			if err != nil {
				return 0, err
			}
			inside(seg).Add(1)
			ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			err = mu.LockContext(ctx)
			l.At = time.Now().UnixNano()
			l.OwnerDied = errors.Is(err, semaphore.ErrOwnerDead)
			if err != nil && !l.OwnerDied {
				return 0, err
			}
			if l.OwnerDied {
				mu.MarkConsistent()
			}
			n, err := plainCounter(seg, false)
			if err != nil {
				return 0, err
			}
			*n++
			mu.Unlock()
			return 0, nil
		})
		return l, err
	})

	// waitEvent waits for the event "ev" and reports how many goroutines
	// of this process saw it set.
	waitEvent = process.Register("semaphore_test.waitEvent", func(ctx context.Context, j job) (int, error) {
		return withSegment(j, func(seg *shm.Segment) (int, error) {
			ev, err := semaphore.OpenEvent(seg, "ev")
			if err != nil {
				return 0, err
			}
			ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			var seen atomic.Int64
			errs := make(chan error, j.Iters)
			for range j.Iters {
				go func() {
					err := ev.Wait(ctx)
					if err == nil {
						seen.Add(1)
					}
					errs <- err
				}()
			}
			inside(seg).Add(1)
			var first error
			for range j.Iters {
				if err := <-errs; err != nil && first == nil {
					first = err
				}
			}
			return int(seen.Load()), first
		})
	})

	// acquireOnce acquires the semaphore, counts itself in, and keeps the
	// permit.
	acquireOnce = process.Register("semaphore_test.acquireOnce", func(ctx context.Context, j job) (int, error) {
		return withSegment(j, func(seg *shm.Segment) (int, error) {
			s, err := semaphore.OpenSemaphore(seg, "sem")
			if err != nil {
				return 0, err
			}
			inside(seg).Add(1)
			ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			return 0, s.Acquire(ctx)
		})
	})

	// barrierRounds waits at the barrier j.Iters times, adding to the
	// shared counter before each wait and checking after it that every
	// party of the round has added.
	barrierRounds = process.Register("semaphore_test.barrierRounds", func(ctx context.Context, j job) (int, error) {
		return withSegment(j, func(seg *shm.Segment) (int, error) {
			b, err := semaphore.OpenBarrier(seg, "bar")
			if err != nil {
				return 0, err
			}
			arrivals, err := value.Open[int64](seg, "arrivals")
			if err != nil {
				return 0, err
			}
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			for round := 1; round <= j.Iters; round++ {
				arrivals.Add(1)
				if _, err := b.Wait(ctx); err != nil {
					return round, err
				}
				if got := arrivals.Load(); got < int64(round*b.Parties()) {
					return round, fmt.Errorf("round %d: %d arrivals after the barrier, want at least %d", round, got, round*b.Parties())
				}
			}
			return j.Iters, nil
		})
	})

	// barrierWait waits at the barrier once, after counting itself in.
	barrierWait = process.Register("semaphore_test.barrierWait", func(ctx context.Context, j job) (int, error) {
		return withSegment(j, func(seg *shm.Segment) (int, error) {
			b, err := semaphore.OpenBarrier(seg, "bar")
			if err != nil {
				return 0, err
			}
			ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			inside(seg).Add(1)
			_, err = b.Wait(ctx)
			return 0, err
		})
	})

	// consume waits on the condition until the shared counter reaches
	// j.Iters, and reports what it saw.
	consume = process.Register("semaphore_test.consume", func(ctx context.Context, j job) (int, error) {
		return withSegment(j, func(seg *shm.Segment) (int, error) {
			mu, err := semaphore.OpenMutex(seg, "mu")
			if err != nil {
				return 0, err
			}
			c, err := semaphore.OpenCondition(seg, "cond", mu)
			if err != nil {
				return 0, err
			}
			n, err := plainCounter(seg, false)
			if err != nil {
				return 0, err
			}
			ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			mu.Lock()
			defer mu.Unlock()
			inside(seg).Add(1)
			err = c.WaitFor(ctx, func() bool { return *n >= int64(j.Iters) })
			return int(*n), err
		})
	})
)

// locked is what lockOnce reports: whether the previous holder had died,
// and when LockContext returned.
type locked struct {
	OwnerDied bool
	At        int64 // Unix nanoseconds
}

// setup returns a segment with a mutex "mu", a plain counter, a cell
// "inside" and a gate.
func setup(t *testing.T) (*shm.Segment, *semaphore.Mutex, *int64, *value.Cell[int64]) {
	t.Helper()
	seg := shmtest.Segment(t, 1<<20)
	shmtest.NewGate(t, seg)
	mu, err := semaphore.NewMutex(seg, "mu")
	if err != nil {
		t.Fatal(err)
	}
	n, err := plainCounter(seg, true)
	if err != nil {
		t.Fatal(err)
	}
	in, err := value.New[int64](seg, "inside")
	if err != nil {
		t.Fatal(err)
	}
	return seg, mu, n, in
}

// waitInside waits until the cell counts want, failing the test if a
// worker in ps ends first.
func waitInside(t *testing.T, in *value.Cell[int64], want int64, ps ...*process.Process) {
	t.Helper()
	shmtest.WaitUntil(t, fmt.Sprintf("%d workers in place", want), func() bool { return in.Load() >= want }, ps...)
}

func kill(t *testing.T, p *process.Process) {
	t.Helper()
	p.Kill()
	p.Join(context.Background())
}

// checkResults checks that every worker in ps, all joined, returned want.
func checkResults(t *testing.T, ps []*process.Process, want int, what string) {
	t.Helper()
	for _, p := range ps {
		var got int
		if err := p.Result(&got); err != nil || got != want {
			t.Errorf("worker %s: %s = %d, %v; want %d", p.Name(), what, got, err, want)
		}
	}
}

var (
	// midTakeOver puts the ReentrantMutex "r" in the state a take-over leaves for
	// an instant: the lock word names this process, but the holder field
	// still names the dead process's handle, whose id a counter would have
	// made 1. It then reports 1 if this process's first handle, which a
	// counter would also have numbered 1, takes that for its own lock.
	midTakeOver = process.Register("semaphore_test.midTakeOver", func(ctx context.Context, j job) (int, error) {
		return withSegment(j, func(seg *shm.Segment) (int, error) {
			a, err := semaphore.OpenReentrantMutex(seg, "r")
			if err != nil {
				return 0, err
			}
			obj, err := seg.Lookup("r")
			if err != nil {
				return 0, err
			}
			me, err := proc.Self()
			if err != nil {
				return 0, err
			}
			// ReentrantMutex layout: lock word at 0, holder id at 8.
			atomic.StoreUint64((*uint64)(unsafe.Pointer(&obj.Bytes[8])), 1)
			atomic.StoreUint64((*uint64)(unsafe.Pointer(&obj.Bytes[0])), lock.OwnerWord(me))
			if a.TryLock() {
				return 1, nil
			}
			return 0, nil
		})
	})
)
