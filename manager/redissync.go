package manager

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/shmkit/shmkit/manager/internal/rediscmd"
)

// The Redis engine's blocking operations. Each waits in slices no longer
// than pollSlice between looks at Redis (woken early by a message on the
// object's wake channel where there is one), so that a caller's context
// ends it promptly and a message lost to a broken subscription costs at
// most a slice.

const pollSlice = 250 * time.Millisecond

// waitSlice returns how long to wait before the next look, at most left
// (when > 0) and the time to the deadline (when set), and whether the
// deadline has passed.
func waitSlice(deadline time.Time, left time.Duration) (time.Duration, bool) {
	d := pollSlice
	if left > 0 {
		d = min(d, left)
	}
	if !deadline.IsZero() {
		until := time.Until(deadline)
		if until <= 0 {
			return 0, true
		}
		d = min(d, until)
	}
	return d, false
}

// deadlineOf returns the deadline of a blocking operation's timeout: the
// zero time for none (a negative timeout), now for 0 (try).
func deadlineOf(timeout time.Duration) time.Time {
	if timeout < 0 {
		return time.Time{}
	}
	return time.Now().Add(timeout)
}

// sleep waits for d, a message on sub (if not nil) or ctx's end.
func sleep(ctx context.Context, sub rediscmd.Subscription, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	var wake <-chan struct{}
	if sub != nil {
		wake = sub.C()
	}
	select {
	case <-t.C:
	case <-wake:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// A waker waits for a message on an object's wake channel, subscribing
// on its first wait.
type waker struct {
	e       *redisEngine
	channel string
	sub     rediscmd.Subscription
}

// wait subscribes and returns at once the first time (and after the
// subscription's connection broke), so that the caller looks again once
// subscribed and a message sent between its look and the subscription is
// not missed; later, it sleeps for the next slice (see waitSlice) or
// until a message. past reports that the deadline has passed.
func (w *waker) wait(ctx context.Context, deadline time.Time, left time.Duration) (past bool, err error) {
	if w.sub != nil && w.sub.Err() != nil {
		w.sub.Close()
		w.sub = nil
	}
	if w.sub == nil {
		w.sub, err = w.e.conn.Subscribe(ctx, w.channel)
		return false, err
	}
	d, past := waitSlice(deadline, left)
	if past {
		return true, nil
	}
	return false, sleep(ctx, w.sub, d)
}

func (w *waker) close() {
	if w.sub != nil {
		w.sub.Close()
	}
}

// acquire takes the lock named name for this client: a grant is a lease
// that the client renews while it holds the lock (see renew).
func (e *redisEngine) acquire(ctx context.Context, name string, timeout time.Duration) error {
	key := e.key(name, "")
	deadline := deadlineOf(timeout)
	wake := waker{e: e, channel: e.key(name, "wake")}
	defer wake.close()
	for {
		// Not cancelled by ctx once sent: a grant is never lost.
		v, err := e.eval(ctx, lockAcquire, []string{key}, e.token, itoa(e.lease.Milliseconds()))
		if err != nil {
			return err
		}
		r, ok := v.([]any)
		if !ok || len(r) != 2 {
			return fmt.Errorf("%w: unexpected Redis reply %T", ErrProtocol, v)
		}
		code, _ := r[0].(int64)
		n, _ := r[1].(int64)
		switch code {
		case 1, 2:
			e.hold(key)
			if code == 2 {
				return failf(statusOwnerDead, statusText(statusOwnerDead))
			}
			return nil
		}
		if timeout == 0 {
			return failf(statusTimeout, "lock is held")
		}
		past, err := wake.wait(ctx, deadline, time.Duration(n)*time.Millisecond)
		if err != nil {
			return err
		}
		if past {
			return failf(statusTimeout, "lock is held")
		}
	}
}

// release releases the lock named name, if this client holds it.
func (e *redisEngine) release(ctx context.Context, name string) error {
	key := e.key(name, "")
	if _, err := e.eval(ctx, lockRelease, []string{key}, e.token, "", e.key(name, "wake")); err != nil {
		return err
	}
	e.mu.Lock()
	delete(e.held, key)
	e.mu.Unlock()
	return nil
}

// hold records a lock granted to this client and starts the renewer if it
// is not running.
func (e *redisEngine) hold(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.held[key] = true
	select {
	case <-e.stop:
		return
	default:
	}
	if e.done == nil {
		e.done = make(chan struct{})
		go e.renew()
	}
}

// renew extends the leases of the locks this client holds, every third of
// a lease, until the engine closes. A lock found held by another client
// (this client stopped renewing long enough for its lease to end) is
// forgotten.
func (e *redisEngine) renew() {
	defer close(e.done)
	t := time.NewTicker(e.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
		e.mu.Lock()
		keys := make([]string, 0, len(e.held))
		for k := range e.held {
			keys = append(keys, k)
		}
		e.mu.Unlock()
		for _, k := range keys {
			ctx, cancel := context.WithTimeout(context.Background(), e.lease/3)
			v, err := e.eval(ctx, lockRenew, []string{k}, e.token, itoa(e.lease.Milliseconds()))
			cancel()
			if n, _ := v.(int64); err == nil && n == 0 {
				e.mu.Lock()
				delete(e.held, k)
				e.mu.Unlock()
			}
		}
	}
}

// put appends val to the queue named name, waiting while it is full.
func (e *redisEngine) put(ctx context.Context, name, val string, timeout time.Duration) error {
	keys := []string{e.key(name, ""), e.key(name, "capacity")}
	deadline := deadlineOf(timeout)
	for backoff := time.Millisecond; ; backoff = min(2*backoff, pollSlice/5) {
		v, err := e.eval(ctx, queuePut, keys, val)
		if err != nil {
			return err
		}
		if n, _ := v.(int64); n == 1 {
			return nil
		}
		if timeout == 0 {
			return failf(statusFull, "queue is full")
		}
		d, past := waitSlice(deadline, backoff)
		if past {
			return failf(statusTimeout, "queue is full")
		}
		if err := sleep(ctx, nil, d); err != nil {
			return err
		}
	}
}

// take removes the first item of the queue named name and writes it to w.
// The item moves to this client's pending list, and leaves it once the
// client has it; a client that dies in between leaves it there, and the
// next Get by any client after the lease returns it to the queue's head:
// an item is delivered at least once.
func (e *redisEngine) take(ctx context.Context, name string, timeout time.Duration, w *frameWriter) error {
	list, pending := e.key(name, ""), e.key(name, "pending:"+e.token)
	keys := []string{list, e.key(name, "capacity"), e.key(name, "consumers"), pending}
	deadline := deadlineOf(timeout)
	for {
		v, err := e.eval(ctx, queueTake, keys, e.token, itoa(e.lease.Milliseconds()), e.key(name, "pending:"))
		if err != nil {
			return err
		}
		if v == nil && timeout != 0 {
			d, past := waitSlice(deadline, 0)
			if past {
				return failf(statusTimeout, "queue is empty")
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			// The lease renewed by queueTake outlasts the wait.
			v, err = e.conn.Do(ctx, "BLMOVE", list, pending, "LEFT", "RIGHT", strconv.FormatFloat(d.Seconds(), 'f', -1, 64))
			if err != nil {
				return err
			}
			if v == nil {
				continue
			}
		}
		s, ok, err := bulk(v)
		if err != nil {
			return err
		}
		if !ok {
			return failf(statusEmpty, "queue is empty")
		}
		// Received: off the pending list. Should the acknowledgement
		// fail, the item may be delivered again.
		e.conn.Do(context.WithoutCancel(ctx), "LREM", pending, "1", s)
		w.raw(s)
		return nil
	}
}

// waitEvent waits until the event named name is set.
func (e *redisEngine) waitEvent(ctx context.Context, name string, timeout time.Duration) error {
	key := e.key(name, "")
	deadline := deadlineOf(timeout)
	wake := waker{e: e, channel: e.key(name, "wake")}
	defer wake.close()
	for {
		v, err := e.conn.Do(ctx, "EXISTS", key)
		if err != nil {
			return err
		}
		if n, _ := v.(int64); n == 1 {
			return nil
		}
		if timeout == 0 {
			return failf(statusTimeout, "event not set")
		}
		past, err := wake.wait(ctx, deadline, 0)
		if err != nil {
			return err
		}
		if past {
			return failf(statusTimeout, "event not set")
		}
	}
}
