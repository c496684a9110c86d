package semaphore

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/shmkit/shmkit/internal/futex"
	"github.com/shmkit/shmkit/internal/park"
	"github.com/shmkit/shmkit/shm"
)

// Event is a flag shared by processes, which processes can wait to see
// set: Python's multiprocessing.Event. Set and Clear may be called by any
// process.
type Event struct {
	word *uint32
	seg  *shm.Segment // checked on every operation; keeps the word mapped
	name string
}

// The event word: bit 0 is the flag; bit 31 says that some process may be
// waiting for it, so Set must wake them.
const (
	eventSet     = 1
	eventWaiters = 1 << 31
	eventSize    = 64
)

// NewEvent creates an event named name in seg, initially clear.
func NewEvent(seg *shm.Segment, name string) (*Event, error) { return event(seg, name, true) }

// OpenEvent opens the existing event named name in seg.
func OpenEvent(seg *shm.Segment, name string) (*Event, error) { return event(seg, name, false) }

func event(seg *shm.Segment, name string, create bool) (*Event, error) {
	obj, err := object(seg, name, "event", eventSize, create)
	if err != nil {
		return nil, err
	}
	return &Event{word: word32(obj, 0), seg: seg, name: name}, nil
}

// Set sets the flag and wakes every process waiting for it. It
// synchronizes before each Wait that it ends and each IsSet that sees it.
func (e *Event) Set() {
	closedPanic(e.seg, "event", e.name)
	if old := atomic.SwapUint32(e.word, eventSet); old&eventWaiters != 0 {
		futex.Wake(e.word, wakeAll)
	}
}

// Clear clears the flag.
func (e *Event) Clear() {
	closedPanic(e.seg, "event", e.name)
	atomic.AndUint32(e.word, ^uint32(eventSet))
}

// IsSet reports whether the flag is set.
func (e *Event) IsSet() bool {
	set := atomic.LoadUint32(e.word)&eventSet != 0
	closedPanic(e.seg, "event", e.name) // after reading: see shm.Segment.Close
	return set
}

// Wait waits until the flag is set, as long as ctx allows, and returns nil
// then, or an error matching ctx.Err(). It returns when it sees the flag set: a Set followed
// at once by Clear may pass unseen (Python's Event.wait would return). Use
// a Semaphore or a Condition to count signals. Waiting goroutines of one
// process share one OS thread. Once e's segment is closed, Wait returns an
// error matching shm.ErrClosed.
func (e *Event) Wait(ctx context.Context) error {
	for {
		if err := e.seg.Err(); err != nil {
			return fmt.Errorf("semaphore: event %q: %w", e.name, err)
		}
		w := atomic.LoadUint32(e.word)
		if w&eventSet != 0 {
			// Closed memory reads as zero, never set: what was seen was
			// the segment's.
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("semaphore: event %q: %w", e.name, err)
		}
		if w&eventWaiters == 0 && !atomic.CompareAndSwapUint32(e.word, w, w|eventWaiters) {
			continue
		}
		park.Wait(ctx, e.word, w|eventWaiters, 0)
	}
}

// Name returns e's name in its segment.
func (e *Event) Name() string { return e.name }
