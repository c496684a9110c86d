package manager

import (
	"context"
	"sync"
)

// A ctxWatch interrupts a session's blocking reads, or its writes, when the
// context of the call in progress ends, by setting the connection's
// deadline in the past (interrupt). Calls of its kind take turns (the
// session's token or wtoken), so at most one is in progress.
//
// context.AfterFunc costs an allocation and a registration with the
// context, twice per request, which halved a client's rate with a
// cancellable context (BenchmarkCancelableContext). A program passes the
// same context to call after call, so the watch keeps its registration
// from one call to the next while the context is the same, and makes a
// new one only for another context, or once the registered context has
// ended.
type ctxWatch struct {
	interrupt func()

	mu     sync.Mutex
	ctx    context.Context // registered with AfterFunc; nil: none
	stop   func() bool
	active bool // a call with ctx is in progress
	fired  bool // interrupt ran for the call in progress
}

// begin announces a call with ctx.
func (w *ctxWatch) begin(ctx context.Context) {
	if ctx.Done() == nil {
		return // never ends: nothing to watch
	}
	w.mu.Lock()
	if w.ctx != ctx {
		if w.stop != nil {
			w.stop()
		}
		w.ctx, w.stop = ctx, context.AfterFunc(ctx, func() { w.fire(ctx) })
	}
	w.active = true
	w.mu.Unlock()
}

// fire interrupts the call in progress if it has ctx; the registration
// is then used up, and the next call with ctx makes a new one, which
// fires at once.
func (w *ctxWatch) fire(ctx context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctx != ctx {
		return // replaced meanwhile
	}
	w.ctx, w.stop = nil, nil
	if w.active {
		w.interrupt()
		w.fired = true
	}
}

// end ends the call begun last, and reports whether it was interrupted,
// in which case the caller clears the deadline. Once end has returned,
// no interrupt lands for that call.
func (w *ctxWatch) end() (interrupted bool) {
	w.mu.Lock()
	interrupted = w.fired
	w.active, w.fired = false, false
	w.mu.Unlock()
	return interrupted
}

// release drops the registration, for a session that has ended.
func (w *ctxWatch) release() {
	w.mu.Lock()
	if w.stop != nil {
		w.stop()
	}
	w.ctx, w.stop = nil, nil
	w.mu.Unlock()
}
