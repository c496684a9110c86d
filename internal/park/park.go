// Package park lets many goroutines wait on a shared futex word while
// holding few OS threads.
//
// A goroutine blocked in FUTEX_WAIT holds its OS thread, and the Go runtime
// stops the program at 10,000 threads. Wait instead parks the goroutine on
// a channel; for each word that some goroutine of this process waits on,
// one watcher goroutine sleeps in FUTEX_WAIT and, whenever it sees the
// word's value change, wakes every goroutine parked on it, which then
// re-check their conditions. A thousand goroutines waiting on one event
// hold one thread.
//
// The contract is futex's: Wait returns when the word no longer holds val,
// or after a wake-up that may be spurious, so callers re-check their
// condition in a loop. What wakes a watcher is a FUTEX_WAKE on the word
// from any process, which the primitives built on this package issue after
// changing the word's value.
package park

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

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
	m map[*uint32]*watcher
}{m: map[*uint32]*watcher{}}

type watcher struct {
	addr *uint32

	mu      sync.Mutex
	changed chan struct{} // closed, and replaced, when the word changes
	parked  int           // goroutines in Wait on this word
}

// Wait blocks the calling goroutine while *addr == val, until the word
// changes, ctx ends (returning ctx.Err()) or the absolute CLOCK_MONOTONIC
// deadline passes (returning ErrTimeout; 0 means none). A nil error means
// only that the caller should re-check.
func Wait(ctx context.Context, addr *uint32, val uint32, deadline int64) error {
	if atomic.LoadUint32(addr) != val {
		return nil
	}
	w := enter(addr)
	defer w.leave()
	changed := w.subscribe()
	// Re-check after subscribing: a change between the first check and the
	// subscription would otherwise be missed.
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
	case <-changed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-timeout:
		return ErrTimeout
	}
}

func enter(addr *uint32) *watcher {
	watchers.Lock()
	defer watchers.Unlock()
	w := watchers.m[addr]
	if w == nil {
		w = &watcher{addr: addr, changed: make(chan struct{})}
		watchers.m[addr] = w
		go w.watch()
	}
	w.mu.Lock()
	w.parked++
	w.mu.Unlock()
	return w
}

func (w *watcher) leave() {
	w.mu.Lock()
	w.parked--
	w.mu.Unlock()
}

func (w *watcher) subscribe() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed
}

func (w *watcher) broadcast() {
	w.mu.Lock()
	defer w.mu.Unlock()
	close(w.changed)
	w.changed = make(chan struct{})
}

// watch sleeps on the word for the process and wakes its waiters when the
// value they saw has changed. It compares each value it loads with the one
// it last slept on, so a change that happens between two sleeps is not
// missed, and it exits once nobody has waited for a while.
//
// The watcher reads the word only while a goroutine is parked on it: a
// parked goroutine's caller is using the object, so its segment is still
// mapped. Once the last one leaves, the segment may be unmapped at any
// moment; the kernel then fails the futex wait with EFAULT (or the wait
// sleeps on whatever is mapped there until its timeout), and the watcher
// exits without touching the memory.
func (w *watcher) watch() {
	last, ok := w.next()
	for ok {
		futex.Wait(w.addr, last, futex.Now()+int64(idleExit))
		var v uint32
		if v, ok = w.next(); ok && v != last {
			w.broadcast()
			last = v
		}
	}
}

// next returns the word's value, loaded while a goroutine is parked on it,
// or removes the watcher from the table and reports false when none is.
func (w *watcher) next() (uint32, bool) {
	watchers.Lock()
	defer watchers.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.parked == 0 {
		delete(watchers.m, w.addr)
		return 0, false
	}
	return atomic.LoadUint32(w.addr), true
}
