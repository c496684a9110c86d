package shmconn

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/shmkit/shmkit/internal/futex"
)

// spinners counts the goroutines of this process polling a ring. It is
// process-wide by nature, the one piece of package state: the limit
// protects the process's CPUs, whichever Conns the pollers belong to.
var spinners atomic.Int32

// spinLimit is how many goroutines of the process may poll at once: all
// processors but one, so that pollers never starve the process's other
// goroutines, and at least one; but none on a machine with one CPU, where
// the peer cannot run while this process polls.
func spinLimit() int32 {
	if runtime.NumCPU() < 2 {
		return 0
	}
	return int32(max(1, runtime.GOMAXPROCS(0)-1))
}

const (
	// spinPolls is how many times a poller looks at the ring between
	// looks at the clock, the closed flag and the deadline: a few hundred
	// nanoseconds.
	spinPolls = 64
	// yieldEvery is how often a poller lets the Go scheduler run other
	// goroutines, in nanoseconds.
	yieldEvery = 1000
)

// waitFor says what a blocked call waits for: the peer's position (the
// tail for a Read, the head for a Write) to move from seen, or the peer to
// close its side.
type waitFor struct {
	op         string
	pos        *uint64
	seen       uint64
	peerClosed *uint32
	word       *uint32 // the wait word to sleep on
	deadline   *atomic.Int64
	sleepers   *atomic.Int32
}

func (w *waitFor) ready() bool {
	return atomic.LoadUint64(w.pos) != w.seen || atomic.LoadUint32(w.peerClosed) != 0
}

// timedOut reports whether the deadline d (0: none) has passed at now.
func timedOut(d, now int64) bool { return d != 0 && now >= d }

// await blocks until the peer moves its position or closes its side, and
// returns nil so that the caller looks at the ring again (it may also
// return nil spuriously); or until c is closed or the deadline passes, and
// returns the error for the caller to return.
//
// Polling pays only while the peer answers within the poll: when it does
// not (the peer is slow, or the CPUs are taken by more pollers than there
// are CPUs, as with many connections), a poller only burns the CPU the
// peer needs. So after a poll that fails and a sleep that lasts longer
// than a poll, the next 2, 4, ... up to 1<<maxSkipShift waits sleep at
// once; a poll that succeeds, or a failed one followed by a short sleep (a
// near miss: the peer answered soon after), restores polling.
func (c *Conn) await(w waitFor) error {
	if c.spin <= 0 {
		return c.sleep(&w)
	}
	if c.skipPolls.Load() > 0 {
		c.skipPolls.Add(-1)
		return c.sleep(&w)
	}
	if c.poll(&w) {
		c.failedPolls.Store(0)
		return nil
	}
	t := now()
	err := c.sleep(&w)
	if now()-t < c.spin {
		// A near miss: the peer answered within another poll's length,
		// so polling is still the right bet.
		c.failedPolls.Store(0)
	} else {
		c.skipPolls.Store(1 << min(c.failedPolls.Add(1), maxSkipShift))
	}
	return err
}

// maxSkipShift bounds the waits slept through after failed polls to
// 1<<maxSkipShift, so that a connection whose peer became quick again
// soon polls again.
const maxSkipShift = 6

// poll polls for up to c.spin and reports whether the peer moved. It
// gives up early, reporting false, when too many goroutines of the
// process already poll, when c is closed or when the deadline passes; the
// caller's sleep then sees why.
func (c *Conn) poll(w *waitFor) bool {
	if spinners.Add(1) > spinLimit() {
		spinners.Add(-1)
		return false
	}
	defer spinners.Add(-1)
	t := now()
	end, nextYield := t+c.spin, t+yieldEvery
	for {
		for range spinPolls {
			if w.ready() {
				return true
			}
		}
		if c.closed.Load() {
			return false
		}
		t = now()
		if t >= end || timedOut(w.deadline.Load(), t) {
			return false
		}
		if t >= nextYield {
			runtime.Gosched()
			nextYield = t + yieldEvery
		}
	}
}

// sleep sleeps on w.word until the peer moves or closes (returning nil),
// or c is closed or the deadline passes (returning the error). See the
// package documentation for the protocol.
func (c *Conn) sleep(w *waitFor) error {
	w.sleepers.Add(1)
	defer w.sleepers.Add(-1)
	if c.bell != nil {
		return c.sleepOnBell(w)
	}
	for {
		// Announce, then re-check everything that ends the wait.
		v := atomic.OrUint32(w.word, sleeping) | sleeping
		d := w.deadline.Load()
		ended, err := c.ended(w, d)
		if !ended {
			c.asleep.Add(1)
			werr := futex.Wait(w.word, v, d)
			c.asleep.Add(-1)
			switch {
			case werr == nil:
				continue // woken, perhaps spuriously: re-check
			case werr == futex.ErrTimeout && w.deadline.Load() == d:
				// now and futex.Now may differ by a microsecond;
				// the kernel's clock decides.
				err = c.opError(w.op, os.ErrDeadlineExceeded)
			case werr == futex.ErrTimeout:
				continue // the deadline moved meanwhile
			default:
				err = c.opError(w.op, fmt.Errorf("futex wait: %w", werr))
			}
		}
		withdraw(w)
		return err
	}
}

// ended reports whether the wait w, announced, is over: the peer moved or
// closed (with err nil), or c is closed or the deadline d passed (with the
// error to return).
func (c *Conn) ended(w *waitFor, d int64) (bool, error) {
	switch {
	case w.ready():
		return true, nil
	case c.closed.Load():
		return true, c.opError(w.op, net.ErrClosed)
	case timedOut(d, now()):
		return true, c.opError(w.op, os.ErrDeadlineExceeded)
	}
	return false, nil
}

// withdraw withdraws a wait's announcement, so that the peer's next
// publish makes no system call.
func withdraw(w *waitFor) {
	if atomic.LoadUint32(w.word)&sleeping != 0 {
		atomic.AndUint32(w.word, ^uint32(sleeping))
	}
}

// sleepOnBell is sleep on the Conn's Bell: the same announcement and
// re-check on the wait word, then a wait on the call's channel, which the
// Bell's goroutine signals once the peer rang and w is ready, and local
// wake-ups (Close, a deadline's change) signal directly. The call joins
// the Bell's sleepers before it announces itself, so a peer that sees the
// announcement rings a Bell that will look at this call.
func (c *Conn) sleepOnBell(w *waitFor) error {
	s := &c.rbell
	if w.word != c.rx.dataWait {
		s = &c.wbell
	}
	s.w = *w
	announce := c.bell.add(s)
	defer c.bell.remove(s)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if announce {
			atomic.OrUint32(w.word, sleeping)
		}
		d := w.deadline.Load()
		ended, err := c.ended(w, d)
		if !ended {
			var expire <-chan time.Time
			if d != 0 {
				if timer == nil {
					timer = time.NewTimer(time.Duration(d - now()))
				} else {
					timer.Reset(time.Duration(d - now()))
				}
				expire = timer.C
			}
			c.asleep.Add(1)
			select {
			case <-s.c:
			case <-expire:
			}
			c.asleep.Add(-1)
			// While the Bell polls it looks at this call; when it
			// stops, it announces this call itself.
			announce = !c.bell.polling.Load()
			continue // re-check
		}
		withdraw(w)
		// A signal left in the channel would only cost the next sleep
		// a look; drop it now.
		select {
		case <-s.c:
		default:
		}
		return err
	}
}
