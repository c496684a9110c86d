//go:build linux

package shmconn

import (
	"encoding/binary"
	"fmt"
	"os"
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
// connection rings nothing. The Bell wakes a sleeper whose ring moved or
// whose announcement was cleared (which is what ends a futex wait).
//
// A Bell is safe for concurrent use. Close it after every Conn using it
// is closed.
type Bell struct {
	f *os.File // the eventfd, non-blocking, so that reads park in the netpoller

	mu       sync.Mutex
	sleepers map[*bellSleeper]struct{} // guarded by mu

	done      chan struct{} // closed when the reading goroutine has returned
	closeOnce sync.Once
	rings     atomic.Int64 // wake-ups read, for tests and benchmarks
}

// A bellSleeper is a call asleep on a Bell: it is woken through c when
// w is ready.
type bellSleeper struct {
	w waitFor
	c chan struct{} // buffered 1
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
		for s := range b.sleepers {
			// A cleared announcement wakes the sleeper too, ready or
			// not, as a changed word ends a futex wait: the peer may
			// have cleared it on its way out of an older publish,
			// and then rings nothing for the next one, so the
			// sleeper must announce again.
			if s.w.ready() || atomic.LoadUint32(s.w.word)&sleeping == 0 {
				notify(s.c)
			}
		}
		b.mu.Unlock()
	}
}

func (b *Bell) add(s *bellSleeper) {
	b.mu.Lock()
	b.sleepers[s] = struct{}{}
	b.mu.Unlock()
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
