package pool

import (
	"context"
	"encoding/binary"
	"sync/atomic"
	"time"
)

// call is what the tasks of one call of the API (a Map, an IMap, a
// Submit) share: the function, the contexts and what becomes of each
// task's results.
type call struct {
	p    *Pool
	fn   string
	ctx  context.Context // cancels the tasks: see cancel
	drop context.Context // if not nil, drops the tasks not yet sent once done
	end  func(t *task, parts [][]byte, err error)

	live    atomic.Int64 // tasks not ended, plus one until release
	stop    func() bool  // stops the watch of ctx, if it can end
	slab    []task       // tasks allocated and not yet made
	slabLen int          // how many tasks a slab holds
}

// newCall starts a call of fn whose tasks end with end, called once per
// task with its results' parts (decoded before end returns: the memory is
// reused) or its error. slab is how many tasks the call expects to make,
// allocated together. The caller makes the tasks with newTask, then calls
// release.
func (p *Pool) newCall(ctx, drop context.Context, fn string, slab int, end func(*task, [][]byte, error)) *call {
	c := &call{p: p, fn: fn, ctx: ctx, drop: drop, end: end, slabLen: max(1, min(slab, 64))}
	c.live.Store(1)
	if ctx.Done() != nil {
		// One watch per call, not per task: a task costs a few hundred
		// nanoseconds of the parent's time, and a watch as much again.
		c.stop = context.AfterFunc(ctx, c.cancel)
	}
	return c
}

// release says that the call makes no more tasks: once they have ended,
// its context is no longer watched.
func (c *call) release() {
	if c.live.Add(-1) == 0 && c.stop != nil {
		c.stop()
	}
}

// cancel ends the call's tasks that workers have taken, once its context
// has ended: the one a worker is running is ended by killing the worker
// (which the pool replaces); those not started end when their worker
// answers them. Tasks not yet taken end when a worker takes them (see
// sendLoop, which looks at the context again, under the worker's lock,
// as it adds tasks to the worker's out: a task is either seen there or
// added after the context's Err is set, and then not sent).
func (c *call) cancel() {
	err := c.ctx.Err()
	for _, w := range c.p.workerList() {
		w.mu.Lock()
		for i, t := range w.out {
			if t.c != c {
				continue
			}
			t.cancelErr.CompareAndSwap(nil, &err)
			if i == 0 && w.running.Load() == t.id {
				w.proc.Kill()
			}
		}
		w.mu.Unlock()
	}
}

// cancelled splits bundle into the tasks whose call's context has not
// ended, in bundle's memory, and those whose context has.
func cancelled(bundle []*task) (kept, gone []*task) {
	kept = bundle[:0]
	for _, t := range bundle {
		if t.c.ctx.Err() != nil {
			gone = append(gone, t)
		} else {
			kept = append(kept, t)
		}
	}
	return kept, gone
}

// task is a run of arguments of a call, which one worker runs in one go,
// and what becomes of it.
type task struct {
	c      *call
	id     uint64
	off, n int      // the arguments: n from index off of the call's
	msg    []byte   // the task record (see wire.go)
	ref    any      // the call's, to find its state by
	parts  [][]byte // the results received so far

	state         atomic.Int32 // taskPending, taskSent, taskEnded
	cancelErr     atomic.Pointer[error]
	sent          time.Time // when it was sent to its worker
	lastOfMessage bool      // the last task of the message it was sent in
	deaths        int       // workers that died running it
}

const (
	taskPending = iota
	taskSent
	taskEnded
)

// newTask makes a task of c for the n arguments from index off that msg,
// made by encodeTask, carries.
func (c *call) newTask(off, n int, msg []byte) *task {
	if len(c.slab) == 0 {
		c.slab = make([]task, c.slabLen)
	}
	t := &c.slab[0]
	c.slab = c.slab[1:]
	t.c, t.id, t.off, t.n, t.msg = c, c.p.nextID.Add(1), off, n, msg
	binary.LittleEndian.PutUint64(msg, t.id)
	c.live.Add(1)
	return t
}

// finish ends t, once: a later call does nothing.
func (t *task) finish(parts [][]byte, err error) {
	if t.state.Swap(taskEnded) == taskEnded {
		return
	}
	if e := t.cancelErr.Load(); e != nil {
		parts, err = nil, *e
	}
	p := t.c.p
	if err != nil {
		p.failed.Add(1)
	} else {
		p.succeeded.Add(1)
	}
	t.c.end(t, parts, err)
	t.parts, t.ref, t.msg = nil, nil, nil
	t.c.release()
	p.tasks.Done()
}
