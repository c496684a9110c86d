// Package lock implements the robust, process-shared mutex that shmkit's
// public locks, values and arrays are built on.
//
// # The lock word
//
// A lock is one 64-bit word in shared memory, 8-byte aligned:
//
//	bits  0-29  pid of the owning process (0: unlocked)
//	bit   30    owner died: the holder took the lock from a dead owner and
//	            has not yet marked the protected state consistent
//	bit   31    waiters: some process may be asleep on the word
//	bits 32-63  low 32 bits of the owner's start time (clock ticks since boot)
//
// A word whose pid bits are all set (0x3FFFFFFF; no pid reaches it, since
// pid_max is at most 2^22) marks a lock made unrecoverable.
//
// Locking is one compare-and-swap of 0 to (pid | start<<32), unlocking one
// compare-and-swap back: no system call when nobody waits. Contended waiters
// set the waiters bit and sleep on the low 32 bits of the word (the shared
// futex flavour): up to a few goroutines per process in FUTEX_WAIT
// themselves, the rest parked on the process's watcher for the word
// (package park). An unlock that sees the bit wakes one waiter.
//
// # Owner death
//
// Because acquisition writes pid and start time in one atomic step, the word
// always names exactly the process that holds it, and a pid reused by a later
// process does not match the recorded start time. (Only the low 32 bits of
// the start time are kept: a reused pid could be mistaken for the owner only
// if it started a multiple of 2^32 clock ticks, about 497 days at 100 Hz,
// after the owner.) A waiter that has slept for
// a check interval without being woken reads the owner's /proc entry; if the
// owner has exited, it takes the lock with the owner-died bit set and Lock
// returns ErrOwnerDead. The new holder repairs what the lock protects and
// calls MarkConsistent; if it unlocks without doing so, the lock becomes
// unrecoverable and every later Lock returns ErrNotRecoverable (the POSIX
// robust-mutex contract). A waiter thus recovers a dead owner's lock within
// one check interval (CheckInterval) plus the cost of reading /proc.
//
// Owner identity is per process, not per goroutine: like sync.Mutex, a lock
// held by one goroutine may be unlocked by another goroutine of the same
// process, and a process that locks twice without unlocking deadlocks.
// Processes sharing a lock must share a pid namespace.
package lock

import (
	"errors"
	"math"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/internal/proc"
)

// Errors returned by Lock; the public packages re-export them.
var (
	// ErrOwnerDead reports that the previous owner died holding the lock.
	// The caller now holds the lock and should repair the protected state
	// and call MarkConsistent before unlocking.
	ErrOwnerDead = errors.New("previous owner died holding the lock")

	// ErrNotRecoverable reports that an owner died and the process that
	// recovered the lock released it without marking it consistent. The
	// lock is not held; no later Lock can succeed.
	ErrNotRecoverable = errors.New("lock not recoverable: state left inconsistent after owner death")

	// ErrNotOwner reports an Unlock or MarkConsistent by a process that does
	// not hold the lock.
	ErrNotOwner = errors.New("lock not held by this process")
)

const (
	pidMask     = 1<<30 - 1
	diedBit     = 1 << 30
	waitersBit  = 1 << 31
	poisoned    = pidMask
	wakeAll     = math.MaxInt32
	startShift  = 32
	checkPeriod = 25 * time.Millisecond
)

// CheckInterval is how long a waiter sleeps before it checks whether the
// owner is still alive.
const CheckInterval = checkPeriod

// Size is the number of bytes a lock word occupies; it must be 8-byte
// aligned.
const Size = 8

// Mutex is one process's handle on a lock word. The zero Mutex is not
// usable; make one with New. A Mutex may be copied.
type Mutex struct {
	word  *uint64
	me    uint64 // this process's owner value: pid | start<<32
	guard Guard  // nil: the memory is never closed under the handle
}

// A Guard reports whether the memory holding a lock word is still in use:
// Err returns nil while it is, and the error to report once it has been
// closed (a *shm.Segment is one). A closed segment's memory reads as zero
// (see shm.Segment.Close), so a closed lock looks free: operations check
// the guard before they take a lock and again after, undoing what they
// took if it was closed meanwhile. Unlock and MarkConsistent need no
// check first, since they cannot succeed on a zero word; they check when
// they fail.
type Guard interface{ Err() error }

// New returns a handle on the lock word at w, which must be 8-byte aligned
// memory shared with the other processes that use the lock, initially zero.
// guard, if not nil, tells when that memory has been closed.
func New(w *uint64, guard Guard) (Mutex, error) {
	if uintptr(unsafe.Pointer(w))%8 != 0 {
		return Mutex{}, errors.New("lock: word not 8-byte aligned")
	}
	me, err := self()
	if err != nil {
		return Mutex{}, err
	}
	return Mutex{word: w, me: me, guard: guard}, nil
}

// closed returns the guard's error, nil while the memory is in use.
func (m Mutex) closed() error {
	if m.guard == nil {
		return nil
	}
	return m.guard.Err()
}

func self() (uint64, error) {
	id, err := proc.Self()
	if err != nil {
		return 0, err
	}
	if id.Pid <= 0 || id.Pid >= pidMask {
		return 0, errors.New("lock: pid out of range")
	}
	return OwnerWord(id), nil
}

// OwnerWord returns the word that records process id as an owner: what a
// lock word holds while id holds the lock, and what other shared records of
// processes (a barrier's arrivals) store.
func OwnerWord(id proc.ID) uint64 {
	return uint64(id.Pid) | uint64(uint32(id.Start))<<startShift
}

// OwnerPid returns the process ID an owner word (or a lock word) records.
func OwnerPid(word uint64) int { return int(word & pidMask) }

// OwnerAlive reports whether the process an owner word (or a lock word,
// whose flag bits it ignores) records still runs; pid reuse does not fool
// it.
func OwnerAlive(word uint64) bool {
	return proc.Alive(int(word&pidMask), word>>startShift, 1<<32-1)
}
