package shmconn

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// ErrCorrupt reports that a ring's header or positions, written by the peer
// or left by a crash, are not those of a valid ring.
var ErrCorrupt = errors.New("shmconn: ring corrupt")

// Limits of a ring's data capacity and of its memory's alignment.
const (
	MinCapacity = 4096
	MaxCapacity = 1 << 30
	Alignment   = 64 // required alignment of the start of a ring's memory
)

// The layout of a ring; see the package documentation.
const (
	ringMagic   = 0x474e5253 // "SRNG" in little-endian byte order
	ringVersion = 1

	offMagic      = 0
	offVersion    = 4
	offCapacity   = 8
	offTail       = 128
	offHead       = 256
	offProdClosed = 384
	offConsClosed = 388
	offDataWait   = 392
	offSpaceWait  = 396
	headerSize    = 512
)

// sleeping is bit 0 of a wait word: the waiter announced that it is about
// to sleep. localWake is what a local wake-up adds to the word.
const (
	sleeping  = 1
	localWake = 2
)

// RingSize returns the bytes of shared memory one ring of the given data
// capacity needs: a 512-byte header plus the data. It does not check the
// capacity; InitRing does.
func RingSize(capacity int) int { return headerSize + capacity }

// validCapacity reports whether capacity is a power of two from
// MinCapacity to MaxCapacity.
func validCapacity(capacity uint64) bool {
	return capacity >= MinCapacity && capacity <= MaxCapacity && capacity&(capacity-1) == 0
}

const capacityRule = "not a power of two from 4096 to 1<<30"

// InitRing formats mem, which must hold at least RingSize(capacity) bytes
// and start Alignment-aligned, as an empty, open ring of that capacity
// (a power of two from MinCapacity to MaxCapacity). Only the creator of
// the ring calls it, before any process calls New on it; formatting a ring
// in use breaks both Conns on it.
func InitRing(mem []byte, capacity int) error {
	if capacity < 0 || !validCapacity(uint64(capacity)) {
		return fmt.Errorf("shmconn: init ring: capacity %d %s", capacity, capacityRule)
	}
	if len(mem) < RingSize(capacity) {
		return fmt.Errorf("shmconn: init ring: %d bytes, capacity %d needs %d", len(mem), capacity, RingSize(capacity))
	}
	if !aligned(mem) {
		return fmt.Errorf("shmconn: init ring: memory not %d-byte aligned", Alignment)
	}
	// The words are stored atomically, magic last, so that even a peer
	// that calls New too early sees either no ring or a whole one.
	atomic.StoreUint32(word32(mem, offMagic), 0)
	clear(mem[offVersion:headerSize])
	atomic.StoreUint32(word32(mem, offVersion), ringVersion)
	atomic.StoreUint64(word64(mem, offCapacity), uint64(capacity))
	atomic.StoreUint32(word32(mem, offMagic), ringMagic)
	return nil
}

// ring is one process's view of a ring. Its fields are set once, by
// attach, and capacity and data are never re-read from shared memory.
type ring struct {
	capacity uint64
	data     []byte // len(data) == capacity

	tail, head             *uint64
	prodClosed, consClosed *uint32
	dataWait, spaceWait    *uint32
}

// attach validates the ring header in mem and returns a view of the ring.
// New checks the positions.
func attach(mem []byte, which string) (ring, error) {
	if len(mem) < headerSize {
		return ring{}, fmt.Errorf("shmconn: %s ring: %d bytes, less than the %d-byte header: %w", which, len(mem), headerSize, ErrCorrupt)
	}
	if !aligned(mem) {
		return ring{}, fmt.Errorf("shmconn: %s ring: memory not %d-byte aligned", which, Alignment)
	}
	if m := atomic.LoadUint32(word32(mem, offMagic)); m != ringMagic {
		return ring{}, fmt.Errorf("shmconn: %s ring: bad magic %#x: %w", which, m, ErrCorrupt)
	}
	if v := atomic.LoadUint32(word32(mem, offVersion)); v != ringVersion {
		return ring{}, fmt.Errorf("shmconn: %s ring: layout version %d, want %d: %w", which, v, ringVersion, ErrCorrupt)
	}
	capacity := atomic.LoadUint64(word64(mem, offCapacity))
	if !validCapacity(capacity) {
		return ring{}, fmt.Errorf("shmconn: %s ring: capacity %d %s: %w", which, capacity, capacityRule, ErrCorrupt)
	}
	if uint64(len(mem)-headerSize) < capacity {
		return ring{}, fmt.Errorf("shmconn: %s ring: capacity %d does not fit in %d bytes: %w", which, capacity, len(mem), ErrCorrupt)
	}
	r := ring{
		capacity:   capacity,
		data:       mem[headerSize : headerSize+int(capacity) : headerSize+int(capacity)],
		tail:       word64(mem, offTail),
		head:       word64(mem, offHead),
		prodClosed: word32(mem, offProdClosed),
		consClosed: word32(mem, offConsClosed),
		dataWait:   word32(mem, offDataWait),
		spaceWait:  word32(mem, offSpaceWait),
	}
	return r, nil
}

func (r *ring) badPositions(tail, head uint64) error {
	return fmt.Errorf("%w: tail %d, head %d, capacity %d", ErrCorrupt, tail, head, r.capacity)
}

// put copies p into the ring at position pos. The caller has checked that
// len(p) bytes from pos are free.
func (r *ring) put(p []byte, pos uint64) {
	i := int(pos & (r.capacity - 1)) // < capacity == len(r.data)
	n := copy(r.data[i:], p)
	copy(r.data, p[n:])
}

// get copies min(len(p), tail-head) bytes at position head out of the ring
// into p and returns how many. The caller has checked that tail-head is at
// most the capacity.
func (r *ring) get(p []byte, head, tail uint64) int {
	if avail := tail - head; uint64(len(p)) > avail {
		p = p[:avail]
	}
	i := int(head & (r.capacity - 1))
	n := copy(p, r.data[i:])
	copy(p[n:], r.data)
	return len(p)
}
