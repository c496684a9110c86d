package semaphore

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/shmkit/shmkit/internal/futex"
	"github.com/shmkit/shmkit/internal/lock"
	"github.com/shmkit/shmkit/internal/park"
	"github.com/shmkit/shmkit/internal/proc"
	"github.com/shmkit/shmkit/shm"
)

// Barrier makes a fixed number of parties wait for each other, over and
// over: Python's multiprocessing.Barrier. Each Wait blocks until all
// parties have called Wait in the same round, then all return together and
// the barrier is ready for the next round.
//
// A barrier breaks, and every Wait in progress or to come returns an error
// matching ErrBroken until Reset, when a party dies while waiting at it,
// when a party's context ends while it waits (as a Python timeout does), or
// when Abort is called. Waiting parties notice a dead party within
// CheckInterval (longer with many parties).
type Barrier struct {
	mu      lock.Mutex   // serialises arrivals, breaking and resetting
	seg     *shm.Segment // checked on every operation; keeps the barrier mapped
	state   *uint32      // round number in bits 0-29, broken flag, waiters flag
	arrived *uint32      // parties waiting in this round
	resets  *uint32      // bumped by Reset, so that waiters can tell a reset from a release
	resetOf *uint32      // the round the latest Reset ended
	slots   []uint64     // arrived parties' identities, for checking they live
	parties int
	name    string
}

// Barrier object layout: the lock word, the state word, the arrival count,
// the party count and the reset count, then one 8-byte slot per party
// holding the identity (pid and start time) of the party that arrived in
// it.
const (
	barrierLock    = 0
	barrierState   = 8
	barrierArrived = 12
	barrierParties = 16
	barrierResets  = 20
	barrierResetOf = 24 // the round the latest Reset ended
	barrierSlots   = 64

	barrierBroken  = 1 << 30
	barrierWaiters = 1 << 31
	barrierRound   = barrierBroken - 1
)

// MaxParties is the largest number of parties a Barrier may have.
const MaxParties = 1 << 16

// NewBarrier creates a barrier named name in seg for the given number of
// parties.
func NewBarrier(seg *shm.Segment, name string, parties int) (*Barrier, error) {
	if parties < 1 || parties > MaxParties {
		return nil, fmt.Errorf("semaphore: barrier %q: %d parties, want 1 to %d", name, parties, MaxParties)
	}
	init := make([]byte, barrierParties+4)
	binary.LittleEndian.PutUint32(init[barrierParties:], uint32(parties))
	return barrier(seg, name, parties, true, init)
}

// OpenBarrier opens the existing barrier named name in seg.
func OpenBarrier(seg *shm.Segment, name string) (*Barrier, error) {
	return barrier(seg, name, 0, false, nil)
}

func barrier(seg *shm.Segment, name string, parties int, create bool, init []byte) (*Barrier, error) {
	obj, err := object(seg, name, "barrier", barrierSlots+8*int64(max(parties, 1)), create, init...)
	if err != nil {
		return nil, err
	}
	n := int(atomic.LoadUint32(word32(obj, barrierParties)))
	if n < 1 || n > MaxParties || obj.Size < barrierSlots+8*int64(n) {
		return nil, fmt.Errorf("semaphore: %w: barrier %q records %d parties in %d bytes", shm.ErrCorrupt, name, n, obj.Size)
	}
	mu, err := lock.New(word64(obj, barrierLock), seg)
	if err != nil {
		return nil, fmt.Errorf("semaphore: %w", err)
	}
	return &Barrier{mu: mu, seg: seg, state: word32(obj, barrierState), arrived: word32(obj, barrierArrived),
		resets: word32(obj, barrierResets), resetOf: word32(obj, barrierResetOf),
		slots: words64(obj, barrierSlots, n), parties: n, name: name}, nil
}

// Parties returns the number of parties the barrier waits for.
func (b *Barrier) Parties() int { return b.parties }

// Waiting returns the number of parties waiting in the current round.
func (b *Barrier) Waiting() int {
	n := int(atomic.LoadUint32(b.arrived))
	closedPanic(b.seg, "barrier", b.name) // after reading: see shm.Segment.Close
	return n
}

// Broken reports whether the barrier is broken.
func (b *Barrier) Broken() bool {
	broken := atomic.LoadUint32(b.state)&barrierBroken != 0
	closedPanic(b.seg, "barrier", b.name)
	return broken
}

// Name returns b's name in its segment.
func (b *Barrier) Name() string { return b.name }

// lockState pins the segment and takes the barrier's internal lock, and
// unlockState undoes both: pinned, a Close waits for the critical section
// to end, so that the lock is never left held in the segment. A holder
// that died may have left a round half-advanced (arrivals counted off,
// round number not yet bumped) that no party could complete, so taking the
// lock over from a dead holder breaks the barrier: its parties get
// ErrBroken, as when a party dies, rather than wait for ever.
func (b *Barrier) lockState() error {
	if err := b.seg.Pin(); err != nil {
		return fmt.Errorf("semaphore: barrier %q: %w", b.name, err)
	}
	died, err := b.mu.Recover(context.Background())
	if err != nil {
		b.seg.Unpin()
		return fmt.Errorf("semaphore: barrier %q: %w", b.name, err)
	}
	if died {
		b.breakLocked()
	}
	return nil
}

func (b *Barrier) unlockState() {
	b.mu.Unlock()
	b.seg.Unpin()
}

// Wait waits until all parties have called Wait in this round, or until
// ctx ends. It returns the order of this party's arrival in the round,
// 0 to Parties()-1, the same as Python's Barrier.wait. It fails with an
// error matching ErrBroken when the barrier is or becomes broken, and one
// matching both ErrBroken and ctx.Err() when ctx ends: a party that gives
// up breaks the barrier for the others, who would otherwise wait for ever.
func (b *Barrier) Wait(ctx context.Context) (int, error) {
	me, err := selfWord()
	if err != nil {
		return 0, err
	}
	if err := b.lockState(); err != nil {
		return 0, err
	}
	st := atomic.LoadUint32(b.state)
	if st&barrierBroken != 0 {
		b.unlockState()
		return 0, b.brokenErr()
	}
	idx := int(atomic.LoadUint32(b.arrived))
	if idx >= b.parties {
		// Only a corrupt object gets here: the last arrival resets it.
		b.breakLocked()
		b.unlockState()
		return 0, fmt.Errorf("%w: barrier %q has %d arrivals for %d parties", ErrBroken, b.name, idx, b.parties)
	}
	if idx == b.parties-1 {
		// The last party: start the next round and wake everyone.
		atomic.StoreUint32(b.arrived, 0)
		b.advance(st)
		b.unlockState()
		return idx, nil
	}
	atomic.StoreUint64(&b.slots[idx], me)
	atomic.StoreUint32(b.arrived, uint32(idx+1))
	resets := atomic.LoadUint32(b.resets)
	b.unlockState()

	round := st & barrierRound
	next := futex.Now() + int64(b.checkInterval())
	for {
		cur := atomic.LoadUint32(b.state)
		// Checked after reading: a closed segment's memory reads as zero,
		// a new round.
		if err := b.seg.Err(); err != nil {
			return idx, fmt.Errorf("semaphore: barrier %q: %w", b.name, err)
		}
		if cur&barrierRound != round {
			// The round is over: released, unless a Reset ended it.
			if atomic.LoadUint32(b.resets) != resets && atomic.LoadUint32(b.resetOf) == round {
				return idx, b.brokenErr()
			}
			return idx, nil
		}
		if cur&barrierBroken != 0 {
			return idx, b.brokenErr()
		}
		if err := ctx.Err(); err != nil {
			if b.breakRound(round, false) {
				return idx, fmt.Errorf("%w: barrier %q: %w", ErrBroken, b.name, err)
			}
			continue // the round ended first; report how
		}
		if cur&barrierWaiters == 0 && !atomic.CompareAndSwapUint32(b.state, cur, cur|barrierWaiters) {
			continue
		}
		if park.Wait(ctx, b.state, cur|barrierWaiters, next) == park.ErrTimeout {
			next = futex.Now() + int64(b.checkInterval())
			b.breakRound(round, true)
		}
	}
}

// advance starts the next round and wakes the waiters.
func (b *Barrier) advance(st uint32) {
	next := (st + 1) & barrierRound
	if old := atomic.SwapUint32(b.state, next); old&barrierWaiters != 0 {
		futex.Wake(b.state, wakeAll)
	}
}

// Abort breaks the barrier: parties waiting and arriving get ErrBroken
// until Reset.
func (b *Barrier) Abort() {
	if err := b.lockState(); err != nil {
		// It fails only once the segment is closed.
		panic(err)
	}
	b.breakLocked()
	b.unlockState()
}

func (b *Barrier) breakLocked() {
	for {
		st := atomic.LoadUint32(b.state)
		if st&barrierBroken != 0 {
			return
		}
		if atomic.CompareAndSwapUint32(b.state, st, (st|barrierBroken)&^barrierWaiters) {
			if st&barrierWaiters != 0 {
				futex.Wake(b.state, wakeAll)
			}
			return
		}
	}
}

// Reset returns the barrier to its initial, unbroken state with nobody
// waiting. Parties waiting in the current round get ErrBroken.
func (b *Barrier) Reset() error {
	if err := b.lockState(); err != nil {
		return err
	}
	defer b.unlockState()
	// The reset count and the round it ends change before the round does,
	// so a waiter that sees the new round also sees whether a reset ended
	// its own round or a release came first.
	st := atomic.LoadUint32(b.state)
	atomic.StoreUint32(b.resetOf, st&barrierRound)
	atomic.AddUint32(b.resets, 1)
	atomic.StoreUint32(b.arrived, 0)
	b.advance(st &^ barrierBroken)
	return nil
}

// breakRound breaks the barrier if it is still in the given round and,
// when onlyIfDead, a party that arrived in it has died. It reports whether
// the barrier is broken in that round now. Checking the round under the
// lock keeps a party that gives up late from breaking the next round.
func (b *Barrier) breakRound(round uint32, onlyIfDead bool) bool {
	if b.lockState() != nil {
		return false
	}
	defer b.unlockState()
	st := atomic.LoadUint32(b.state)
	if st&barrierRound != round {
		return false
	}
	if st&barrierBroken != 0 {
		return true
	}
	if onlyIfDead && !b.partyDiedLocked() {
		return false
	}
	b.breakLocked()
	return true
}

// partyDiedLocked reports whether a party that arrived in the current
// round has died. The caller holds the lock.
func (b *Barrier) partyDiedLocked() bool {
	n := min(int(atomic.LoadUint32(b.arrived)), b.parties)
	for i := range n {
		if w := atomic.LoadUint64(&b.slots[i]); !lock.OwnerAlive(w) {
			return true
		}
	}
	return false
}

// checkInterval spreads the liveness checks of many waiting parties, which
// each read /proc for every other party.
func (b *Barrier) checkInterval() int64 {
	return int64(CheckInterval) * int64(max(1, b.parties/8))
}

func (b *Barrier) brokenErr() error {
	return fmt.Errorf("%w: barrier %q", ErrBroken, b.name)
}

// selfWord returns this process's identity as a slot records it: as lock
// words record owners.
func selfWord() (uint64, error) {
	id, err := proc.Self()
	if err != nil {
		return 0, fmt.Errorf("semaphore: %w", err)
	}
	return lock.OwnerWord(id), nil
}
