package queue

import (
	"errors"
	"fmt"
)

// Errors of queues and pipes, for errors.Is.
var (
	// ErrFull reports that TryPut found no room.
	ErrFull = errors.New("queue: full")

	// ErrEmpty reports that TryGet found no message.
	ErrEmpty = errors.New("queue: empty")

	// ErrClosed reports a Put on a queue closed for writing (see
	// Queue.Close), or a Send on a pipe end that was closed.
	ErrClosed = errors.New("queue: closed")

	// ErrTooLarge reports a message whose encoding is larger than the
	// queue's or pipe's maximum message size.
	ErrTooLarge = errors.New("queue: message too large")

	// ErrCorrupt reports a queue or pipe whose shared memory does not hold
	// what this package writes there: a foreign or damaged header, a slot
	// in an impossible state, a message that does not decode.
	ErrCorrupt = errors.New("queue: corrupt")

	// ErrTasksLost reports, from JoinableQueue.Join, tasks that a consumer
	// took and never marked done because it died. The error is a
	// *LostError with the count.
	ErrTasksLost = errors.New("queue: tasks lost to dead consumers")

	// ErrTaskDone reports a TaskDone without a task to mark done: more
	// TaskDone calls in this process than messages it got.
	ErrTaskDone = errors.New("queue: TaskDone called more times than Get")

	// ErrHandles reports that every one of a queue's MaxProcesses process
	// records belongs to a live process, so one more cannot attach.
	ErrHandles = errors.New("queue: too many processes attached")

	// ErrPeerDied reports that the process at the other end of a pipe died
	// without closing its end. Recv returns it, wrapped together with
	// io.EOF, once what the peer sent has been drained.
	ErrPeerDied = errors.New("queue: pipe peer died")
)

// LostError reports tasks lost to consumers that died holding them. It
// matches ErrTasksLost.
type LostError struct {
	Count int64 // tasks lost since the handle's previous Join
}

func (e *LostError) Error() string {
	return fmt.Sprintf("queue: %d tasks lost to dead consumers", e.Count)
}

// Is reports whether target is ErrTasksLost.
func (e *LostError) Is(target error) bool { return target == ErrTasksLost }
