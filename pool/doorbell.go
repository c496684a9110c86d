package pool

import (
	"os"

	"github.com/shmkit/shmkit/value"
)

// doorbell is how a worker wakes the parent's receiver of its results: an
// eventfd, which the parent reads through the Go runtime's poller, and a
// word in the worker's segment (armedName) that the parent sets before it
// reads and clears after.
//
// A pipe's own wait parks the receiving goroutine's thread on a futex, a
// blocking system call that the runtime's monitor notices and answers by
// polling every 20 µs; a parent receiving results from busy workers then
// wakes thousands of times a second, each time taking a CPU from a
// worker. A goroutine waiting in the poller holds no thread and wakes
// once per ring.
//
// The parent sets the word, looks at the pipe again, and only then reads;
// the worker, after each message it sends, rings if the word is set, once
// (clearing it with a compare-and-swap). Both sides use sequentially
// consistent atomics, so either the parent's second look finds the
// message or the worker sees the word set. A ring nobody waits for leaves
// the eventfd's count up, and the next wait returns at once: a spurious
// wake-up, which the caller's loop absorbs.
type doorbell struct {
	f     *os.File // the eventfd, in the poller
	peer  *os.File // what the worker rings: f, or a pipe's other end where there is no eventfd
	armed *value.Cell[uint32]
	buf   [8]byte
}

const armedName = "pool.doorbell" // 1 while the parent waits for a ring

// wait waits for a ring, unless ready (which the caller calls to look at
// the pipe again once the word is set) finds the pipe not empty.
func (d *doorbell) wait(ready func() bool) error {
	d.armed.Store(1)
	if ready() {
		d.armed.Store(0)
		return nil
	}
	_, err := d.f.Read(d.buf[:])
	d.armed.Store(0)
	return err
}

// wake makes a wait return, from the parent: when the worker's process
// has ended, which rings no more.
func (d *doorbell) wake() { ring(d.peer) }

// Close closes the doorbell. A worker's copy stays open until it exits.
func (d *doorbell) Close() error {
	if d.peer != d.f {
		d.peer.Close()
	}
	return d.f.Close()
}

// ring rings the doorbell through f, from either side: it adds one to
// the eventfd, or writes to the pipe. At most one ring waits unread (the
// worker rings only after the parent armed the word, and clears it), so
// a pipe never fills.
func ring(f *os.File) {
	one := [8]byte{1}
	f.Write(one[:]) // fails only once the parent has closed it: nobody waits
}

// ringer is the worker's side of its doorbell.
type ringer struct {
	f     *os.File
	armed *value.Cell[uint32]
}

// ring wakes the parent if it waits: the common case is one load.
func (r *ringer) ring() {
	if r.armed.Load() == 1 && r.armed.CompareAndSwap(1, 0) {
		ring(r.f)
	}
}
