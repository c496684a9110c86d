package semaphore

import (
	"context"
	"errors"
	"fmt"

	"github.com/shmkit/shmkit/internal/lock"
	"github.com/shmkit/shmkit/shm"
)

// Mutex is a mutual exclusion lock shared by processes, which survives its
// holder's death (see the package documentation). Like sync.Mutex, it is
// held by a process, not by a goroutine: any goroutine of the holding
// process may unlock it, and locking it twice from one process without
// unlocking deadlocks (use ReentrantMutex for re-entrance). A *Mutex is a
// sync.Locker and may be used by any number of goroutines.
//
// Uncontended Lock and Unlock are one compare-and-swap each on the lock
// word, with no system call.
type Mutex struct {
	mu   lock.Mutex
	seg  *shm.Segment // keeps the lock word mapped
	name string
}

// mutexSize is the bytes a Mutex occupies: its lock word, alone on a cache
// line.
const mutexSize = 64

// NewMutex creates an unlocked mutex named name in seg. It fails with an
// error matching fs.ErrExist if the segment already has an object of that
// name (open it with OpenMutex).
func NewMutex(seg *shm.Segment, name string) (*Mutex, error) {
	return mutex(seg, name, true)
}

// OpenMutex opens the existing mutex named name in seg. It fails with an
// error matching fs.ErrNotExist if there is none and shm.ErrTypeMismatch
// if the object is not a Mutex.
func OpenMutex(seg *shm.Segment, name string) (*Mutex, error) {
	return mutex(seg, name, false)
}

func mutex(seg *shm.Segment, name string, create bool) (*Mutex, error) {
	obj, err := object(seg, name, "mutex", mutexSize, create)
	if err != nil {
		return nil, err
	}
	mu, err := lock.New(word64(obj, 0), seg)
	if err != nil {
		return nil, fmt.Errorf("semaphore: %w", err)
	}
	return &Mutex{mu: mu, seg: seg, name: name}, nil
}

// Lock locks m, waiting as long as it takes. If the previous holder died
// holding m, Lock takes m over and marks it consistent, as if the holder
// had unlocked it: a caller that must know uses LockContext instead. Lock
// panics with ErrNotRecoverable if m was made unrecoverable, which only a
// LockContext caller that gave up on repairing it can do, and with
// shm.ErrClosed once m's segment is closed.
func (m *Mutex) Lock() {
	if m.tryLock() {
		return
	}
	m.lockSlow()
}

// tryLock is TryLock for a segment not closed, checked after taking the
// lock (see shm.Segment.Close), with the segment's concrete method. A
// check before would only save a closed segment the compare-and-swap.
func (m *Mutex) tryLock() bool {
	if !m.mu.TryLockFast() {
		return false
	}
	if m.seg.Err() != nil {
		m.mu.Unlock()
		return false
	}
	return true
}

func (m *Mutex) lockSlow() {
	err := m.LockContext(context.Background())
	if errors.Is(err, ErrOwnerDead) {
		err = m.mu.MarkConsistent()
	}
	if err != nil {
		panic(fmt.Errorf("semaphore: lock of mutex %q: %w", m.name, err))
	}
}

// LockContext locks m, waiting as long as ctx allows. It returns nil with m
// held; an error matching ErrOwnerDead with m held, when the previous
// holder died holding it (repair the protected state, then call
// MarkConsistent before Unlock); or, with m not held, ErrNotRecoverable,
// an error matching ctx.Err() or, once m's segment is closed,
// shm.ErrClosed. A cancelled
// LockContext leaves m as it was.
func (m *Mutex) LockContext(ctx context.Context) error {
	if err := m.mu.Lock(ctx); err != nil {
		return fmt.Errorf("semaphore: mutex %q: %w", m.name, err)
	}
	return nil
}

// TryLock locks m if it is free and reports whether it did. It does not
// wait, and does not take over a lock whose holder died; LockContext does.
func (m *Mutex) TryLock() bool {
	if m.tryLock() {
		return true
	}
	closedPanic(m.seg, "mutex", m.name)
	return false
}

// Unlock unlocks m. It panics if this process does not hold m, as
// sync.Mutex panics on unlocking an unlocked mutex, and once m's segment
// is closed (a process that closes a segment while it holds a lock there
// leaves the lock held, for the others, until it exits). If m was taken over
// from a dead holder and not marked consistent, Unlock makes it
// unrecoverable.
func (m *Mutex) Unlock() {
	if err := m.mu.Unlock(); err != nil {
		m.unlockFailed(err)
	}
}

func (m *Mutex) unlockFailed(err error) {
	panic(fmt.Errorf("semaphore: unlock of mutex %q: %w", m.name, err))
}

// MarkConsistent records that the state m protects has been repaired after
// its previous holder died, so that Unlock releases m normally. The caller
// must hold m; otherwise MarkConsistent returns ErrNotOwner.
func (m *Mutex) MarkConsistent() error {
	if err := m.mu.MarkConsistent(); err != nil {
		return fmt.Errorf("semaphore: mutex %q: %w", m.name, err)
	}
	return nil
}

// Name returns m's name in its segment.
func (m *Mutex) Name() string { return m.name }
