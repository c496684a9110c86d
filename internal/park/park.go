// Package park lets many goroutines wait on a shared futex word while
// holding few OS threads.
//
// A goroutine blocked in FUTEX_WAIT holds its OS thread, and the Go runtime
// stops the program at 10,000 threads. Wait instead parks the goroutine on
// a channel; for each word that some goroutine of this process waits on,
// one watcher goroutine sleeps in FUTEX_WAIT and, whenever it sees the
// word's value change, wakes every goroutine parked on it, which then
// re-check their conditions. A thousand goroutines waiting on one event
// hold one thread; goroutines waiting on a thousand different words still
// hold a thousand, one per word. While anyone waits on a word, its watcher
// also wakes every 20 ms to look at it, which bounds the delay of a change
// that comes without a FUTEX_WAKE, or whose wake-up went to a sleeper that
// no longer needed it.
//
// The contract is futex's: Wait returns when the word no longer holds val,
// or after a wake-up that may be spurious, so callers re-check their
// condition in a loop. What wakes a watcher is a FUTEX_WAKE on the word
// from any process, which the primitives built on this package issue after
// changing the word's value.
package park

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/internal/futex"
)

// ErrTimeout reports that Wait returned because its deadline passed.
var ErrTimeout = futex.ErrTimeout

// idleExit is how long a watcher whose waiters have all gone keeps waiting
// before it notices and exits.
const idleExit = 20 * time.Millisecond

// watchers holds the process's watchers, one per watched word. It is
// process-wide state by nature: a watcher serves every goroutine of the
// process that waits on its word.
var watchers = struct {
	sync.Mutex
	m      map[*uint32]*watcher
	closed []span // memory that Close has closed and Reopen not yet reopened
}{m: map[*uint32]*watcher{}}

// span is the memory [lo, hi).
type span struct{ lo, hi uintptr }

func (s span) holds(addr *uint32) bool {
	a := uintptr(unsafe.Pointer(addr))
	return s.lo <= a && a < s.hi
}

type watcher struct {
	addr    *uint32
	mu      sync.Mutex
	waiters map[*waiter]struct{}
}

// waiter is one goroutine in Wait: the value it saw, and the channel that
// is closed when the watcher sees another.
type waiter struct {
	val  uint32
	wake chan struct{}
}

// Wait blocks the calling goroutine while *addr == val, until the word
// changes, ctx ends (returning ctx.Err()) or the absolute CLOCK_MONOTONIC
// deadline passes (returning ErrTimeout; 0 means none). A nil error means
// only that the caller should re-check.
func Wait(ctx context.Context, addr *uint32, val uint32, deadline int64) error {
	if atomic.LoadUint32(addr) != val {
		return nil
	}
	w, me := enter(addr, val)
	if w == nil {
		return nil // closed memory: see Close
	}
	defer w.leave(me)
	// Re-check after registering: the watcher wakes registered waiters
	// whose value differs from what it loads, but a change between the
	// first check and the registration may have been loaded already.
	if atomic.LoadUint32(addr) != val {
		return nil
	}
	var timeout <-chan time.Time
	if deadline != 0 {
		d := time.Duration(deadline - futex.Now())
		if d <= 0 {
			return ErrTimeout
		}
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-me.wake:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-timeout:
		return ErrTimeout
	}
}

// enter registers a waiter for addr, or returns nil if addr lies in closed
// memory.
func enter(addr *uint32, val uint32) (*watcher, *waiter) {
	watchers.Lock()
	defer watchers.Unlock()
	for _, c := range watchers.closed {
		if c.holds(addr) {
			return nil, nil
		}
	}
	w := watchers.m[addr]
	if w == nil {
		w = &watcher{addr: addr, waiters: map[*waiter]struct{}{}}
		watchers.m[addr] = w
		go w.watch()
	}
	me := &waiter{val: val, wake: make(chan struct{})}
	w.mu.Lock()
	w.waiters[me] = struct{}{}
	w.mu.Unlock()
	return w, me
}

// Close wakes every goroutine of this process waiting on a word in the
// memory [lo, hi), as a change of the word would, and makes every later
// Wait on such a word return at once, until Reopen: package shm calls it
// when it closes a segment, so that waiters re-check, see the segment
// closed and return, instead of sleeping on memory that is no longer
// shared (whose words a racing write may even have set to the very value
// they wait on). It wakes nobody in other processes.
func Close(lo, hi uintptr) {
	watchers.Lock()
	defer watchers.Unlock()
	c := span{lo, hi}
	watchers.closed = append(watchers.closed, c)
	for addr, w := range watchers.m {
		if !c.holds(addr) {
			continue
		}
		w.mu.Lock()
		for me := range w.waiters {
			close(me.wake)
			delete(w.waiters, me)
		}
		w.mu.Unlock()
	}
}

// Reopen undoes Close of the memory [lo, hi), for when its addresses are
// about to be reused: nothing may wait on it any more.
func Reopen(lo, hi uintptr) {
	watchers.Lock()
	defer watchers.Unlock()
	watchers.closed = slices.DeleteFunc(watchers.closed, func(c span) bool { return c == span{lo, hi} })
}

func (w *watcher) leave(me *waiter) {
	w.mu.Lock()
	delete(w.waiters, me)
	w.mu.Unlock()
}

// watch sleeps on the word for the process. Each time it wakes (a
// FUTEX_WAKE from any process, the value changing before it slept, or its
// period ending), it loads the word and wakes every waiter that saw a
// different value, so no change is missed whenever it happened. It exits
// once nobody waits.
//
// The watcher reads the word only while a goroutine is waiting on it: a
// waiting goroutine's caller is using the object, so its segment is still
// mapped. Once the last one leaves, the segment may be unmapped at any
// moment; the kernel then fails the futex wait with EFAULT (or the wait
// sleeps on whatever is mapped there until its timeout), and the watcher
// exits without touching the memory.
func (w *watcher) watch() {
	v, ok := w.next()
	for ok {
		err := futex.Wait(w.addr, v, futex.Now()+int64(idleExit))
		if v, ok = w.next(); !ok && err == nil {
			// Woken with nobody here left to wake: a wake-up of one
			// waiter (a lock's unlock) may have been meant for a waiter
			// in another process, which would otherwise sleep until its
			// own timeout. Pass it on; a spurious wake-up is harmless,
			// and on memory unmapped since, the kernel refuses it.
			futex.Wake(w.addr, 1)
		}
	}
}

// next loads the word, while a goroutine waits on it, and wakes the waiters
// that saw another value; when none waits, it removes the watcher from the
// table and reports false.
func (w *watcher) next() (uint32, bool) {
	watchers.Lock()
	defer watchers.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.waiters) == 0 {
		delete(watchers.m, w.addr)
		return 0, false
	}
	v := atomic.LoadUint32(w.addr)
	for me := range w.waiters {
		if me.val != v {
			close(me.wake)
			delete(w.waiters, me)
		}
	}
	return v, true
}
