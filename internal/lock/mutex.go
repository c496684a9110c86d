package lock

import (
	"context"
	"sync/atomic"
	"unsafe"

	"github.com/shmkit/shmkit/internal/futex"
	"github.com/shmkit/shmkit/internal/park"
)

// futexWord returns the 32 bits of the lock word that hold the pid and the
// flag bits, which is what waiters sleep on.
func (m Mutex) futexWord() *uint32 {
	p := unsafe.Pointer(m.word)
	if bigEndian {
		p = unsafe.Add(p, 4)
	}
	return (*uint32)(p)
}

var bigEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 0
}()

// TryLock acquires the lock if it is free and reports whether it did. It
// never sleeps and never checks whether a holder is alive. It reports
// false once the guard is closed.
func (m Mutex) TryLock() bool {
	if m.closed() != nil || !atomic.CompareAndSwapUint64(m.word, 0, m.me) {
		return false
	}
	return m.acquired() == nil
}

// TryLockFast is TryLock without the guard's checks, small enough to be
// inlined: for callers that check the memory before and after it
// themselves, faster than through the Guard interface, and call Unlock
// when the second check fails.
func (m Mutex) TryLockFast() bool {
	return atomic.CompareAndSwapUint64(m.word, 0, m.me)
}

// acquired checks, after the CAS that took the lock for m.me, that the
// memory was not closed meanwhile; if it was, it gives the lock back, so
// that a lock taken in memory that Close replaced (or just before) is
// never reported held.
func (m Mutex) acquired() error {
	err := m.closed()
	if err != nil {
		m.Unlock()
	}
	return err
}

// Lock acquires the lock, waiting as long as ctx allows. It returns nil, or
// ErrOwnerDead with the lock held, or, without the lock, ErrNotRecoverable,
// ctx.Err() or the guard's error. A Lock that returns ctx.Err() leaves the
// word as it found it, apart from possibly setting the waiters bit, which
// costs the next unlock one spurious wake-up.
func (m Mutex) Lock(ctx context.Context) error {
	if err := m.closed(); err != nil {
		return err
	}
	if atomic.CompareAndSwapUint64(m.word, 0, m.me) {
		return m.acquired()
	}
	return m.lockSlow(ctx)
}

func (m Mutex) lockSlow(ctx context.Context) error {
	fw := m.futexWord()
	if ctx.Done() != nil {
		// A goroutine asleep in FUTEX_WAIT does not see ctx; wake every
		// waiter on the word when ctx ends, and let them re-check.
		stop := context.AfterFunc(ctx, func() { futex.Wake(fw, wakeAll) })
		defer stop()
	}
	want := m.me // after the first sleep, take the lock with the waiters bit set
	// The owner is checked once it has held the lock for a check interval
	// as far as this waiter has seen. The deadline belongs to the owner,
	// not to a sleep: wake-ups that leave the owner in place (another
	// waiter's cancelled context wakes everyone, for one) must not put the
	// check off, or a dead owner could keep the lock for ever.
	var owner uint64
	var checkAt int64
	for {
		// Checked before every look at the word: a closed guard's memory
		// reads as zero, a free lock.
		if err := m.closed(); err != nil {
			return err
		}
		old := atomic.LoadUint64(m.word)
		switch {
		case old == 0:
			if atomic.CompareAndSwapUint64(m.word, 0, want) {
				return m.acquired()
			}
			continue
		case old&pidMask == poisoned:
			return ErrNotRecoverable
		}
		if id := old &^ (diedBit | waitersBit); id != owner {
			owner, checkAt = id, futex.Now()+int64(checkPeriod)
		}
		if futex.Now() >= checkAt {
			if !OwnerAlive(old) {
				taken := m.me | diedBit | waitersBit
				if atomic.CompareAndSwapUint64(m.word, old, taken) {
					if err := m.closed(); err != nil {
						// Hand the dead owner's lock back, for the next
						// waiter to take over and repair.
						atomic.CompareAndSwapUint64(m.word, taken, old)
						return err
					}
					return ErrOwnerDead
				}
				continue
			}
			checkAt = futex.Now() + int64(checkPeriod)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if old&waitersBit == 0 {
			if !atomic.CompareAndSwapUint64(m.word, old, old|waitersBit) {
				continue
			}
			old |= waitersBit
		}
		wait(ctx, fw, uint32(old), checkAt)
		want = m.me | waitersBit
	}
}

// maxDirect bounds the goroutines of this process that wait for locks in
// FUTEX_WAIT themselves, each holding an OS thread; the rest park (package
// park), sharing one thread per lock word. Lock waits are usually short,
// and a direct wait wakes fastest.
const maxDirect = 16

var direct atomic.Int32

// wait sleeps until the futex word at fw may no longer hold val, or until
// deadline; see futex.Wait.
func wait(ctx context.Context, fw *uint32, val uint32, deadline int64) error {
	if direct.Add(1) <= maxDirect {
		defer direct.Add(-1)
		return futex.Wait(fw, val, deadline)
	}
	direct.Add(-1)
	return park.Wait(ctx, fw, val, deadline)
}

// Unlock releases the lock. It returns ErrNotOwner when this process does
// not hold it, or the guard's error once that is closed. If the lock was
// taken over from a dead owner and not marked consistent, Unlock makes it
// unrecoverable and wakes every waiter.
func (m Mutex) Unlock() error {
	if atomic.CompareAndSwapUint64(m.word, m.me, 0) {
		return nil
	}
	return m.unlockSlow()
}

func (m Mutex) unlockSlow() error {
	for {
		old := atomic.LoadUint64(m.word)
		if old&^(diedBit|waitersBit) != m.me {
			return m.notOwner()
		}
		if old&diedBit != 0 {
			if atomic.CompareAndSwapUint64(m.word, old, poisoned) {
				futex.Wake(m.futexWord(), wakeAll)
				return nil
			}
			continue
		}
		if atomic.CompareAndSwapUint64(m.word, old, 0) {
			if old&waitersBit != 0 {
				futex.Wake(m.futexWord(), 1)
			}
			return nil
		}
	}
}

// MarkConsistent records that the holder has repaired the state a dead owner
// left, so that Unlock releases the lock normally. It returns ErrNotOwner
// when this process does not hold the lock, and is a no-op when the lock
// needs no repair.
func (m Mutex) MarkConsistent() error {
	for {
		old := atomic.LoadUint64(m.word)
		if old&^(diedBit|waitersBit) != m.me {
			return m.notOwner()
		}
		if old&diedBit == 0 || atomic.CompareAndSwapUint64(m.word, old, old&^diedBit) {
			return nil
		}
	}
}

// notOwner is the error for an operation that found the word not held by
// this process: the guard's error if that is closed (the word may be the
// inert memory of a closed segment), ErrNotOwner otherwise.
func (m Mutex) notOwner() error {
	if err := m.closed(); err != nil {
		return err
	}
	return ErrNotOwner
}

// HeldByMe reports whether this process holds the lock; false once the
// guard is closed.
func (m Mutex) HeldByMe() bool {
	held := atomic.LoadUint64(m.word)&^(diedBit|waitersBit) == m.me
	return held && m.closed() == nil
}

// Owner returns the pid of the process holding the lock, or 0 when it is
// free or unrecoverable.
func Owner(w *uint64) int {
	v := atomic.LoadUint64(w)
	if v&pidMask == poisoned {
		return 0
	}
	return int(v & pidMask)
}

// Recover acquires the lock for state that is consistent by construction
// (its writers publish changes atomically), so that an owner's death needs
// no repair: it marks the lock consistent at once, and takes over even an
// unrecoverable lock. It reports whether a previous owner died holding it.
func (m Mutex) Recover(ctx context.Context) (ownerDied bool, err error) {
	for {
		err := m.Lock(ctx)
		switch err {
		case nil:
			return false, nil
		case ErrOwnerDead:
			return true, m.MarkConsistent()
		case ErrNotRecoverable:
			if atomic.CompareAndSwapUint64(m.word, poisoned, m.me) {
				if err := m.closed(); err != nil {
					atomic.CompareAndSwapUint64(m.word, m.me, poisoned)
					return false, err
				}
				return true, nil
			}
		default:
			return false, err
		}
	}
}
