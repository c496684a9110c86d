package queue

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync/atomic"
	"unsafe"

	"github.com/shmkit/shmkit/internal/futex"
	"github.com/shmkit/shmkit/internal/lock"
	"github.com/shmkit/shmkit/internal/park"
	"github.com/shmkit/shmkit/internal/proc"
	"github.com/shmkit/shmkit/shm"
)

// The layout of a queue object; docs/layout.md has the same table.
const (
	queueMagic    = 0x45555153 // "SQUE" in little-endian byte order
	layoutVersion = 1

	offMagic      = 0  // uint32
	offVersion    = 4  // uint32
	offFormat     = 8  // uint32: 1 raw, 2 bytes, 3 CBOR
	offFlags      = 12 // uint32: bit 0 joinable
	offCapacity   = 16 // uint64: slots
	offMaxMessage = 24 // uint64: bytes of payload a slot holds
	offStride     = 32 // uint64: bytes from one slot to the next
	offRecords    = 40 // uint32: process records, MaxProcesses

	offTail      = 128 // uint64: next position to claim (a hint)
	offHead      = 256 // uint64: next position to take (a hint)
	offClosed    = 384 // uint32: closed for writing
	offDataWait  = 388 // uint32: consumers wait here
	offSpaceWait = 392 // uint32: producers wait here
	offJoinWait  = 396 // uint32: Join waits here
	offRegLock   = 400 // uint64: lock word of the process records
	offRetired   = 408 // uint64: tasks lost by records since recycled
	offAbandoned = 416 // uint64: claims of dead producers released
	headerSize   = 512

	recordSize = 64
	recOwner   = 0 // uint64: owner word (pid | start<<32) of the process, 0 if free
	recHeld    = 8 // int64: tasks the process got and has not marked done

	slotsOff  = headerSize + MaxProcesses*recordSize
	slotState = 0  // uint64: see state
	slotLen   = 8  // uint32: bytes of the message
	slotData  = 16 // the message
)

// MaxProcesses is how many processes may use one queue at a time. A
// process keeps its record until it exits; a record of a dead process is
// reused.
const MaxProcesses = 256

// A slot's state word:
//
//	bits  0-1   phase: 0 free, 1 being written, 2 full
//	bits  2-9   record of the writing process (phase 1 only)
//	bits 10-63  position minus slot index, modulo 2^54
//
// Position p lives in slot p mod capacity. Storing p minus the slot index
// makes zeroed memory an empty queue: slot i is free for position i.
const (
	phaseFree    = 0
	phaseWriting = 1
	phaseFull    = 2
	phaseMask    = 3
	idxShift     = 2
	idxMask      = MaxProcesses - 1
	posShift     = 10
	posMask      = 1<<54 - 1
)

// checkInterval is how often a waiter blocked behind another process
// (a claimed slot, a held task) checks that the process still lives.
const checkInterval = lock.CheckInterval

// ring is one handle's view of a queue object: the untyped protocol of
// slots, positions and process records. Its geometry is read once, when
// the handle attaches, and never re-read from shared memory.
type ring struct {
	seg      *shm.Segment
	base     unsafe.Pointer // start of the object
	capacity uint64
	mask     uint64 // capacity-1 when capacity is a power of two, else 0
	maxMsg   int
	stride   uintptr
	format   format
	joinable bool

	tail, head                            *uint64
	closed, dataWait, spaceWait, joinWait *uint32
	retired, abandoned                    *uint64
	regLock                               lock.Mutex
	me                                    uint64 // this process's owner word
	idx                                   uint64 // this process's record
	held                                  *int64 // this process's record's held count

	// peer, for the rings of a pipe, is the end word of the process on
	// the other side: a wait for it (for a message, or for room) looks
	// at it every checkInterval, and closes the ring once the peer has
	// closed its end or died (see peerGone). Nil for a queue.
	peer *uint64
}

// geometry is what the creator chooses and the header records.
type geometry struct {
	format   format
	joinable bool
	capacity uint64
	maxMsg   int
}

// stride returns the bytes a slot takes: its header and the largest
// message, rounded up to a cache line, so that neighbouring slots written
// by different processes do not share one.
func (g geometry) stride() uint64 { return (slotData + uint64(g.maxMsg) + 63) &^ 63 }

// size returns the bytes of the object, or an error if it is absurd.
func (g geometry) size() (int64, error) {
	s := g.stride()
	if g.capacity > (math.MaxInt64-slotsOff)/s {
		return 0, fmt.Errorf("queue: %d slots of %d bytes do not fit in memory", g.capacity, s)
	}
	return int64(slotsOff + g.capacity*s), nil
}

// header returns the header the creator writes, before the object is
// published; everything else starts zero.
func (g geometry) header() []byte {
	h := make([]byte, headerSize)
	le := binary.LittleEndian
	le.PutUint32(h[offMagic:], queueMagic)
	le.PutUint32(h[offVersion:], layoutVersion)
	le.PutUint32(h[offFormat:], uint32(g.format))
	if g.joinable {
		le.PutUint32(h[offFlags:], 1)
	}
	le.PutUint64(h[offCapacity:], g.capacity)
	le.PutUint64(h[offMaxMessage:], uint64(g.maxMsg))
	le.PutUint64(h[offStride:], g.stride())
	le.PutUint32(h[offRecords:], MaxProcesses)
	return h
}

func corrupt(obj shm.Object, format string, args ...any) error {
	return fmt.Errorf("queue %q: %w: %s", obj.Name, ErrCorrupt, fmt.Sprintf(format, args...))
}

// readGeometry validates the header of obj against its size and returns
// what it records.
func readGeometry(obj shm.Object) (geometry, error) {
	var g geometry
	if len(obj.Bytes) < slotsOff {
		return g, corrupt(obj, "%d bytes, less than the %d-byte header", len(obj.Bytes), slotsOff)
	}
	p := unsafe.Pointer(unsafe.SliceData(obj.Bytes))
	if m := atomic.LoadUint32(word32(p, offMagic)); m != queueMagic {
		return g, corrupt(obj, "bad magic %#x", m)
	}
	if v := atomic.LoadUint32(word32(p, offVersion)); v != layoutVersion {
		return g, corrupt(obj, "layout version %d, want %d", v, layoutVersion)
	}
	g.format = format(atomic.LoadUint32(word32(p, offFormat)))
	flags := atomic.LoadUint32(word32(p, offFlags))
	g.joinable = flags&1 != 0
	capacity := atomic.LoadUint64(word64(p, offCapacity))
	maxMsg := atomic.LoadUint64(word64(p, offMaxMessage))
	stride := atomic.LoadUint64(word64(p, offStride))
	records := atomic.LoadUint32(word32(p, offRecords))
	switch {
	case g.format < formatRaw || g.format > formatCBOR:
		return g, corrupt(obj, "message format %d", g.format)
	case flags&^1 != 0:
		return g, corrupt(obj, "flags %#x", flags)
	case capacity < 1 || capacity > MaxCapacity:
		return g, corrupt(obj, "capacity %d", capacity)
	case maxMsg > MaxMessageLimit:
		return g, corrupt(obj, "maximum message %d", maxMsg)
	case records != MaxProcesses:
		return g, corrupt(obj, "%d process records, want %d", records, MaxProcesses)
	}
	g.capacity, g.maxMsg = capacity, int(maxMsg)
	if stride != g.stride() {
		return g, corrupt(obj, "slot stride %d, want %d", stride, g.stride())
	}
	if size, _ := g.size(); size != int64(len(obj.Bytes)) {
		return g, corrupt(obj, "%d bytes, geometry needs %d", len(obj.Bytes), size)
	}
	return g, nil
}

func word32(p unsafe.Pointer, off uintptr) *uint32 { return (*uint32)(unsafe.Add(p, off)) }
func word64(p unsafe.Pointer, off uintptr) *uint64 { return (*uint64)(unsafe.Add(p, off)) }

// attach returns a view of the queue object obj, whose header matches g
// (checked by the caller), and registers this process in its records.
func attach(seg *shm.Segment, obj shm.Object, g geometry) (*ring, error) {
	r := view(obj, g)
	r.seg = seg
	var err error
	if r.regLock, err = lock.New(word64(r.base, offRegLock), seg); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	if err := r.register(); err != nil {
		return nil, err
	}
	return r, nil
}

// view returns a view of the queue object obj, whose header matches g,
// without registering.
func view(obj shm.Object, g geometry) *ring {
	p := unsafe.Pointer(unsafe.SliceData(obj.Bytes))
	r := &ring{
		base:      p,
		capacity:  g.capacity,
		maxMsg:    g.maxMsg,
		stride:    uintptr(g.stride()),
		format:    g.format,
		joinable:  g.joinable,
		tail:      word64(p, offTail),
		head:      word64(p, offHead),
		closed:    word32(p, offClosed),
		dataWait:  word32(p, offDataWait),
		spaceWait: word32(p, offSpaceWait),
		joinWait:  word32(p, offJoinWait),
		retired:   word64(p, offRetired),
		abandoned: word64(p, offAbandoned),
	}
	if g.capacity&(g.capacity-1) == 0 {
		r.mask = g.capacity - 1
	}
	return r
}

func (r *ring) record(i uint64) unsafe.Pointer {
	return unsafe.Add(r.base, headerSize+uintptr(i)*recordSize)
}

func (r *ring) owner(i uint64) *uint64 { return (*uint64)(r.record(i)) }

func (r *ring) heldOf(i uint64) *int64 { return (*int64)(unsafe.Add(r.record(i), recHeld)) }

// register finds this process's record, or takes a free one, or one of a
// dead process, which it first cleans up: every slot the dead process had
// claimed is released, and its held tasks are retired as lost.
func (r *ring) register() error {
	if err := r.seg.Pin(); err != nil {
		return err
	}
	defer r.seg.Unpin()
	me, err := selfOwner()
	if err != nil {
		return err
	}
	r.me = me
	if _, err := r.regLock.Recover(context.Background()); err != nil {
		// Every step below can be redone, so a dead holder needs no repair.
		return fmt.Errorf("queue: lock process records: %w", err)
	}
	defer r.regLock.Unlock()
	free := -1
	for i := range uint64(MaxProcesses) {
		switch atomic.LoadUint64(r.owner(i)) {
		case me:
			r.use(i)
			return nil
		case 0:
			if free < 0 {
				free = int(i)
			}
		}
	}
	if free >= 0 {
		atomic.StoreUint64(r.owner(uint64(free)), me)
		r.use(uint64(free))
		return nil
	}
	for i := range uint64(MaxProcesses) {
		if !r.alive(i) {
			atomic.StoreUint64(r.owner(i), me)
			r.releaseClaims(i)
			if n := atomic.SwapInt64(r.heldOf(i), 0); n > 0 {
				atomic.AddUint64(r.retired, uint64(n))
			}
			r.use(i)
			return nil
		}
	}
	return fmt.Errorf("%w: all %d records belong to live processes", ErrHandles, MaxProcesses)
}

func (r *ring) use(i uint64) {
	r.idx = i
	r.held = r.heldOf(i)
}

// releaseClaims releases every slot that record i claimed for writing:
// its process is dead, so none of them will be published.
func (r *ring) releaseClaims(i uint64) {
	for j := range r.capacity {
		s := atomic.LoadUint64(r.stateOf(j))
		if s&phaseMask == phaseWriting && (s>>idxShift)&idxMask == i {
			r.release(j, s)
		}
	}
}

// release turns the claimed slot j, in state s, into a slot consumed at
// its position, which consumers skip. It reports whether it did (another
// process may have done it first).
func (r *ring) release(j, s uint64) bool {
	pos := r.posOf(s, j)
	if !atomic.CompareAndSwapUint64(r.stateOf(j), s, r.state(phaseFree, 0, pos+r.capacity, j)) {
		return false
	}
	atomic.AddUint64(r.abandoned, 1)
	wake(r.dataWait)
	wake(r.spaceWait)
	wake(r.joinWait)
	return true
}

// index returns the slot of position p.
func (r *ring) index(p uint64) uint64 {
	if r.mask != 0 || r.capacity == 1 {
		return p & r.mask
	}
	return p % r.capacity
}

func (r *ring) slot(i uint64) unsafe.Pointer {
	return unsafe.Add(r.base, slotsOff+uintptr(i)*r.stride)
}

func (r *ring) stateOf(i uint64) *uint64 { return (*uint64)(r.slot(i)) }

// state returns the state word of slot i in phase ph at position pos.
func (r *ring) state(ph, idx, pos, i uint64) uint64 {
	return ((pos-i)&posMask)<<posShift | idx<<idxShift | ph
}

// posOf returns the position, modulo 2^54, of slot i's state s.
func (r *ring) posOf(s, i uint64) uint64 { return (s>>posShift + i) & posMask }

// lap returns how far the position of slot i's state s is from p, in
// units of capacity: 0 for p itself, 1 for p+capacity, -1 for
// p-capacity, and 2 (meaning "neither") for anything else.
func (r *ring) lap(s, i, p uint64) int {
	switch (r.posOf(s, i) - p) & posMask {
	case 0:
		return 0
	case r.capacity & posMask:
		return 1
	case -r.capacity & posMask:
		return -1
	}
	return 2
}

// errCorruptSlot reports a slot state that no protocol step writes.
func (r *ring) errCorruptSlot(i, s, p uint64) error {
	return fmt.Errorf("queue: %w: slot %d in state %#x at position %d", ErrCorrupt, i, s, p)
}

// alive reports whether the process of record i still runs.
func (r *ring) alive(i uint64) bool {
	w := atomic.LoadUint64(r.owner(i))
	return w != 0 && lock.OwnerAlive(w)
}

// peerGone reports whether the peer of a pipe's ring has closed its end
// or died. A closing peer closes the rings itself, right after marking its
// end closed; the ring is closed here as well in case it died in between.
func (r *ring) peerGone() bool {
	w := atomic.LoadUint64(r.peer)
	return w == endClosed || (w != 0 && !lock.OwnerAlive(w))
}

// writerAlive reports whether the process that claimed a slot in state s
// (phase writing) still runs.
func (r *ring) writerAlive(s uint64) bool {
	return r.alive((s >> idxShift) & idxMask)
}

// claim reserves the slot of the next position for this process. It
// returns the position and the slot, which the caller fills and then
// publishes (or abandons). With block false it returns ErrFull instead of
// waiting for room.
func (r *ring) claim(ctx context.Context, block bool) (uint64, uint64, error) {
	var waited uint64 // a claimed slot's state this call has waited on
	for {
		if atomic.LoadUint32(r.closed) != 0 {
			return 0, 0, ErrClosed
		}
		t := atomic.LoadUint64(r.tail)
		i := r.index(t)
		sw := r.stateOf(i)
		s := atomic.LoadUint64(sw)
		if s == r.state(phaseFree, 0, t, i) {
			if !atomic.CompareAndSwapUint64(sw, s, r.state(phaseWriting, r.idx, t, i)) {
				continue
			}
			atomic.CompareAndSwapUint64(r.tail, t, t+1)
			// Closed after the check above: undo the claim, so that
			// a consumer that saw the queue closed and drained sees
			// nothing appear after its io.EOF.
			if atomic.LoadUint32(r.closed) != 0 {
				r.abandon(t, i)
				return 0, 0, ErrClosed
			}
			return t, i, nil
		}
		switch r.lap(s, i, t) {
		case 0, 1:
			// Position t is claimed (and perhaps consumed) already;
			// the claimer has not advanced the tail yet, or died
			// before it could. Advance it for them.
			atomic.CompareAndSwapUint64(r.tail, t, t+1)
			continue
		case -1:
			ph := s & phaseMask
			if ph == phaseFree {
				break // never claimed a lap ago, yet the tail moved on
			}
			// The slot still holds (or is being given) the message of
			// a lap ago: the queue is full.
			if ph == phaseWriting && (s == waited || !block) && !r.writerAlive(s) {
				r.release(i, s)
				continue
			}
			if !block {
				return 0, 0, ErrFull
			}
			recheck := false
			if ph == phaseWriting {
				// Its producer is slow or dead: look at it
				// again after checkInterval at the latest.
				waited = s
				recheck = true
			} else if r.peer != nil {
				// A pipe is full until its one consumer, the
				// peer, reads: wait no longer than it lives.
				if s == waited && r.peerGone() {
					r.close()
					continue
				}
				waited = s
				recheck = true
			}
			if err := r.wait(ctx, r.spaceWait, sw, s, recheck); err != nil {
				return 0, 0, err
			}
			continue
		}
		if atomic.LoadUint64(r.tail) != t {
			continue
		}
		return 0, 0, r.errCorruptSlot(i, s, t)
	}
}

// publish makes the message in claimed slot i visible: the swap orders
// every write of the message before it, for whichever process loads the
// state next.
func (r *ring) publish(t, i uint64) {
	atomic.SwapUint64(r.stateOf(i), r.state(phaseFull, 0, t, i))
}

// abandon gives up the claim of slot i at position t without a message;
// consumers skip it.
func (r *ring) abandon(t, i uint64) {
	atomic.SwapUint64(r.stateOf(i), r.state(phaseFree, 0, t+r.capacity, i))
	wake(r.dataWait)
	wake(r.joinWait)
}

// next waits until the slot at the head holds a message and returns its
// position, slot and state, for the caller to copy the message out and
// take it. It returns io.EOF when the queue is closed and drained, and
// with block false ErrEmpty rather than wait.
func (r *ring) next(ctx context.Context, block bool) (h, i, s uint64, err error) {
	var waited uint64 // a claimed slot's state this call has waited on
	for {
		h = atomic.LoadUint64(r.head)
		i = r.index(h)
		sw := r.stateOf(i)
		s = atomic.LoadUint64(sw)
		if s == r.state(phaseFull, 0, h, i) {
			return h, i, s, nil
		}
		switch r.lap(s, i, h) {
		case 1:
			// Taken already; the taker has not advanced the head yet.
			atomic.CompareAndSwapUint64(r.head, h, h+1)
			continue
		case 0:
			recheck := false
			switch s & phaseMask {
			case phaseFree:
				if atomic.LoadUint32(r.closed) != 0 {
					// Look again after seeing the flag: a Put that
					// claimed before Close publishes (see claim).
					if atomic.LoadUint64(sw) == s {
						return 0, 0, 0, io.EOF
					}
					continue
				}
				if r.peer != nil && block {
					// A pipe's one producer is the peer: once it
					// is gone, nothing more comes.
					if s == waited && r.peerGone() {
						r.close()
						continue
					}
					waited = s
					recheck = true
				}
			case phaseWriting:
				// A producer is filling the slot. Reading /proc
				// costs microseconds, so wait for it first, and
				// check that it lives only if the slot is still
				// claimed after a wait of up to checkInterval.
				if (s == waited || !block) && !r.writerAlive(s) {
					r.release(i, s)
					continue
				}
				waited = s
				recheck = true
			default:
				return 0, 0, 0, r.errCorruptSlot(i, s, h)
			}
			if !block {
				return 0, 0, 0, ErrEmpty
			}
			if err := r.wait(ctx, r.dataWait, sw, s, recheck); err != nil {
				return 0, 0, 0, err
			}
			continue
		}
		if atomic.LoadUint64(r.head) != h {
			continue
		}
		return 0, 0, 0, r.errCorruptSlot(i, s, h)
	}
}

// take removes the message at position h, slot i, whose state was s when
// the caller copied it out, and reports whether this call got it: false
// means another consumer did, and the copy must be discarded.
func (r *ring) take(h, i, s uint64) bool {
	if !atomic.CompareAndSwapUint64(r.stateOf(i), s, r.state(phaseFree, 0, h+r.capacity, i)) {
		return false
	}
	atomic.CompareAndSwapUint64(r.head, h, h+1)
	return true
}

// messageLen returns the length a slot records, checked against the
// maximum.
func (r *ring) messageLen(i uint64) (int, bool) {
	n := atomic.LoadUint32((*uint32)(unsafe.Add(r.slot(i), slotLen)))
	return int(n), int64(n) <= int64(r.maxMsg)
}

func (r *ring) setLen(i uint64, n int) {
	atomic.StoreUint32((*uint32)(unsafe.Add(r.slot(i), slotLen)), uint32(n))
}

func (r *ring) data(i uint64) unsafe.Pointer { return unsafe.Add(r.slot(i), slotData) }

// wait sleeps until the word at sw no longer holds s or the queue is
// closed (callers wait only while it is open), or a wake-up on w,
// ctx ends or, with recheck, checkInterval passes, in which case it
// returns nil so that the caller looks again, as it does after a timeout. It polls
// briefly first: a wake-up through the kernel costs tens of microseconds.
func (r *ring) wait(ctx context.Context, w *uint32, sw *uint64, s uint64, recheck bool) error {
	if spin(sw, s, r.closed) {
		return nil
	}
	if err := r.seg.Err(); err != nil {
		return err
	}
	// Announce, then look again: a waker changes the state (or sets the
	// closed flag, which callers wait with clear) before it loads w, so
	// either these loads see the change or the waker sees the
	// announcement (all are sequentially consistent).
	v := atomic.OrUint32(w, 1) | 1
	if atomic.LoadUint64(sw) != s || atomic.LoadUint32(r.closed) != 0 {
		return nil
	}
	deadline := int64(0)
	if recheck {
		// Read the clock only now: it is a system call on some
		// virtual machines, and most waits end in the spin above.
		deadline = futex.Now() + int64(checkInterval)
	}
	err := park.Wait(ctx, w, v, deadline)
	if errors.Is(err, park.ErrTimeout) {
		err = nil
	}
	if err == nil {
		err = r.seg.Err()
	}
	return err
}

// wake wakes every process waiting on w, if one announced that it waits:
// the common case is one load and no system call.
func wake(w *uint32) {
	for {
		v := atomic.LoadUint32(w)
		if v&1 == 0 {
			return
		}
		if atomic.CompareAndSwapUint32(w, v, v+1) {
			futex.Wake(w, math.MaxInt32)
			return
		}
	}
}

// Close marks the queue closed for writing and wakes everyone waiting.
func (r *ring) close() {
	atomic.SwapUint32(r.closed, 1)
	wake(r.dataWait)
	wake(r.spaceWait)
	wake(r.joinWait)
}

// length returns the messages in the queue, as of some moment during the
// call.
func (r *ring) length() int {
	h := atomic.LoadUint64(r.head)
	t := atomic.LoadUint64(r.tail)
	if t <= h {
		return 0
	}
	return int(min(t-h, r.capacity))
}

// lost returns the tasks lost to dead processes: those retired with
// recycled records and those still held by records of dead processes.
func (r *ring) lost() int64 {
	n := int64(atomic.LoadUint64(r.retired))
	for i := range uint64(MaxProcesses) {
		if h := atomic.LoadInt64(r.heldOf(i)); h > 0 && !r.alive(i) {
			n += h
		}
	}
	return n
}

// drained reports whether the queue holds no message and no claimed slot,
// releasing the claims of dead producers on the way.
func (r *ring) drained() (bool, error) {
	for {
		h := atomic.LoadUint64(r.head)
		i := r.index(h)
		s := atomic.LoadUint64(r.stateOf(i))
		if s == r.state(phaseFree, 0, h, i) {
			return true, nil
		}
		switch r.lap(s, i, h) {
		case 1:
			atomic.CompareAndSwapUint64(r.head, h, h+1)
			continue
		case 0:
			if s&phaseMask == phaseWriting && !r.writerAlive(s) {
				r.release(i, s)
				continue
			}
			if s&phaseMask != phaseFree {
				return false, nil
			}
		}
		if atomic.LoadUint64(r.head) != h {
			continue
		}
		return false, r.errCorruptSlot(i, s, h)
	}
}

// settled reports whether the queue is drained and no live process holds a
// task it has not marked done.
func (r *ring) settled() (bool, error) {
	if ok, err := r.drained(); !ok || err != nil {
		return false, err
	}
	for i := range uint64(MaxProcesses) {
		if atomic.LoadInt64(r.heldOf(i)) > 0 && r.alive(i) {
			return false, nil
		}
	}
	return true, nil
}

// selfOwner returns this process's owner word.
func selfOwner() (uint64, error) {
	id, err := proc.Self()
	if err != nil {
		return 0, fmt.Errorf("queue: %w", err)
	}
	return lock.OwnerWord(id), nil
}
