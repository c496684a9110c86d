package semaphore

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/shmkit/shmkit/internal/futex"
	"github.com/shmkit/shmkit/internal/park"
	"github.com/shmkit/shmkit/shm"
)

// Condition is a condition variable shared by processes, used with a
// Mutex: Python's multiprocessing.Condition. A process holding the mutex
// calls Wait, which unlocks it, sleeps until another process calls Notify
// or NotifyAll, and locks it again before returning.
//
// Across processes a notification cannot be addressed to one waiter
// without the risk that the waiter it picks dies and the wake-up is lost,
// so Notify, like NotifyAll, wakes every waiter; each then re-checks its
// condition. As with sync.Cond, call Wait in a loop, or use WaitFor.
type Condition struct {
	seq  *uint32 // bumped by every notification
	mu   *Mutex
	seg  *shm.Segment // checked on every operation; keeps the word mapped
	name string
}

// The condition word: a notification count in bits 0-30, and bit 31 saying
// that some process may be waiting.
const (
	condWaiters = 1 << 31
	condSize    = 64
)

// NewCondition creates a condition variable named name in seg, to be used
// with mu (every process must use it with the same mutex).
func NewCondition(seg *shm.Segment, name string, mu *Mutex) (*Condition, error) {
	return condition(seg, name, mu, true)
}

// OpenCondition opens the existing condition variable named name in seg,
// to be used with mu.
func OpenCondition(seg *shm.Segment, name string, mu *Mutex) (*Condition, error) {
	return condition(seg, name, mu, false)
}

func condition(seg *shm.Segment, name string, mu *Mutex, create bool) (*Condition, error) {
	if mu == nil {
		return nil, fmt.Errorf("semaphore: condition %q: nil mutex", name)
	}
	obj, err := object(seg, name, "cond", condSize, create)
	if err != nil {
		return nil, err
	}
	return &Condition{seq: word32(obj, 0), mu: mu, seg: seg, name: name}, nil
}

// Wait unlocks the mutex, waits for a notification or for ctx to end, and
// locks the mutex again; the caller must hold the mutex, and holds it again
// when Wait returns. It returns nil after a notification (or spuriously),
// an error matching ctx.Err() when ctx ended first, and an error matching ErrOwnerDead when
// re-locking took the mutex over from a holder that died (see
// Mutex.LockContext). The exceptions: an error matching ErrNotRecoverable,
// or shm.ErrClosed once the segment is closed, means the mutex could not be
// locked again and is not held.
func (c *Condition) Wait(ctx context.Context) error {
	if err := c.seg.Err(); err != nil {
		return fmt.Errorf("semaphore: condition %q: %w", c.name, err)
	}
	// Announce the wait before unlocking, so that a Notify made after the
	// unlock sees a waiter and changes the word this wait sleeps on.
	var s uint32
	for {
		s = atomic.LoadUint32(c.seq)
		if s&condWaiters != 0 || atomic.CompareAndSwapUint32(c.seq, s, s|condWaiters) {
			s |= condWaiters
			break
		}
	}
	if err := c.mu.mu.Unlock(); err != nil {
		// Not held (the caller's bug, or the segment closed meanwhile).
		return fmt.Errorf("semaphore: condition %q: %w", c.name, err)
	}
	waitErr := park.Wait(ctx, c.seq, s, 0)
	if !errors.Is(waitErr, context.Canceled) && !errors.Is(waitErr, context.DeadlineExceeded) {
		waitErr = nil
	}
	// Re-lock even if ctx has ended: the caller expects to hold the mutex.
	lockErr := c.mu.LockContext(context.Background())
	if lockErr != nil && !errors.Is(lockErr, ErrOwnerDead) {
		// Not held: the mutex is unrecoverable. The caller's Unlock would
		// panic; say so now.
		return fmt.Errorf("semaphore: condition %q: %w", c.name, lockErr)
	}
	if waitErr != nil {
		waitErr = fmt.Errorf("semaphore: condition %q: %w", c.name, waitErr)
	}
	return errors.Join(waitErr, lockErr)
}

// WaitFor calls Wait until cond, called with the mutex held, reports true,
// or until Wait fails. The caller must hold the mutex.
func (c *Condition) WaitFor(ctx context.Context, cond func() bool) error {
	for !cond() {
		if err := c.Wait(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Notify wakes the processes waiting on c; see the type's documentation
// for why it wakes all of them. The caller usually holds the mutex, but
// need not.
func (c *Condition) Notify() { c.NotifyAll() }

// NotifyAll wakes every process waiting on c.
func (c *Condition) NotifyAll() {
	closedPanic(c.seg, "condition", c.name)
	for {
		s := atomic.LoadUint32(c.seq)
		next := (s + 1) &^ condWaiters
		if atomic.CompareAndSwapUint32(c.seq, s, next) {
			if s&condWaiters != 0 {
				futex.Wake(c.seq, wakeAll)
			}
			return
		}
	}
}

// Name returns c's name in its segment.
func (c *Condition) Name() string { return c.name }
