package pool

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/shmkit/shmkit/internal/codec"
	"github.com/shmkit/shmkit/internal/funcs"
	"github.com/shmkit/shmkit/process"
)

// A CallOption configures one call (Map, IMap, IMapUnordered).
type CallOption func(*callOptions)

type callOptions struct{ chunk int }

// ChunkSize sets how many arguments go to a worker in one task. By default
// Map uses Python's rule (len/(4·workers), rounded up) and IMap and
// IMapUnordered send one argument per task, as Python's imap does.
// Chunks whose encoding exceeds the pool's MaxMessage are split.
func ChunkSize(n int) CallOption { return func(o *callOptions) { o.chunk = n } }

// Future is the result of a task that may not have finished: Submit's,
// ApplyAsync's and MapAsync's. Its methods may be called from any
// goroutine.
type Future[R any] struct {
	done chan struct{}
	r    R
	err  error
	t    *task // for Cancel; nil when the call failed before submitting
}

func failed[R any](err error) *Future[R] {
	f := &Future[R]{done: make(chan struct{}), err: err}
	close(f.done)
	return f
}

// Done returns a channel that is closed once the result is ready.
func (f *Future[R]) Done() <-chan struct{} { return f.done }

// Ready reports whether the result is ready.
func (f *Future[R]) Ready() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// Wait waits until the result is ready or ctx ends (returning ctx.Err();
// the task goes on).
func (f *Future[R]) Wait(ctx context.Context) error {
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Get waits until the result is ready, as Wait does, and returns it.
func (f *Future[R]) Get(ctx context.Context) (R, error) {
	if err := f.Wait(ctx); err != nil {
		var zero R
		return zero, err
	}
	return f.r, f.err
}

// Err returns the task's error once the result is ready, and nil before.
func (f *Future[R]) Err() error {
	if !f.Ready() {
		return nil
	}
	return f.err
}

// Successful reports whether the result is ready and the task succeeded.
func (f *Future[R]) Successful() bool { return f.Ready() && f.err == nil }

// Cancel cancels the task if no worker has taken it yet, so that it fails
// with context.Canceled, and reports whether it did. A task that runs is
// cancelled through the context of its call instead.
func (f *Future[R]) Cancel() bool {
	if f.t == nil || !f.t.state.CompareAndSwap(taskPending, taskSent) {
		return false
	}
	// Sent, as far as the workers know, who skip it: ending it is this
	// call's.
	err := context.Canceled
	f.t.cancelErr.CompareAndSwap(nil, &err)
	f.t.finish(nil, nil)
	return true
}

// Submit runs fn(arg) in a worker and returns at once, with a future of
// its result: Python's apply_async and ProcessPoolExecutor.submit. ctx
// cancels the task: before it runs, it is dropped; while it runs, its
// worker is killed (and replaced) and the task fails with ctx.Err().
// Submit waits only while the pool has InFlight tasks waiting for a
// worker.
func Submit[A, R any](ctx context.Context, p *Pool, fn *process.Func[A, R], arg A) *Future[R] {
	args := [1]A{arg}
	msg, err := encodeTask(p, fn.Name(), args[:])
	if err != nil {
		return failed[R](err)
	}
	f := &Future[R]{done: make(chan struct{})}
	c := p.newCall(ctx, nil, fn.Name(), 1, func(t *task, parts [][]byte, err error) {
		var rs [1]R
		if err == nil {
			err = decodeResults(fn.Name(), parts, rs[:])
		}
		f.r, f.err = rs[0], err
		close(f.done)
	})
	f.t = c.newTask(0, 1, msg)
	c.release()
	if err := p.submit(ctx, f.t); err != nil && !f.Ready() {
		return failed[R](err)
	}
	return f
}

// ApplyAsync is Submit, under Python's name.
func ApplyAsync[A, R any](ctx context.Context, p *Pool, fn *process.Func[A, R], arg A) *Future[R] {
	return Submit(ctx, p, fn, arg)
}

// Apply runs fn(arg) in a worker and returns its result.
func Apply[A, R any](ctx context.Context, p *Pool, fn *process.Func[A, R], arg A) (R, error) {
	return Submit(ctx, p, fn, arg).Get(context.Background())
}

// encodeTask returns the task record of fn on args (see wire.go), its id
// left to call.newTask, or ErrTooLarge if it does not fit in a message.
func encodeTask[A any](p *Pool, fn string, args []A) ([]byte, error) {
	head := taskHeader + len(fn)
	m, err := funcs.AppendSlice(make([]byte, head, head+64), args)
	if err != nil && !errors.Is(err, codec.ErrTooLarge) {
		return nil, fmt.Errorf("pool: encode arguments of %s: %w", fn, err)
	}
	if max := p.o.maxMessage - head; err != nil || len(m)-head > max {
		return nil, fmt.Errorf("%w: %d arguments of %s take more than the %d bytes of a message", ErrTooLarge, len(args), fn, max)
	}
	putTaskHeader(m, fn)
	return m, nil
}

// decodeResults decodes the parts of a task's results into rs, which
// they must fill.
func decodeResults[R any](fn string, parts [][]byte, rs []R) error {
	n := 0
	for _, part := range parts {
		some, err := funcs.DecodeSliceInto(part, rs[n:])
		if err != nil {
			return fmt.Errorf("pool: decode results of %s: %w", fn, err)
		}
		n += some
	}
	if n != len(rs) {
		return fmt.Errorf("pool: %s returned %d results for %d arguments", fn, n, len(rs))
	}
	return nil
}

// chunks calls send with the task records of consecutive runs of args of
// about size each, splitting a run whose encoding does not fit in a
// message (and sending smaller runs from then on). It stops at the first
// error.
func chunks[A any](p *Pool, fn string, args []A, size int, send func(off, n int, msg []byte) error) error {
	for off := 0; off < len(args); {
		n := min(size, len(args)-off)
		msg, err := encodeTask(p, fn, args[off:off+n])
		if errors.Is(err, ErrTooLarge) && n > 1 {
			size = max(1, n/2)
			continue
		}
		if err != nil {
			return fmt.Errorf("%w (argument %d)", err, off)
		}
		if err := send(off, n, msg); err != nil {
			return err
		}
		off += n
	}
	return nil
}

// defaultChunk is Python's rule for Map: len/(4·workers), rounded up.
func defaultChunk(n, workers int) int {
	c, extra := n/(4*workers), n%(4*workers)
	if extra != 0 {
		c++
	}
	return max(c, 1)
}

// Map runs fn on every element of args in the workers, in chunks (see
// ChunkSize), and returns the results in the order of args: Python's
// Pool.map. It fails with the first error of a task, by the order of args,
// and then cancels the tasks not yet finished; ctx cancels the call.
// Python's starmap is Map over a slice of structs.
func Map[A, R any](ctx context.Context, p *Pool, fn *process.Func[A, R], args []A, opts ...CallOption) ([]R, error) {
	return MapAsync(ctx, p, fn, args, opts...).Get(context.Background())
}

// MapAsync is Map returning at once, with a future of the results:
// Python's map_async. It waits only while the pool has InFlight tasks
// waiting for a worker.
func MapAsync[A, R any](ctx context.Context, p *Pool, fn *process.Func[A, R], args []A, opts ...CallOption) *Future[[]R] {
	var o callOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.chunk < 0 {
		return failed[[]R](fmt.Errorf("pool: chunk size %d is negative", o.chunk))
	}
	if o.chunk == 0 {
		o.chunk = defaultChunk(len(args), p.o.workers)
	}
	f := &Future[[]R]{done: make(chan struct{})}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	out := make([]R, len(args))
	var (
		mu       sync.Mutex
		firstErr error // of the failed task first in args
		errAt    = len(args)
		wg       sync.WaitGroup
	)
	fail := func(off int, err error) {
		mu.Lock()
		defer mu.Unlock()
		if errors.Is(err, context.Canceled) && parent.Err() == nil {
			return // cancelled by this call, after the failure that matters
		}
		if off < errAt {
			firstErr, errAt = err, off
		}
		cancel()
	}
	// The tasks run under the caller's context, which kills a worker
	// if it ends mid-task; a failure of another chunk only drops those
	// that no worker has taken yet (Python lets the chunks that run
	// finish).
	c := p.newCall(parent, ctx, fn.Name(), (len(args)+o.chunk-1)/o.chunk, func(t *task, parts [][]byte, err error) {
		defer wg.Done()
		if err == nil {
			err = decodeResults(fn.Name(), parts, out[t.off:t.off+t.n])
		}
		if err != nil {
			fail(t.off, err)
		}
	})
	err := chunks(p, fn.Name(), args, o.chunk, func(off, n int, msg []byte) error {
		wg.Add(1)
		return p.submit(ctx, c.newTask(off, n, msg)) // a task that fails to submit reports it too
	})
	c.release()
	if err != nil {
		cancel()
	}
	go func() {
		wg.Wait()
		cancel()
		mu.Lock()
		defer mu.Unlock()
		switch {
		case firstErr != nil:
			f.err = firstErr
		case err != nil:
			f.err = err
		default:
			f.r = out
		}
		close(f.done)
	}()
	return f
}
