package semaphore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"

	"github.com/shmkit/shmkit/internal/lock"
	"github.com/shmkit/shmkit/shm"
)

// ReentrantMutex is a re-entrant mutex shared by processes: its owner may
// lock it again without waiting, and it is released when the owner has
// unlocked it as many times as it locked it. It is Python's
// multiprocessing.RLock under a name that Go readers do not take for
// sync.RWMutex's reader lock.
//
// The owner is the handle (*ReentrantMutex) that locked it: Python's RLock
// is owned by a thread, and Go has no thread identity for goroutines. Lock
// through the same handle nests; Lock through another handle, in this
// process or another, waits. Goroutines that compete for the lock must
// therefore each use their own handle (call OpenReentrantMutex again);
// goroutines that take turns as one logical owner may share one. A handle
// must not be used by two goroutines at once.
//
// Owner death is handled as for Mutex: the next handle to lock it gets
// ErrOwnerDead, with a nesting depth of one.
type ReentrantMutex struct {
	mu     lock.Mutex
	seg    *shm.Segment // keeps the lock mapped
	holder *uint64      // shared: the id of the holding handle, valid while the lock word names this process
	depth  *uint32      // shared: how many times the holder has locked it
	id     uint64       // this handle's id: random, so no other handle, here or in a dead process, has it
	name   string
}

// The object's layout: the lock word, then the holder's handle id and the
// nesting depth, on one cache line.
const (
	rlockWord   = 0
	rlockHolder = 8
	rlockDepth  = 16
	rlockSize   = 64
)

// NewReentrantMutex creates an unlocked re-entrant lock named name in seg
// and returns a handle on it.
func NewReentrantMutex(seg *shm.Segment, name string) (*ReentrantMutex, error) {
	return rlock(seg, name, true)
}

// OpenReentrantMutex returns a new handle on the existing re-entrant lock named name
// in seg.
func OpenReentrantMutex(seg *shm.Segment, name string) (*ReentrantMutex, error) {
	return rlock(seg, name, false)
}

func rlock(seg *shm.Segment, name string, create bool) (*ReentrantMutex, error) {
	obj, err := object(seg, name, "rlock", rlockSize, create)
	if err != nil {
		return nil, err
	}
	mu, err := lock.New(word64(obj, rlockWord), seg)
	if err != nil {
		return nil, fmt.Errorf("semaphore: %w", err)
	}
	// The holder field outlives the process that wrote it: a handle that
	// takes the lock over from a dead owner finds the dead handle's id
	// there until it writes its own. Ids drawn at random cannot be
	// mistaken for one another, where counters in two processes would be.
	return &ReentrantMutex{mu: mu, seg: seg, holder: word64(obj, rlockHolder), depth: word32(obj, rlockDepth),
		id: rand.Uint64() | 1, name: name}, nil
}

// mine reports whether this handle holds the lock. The holder field is
// only written by the holding handle, so when the lock word names this
// process it is trustworthy.
func (r *ReentrantMutex) mine() bool {
	return r.mu.HeldByMe() && atomic.LoadUint64(r.holder) == r.id
}

// Lock locks r, or nests if this handle holds it. As for Mutex.Lock, a dead
// previous owner's lock is taken over and marked consistent, and an
// unrecoverable lock panics.
func (r *ReentrantMutex) Lock() {
	err := r.LockContext(context.Background())
	if errors.Is(err, ErrOwnerDead) {
		err = r.MarkConsistent()
	}
	if err != nil {
		panic(fmt.Errorf("semaphore: lock of rlock %q: %w", r.name, err))
	}
}

// LockContext locks r, or nests if this handle holds it, waiting as long as
// ctx allows. Its results are those of Mutex.LockContext.
func (r *ReentrantMutex) LockContext(ctx context.Context) error {
	if r.mine() {
		atomic.AddUint32(r.depth, 1)
		return nil
	}
	err := r.mu.Lock(ctx)
	if err != nil && !errors.Is(err, lock.ErrOwnerDead) {
		return fmt.Errorf("semaphore: rlock %q: %w", r.name, err)
	}
	atomic.StoreUint64(r.holder, r.id)
	atomic.StoreUint32(r.depth, 1)
	if err != nil {
		return fmt.Errorf("semaphore: rlock %q: %w", r.name, err)
	}
	return nil
}

// TryLock locks r or nests, without waiting, and reports whether it did.
func (r *ReentrantMutex) TryLock() bool {
	closedPanic(r.seg, "rlock", r.name)
	if r.mine() {
		atomic.AddUint32(r.depth, 1)
		return true
	}
	if !r.mu.TryLock() {
		return false
	}
	atomic.StoreUint64(r.holder, r.id)
	atomic.StoreUint32(r.depth, 1)
	return true
}

// Unlock undoes one Lock by this handle, releasing r when the nesting
// depth reaches zero. It panics if this handle does not hold r.
func (r *ReentrantMutex) Unlock() {
	if !r.mine() {
		closedPanic(r.seg, "rlock", r.name) // mine is false once closed
		panic(fmt.Sprintf("semaphore: unlock of rlock %q not held by this handle", r.name))
	}
	if atomic.AddUint32(r.depth, ^uint32(0)) > 0 {
		return
	}
	atomic.StoreUint64(r.holder, 0)
	if err := r.mu.Unlock(); err != nil {
		panic(fmt.Errorf("semaphore: unlock of rlock %q: %w", r.name, err))
	}
}

// MarkConsistent records that the state r protects has been repaired after
// its previous owner died. This handle must hold r.
func (r *ReentrantMutex) MarkConsistent() error {
	if !r.mine() {
		err := r.seg.Err() // mine is false once closed
		if err == nil {
			err = ErrNotOwner
		}
		return fmt.Errorf("semaphore: rlock %q: %w", r.name, err)
	}
	return r.mu.MarkConsistent()
}

// Name returns r's name in its segment.
func (r *ReentrantMutex) Name() string { return r.name }
