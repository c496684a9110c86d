package manager

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// A Lock is a proxy for a lock held by the server. It is held by a
// connection: every goroutine of the Client that acquired it holds it, as
// a semaphore.Mutex is held by a process. Acquires are served in arrival
// order; a waiting client whose process has died is passed over rather
// than granted the lock.
//
// If the holding client's connection ends (it closed, crashed or was
// killed) the server releases the lock, and the next Acquire returns
// ErrOwnerDead with the lock held, so that the new holder knows the
// protected state may be half-updated. A Release by a client that does
// not hold the lock is ErrNotOwner.
//
// A Release synchronizes before the Acquire it lets succeed: requests the
// releasing client made to other objects before Release are applied by
// the server before the next holder's Acquire returns.
type Lock struct{ r *ref }

// OpenLock returns a proxy for the lock named name on c's server, creating
// an unlocked one if there is none.
func OpenLock(ctx context.Context, c *Client, name string) (*Lock, error) {
	return openProxy(ctx, c, kindLock, name, 0, func(r *ref) *Lock { return &Lock{r} })
}

// Name returns the lock's name.
func (l *Lock) Name() string { return l.r.name }

// Acquire waits until the lock is free and takes it, or until ctx ends.
// It returns nil or an error matching ErrOwnerDead when it took the lock,
// and ctx.Err() (the lock not taken) otherwise. If ctx ends just as the
// server grants the lock, Acquire returns nil: the lock is held.
func (l *Lock) Acquire(ctx context.Context) error {
	cl, err := l.r.blocking(ctx, opLockAcquire, false, func(w *frameWriter, timeout time.Duration) error {
		w.int(int64(timeout))
		return nil
	})
	if err != nil {
		return ctxErr(ctx, err)
	}
	cl.recycle()
	return nil
}

// TryAcquire takes the lock if it is free and reports whether it did. The
// error matches ErrOwnerDead when it took a lock whose holder died.
func (l *Lock) TryAcquire(ctx context.Context) (bool, error) {
	// Not lost if ctx ends meanwhile: a lock granted is reported held.
	cl, err := l.r.blocking(ctx, opLockAcquire, true, func(w *frameWriter, timeout time.Duration) error {
		w.int(int64(timeout))
		return nil
	})
	switch {
	case err == nil:
		cl.recycle()
		return true, nil
	case errors.Is(err, ErrOwnerDead):
		return true, err
	case isStatus(err, statusTimeout):
		return false, nil
	}
	return false, err
}

// Release releases the lock.
func (l *Lock) Release(ctx context.Context) error { return l.r.noResult(ctx, opLockRelease, nil) }

// Locked reports whether some client holds the lock.
func (l *Lock) Locked(ctx context.Context) (bool, error) { return l.r.boolOp(ctx, opLockLocked, nil) }

// Fence returns the fencing token of the grant this client holds: the
// number of times the lock has been granted, so that every grant's token
// is greater than the one before it. A resource the lock protects can
// remember the largest token it has seen and refuse requests carrying a
// smaller one, which turns away a holder that lost the lock without
// knowing it (paused past its lease on Redis, say). Fence returns an
// error matching ErrNotOwner if this client does not hold the lock.
func (l *Lock) Fence(ctx context.Context) (uint64, error) {
	cl, err := l.r.call(ctx, opLockFence, nil)
	if err != nil {
		return 0, err
	}
	var n uint64
	err = decodeResults(cl, func(res *results) { res.uint(&n) })
	return n, l.r.wrapErr(err)
}

// A Queue is a proxy for a FIFO queue held by the server, like Python's
// Manager().Queue(). Items are delivered once each, in the order they were
// put, to the client that has waited longest. A waiting client whose
// process has died (its socket closed, even if the server has not yet
// read to the end of it) is passed over, and the item goes to the next
// one or stays queued; a client that dies while the item is on its way to
// it loses the item.
type Queue[T any] struct{ r *ref }

// OpenQueue returns a proxy for the queue named name on c's server,
// creating one holding at most capacity items (0 for no limit) if there is
// none.
func OpenQueue[T any](ctx context.Context, c *Client, name string, capacity int) (*Queue[T], error) {
	if capacity < 0 {
		return nil, fmt.Errorf("manager: queue %q: negative capacity %d", name, capacity)
	}
	return openProxy(ctx, c, kindQueue, name, int64(capacity), func(r *ref) *Queue[T] { return &Queue[T]{r} })
}

// Name returns the queue's name.
func (q *Queue[T]) Name() string { return q.r.name }

// Put adds v at the end, waiting while the queue is full until ctx ends.
func (q *Queue[T]) Put(ctx context.Context, v T) error {
	cl, err := q.r.blocking(ctx, opQueuePut, false, func(w *frameWriter, timeout time.Duration) error {
		if err := appendItem(w, v); err != nil {
			return err
		}
		w.int(int64(timeout))
		return nil
	})
	if err != nil {
		return ctxErr(ctx, err)
	}
	cl.recycle()
	return nil
}

// TryPut adds v if the queue is not full and reports whether it did.
func (q *Queue[T]) TryPut(ctx context.Context, v T) (bool, error) {
	cl, err := q.r.blocking(ctx, opQueuePut, true, func(w *frameWriter, timeout time.Duration) error {
		if err := appendItem(w, v); err != nil {
			return err
		}
		w.int(int64(timeout))
		return nil
	})
	if isStatus(err, statusFull) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	cl.recycle()
	return true, nil
}

// Get removes and returns the first item, waiting while the queue is
// empty until ctx ends. If ctx ends just as an item arrives, Get returns
// the item rather than lose it.
func (q *Queue[T]) Get(ctx context.Context) (T, error) {
	var v T
	cl, err := q.r.blocking(ctx, opQueueGet, false, func(w *frameWriter, timeout time.Duration) error {
		w.int(int64(timeout))
		return nil
	})
	if err != nil {
		return v, ctxErr(ctx, err)
	}
	err = decodeResults(cl, func(r *results) { into(r, &v) })
	return v, q.r.wrapErr(err)
}

// TryGet removes and returns the first item if there is one.
func (q *Queue[T]) TryGet(ctx context.Context) (T, bool, error) {
	// Not lost if ctx ends meanwhile: an item taken is returned.
	var v T
	cl, err := q.r.blocking(ctx, opQueueGet, true, func(w *frameWriter, timeout time.Duration) error {
		w.int(int64(timeout))
		return nil
	})
	if err == nil {
		err = q.r.wrapErr(decodeResults(cl, func(r *results) { into(r, &v) }))
	}
	if isStatus(err, statusEmpty) {
		return v, false, nil
	}
	return v, err == nil, err
}

// Len returns the number of items queued.
func (q *Queue[T]) Len(ctx context.Context) (int, error) { return q.r.lenOp(ctx, opQueueLen, nil) }

// An Event is a proxy for a flag held by the server that clients wait on,
// like Python's Manager().Event().
type Event struct{ r *ref }

// OpenEvent returns a proxy for the event named name on c's server,
// creating a clear one if there is none.
func OpenEvent(ctx context.Context, c *Client, name string) (*Event, error) {
	return openProxy(ctx, c, kindEvent, name, 0, func(r *ref) *Event { return &Event{r} })
}

// Name returns the event's name.
func (e *Event) Name() string { return e.r.name }

// Set sets the flag and wakes every waiter.
func (e *Event) Set(ctx context.Context) error { return e.r.noResult(ctx, opEventSet, nil) }

// Clear clears the flag.
func (e *Event) Clear(ctx context.Context) error { return e.r.noResult(ctx, opEventClear, nil) }

// IsSet reports whether the flag is set.
func (e *Event) IsSet(ctx context.Context) (bool, error) { return e.r.boolOp(ctx, opEventIsSet, nil) }

// Wait waits until the flag is set or ctx ends, returning ctx.Err() then.
func (e *Event) Wait(ctx context.Context) error {
	cl, err := e.r.blocking(ctx, opEventWait, false, func(w *frameWriter, timeout time.Duration) error {
		w.int(int64(timeout))
		return nil
	})
	if err != nil {
		return ctxErr(ctx, err)
	}
	cl.recycle()
	return nil
}

// isStatus reports whether err is a RemoteError with status s.
func isStatus(err error, s status) bool {
	var re *RemoteError
	return errors.As(err, &re) && re.status == s
}

// ctxErr returns ctx.Err() for a blocking operation that gave up because
// ctx ended (the server's timeout is ctx's deadline), and err otherwise.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		return ctx.Err()
	}
	return err
}
