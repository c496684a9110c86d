package shmconn

import (
	"fmt"
	"io"
	"math"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shmkit/shmkit/internal/futex"
)

// DefaultSpin is how long a blocked Read or Write polls before sleeping
// when Options.Spin is zero. On the project's 2-vCPU virtual machines a
// futex sleep and wake-up add some 20 µs to a round trip and take 12 µs of
// CPU time, against 1.4 µs for a round trip that both sides poll. Measured
// with a 64-byte echo peer that works 0, 10 and 30 µs per message, the
// median round trip was 1.4, 11.3 and 41.5 µs polling 20 µs; 13.0, 31.8
// and 51.9 µs without polling; and 1.4, 11.4 and 31.4 µs polling 50 µs,
// which burned 14% more CPU in the client at 30 µs. The longer poll is
// chosen for pipelined clients, which spend 20-30 µs encoding the next
// batch while the server waits: with 20 µs the server slept, and every
// batch paid a wake-up, at 0.6-0.8 M requests/s against 0.9-1.0 M
// (BenchmarkVsRedis in package manager). Polls that keep failing stop
// (see await), which bounds what idle connections burn.
const DefaultSpin = 50 * time.Microsecond

// Options configures New. A nil *Options means all defaults.
type Options struct {
	// Spin is how long a blocked Read or Write polls the ring before it
	// sleeps on a futex: 0 means DefaultSpin, a negative value never
	// polls.
	Spin time.Duration

	// LocalAddr and RemoteAddr are what the Conn's methods of those names
	// return. Nil means Addr("shm").
	LocalAddr, RemoteAddr net.Addr

	// Bell and Peer, both set or both nil, make the Conn sleep on this
	// process's Bell and wake the peer by ringing the peer's (Peer, the
	// peer's Bell's descriptor), instead of on futexes: no thread per
	// sleeping call, one wake-up for many Conns. Both sides of a
	// connection must agree. The Conn does not own them: close them
	// after the Conn.
	Bell *Bell
	Peer *Ringer
}

// Addr is a network address of a shared-memory connection: any name the
// caller chooses. Its Network is "shm".
type Addr string

// Network returns "shm".
func (Addr) Network() string { return "shm" }

func (a Addr) String() string { return string(a) }

// Conn is one side of a connection over two rings in shared memory. It
// implements net.Conn: Read, Write, deadlines and Close may be called from
// any goroutines at once. Concurrent Reads (and concurrent Writes) run one
// at a time, in no particular order; a Read and a Write run in parallel.
//
// Every byte a Write copies into the ring is, once the Write returns,
// visible to the peer's Read, in order; a Write that returns an error may
// have copied part of p (it returns how much).
type Conn struct {
	rx, tx       ring
	spin         int64 // ns; <= 0: never spin
	laddr, raddr net.Addr

	// rmu serialises Reads and guards their state: the consumer's own
	// position in rx, the last tail loaded, and a sticky error.
	rmu      sync.Mutex
	head     uint64
	tailSeen uint64
	rerr     error

	// wmu serialises Writes and guards the producer's state in tx.
	wmu      sync.Mutex
	tail     uint64
	headSeen uint64
	werr     error

	// mu orders SetDeadline's wake-ups, which touch the rings, before the
	// end of Close, after which nothing may.
	mu        sync.Mutex
	closed    atomic.Bool
	closeOnce sync.Once

	// Deadlines, as CLOCK_MONOTONIC nanoseconds (now, futex.Now); 0
	// means none, and expired means already passed.
	rdeadline, wdeadline atomic.Int64

	// Calls of each direction past their spin, about to sleep or
	// asleep: only then does a deadline change need a wake-up.
	rsleepers, wsleepers atomic.Int32

	asleep atomic.Int32 // calls in futex.Wait or asleep on the Bell, for tests

	// With a Bell: where the Read and the Write sleep (one of each at
	// most, under rmu and wmu), and the peer's Bell.
	bell         *Bell
	peer         *Ringer
	rbell, wbell bellSleeper

	// Adaptive polling (see await): the waits left to sleep through
	// without polling, and how many polls in a row have failed.
	skipPolls, failedPolls atomic.Int32
}

// expired is a deadline that has certainly passed (now is larger).
const expired = 1

// New returns a Conn that reads from the ring in rx and writes to the ring
// in tx, both formatted by InitRing, possibly in another process, and
// neither used by another Conn on the same side. It validates the ring
// headers and returns an error matching ErrCorrupt if one is not a valid
// ring (bad magic or version, a capacity that is not a power of two in
// range or does not fit its slice, positions out of order). rx and tx must
// start Alignment-aligned and must not overlap. On platforms without
// futexes it returns an error matching futex.ErrNotSupported.
//
// The memory must stay mapped until Close returns; the Conn does not own
// it.
func New(rx, tx []byte, opts *Options) (*Conn, error) {
	if !supported {
		return nil, fmt.Errorf("shmconn: %w", futex.ErrNotSupported)
	}
	if overlap(rx, tx) {
		return nil, fmt.Errorf("shmconn: the read and write rings overlap")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if (o.Bell == nil) != (o.Peer == nil) {
		return nil, fmt.Errorf("shmconn: Options.Bell and Options.Peer must be set together")
	}
	c := &Conn{laddr: o.LocalAddr, raddr: o.RemoteAddr, bell: o.Bell, peer: o.Peer}
	c.rbell.c, c.wbell.c = make(chan struct{}, 1), make(chan struct{}, 1)
	switch {
	case o.Spin == 0:
		c.spin = int64(DefaultSpin)
	case o.Spin > 0:
		c.spin = int64(o.Spin)
	}
	if c.laddr == nil {
		c.laddr = Addr("shm")
	}
	if c.raddr == nil {
		c.raddr = Addr("shm")
	}
	var err error
	if c.rx, err = attach(rx, "read"); err != nil {
		return nil, err
	}
	if c.tx, err = attach(tx, "write"); err != nil {
		return nil, err
	}
	// The consumer owns the head and the producer the tail: from now on
	// this side keeps its own copy and never reads its position back.
	c.head = atomic.LoadUint64(c.rx.head)
	c.tailSeen = atomic.LoadUint64(c.rx.tail)
	c.tail = atomic.LoadUint64(c.tx.tail)
	c.headSeen = atomic.LoadUint64(c.tx.head)
	if c.tailSeen-c.head > c.rx.capacity {
		return nil, fmt.Errorf("shmconn: read ring: %w", c.rx.badPositions(c.tailSeen, c.head))
	}
	if c.tail-c.headSeen > c.tx.capacity {
		return nil, fmt.Errorf("shmconn: write ring: %w", c.tx.badPositions(c.tail, c.headSeen))
	}
	return c, nil
}

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "shm", Source: c.laddr, Addr: c.raddr, Err: err}
}

// Read reads up to len(p) bytes from the connection. It returns as soon as
// at least one byte is available, blocking until then. After the peer has
// closed the connection, Read returns the bytes it had written and then
// io.EOF. Read fails with an error matching net.ErrClosed once this Conn is
// closed (blocked Reads included), with one matching
// os.ErrDeadlineExceeded when it would block past the read deadline, and
// with one matching ErrCorrupt, on this and every later call, if the peer
// left the ring's positions inconsistent.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.closed.Load() {
		return 0, c.opError("read", net.ErrClosed)
	}
	if c.rerr != nil {
		return 0, c.rerr
	}
	if len(p) == 0 {
		return 0, nil
	}
	r := &c.rx
	for {
		if c.tailSeen-c.head < uint64(len(p)) {
			// Fewer bytes known than wanted: look for more. The tail
			// must not go backwards nor overrun the head.
			t := atomic.LoadUint64(r.tail)
			if t < c.tailSeen || t-c.head > r.capacity {
				c.rerr = c.opError("read", r.badPositions(t, c.head))
				return 0, c.rerr
			}
			c.tailSeen = t
		}
		if c.tailSeen != c.head {
			n := r.get(p, c.head, c.tailSeen)
			c.head += uint64(n)
			atomic.SwapUint64(r.head, c.head) // a swap, not a store: see Wake-ups in doc.go
			c.wake(r.spaceWait)
			return n, nil
		}
		// The producer publishes its last tail before its closed flag,
		// so a tail loaded after the flag is final.
		if atomic.LoadUint32(r.prodClosed) != 0 {
			if atomic.LoadUint64(r.tail) == c.head {
				return 0, io.EOF
			}
			continue
		}
		if err := c.await(waitFor{
			op: "read", pos: r.tail, seen: c.tailSeen, peerClosed: r.prodClosed,
			word: r.dataWait, deadline: &c.rdeadline, sleepers: &c.rsleepers,
		}); err != nil {
			return 0, err
		}
	}
}

// Write writes all of p to the connection, in pieces when the ring is full
// or p larger than its capacity, blocking while the ring is full. Each
// piece is published to the peer with one atomic swap of the tail (a
// release store that is also a full barrier). Write returns how
// many bytes it copied into the ring and, if fewer than len(p), why: an
// error matching net.ErrClosed once this Conn is closed (blocked Writes
// included), os.ErrDeadlineExceeded when it would block past the write
// deadline, syscall.EPIPE once the peer has closed the connection (bytes
// still in the ring then are lost), or ErrCorrupt, on this and every later
// call, if the peer left the ring's positions inconsistent.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return 0, c.opError("write", net.ErrClosed)
	}
	if c.werr != nil {
		return 0, c.werr
	}
	r := &c.tx
	n := 0
	for n < len(p) {
		if c.closed.Load() {
			return n, c.opError("write", net.ErrClosed)
		}
		if atomic.LoadUint32(r.consClosed) != 0 {
			return n, c.opError("write", syscall.EPIPE)
		}
		free := r.capacity - (c.tail - c.headSeen)
		if free < uint64(len(p)-n) {
			// Less room known than needed: look for more. The head
			// must not go backwards nor pass the tail.
			h := atomic.LoadUint64(r.head)
			if h < c.headSeen || h > c.tail {
				c.werr = c.opError("write", r.badPositions(c.tail, h))
				return n, c.werr
			}
			c.headSeen = h
			free = r.capacity - (c.tail - h)
		}
		if free == 0 {
			if err := c.await(waitFor{
				op: "write", pos: r.head, seen: c.headSeen, peerClosed: r.consClosed,
				word: r.spaceWait, deadline: &c.wdeadline, sleepers: &c.wsleepers,
			}); err != nil {
				return n, err
			}
			continue
		}
		k := int(min(free, uint64(len(p)-n)))
		r.put(p[n:n+k], c.tail)
		c.tail += uint64(k)
		atomic.SwapUint64(r.tail, c.tail) // a swap, not a store: see Wake-ups in doc.go
		c.wake(r.dataWait)
		n += k
	}
	return n, nil
}

// Close closes the connection: it marks both rings closed for this side
// (the peer's Reads drain and then return io.EOF, its Writes fail with
// syscall.EPIPE), wakes the peer and this process's blocked Reads and
// Writes, and waits until every Read and Write of this Conn in progress
// has returned. After Close returns, the Conn never touches the rings
// again, so their memory may be unmapped. Close is idempotent: every call
// waits for the first to finish and returns nil.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed.Swap(true)
		c.mu.Unlock()
		// Wake this process's blocked calls, which then see closed
		// (see wakeLocal); taking wmu and rmu below waits for every
		// call in progress to end.
		c.wakeLocal(c.rx.dataWait)
		c.wakeLocal(c.tx.spaceWait)
		// With no Write running, the tail is final: mark the end of
		// the data and wake a peer waiting for it.
		c.lockWaking(&c.wmu, c.tx.spaceWait)
		atomic.SwapUint32(c.tx.prodClosed, 1)
		c.wakeAlways(c.tx.dataWait)
		c.wmu.Unlock()
		// With no Read running, stop the peer's Writes.
		c.lockWaking(&c.rmu, c.rx.dataWait)
		atomic.SwapUint32(c.rx.consClosed, 1)
		c.wakeAlways(c.rx.spaceWait)
		c.rmu.Unlock()
	})
	return nil
}

// lockWaking locks mu, which a Read or Write in progress may hold, for
// Close. The call ends within microseconds of Close's wake-up, but a peer
// that writes the wait word w can undo that wake-up: between a call's
// announcing and its futex wait, a peer that restores the word's old value
// makes the call sleep after all. So while mu stays held, lockWaking
// repeats the wake-up every millisecond.
func (c *Conn) lockWaking(mu *sync.Mutex, w *uint32) {
	for i := 0; !mu.TryLock(); i++ {
		if i < 100 {
			runtime.Gosched()
			continue
		}
		time.Sleep(time.Millisecond)
		c.wakeLocal(w)
	}
}

// wakeLocal wakes this process's call sleeping on the wait word w, if any.
// Adding to the sequence bits changes the word whatever the peer does to
// bit 0, so a call between announcing and sleeping does not sleep; the
// caller stored the state change the call re-checks (closed, a deadline)
// before, so the call sees it.
func (c *Conn) wakeLocal(w *uint32) {
	atomic.AddUint32(w, localWake)
	if c.bell == nil {
		futex.Wake(w, math.MaxInt32)
		return
	}
	switch w {
	case c.rx.dataWait:
		notify(c.rbell.c)
	case c.tx.spaceWait:
		notify(c.wbell.c)
	}
}

// wake wakes the peer sleeping on the wait word w if it announced that it
// sleeps (see Wake-ups in doc.go).
func (c *Conn) wake(w *uint32) {
	if atomic.LoadUint32(w)&sleeping != 0 && atomic.AndUint32(w, ^uint32(sleeping))&sleeping != 0 {
		if c.peer != nil {
			c.peer.ring()
		} else {
			futex.Wake(w, 1)
		}
	}
}

// wakeAlways wakes the peer sleeping on w whether or not it announced it:
// for Close, which is rare and wants the peer woken even if it misbehaves.
func (c *Conn) wakeAlways(w *uint32) {
	atomic.AndUint32(w, ^uint32(sleeping))
	if c.peer != nil {
		c.peer.ring()
	} else {
		futex.Wake(w, math.MaxInt32)
	}
}

// LocalAddr returns Options.LocalAddr, or Addr("shm").
func (c *Conn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr returns Options.RemoteAddr, or Addr("shm").
func (c *Conn) RemoteAddr() net.Addr { return c.raddr }

// SetDeadline sets both the read and the write deadline; see
// SetReadDeadline and SetWriteDeadline.
func (c *Conn) SetDeadline(t time.Time) error {
	return c.setDeadline(t, true, true)
}

// SetReadDeadline sets the time after which a Read that would block fails
// with an error matching os.ErrDeadlineExceeded; a Read that finds data
// returns it whatever the deadline. It applies to Reads in progress too: a
// blocked Read wakes promptly when the deadline is moved into the past, or
// re-arms when it is moved. The zero time means no deadline. It returns
// net.ErrClosed after Close.
func (c *Conn) SetReadDeadline(t time.Time) error {
	return c.setDeadline(t, true, false)
}

// SetWriteDeadline is SetReadDeadline for Writes.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	return c.setDeadline(t, false, true)
}

func (c *Conn) setDeadline(t time.Time, read, write bool) error {
	d := int64(0)
	if !t.IsZero() {
		switch left := time.Until(t); {
		case left <= 0:
			d = expired
		case left < 100*365*24*time.Hour:
			d = now() + int64(left)
		} // a deadline a century away is none
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return c.opError("set deadline", net.ErrClosed)
	}
	// A call counts itself a sleeper (an atomic add) before it announces
	// and re-checks its deadline, and this swaps the deadline in before
	// it reads the count; both are full barriers, so either the call
	// sees the new deadline or this sees the call, and then the wake-up
	// changes the word it sleeps on. Spinning calls look at the deadline themselves.
	// The common case, setting a deadline with no call asleep, makes no
	// system call.
	if read {
		c.rdeadline.Swap(d)
		if c.rsleepers.Load() != 0 {
			c.wakeLocal(c.rx.dataWait)
		}
	}
	if write {
		c.wdeadline.Swap(d)
		if c.wsleepers.Load() != 0 {
			c.wakeLocal(c.tx.spaceWait)
		}
	}
	return nil
}

var _ net.Conn = (*Conn)(nil)
