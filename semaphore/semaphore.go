package semaphore

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"sync/atomic"

	"github.com/shmkit/shmkit/internal/futex"
	"github.com/shmkit/shmkit/internal/park"
	"github.com/shmkit/shmkit/shm"
)

// MaxValue is the largest value a semaphore can hold.
const MaxValue = 1<<31 - 1

// The semaphore word: the count in the low 31 bits, and a flag saying that
// some process may be waiting for it to become positive. Release clears
// the flag and, if it was set, wakes every waiting process; waiters that
// find no permit set it again. Waking all (at most one thread per waiting
// process, see package park) means that a waiter killed after being woken
// cannot swallow the wake-up the others needed.
const (
	countMask   = MaxValue
	semaWaiters = 1 << 31
	wakeAll     = math.MaxInt32
)

// Semaphore object layout: the semaphore word and the bound, on one cache
// line.
const (
	semaWord  = 0
	semaBound = 4
	semaSize  = 64
)

// sema is the implementation shared by Semaphore and BoundedSemaphore.
type sema struct {
	word  *uint32
	bound uint32       // Release fails beyond it
	seg   *shm.Segment // checked on every operation; keeps the word mapped
	kind  string
	name  string
}

func newSema(seg *shm.Segment, name, kind string, value int, bounded, create bool) (sema, error) {
	if create && (value < 0 || value > MaxValue) {
		return sema{}, fmt.Errorf("semaphore: %s %q: initial value %d out of range [0, %d]", kind, name, value, MaxValue)
	}
	bound := uint32(MaxValue)
	if bounded {
		bound = uint32(value)
	}
	init := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, uint32(value)), bound)
	obj, err := object(seg, name, kind, semaSize, create, init...)
	if err != nil {
		return sema{}, err
	}
	return sema{word: word32(obj, semaWord), bound: atomic.LoadUint32(word32(obj, semaBound)), seg: seg, kind: kind, name: name}, nil
}

// A permit taken by compare-and-swap was taken in the segment: the memory
// a closed segment leaves reads as zero, and no permit can be taken there.
// So acquiring checks the segment only before it looks.

func (s *sema) tryAcquire() bool {
	closedPanic(s.seg, s.kind, s.name)
	for {
		c := atomic.LoadUint32(s.word)
		if c&countMask == 0 {
			return false
		}
		if atomic.CompareAndSwapUint32(s.word, c, c-1) {
			return true
		}
	}
}

func (s *sema) acquire(ctx context.Context) error {
	for {
		if err := s.seg.Err(); err != nil {
			return fmt.Errorf("semaphore: %q: %w", s.name, err)
		}
		c := atomic.LoadUint32(s.word)
		if c&countMask > 0 {
			if atomic.CompareAndSwapUint32(s.word, c, c-1) {
				return nil
			}
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("semaphore: %q: %w", s.name, err)
		}
		if c&semaWaiters == 0 && !atomic.CompareAndSwapUint32(s.word, c, c|semaWaiters) {
			continue
		}
		if err := park.Wait(ctx, s.word, c|semaWaiters, 0); err != nil && ctx.Err() == nil {
			return fmt.Errorf("semaphore: %q: %w", s.name, err)
		}
	}
}

func (s *sema) release() error {
	if err := s.seg.Err(); err != nil {
		return fmt.Errorf("semaphore: %q: %w", s.name, err)
	}
	for {
		c := atomic.LoadUint32(s.word)
		v := c & countMask
		if v >= s.bound {
			return fmt.Errorf("%w: %q holds %d, bound %d", ErrOverRelease, s.name, v, s.bound)
		}
		if atomic.CompareAndSwapUint32(s.word, c, v+1) {
			if c&semaWaiters != 0 {
				futex.Wake(s.word, wakeAll)
			}
			return nil
		}
	}
}

func (s *sema) value() int {
	v := int(atomic.LoadUint32(s.word) & countMask)
	closedPanic(s.seg, s.kind, s.name) // after reading: see shm.Segment.Close
	return v
}

// Semaphore is a counting semaphore shared by processes: Acquire takes a
// permit, waiting while there is none; Release returns one. Permits have no
// owner: any process may release, and a permit held by a process that dies
// is not returned.
type Semaphore struct{ s sema }

// NewSemaphore creates a semaphore named name in seg holding value permits.
func NewSemaphore(seg *shm.Segment, name string, value int) (*Semaphore, error) {
	s, err := newSema(seg, name, "sema", value, false, true)
	return &Semaphore{s}, err
}

// OpenSemaphore opens the existing semaphore named name in seg.
func OpenSemaphore(seg *shm.Segment, name string) (*Semaphore, error) {
	s, err := newSema(seg, name, "sema", 0, false, false)
	return &Semaphore{s}, err
}

// Acquire takes a permit, waiting as long as ctx allows for one. On failure
// it returns an error matching ctx.Err() (with errors.Is) and leaves the
// semaphore unchanged.
func (s *Semaphore) Acquire(ctx context.Context) error { return s.s.acquire(ctx) }

// TryAcquire takes a permit if one is available, without waiting, and
// reports whether it did.
func (s *Semaphore) TryAcquire() bool { return s.s.tryAcquire() }

// Release returns a permit, waking a waiter if there is one. It fails with
// ErrOverRelease only if the count would exceed MaxValue.
func (s *Semaphore) Release() error { return s.s.release() }

// Value returns the number of permits available now.
func (s *Semaphore) Value() int { return s.s.value() }

// BoundedSemaphore is a Semaphore whose Release fails when it would raise
// the count above the initial value, which catches a process releasing
// more than it acquired.
type BoundedSemaphore struct{ s sema }

// NewBoundedSemaphore creates a bounded semaphore named name in seg holding
// value permits, which is also its bound.
func NewBoundedSemaphore(seg *shm.Segment, name string, value int) (*BoundedSemaphore, error) {
	s, err := newSema(seg, name, "bsema", value, true, true)
	return &BoundedSemaphore{s}, err
}

// OpenBoundedSemaphore opens the existing bounded semaphore named name in
// seg.
func OpenBoundedSemaphore(seg *shm.Segment, name string) (*BoundedSemaphore, error) {
	s, err := newSema(seg, name, "bsema", 0, true, false)
	return &BoundedSemaphore{s}, err
}

// Acquire takes a permit, waiting as long as ctx allows for one. On failure
// it returns an error matching ctx.Err() (with errors.Is) and leaves the
// semaphore unchanged.
func (b *BoundedSemaphore) Acquire(ctx context.Context) error { return b.s.acquire(ctx) }

// TryAcquire takes a permit if one is available, without waiting, and
// reports whether it did.
func (b *BoundedSemaphore) TryAcquire() bool { return b.s.tryAcquire() }

// Release returns a permit. It fails with ErrOverRelease, changing
// nothing, if the count would exceed the initial value.
func (b *BoundedSemaphore) Release() error { return b.s.release() }

// Value returns the number of permits available now.
func (b *BoundedSemaphore) Value() int { return b.s.value() }
