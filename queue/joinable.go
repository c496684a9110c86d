package queue

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/shmkit/shmkit/internal/futex"
	"github.com/shmkit/shmkit/internal/park"
	"github.com/shmkit/shmkit/shm"
)

// JoinableQueue is a Queue whose consumers mark each message done
// (TaskDone), so that Join can wait until every message put has been got
// and processed, as Python's JoinableQueue does. Unlike Python's, Join
// does not wait for ever when a consumer dies holding tasks: it returns
// once the survivors are done, with a *LostError counting the tasks the
// dead took with them.
//
// Tasks are counted per process: a TaskDone marks done one task got by
// any handle of the queue in the same process.
type JoinableQueue[T any] struct {
	*Queue[T]
	lostSeen atomic.Int64 // Lost() as of this handle's last Join, or its opening
}

// NewJoinable creates a joinable queue named name in seg; see New.
func NewJoinable[T any](seg *shm.Segment, name string, opts ...Option) (*JoinableQueue[T], error) {
	q, err := create[T](seg, name, true, opts)
	return joinable(q, err)
}

// OpenJoinable attaches to the joinable queue named name in seg; see Open.
// A plain Queue of the same name is refused with shm.ErrTypeMismatch, and
// so is a joinable one by Open: a consumer that did not count its tasks
// would let Join return early.
func OpenJoinable[T any](seg *shm.Segment, name string) (*JoinableQueue[T], error) {
	q, err := open[T](seg, name, true)
	return joinable(q, err)
}

func joinable[T any](q *Queue[T], err error) (*JoinableQueue[T], error) {
	if err != nil {
		return nil, err
	}
	j := &JoinableQueue[T]{Queue: q}
	j.lostSeen.Store(q.r.lost())
	return j, nil
}

// TaskDone marks done one task this process got from the queue. It fails
// with ErrTaskDone if this process holds none.
func (q *JoinableQueue[T]) TaskDone() error {
	if err := q.r.seg.Err(); err != nil {
		return fmt.Errorf("queue %q: task done: %w", q.name, err)
	}
	for {
		n := atomic.LoadInt64(q.r.held)
		if n <= 0 {
			return fmt.Errorf("queue %q: %w", q.name, ErrTaskDone)
		}
		if atomic.CompareAndSwapInt64(q.r.held, n, n-1) {
			break
		}
	}
	if n := atomic.LoadInt64(q.r.held); n == 0 {
		wake(q.r.joinWait)
	}
	return nil
}

// Held returns how many tasks this process got and has not marked done.
func (q *JoinableQueue[T]) Held() int64 {
	n := atomic.LoadInt64(q.r.held)
	q.check()
	return n
}

// Join waits until the queue is empty and every live process has marked
// done every task it got, or ctx ends. It returns nil, or a *LostError
// (matching ErrTasksLost) when consumers died holding tasks since this
// handle's previous Join (or its opening): a death is noticed within
// semaphore.CheckInterval of the process being gone.
func (q *JoinableQueue[T]) Join(ctx context.Context) error {
	for {
		v := atomic.OrUint32(q.r.joinWait, 1) | 1
		done, err := q.r.settled()
		if err != nil {
			return fmt.Errorf("queue %q: join: %w", q.name, err)
		}
		if done {
			break
		}
		err = park.Wait(ctx, q.r.joinWait, v, futex.Now()+int64(checkInterval))
		if err == nil || err == park.ErrTimeout {
			err = q.r.seg.Err()
		}
		if err != nil {
			return q.opError("join", err)
		}
	}
	for {
		seen := q.lostSeen.Load()
		n := q.r.lost()
		if n <= seen {
			return nil
		}
		if q.lostSeen.CompareAndSwap(seen, n) {
			return &LostError{Count: n - seen}
		}
	}
}
