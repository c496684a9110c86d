//go:build linux

package semaphore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/semaphore"
	"github.com/shmkit/shmkit/shm"
)

type primitives struct {
	mu    *semaphore.Mutex
	rl    *semaphore.ReentrantMutex
	sem   *semaphore.Semaphore
	ev    *semaphore.Event
	bar   *semaphore.Barrier
	cond  *semaphore.Condition
	condM *semaphore.Mutex
}

func newPrimitives(seg *shm.Segment, parties int) (primitives, error) {
	var p primitives
	var errs [7]error
	p.mu, errs[0] = semaphore.NewMutex(seg, "mu")
	p.rl, errs[1] = semaphore.NewReentrantMutex(seg, "rl")
	p.sem, errs[2] = semaphore.NewSemaphore(seg, "sem", 1)
	p.ev, errs[3] = semaphore.NewEvent(seg, "ev")
	p.bar, errs[4] = semaphore.NewBarrier(seg, "bar", parties)
	p.condM, errs[5] = semaphore.NewMutex(seg, "condmu")
	p.cond, errs[6] = semaphore.NewCondition(seg, "cond", p.condM)
	return p, errors.Join(errs[:]...)
}

// anonPrimitives returns an anonymous segment holding every primitive, the
// barrier for the given number of parties.
func anonPrimitives(parties int) (*shm.Segment, primitives, error) {
	seg, err := shm.CreateAnonymous(1 << 16)
	if err != nil {
		return nil, primitives{}, err
	}
	p, err := newPrimitives(seg, parties)
	if err != nil {
		seg.Close()
	}
	return seg, p, err
}

// closeRace, in a worker, races every primitive's operations against
// Close.
var closeRace = process.Register("semaphore_test.closeRace", func(ctx context.Context, rounds int) (struct{}, error) {
	return struct{}{}, shmtest.RaceClose(rounds, func(seg *shm.Segment) ([]func() error, error) {
		p, err := newPrimitives(seg, 1)
		return []func() error{
			func() error {
				if err := p.mu.LockContext(ctx); err != nil {
					return err
				}
				p.mu.Unlock()
				return nil
			},
			func() error {
				if p.mu.TryLock() {
					p.mu.Unlock()
				}
				return nil
			},
			func() error { p.rl.Lock(); p.rl.Lock(); p.rl.Unlock(); p.rl.Unlock(); return nil },
			func() error {
				if err := p.sem.Acquire(ctx); err != nil {
					return err
				}
				return p.sem.Release()
			},
			func() error { p.ev.Set(); p.ev.IsSet(); p.ev.Clear(); return nil },
			func() error { _, err := p.bar.Wait(ctx); return err },
			func() error { p.cond.NotifyAll(); return nil },
		}, err
	})
})

// TestCloseRace checks that operations on every primitive racing Close
// complete or fail with shm.ErrClosed, in a worker so that a fault fails
// the test.
func TestCloseRace(t *testing.T) {
	if _, err := closeRace.Run(t.Context(), 50); err != nil {
		t.Fatal(err)
	}
}

// closeWakes, in a worker, blocks a goroutine in each primitive's wait and
// closes the segment; each wait must return an error matching
// shm.ErrClosed. It returns the waits that did not, or that took longer
// than a lock waiter's check interval allows to notice.
var closeWakes = process.Register("semaphore_test.closeWakes", func(ctx context.Context, _ struct{}) ([]string, error) {
	seg, p, err := anonPrimitives(2)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if err := p.sem.Acquire(ctx); err != nil {
		return nil, err
	}
	p.condM.Lock()
	waits := map[string]func() error{
		"Mutex.LockContext": func() error { return p.mu.LockContext(ctx) },
		"Semaphore.Acquire": func() error { return p.sem.Acquire(ctx) },
		"Event.Wait":        func() error { return p.ev.Wait(ctx) },
		"Barrier.Wait":      func() error { _, err := p.bar.Wait(ctx); return err },
		"Condition.Wait":    func() error { return p.cond.Wait(ctx) },
	}
	type result struct {
		name string
		err  error
	}
	results := make(chan result, len(waits))
	for name, wait := range waits {
		go func() { results <- result{name, shmtest.Call(wait)} }()
	}
	// Let them block, then close. A wait that returned early shows as a
	// result other than ErrClosed.
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if err := seg.Close(); err != nil {
		return nil, err
	}
	var bad []string
	timeout := time.After(30 * time.Second)
	for range waits {
		select {
		case r := <-results:
			if !errors.Is(r.err, shm.ErrClosed) {
				bad = append(bad, fmt.Sprintf("%s = %v, want shm.ErrClosed", r.name, r.err))
			}
		case <-timeout:
			return append(bad, "a wait did not return within 30 s of Close"), nil
		}
	}
	if d := time.Since(start); d > 2*semaphore.CheckInterval+time.Second {
		bad = append(bad, fmt.Sprintf("waits took %v to notice Close", d))
	}
	return bad, nil
})

// TestCloseWakesWaiters checks that Close ends the waits of the process's
// goroutines with shm.ErrClosed, in a worker so that a fault fails the
// test.
func TestCloseWakesWaiters(t *testing.T) {
	shmtest.RunChecks(t, closeWakes, struct{}{})
}

// closedPrimitives, in a worker, calls every method of primitives whose
// segment is closed and returns what did not fail with shm.ErrClosed.
var closedPrimitives = process.Register("semaphore_test.closedPrimitives", func(ctx context.Context, _ struct{}) ([]string, error) {
	seg, p, err := anonPrimitives(2)
	if err != nil {
		return nil, err
	}
	if err := seg.Close(); err != nil {
		return nil, err
	}
	var bad []string
	for name, f := range map[string]func() error{
		"Mutex.Lock":                    func() error { p.mu.Lock(); return nil },
		"Mutex.LockContext":             func() error { return p.mu.LockContext(ctx) },
		"Mutex.TryLock":                 func() error { p.mu.TryLock(); return nil },
		"Mutex.Unlock":                  func() error { p.mu.Unlock(); return nil },
		"ReentrantMutex.Lock":           func() error { p.rl.Lock(); return nil },
		"ReentrantMutex.TryLock":        func() error { p.rl.TryLock(); return nil },
		"ReentrantMutex.Unlock":         func() error { p.rl.Unlock(); return nil },
		"ReentrantMutex.MarkConsistent": func() error { return p.rl.MarkConsistent() },
		"Semaphore.Acquire":             func() error { return p.sem.Acquire(ctx) },
		"Semaphore.TryAcquire":          func() error { p.sem.TryAcquire(); return nil },
		"Semaphore.Release":             func() error { return p.sem.Release() },
		"Semaphore.Value":               func() error { p.sem.Value(); return nil },
		"Event.Set":                     func() error { p.ev.Set(); return nil },
		"Event.Clear":                   func() error { p.ev.Clear(); return nil },
		"Event.IsSet":                   func() error { p.ev.IsSet(); return nil },
		"Event.Wait":                    func() error { return p.ev.Wait(ctx) },
		"Barrier.Wait":                  func() error { _, err := p.bar.Wait(ctx); return err },
		"Barrier.Waiting":               func() error { p.bar.Waiting(); return nil },
		"Barrier.Broken":                func() error { p.bar.Broken(); return nil },
		"Barrier.Abort":                 func() error { p.bar.Abort(); return nil },
		"Barrier.Reset":                 func() error { return p.bar.Reset() },
		"Condition.Wait":                func() error { return p.cond.Wait(ctx) },
		"Condition.NotifyAll":           func() error { p.cond.NotifyAll(); return nil },
	} {
		if err := shmtest.Call(f); !errors.Is(err, shm.ErrClosed) {
			bad = append(bad, fmt.Sprintf("%s after Close: %v, want shm.ErrClosed", name, err))
		}
	}
	return bad, nil
})

// TestClosedPrimitives checks that every method of a primitive whose
// segment is closed fails with shm.ErrClosed (by panicking, for those
// without an error result), in a worker so that a fault fails the test.
func TestClosedPrimitives(t *testing.T) {
	shmtest.RunChecks(t, closedPrimitives, struct{}{})
}
