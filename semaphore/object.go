package semaphore

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/shmkit/shmkit/internal/lock"
	"github.com/shmkit/shmkit/shm"
)

// Errors. ErrOwnerDead and ErrNotRecoverable are the same errors as
// array.ErrOwnerDead and the ones package value handles internally.
var (
	// ErrOwnerDead reports that the previous owner of a Mutex or ReentrantMutex died
	// holding it. The caller holds the lock now; it should repair what the
	// lock protects and call MarkConsistent before unlocking.
	ErrOwnerDead = lock.ErrOwnerDead

	// ErrNotRecoverable reports a Mutex or ReentrantMutex whose owner died and
	// whose next holder released it without calling MarkConsistent. The
	// lock is not held, and no LockContext will succeed.
	ErrNotRecoverable = lock.ErrNotRecoverable

	// ErrNotOwner reports MarkConsistent by a process or handle that does
	// not hold the lock.
	ErrNotOwner = lock.ErrNotOwner

	// ErrOverRelease reports a Release that would raise a BoundedSemaphore
	// above its initial value, or any semaphore above MaxValue.
	ErrOverRelease = errors.New("semaphore: released too many times")

	// ErrBroken reports a Barrier that is broken: a party died while
	// waiting, gave up (its context ended), or Abort was called.
	ErrBroken = errors.New("semaphore: barrier broken")
)

// CheckInterval is how long a process waiting for a lock sleeps before it
// checks whether the holder is still alive: a lock whose holder died is
// taken over within about this long.
const CheckInterval = lock.CheckInterval

// layoutVersion is part of every object's recorded layout, so that a
// process built with an incompatible version of this package gets
// shm.ErrTypeMismatch rather than misreading the object.
const layoutVersion = "1"

// object allocates (create) or attaches to the named object of the given
// kind and size in seg. A new object holds init, then zeros.
func object(seg *shm.Segment, name, kind string, size int64, create bool, init ...byte) (shm.Object, error) {
	spec := shm.ObjectSpec{Name: name, Kind: kind, Type: "semaphore." + kind,
		Layout: "semaphore." + kind + "/" + layoutVersion, Size: size, Init: init}
	var (
		obj shm.Object
		err error
	)
	if create {
		obj, err = seg.Alloc(spec)
	} else {
		spec.Size = 0 // some objects' sizes depend on creation parameters
		obj, err = seg.Attach(spec)
	}
	if err != nil {
		return shm.Object{}, fmt.Errorf("semaphore: %w", err)
	}
	if obj.Size < size {
		return shm.Object{}, fmt.Errorf("semaphore: %w: %s %q has %d bytes, want at least %d",
			shm.ErrCorrupt, kind, name, obj.Size, size)
	}
	return obj, nil
}

// closedPanic panics, for a method without an error result, once seg has
// been closed: a use after Close is the caller's bug (see shm.Segment.Close).
func closedPanic(seg *shm.Segment, kind, name string) {
	if err := seg.Err(); err != nil {
		panic(fmt.Errorf("semaphore: %s %q: %w", kind, name, err))
	}
}

// word32 and word64 return the aligned word at off in an object's memory.
// Objects are cache-line aligned and the offsets used are multiples of the
// word size.
func word32(obj shm.Object, off int) *uint32 {
	return (*uint32)(unsafe.Pointer(&obj.Bytes[off : off+4][0]))
}

func word64(obj shm.Object, off int) *uint64 {
	return (*uint64)(unsafe.Pointer(&obj.Bytes[off : off+8][0]))
}

// words64 returns n 8-byte words at off in an object's memory.
func words64(obj shm.Object, off, n int) []uint64 {
	b := obj.Bytes[off : off+8*n] // bounds check for all n words
	return unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(b))), n)
}
