//go:build linux

package shmconn

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// A Bell is where the blocked Reads and Writes of many Conns of one
// process sleep, instead of each on a futex of its own: a goroutine
// asleep on a Bell holds no OS thread, and one wake-up of the Bell serves
// every Conn that became ready meanwhile.
//
// A Bell is an eventfd(2). Its one goroutine reads it through the Go
// runtime's netpoller; when a peer process rings it (writes to its copy
// of the descriptor, a Ringer), that goroutine looks at every call asleep
// on the Bell and wakes those whose ring moved or closed. The protocol on
// the rings' wait words is the futex protocol's (see the package
// documentation): a sleeper announces itself in bit 0 of its wait word,
// and a peer that finds bit 0 set clears it and rings, so a busy
// connection rings nothing. After each wake-up the Bell's goroutine polls
// its sleepers' rings for a while, and sleepers that arrive meanwhile do
// not announce themselves, so that traffic over many connections rings
// nothing either; before it sleeps again it announces every sleeper.
//
// A Bell is safe for concurrent use. Close it after every Conn using it
// is closed.
type Bell struct {
	f *os.File // the eventfd, non-blocking, so that reads park in the netpoller

	mu       sync.Mutex
	sleepers map[*bellSleeper]struct{} // guarded by mu
	// polling is set while the Bell's goroutine polls its sleepers'
	// rings after a wake-up (see run); meanwhile new sleepers do not
	// announce themselves, so busy peers ring nothing. Written under mu.
	polling atomic.Bool

	// skip, fruitless and slept are run's: how many wake-ups to come
	// skip polling, how many polls in a row found nothing, and when the
	// goroutine last went back to sleep.
	skip, fruitless int
	slept           int64

	done      chan struct{} // closed when the reading goroutine has returned
	closeOnce sync.Once
	rings     atomic.Int64 // wake-ups read, for tests and benchmarks
	polls     atomic.Int64 // polls after a wake-up, for tests
}

// A bellSleeper is a call asleep on a Bell: it is woken through c when
// w is ready.
type bellSleeper struct {
	w    waitFor
	c    chan struct{} // buffered 1
	rung bool          // the Bell has signalled c for this wait; guarded by the Bell's mu
}

// NewBell returns a Bell and starts its goroutine.
func NewBell() (*Bell, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("shmconn: eventfd: %w", err)
	}
	b := &Bell{f: os.NewFile(uintptr(fd), "shmconn-bell"), sleepers: map[*bellSleeper]struct{}{}, done: make(chan struct{})}
	go b.run()
	return b, nil
}

// File returns a duplicate of the Bell's descriptor, for a peer process
// to ring (see NewRinger). The caller closes it.
func (b *Bell) File() (*os.File, error) {
	rc, err := b.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var (
		fd   int
		derr error
	)
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, fmt.Errorf("shmconn: dup bell: %w", derr)
	}
	return os.NewFile(uintptr(fd), "shmconn-bell"), nil
}

// Close stops the Bell's goroutine and closes its descriptor; peers'
// copies stay open until they close them. It is idempotent.
func (b *Bell) Close() error {
	b.closeOnce.Do(func() { b.f.Close() })
	<-b.done
	return nil
}

func (b *Bell) run() {
	defer close(b.done)
	var buf [8]byte
	for {
		if _, err := b.f.Read(buf[:]); err != nil {
			// Closed. (An eventfd read fails no other way: the
			// netpoller absorbs EAGAIN.)
			return
		}
		b.rings.Add(1)
		b.mu.Lock()
		b.polling.Store(true)
		for s := range b.sleepers {
			b.wake(s)
		}
		b.mu.Unlock()
		b.pollIfPays()
		// Going back to sleep: announce every sleeper in its wait
		// word and look once more, so that a publish from now on
		// rings. This also restores an announcement a peer cleared on
		// its way out of an older publish (which then rang, and so
		// woke the Bell), as a changed word ends a futex wait.
		b.mu.Lock()
		b.polling.Store(false)
		for s := range b.sleepers {
			atomic.OrUint32(s.w.word, sleeping)
			b.wake(s)
		}
		b.mu.Unlock()
	}
}

// bellSpin is how long the Bell's goroutine polls after a wake-up
// without finding a ring that moved: one poll's length (DefaultSpin), so
// that a stream of requests over many connections costs no system call.
// It polls one goroutine per process, whatever the number of
// connections, and yields to the process's other goroutines between
// looks.
const bellSpin = int64(DefaultSpin)

// pollIfPays polls after a wake-up while polling pays. A poll that finds
// no ring moving costs bellSpin of CPU for nothing (the traffic was one
// request, not a stream), so after such a poll the next 1, 3, 7, ... up to
// 1<<maxSkipShift - 1 wake-ups do not poll. But a wake-up that comes
// within bellNearMiss of the Bell's going back to sleep is a stream whose
// peer answers a little slower than a poll's length (as when the peer
// sleeps too): it restores polling, as does a poll that finds traffic;
// otherwise two peers, each finding the other slow, would both stop
// polling for good. It never polls with one CPU, where the peer could not
// run meanwhile.
func (b *Bell) pollIfPays() {
	if runtime.NumCPU() < 2 {
		return
	}
	if t := now(); t-b.slept < bellNearMiss {
		b.skip, b.fruitless = 0, 0
	}
	switch {
	case b.skip > 0:
		b.skip--
	case b.poll():
		b.fruitless = 0
	default:
		b.fruitless = min(b.fruitless+1, maxSkipShift)
		b.skip = 1<<b.fruitless - 1
	}
	b.slept = now()
}

// bellNearMiss is how soon after the Bell's going back to sleep a wake-up
// shows that polling would have paid: a few wake-ups' latency.
const bellNearMiss = 4 * bellSpin

// poll polls the sleepers' rings, waking those that moved, until none
// has for bellSpin, and reports whether it woke any.
func (b *Bell) poll() (found bool) {
	b.polls.Add(1)
	last := now()
	for {
		woke := false
		b.mu.Lock()
		for s := range b.sleepers {
			if b.wake(s) {
				woke = true
			}
		}
		b.mu.Unlock()
		t := now()
		if woke {
			found, last = true, t
		} else if t-last > bellSpin {
			return found
		}
		runtime.Gosched()
	}
}

// add makes s a sleeper of b and reports whether it must announce itself:
// not while b polls, which announces its sleepers when it stops.
func (b *Bell) add(s *bellSleeper) (announce bool) {
	b.mu.Lock()
	s.rung = false
	b.sleepers[s] = struct{}{}
	announce = !b.polling.Load()
	b.mu.Unlock()
	return announce
}

// wake signals s if its ring moved and the Bell has not signalled it
// already during this wait (a call, once its ring moved, only has to leave),
// and reports whether it did. Call it with b.mu held.
func (b *Bell) wake(s *bellSleeper) bool {
	if s.rung || !s.w.ready() {
		return false
	}
	s.rung = true
	notify(s.c)
	return true
}

func (b *Bell) remove(s *bellSleeper) {
	b.mu.Lock()
	delete(b.sleepers, s)
	b.mu.Unlock()
}

// notify sends on c unless a value is already waiting there.
func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// A Ringer rings a peer process's Bell: it holds that process's copy of
// the Bell's eventfd.
type Ringer struct {
	f  *os.File
	fd int
}

// NewRinger returns a Ringer that writes to f, a Bell's descriptor from
// another process. It takes ownership of f; Close closes it. It fails if
// f is not an eventfd.
func NewRinger(f *os.File) (*Ringer, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var (
		link string
		rerr error
		raw  int
	)
	if err := rc.Control(func(fd uintptr) {
		raw = int(fd)
		link, rerr = os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	}); err != nil {
		return nil, err
	}
	if rerr != nil || link != "anon_inode:[eventfd]" {
		return nil, fmt.Errorf("shmconn: the peer's bell is not an eventfd (%q, %v)", link, rerr)
	}
	// The raw descriptor, not Fd, which would make it blocking, and with
	// it the peer's Bell, whose open file description it shares. It
	// stays valid until Close, after every Conn that rings it.
	return &Ringer{f: f, fd: raw}, nil
}

// one is what a ring adds to the eventfd's counter.
var one = binary.NativeEndian.AppendUint64(nil, 1)

// ring wakes the peer's Bell. A failed write (the counter cannot
// overflow in practice) is not retried: the peer's Close and the socket
// monitor still end its waits.
func (r *Ringer) ring() {
	for {
		if _, err := unix.Write(r.fd, one); err != unix.EINTR {
			return
		}
	}
}

// Close closes the Ringer's descriptor. Close it after every Conn using
// it is closed.
func (r *Ringer) Close() error { return r.f.Close() }
