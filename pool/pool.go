package pool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmkit/shmkit/internal/funcs"
	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/queue"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/value"
)

// Defaults of a pool.
const (
	DefaultMaxMessage = 64 << 10 // bytes of a task's arguments, or of a part of its results
	DefaultInFlight   = 4096     // tasks waiting for a worker
	bundleMax         = 64       // tasks in one message
	bundleMin         = 16       // tasks in one message when few wait (see sendLoop)
	ahead             = 2        // messages a worker is sent before it answers the first

	// quickTask is the service time below which a worker's tasks are
	// quick: it is then sent two messages ahead, each bundling the tasks
	// waiting, so that it never waits between them; a worker whose last
	// task took longer is sent one task at a time, so that few tasks wait
	// behind a long one for an idle worker to take them back (see
	// steal).
	quickTask = 200 * time.Microsecond
)

// Option configures New.
type Option func(*options)

type options struct {
	workers    int
	maxTasks   int
	maxMessage int
	inFlight   int
	retries    int
	initFunc   string
	initArg    []byte
	initErr    error
}

// Workers sets the number of worker processes (default runtime.NumCPU()).
func Workers(n int) Option { return func(o *options) { o.workers = n } }

// MaxTasksPerWorker makes each worker exit after n tasks (a chunk of a
// Map is one task) and be replaced by a fresh one, as Python's
// maxtasksperchild does; 0, the default, keeps workers for the pool's
// life.
func MaxTasksPerWorker(n int) Option { return func(o *options) { o.maxTasks = n } }

// MaxMessage sets the largest encoding of a task's arguments (and of each
// part of its results, which a worker splits as needed), default
// DefaultMaxMessage. A chunk of a Map whose arguments take more is split;
// one argument that takes more fails its call with ErrTooLarge.
func MaxMessage(n int) Option { return func(o *options) { o.maxMessage = n } }

// InFlight bounds the tasks waiting for a worker (default
// DefaultInFlight): a call that submits more, Submit included, waits until
// one is taken. IMap and IMapUnordered bound their read-ahead on their
// own.
func InFlight(n int) Option { return func(o *options) { o.inFlight = n } }

// Retries makes a task whose worker died while running it run again, on
// another worker, up to n times before it fails with ErrWorkerDied. Use it
// for idempotent work only: the task may have done part of its work each
// time. A task killed for its context is not retried.
func Retries(n int) Option { return func(o *options) { o.retries = n } }

// Initializer makes every worker run fn(arg) once, when it starts and
// before its first task: Python's initializer and initargs. A worker is a
// process of its own, so what fn keeps in package-level variables (an
// opened segment, a connection) is that worker's state, which the tasks it
// runs then use. A worker whose initializer fails exits; the pool starts
// no more workers, and once none is left its tasks fail with the
// initializer's error (a *TaskError with Func set to fn's name).
func Initializer[A any](fn *process.Func[A, struct{}], arg A) Option {
	b, err := funcs.EncodeSlice([]A{arg})
	return func(o *options) {
		o.initFunc, o.initArg, o.initErr = fn.Name(), b, err
		if err != nil {
			o.initErr = fmt.Errorf("pool: encode the argument of initializer %s: %w", fn.Name(), err)
		}
	}
}

// Pool is a pool of worker processes that run registered functions
// (process.Register) on the arguments of calls such as Map, Apply and
// Submit. Its methods and the calls may be used from any goroutine.
type Pool struct {
	o       options
	pending chan *task    // tasks submitted and not yet taken by a worker
	stop    chan struct{} // closed by Terminate
	nextID  atomic.Uint64

	mu       sync.Mutex
	closed   bool // no new tasks
	quitting bool // workers are being shut down: no replacements
	workers  map[*worker]struct{}
	tasks    sync.WaitGroup // tasks submitted and not finished
	loops    sync.WaitGroup // the goroutines of every worker
	startErr error          // the last failure to start a replacement
	initErr  error          // the initializer's failure: no more workers

	submitted, succeeded, failed atomic.Int64
	idle                         atomic.Int32 // workers with no task sent and unanswered
}

// New starts a pool of worker processes: copies of the program, which must
// call process.Main first in main (and in TestMain). The workers run as
// daemons, so they die with the program however it ends. New returns once
// the workers are started, not ready: tasks go to each as soon as it is.
func New(ctx context.Context, opts ...Option) (*Pool, error) {
	o := options{workers: runtime.NumCPU(), maxMessage: DefaultMaxMessage}
	for _, opt := range opts {
		opt(&o)
	}
	switch {
	case o.workers < 1 || o.workers > 4096:
		return nil, fmt.Errorf("pool: %d workers out of range [1, 4096]", o.workers)
	case o.maxTasks < 0:
		return nil, fmt.Errorf("pool: MaxTasksPerWorker %d is negative", o.maxTasks)
	case o.maxMessage < 1<<10 || o.maxMessage > 1<<28:
		return nil, fmt.Errorf("pool: MaxMessage %d out of range [1 KiB, 256 MiB]", o.maxMessage)
	case o.inFlight < 0:
		return nil, fmt.Errorf("pool: InFlight %d is negative", o.inFlight)
	case o.retries < 0:
		return nil, fmt.Errorf("pool: Retries %d is negative", o.retries)
	case o.initErr != nil:
		return nil, o.initErr
	}
	if o.inFlight == 0 {
		o.inFlight = DefaultInFlight
	}
	p := &Pool{o: o, pending: make(chan *task, o.inFlight), stop: make(chan struct{}), workers: map[*worker]struct{}{}}
	for range o.workers {
		if err := ctx.Err(); err != nil {
			p.Terminate()
			return nil, err
		}
		if err := p.startWorker(); err != nil {
			p.Terminate()
			return nil, err
		}
	}
	return p, nil
}

// Stats counts a pool's tasks, for progress reports: a call of Map is as
// many tasks as it has chunks.
type Stats struct {
	Submitted int64 // tasks submitted
	Succeeded int64 // tasks whose results came back
	Failed    int64 // tasks that failed: an error, a panic, a dead worker, a cancelled context
	Workers   int   // worker processes running
}

// Stats returns the pool's counts so far.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	n := len(p.workers)
	p.mu.Unlock()
	return Stats{Submitted: p.submitted.Load(), Succeeded: p.succeeded.Load(), Failed: p.failed.Load(), Workers: n}
}

// Close stops the pool taking new tasks: calls made afterwards fail with
// ErrClosed; the tasks already submitted run to the end. Close is
// idempotent; Join then waits for the workers to exit.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	return nil
}

// Join closes the pool (see Close), waits until every task submitted has
// finished, then ends the workers and waits until they have exited, or
// until ctx ends (the workers then keep running: call Terminate).
func (p *Pool) Join(ctx context.Context) error {
	p.Close()
	done := make(chan struct{})
	go func() { p.tasks.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	case <-p.stop:
	}
	return p.shutdown(ctx, false)
}

// Terminate stops the pool now: it kills the workers, fails every task
// not finished with ErrClosed, and returns once the workers have exited.
// It is idempotent.
func (p *Pool) Terminate() error {
	p.mu.Lock()
	p.closed = true
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.mu.Unlock()
	p.drain(p.closedErr())
	return p.shutdown(context.Background(), true)
}

// drain fails, with err, the tasks that no worker has taken.
func (p *Pool) drain(err error) {
	for {
		select {
		case t := <-p.pending:
			t.finish(nil, err)
		default:
			return
		}
	}
}

// workerList returns the workers running.
func (p *Pool) workerList() []*worker {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Collect(maps.Keys(p.workers))
}

// shutdown ends every worker (by closing its pipe, or with kill by
// SIGKILL) and waits for them and their goroutines.
func (p *Pool) shutdown(ctx context.Context, kill bool) error {
	p.mu.Lock()
	p.quitting = true
	ws := slices.Collect(maps.Keys(p.workers))
	p.mu.Unlock()
	for _, w := range ws {
		if kill {
			w.proc.Kill()
		}
		w.pipe.Close() // the worker's Recv returns io.EOF, and it exits
	}
	done := make(chan struct{})
	go func() { p.loops.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if kill {
		p.drain(p.closedErr()) // what a submit raced in
	}
	// Reported once: a Terminate after a Join has nothing to add.
	p.mu.Lock()
	defer p.mu.Unlock()
	err := p.startErr
	p.startErr = nil
	return err
}

// submit hands t to the workers, waiting while InFlight tasks wait for a
// worker.
func (p *Pool) submit(ctx context.Context, t *task) error {
	p.mu.Lock()
	if p.closed {
		err := p.closedErrLocked()
		p.tasks.Add(1) // finish counts it out
		p.mu.Unlock()
		t.finish(nil, err)
		return err
	}
	p.tasks.Add(1)
	p.mu.Unlock()
	p.submitted.Add(1)
	select {
	case p.pending <- t:
		p.drainIfStopped()
		return nil
	case <-ctx.Done():
		t.finish(nil, ctx.Err())
		return ctx.Err()
	case <-p.stop:
		err := p.closedErr()
		t.finish(nil, err)
		return err
	}
}

// requeue hands back to the workers a task that a worker took and never
// started.
func (p *Pool) requeue(t *task) {
	select {
	case p.pending <- t:
		p.drainIfStopped()
	case <-p.stop:
		t.finish(nil, p.closedErr())
	}
}

// drainIfStopped fails what waits for a worker if the pool has been
// terminated: a task put in pending as Terminate drained it (select
// chooses at random among ready cases) would otherwise wait for ever.
func (p *Pool) drainIfStopped() {
	select {
	case <-p.stop:
		p.drain(p.closedErr())
	default:
	}
}

// worker is the parent's side of one worker process: its segment, holding
// the pipe and the running cell, and the tasks sent to it in order.
type worker struct {
	p       *Pool
	proc    *process.Process
	seg     *shm.Segment
	pipe    *queue.Pipe[[]byte]
	running *value.Cell[uint64]
	budget  *value.Cell[int64] // tasks sent that the worker may start (see runWorker)
	bell    *doorbell          // rung by the worker when it answers
	room    chan struct{}      // a token after each answer: the sender may send more

	mu         sync.Mutex
	out        []*task // sent and not answered, in the order sent; nil once dead
	messages   int     // messages of tasks sent and not wholly answered
	sent       int     // tasks sent, less those taken back (for MaxTasksPerWorker)
	sendDone   bool    // sendLoop has sent its MaxTasksPerWorker and returned
	revoked    int     // tasks taken back whose revoked answers are awaited
	lastQuick  bool    // the last task answered was quick (see quickTask)
	lastAnswer time.Time
	dead       chan struct{}
}

func (p *Pool) startWorker() (err error) {
	pipeOpts := []queue.Option{queue.Capacity(pipeDepth), queue.MaxMessage(frameSize)}
	size, err := queue.PipeSize[[]byte](pipeOpts...)
	if err != nil {
		return err
	}
	seg, err := shm.CreateAnonymous(size + 64<<10)
	if err != nil {
		return fmt.Errorf("pool: %w", err)
	}
	defer func() {
		if err != nil {
			seg.Close()
		}
	}()
	pipe, err := queue.NewPipe[[]byte](seg, pipeName, pipeOpts...)
	if err != nil {
		return fmt.Errorf("pool: %w", err)
	}
	running, err := value.New[uint64](seg, runningName)
	if err != nil {
		return fmt.Errorf("pool: %w", err)
	}
	budget, err := value.New[int64](seg, budgetName)
	if err != nil {
		return fmt.Errorf("pool: %w", err)
	}
	armed, err := value.New[uint32](seg, armedName)
	if err != nil {
		return fmt.Errorf("pool: %w", err)
	}
	bell, err := newDoorbell(armed)
	if err != nil {
		return err
	}
	proc, err := workerFunc.Start(workerArgs{MaxMessage: p.o.maxMessage, InitFunc: p.o.initFunc, InitArg: p.o.initArg},
		process.Segments(seg), process.Files(bell.peer), process.Daemon())
	if err != nil {
		bell.Close()
		pipe.Close()
		return fmt.Errorf("pool: start a worker: %w", err)
	}
	w := &worker{p: p, proc: proc, seg: seg, pipe: pipe, running: running, budget: budget, bell: bell,
		room: make(chan struct{}, 1), out: []*task{}, dead: make(chan struct{})}
	p.mu.Lock()
	if p.quitting {
		// A replacement that lost the race with shutdown, which did
		// not see it: end it here.
		p.mu.Unlock()
		proc.Kill()
		pipe.Close()
		<-proc.Done()
		bell.Close()
		return ErrClosed
	}
	p.workers[w] = struct{}{}
	p.idle.Add(1)
	p.mu.Unlock()
	p.loops.Add(2)
	go w.sendLoop()
	go w.recvLoop()
	return nil
}

// sendLoop sends the worker tasks, until it dies or has been sent
// MaxTasksPerWorker: one at a time while its tasks are slow; while they
// are quick, up to two messages ahead, each bundling up to bundleMax of
// the tasks waiting, so that a message and a wake-up carry many tasks.
func (w *worker) sendLoop() {
	defer w.p.loops.Done()
	var (
		carry  *task // taken, and left for the next message for want of room
		bundle []*task
		buf    []byte
	)
	maxMsg := w.p.o.maxMessage
send:
	for {
		w.mu.Lock()
		if w.p.o.maxTasks > 0 && w.sent >= w.p.o.maxTasks {
			w.sendDone = true
			w.mu.Unlock()
			break
		}
		sent := w.sent
		// Quick while the last task was, and the one running, if any, has
		// not run long yet: a worker stuck in a long task gets no more.
		quick := w.lastQuick && (len(w.out) == 0 || time.Since(later(w.out[0].sent, w.lastAnswer)) < quickTask)
		// A slow worker is sent a second task, to start as soon as it
		// ends the first rather than a round trip to this process
		// later, only while every worker is busy: then no other could
		// have taken it sooner.
		// Nothing is sent while tasks taken back are in the pipe: the
		// budget raised for new ones would let the worker start them.
		full := w.revoked > 0 || w.messages >= ahead || (!quick && w.messages >= 1 && w.p.idle.Load() > 0)
		prefetch := !quick && w.messages >= 1
		w.mu.Unlock()
		if full {
			select {
			case <-w.room:
				continue
			case <-w.dead:
				if carry != nil {
					w.giveBack(carry)
				}
				return
			}
		}
		bundle, buf = bundle[:0], beginMessage(buf[:0])
		take := func(t *task) bool {
			if !t.state.CompareAndSwap(taskPending, taskSent) {
				return false // cancelled while it waited
			}
			if err := t.c.ctx.Err(); err != nil {
				t.finish(nil, err)
				return false
			}
			if t.c.drop != nil && t.c.drop.Err() != nil {
				t.finish(nil, context.Canceled)
				return false
			}
			return true
		}
		if carry != nil {
			bundle, buf, carry = append(bundle, carry), append(buf, carry.msg...), nil
		}
		for len(bundle) == 0 {
			select {
			case t := <-w.p.pending:
				if prefetch && w.p.idle.Load() > 0 {
					// A worker fell idle while this one waited to
					// queue a task behind its running one: the task
					// is the idle worker's.
					go w.p.requeue(t)
					select {
					case <-w.room:
					case <-w.dead:
						return
					}
					continue send
				}
				if take(t) {
					bundle, buf = append(bundle, t), append(buf, t.msg...)
				}
			case <-w.dead:
				return
			}
		}
		// A fair share of what waits (or 16, whose cost at quick
		// tasks' speed is small), so that the tasks of a call are
		// spread over the workers even when they are slower than the
		// ones before them.
		most := min(bundleMax, max(bundleMin, 1+len(w.p.pending)/w.p.o.workers))
	gather:
		for quick && len(bundle) < most && (w.p.o.maxTasks == 0 || sent+len(bundle) < w.p.o.maxTasks) {
			select {
			case t := <-w.p.pending:
				if !take(t) {
					continue
				}
				if len(buf)-lengthHeader+len(t.msg) > maxMsg {
					carry = t
					break gather
				}
				bundle, buf = append(bundle, t), append(buf, t.msg...)
			default:
				break gather
			}
		}
		w.mu.Lock()
		if w.revoked > 0 && w.out != nil {
			// Tasks were taken back while this bundle was gathered:
			// the budget raised for it would let the worker start
			// them. The bundle goes back, for a worker free now.
			w.mu.Unlock()
			if carry != nil {
				bundle, carry = append(bundle, carry), nil
			}
			w.p.putBack(slices.Clone(bundle))
			continue
		}
		now := time.Now()
		if w.out == nil {
			w.mu.Unlock()
			for _, t := range append(bundle, carry) {
				if t != nil {
					w.giveBack(t)
				}
			}
			return
		}
		// A call's context that ended since take looked is seen here
		// or by its watch (call.cancel), which looks at w.out under
		// w.mu once the context's Err is set.
		var gone []*task
		if bundle, gone = cancelled(bundle); len(gone) > 0 {
			buf = beginMessage(buf[:0])
			for _, t := range bundle {
				buf = append(buf, t.msg...)
			}
		}
		if len(bundle) == 0 {
			w.mu.Unlock()
			for _, t := range gone {
				t.finish(nil, t.c.ctx.Err())
			}
			continue
		}
		for _, t := range bundle {
			t.sent, t.lastOfMessage = now, false
		}
		bundle[len(bundle)-1].lastOfMessage = true
		w.setOut(append(w.out, bundle...))
		w.messages++
		w.sent += len(bundle)
		w.budget.Add(int64(len(bundle))) // before the worker can see them
		w.mu.Unlock()
		for _, t := range gone {
			t.finish(nil, t.c.ctx.Err())
		}
		if w.p.idle.Load() > 0 && len(w.p.pending) == 0 {
			// A worker that fell idle before this bundle was sent
			// found nothing to take: it takes its share now.
			w.p.steal(nil)
		}
		if err := sendMessage(context.Background(), w.pipe, buf, nil); err != nil {
			// Closed or dead: the worker never got the bundle.
			w.mu.Lock()
			var back []*task
			if n, k := len(w.out), len(bundle); n >= k && w.out[n-k] == bundle[0] {
				back = append(back, w.out[n-k:]...)
				w.setOut(w.out[:n-k])
				w.budget.Add(-int64(k))
			}
			w.mu.Unlock()
			for _, t := range append(back, carry) {
				if t != nil {
					w.giveBack(t)
				}
			}
			return
		}
	}
	if carry != nil {
		w.giveBack(carry)
	}
}

// setOut replaces w.out, which w.mu guards, keeping the count of idle
// workers.
func (w *worker) setOut(out []*task) {
	switch {
	case len(w.out) == 0 && len(out) > 0:
		w.p.idle.Add(-1)
	case len(w.out) > 0 && len(out) == 0:
		w.p.idle.Add(1)
	}
	w.out = out
}

// giveBack returns t, which w took and never started, to the other
// workers, or ends it if its context ended meanwhile.
func (w *worker) giveBack(t *task) {
	if t.cancelErr.Load() != nil {
		t.finish(nil, nil) // reports the context's error
		return
	}
	t.state.Store(taskPending)
	go w.p.requeue(t)
}

// recvLoop receives the worker's results until its pipe ends, then
// settles the tasks it had and replaces it.
func (w *worker) recvLoop() {
	defer w.p.loops.Done()
	// The results are waited for with the doorbell, and the worker's
	// death through its process (the pipe would tell it only once the
	// worker has opened its end, and by reading /proc). What it sent is
	// received first: a frame is looked for before the process is.
	exited, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		select {
		case <-w.proc.Done():
			stop()
			w.bell.wake()
		case <-exited.Done():
		}
	}()
	var (
		got  []byte
		gerr error
		dst  []byte
	)
	ready := func() bool {
		got, gerr = w.pipe.TryRecvAppend(dst)
		return gerr != queue.ErrEmpty
	}
	frame := func(b []byte) ([]byte, error) {
		for dst = b; ; {
			if ready() {
				return got, gerr
			}
			if exited.Err() != nil {
				return b, fmt.Errorf("pool: worker %d exited: %w", w.proc.Pid(), queue.ErrPeerDied)
			}
			if err := w.bell.wait(ready); err != nil {
				return b, fmt.Errorf("pool: doorbell of worker %d: %w", w.proc.Pid(), err)
			}
			if gerr != queue.ErrEmpty {
				return got, gerr
			}
		}
	}
	answered := 0
	var (
		err    error
		m, buf []byte
	)
	for {
		if m, buf, err = recvMessage(frame, buf, w.p.o.maxMessage); err != nil {
			break
		}
		var r result
		if r, err = parseResult(m); err != nil {
			break
		}
		if r.id == 0 {
			// The initializer failed: no worker will do better.
			w.p.initFailed(taskError(w.p.o.initFunc, r, 0))
			err = io.EOF
			break
		}
		w.mu.Lock()
		if len(w.out) == 0 || w.out[0].id != r.id {
			w.mu.Unlock()
			err = fmt.Errorf("pool: worker %d answered task %d out of turn", w.proc.Pid(), r.id)
			break
		}
		t := w.out[0]
		if (t.c == nil) != (r.status == statusRevoked) {
			w.mu.Unlock()
			err = fmt.Errorf("pool: worker %d answered task %d with status %d", w.proc.Pid(), r.id, r.status)
			break
		}
		if t.c == nil {
			// The placeholder of a task taken back (see revoke): the
			// task runs elsewhere.
			w.setOut(w.out[1:])
			if t.lastOfMessage {
				w.messages--
			}
			w.revoked--
			idle := len(w.out) == 0
			w.mu.Unlock()
			w.signalRoom()
			if idle {
				w.p.steal(w)
			}
			continue
		}
		if r.count > 0 {
			// The last part is decoded before the next receive
			// reuses buf (finish calls done); the others wait for it.
			if r.status == statusPartial {
				r.payload = bytes.Clone(r.payload)
			}
			t.parts = append(t.parts, r.payload)
		}
		if r.status == statusPartial {
			w.mu.Unlock()
			continue
		}
		w.setOut(w.out[1:])
		// The worker started t when it arrived or when it answered the
		// task before, whichever was later.
		now := time.Now()
		w.lastQuick = now.Sub(later(t.sent, w.lastAnswer)) < quickTask
		w.lastAnswer = now
		if t.lastOfMessage {
			w.messages--
		}
		idle := len(w.out) == 0
		w.mu.Unlock()
		w.signalRoom()
		answered++
		if r.status == statusOK {
			t.finish(t.parts, nil)
		} else {
			t.finish(nil, taskError(t.c.fn, r, t.off))
		}
		if w.p.o.maxTasks > 0 && answered >= w.p.o.maxTasks {
			err = nil
			break
		}
		if idle {
			w.p.steal(w)
		}
	}
	w.exit(err)
}

// signalRoom tells sendLoop that it may send more.
func (w *worker) signalRoom() {
	select {
	case w.room <- struct{}{}:
	default:
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// taskError is the *TaskError of fn that a result of status failed or
// panicked reports, for a task whose arguments start at index off of its
// call's: a panic's payload is its value, a NUL and the stack.
func taskError(fn string, r result, off int) *TaskError {
	te := &TaskError{Func: fn, Index: off + r.index, Err: string(r.payload)}
	if r.status == statusPanicked {
		v, stack, _ := bytes.Cut(r.payload, []byte{0})
		te.Err, te.Stack = string(v), string(stack)
	}
	return te
}

// exit settles w's tasks once its pipe has ended (why: err), waits for
// its process, frees its segment and starts a replacement unless the pool
// is shutting down. The task w was running fails with a *WorkerDiedError
// (or its context's error, if that is why w was killed); the tasks w had
// not started go back to the other workers.
func (w *worker) exit(why error) {
	w.mu.Lock()
	out := w.out
	if len(out) == 0 {
		w.p.idle.Add(-1)
	}
	w.out = nil
	close(w.dead)
	w.mu.Unlock()
	w.pipe.Close()
	w.bell.Close()
	clean := why == nil || why == io.EOF || errors.Is(why, queue.ErrClosed)
	if len(out) > 0 || !clean {
		// Something went wrong: make sure the process is gone.
		w.proc.Kill()
	}
	<-w.proc.Done()
	code, _ := w.proc.ExitCode()
	running := w.running.Load()
	for _, t := range out {
		if t.c == nil {
			continue // taken back: another worker has the task
		}
		select {
		case <-w.p.stop:
			t.finish(nil, w.p.closedErr())
			continue
		default:
		}
		if t.id == running {
			t.parts = nil
			if t.deaths++; t.deaths > w.p.o.retries || t.cancelErr.Load() != nil {
				t.finish(nil, &WorkerDiedError{Pid: w.proc.Pid(), Code: code})
				continue
			}
		}
		w.giveBack(t)
	}
	w.seg.Close()
	w.p.mu.Lock()
	delete(w.p.workers, w)
	replace := !w.p.quitting && w.p.initErr == nil
	none := len(w.p.workers) == 0 && w.p.initErr != nil
	w.p.mu.Unlock()
	switch {
	case replace:
		w.p.replace()
	case none:
		// Nothing will run the tasks left: they, and later calls,
		// fail with the initializer's error (closedErr). Not from this
		// goroutine: Terminate waits for it.
		go w.p.Terminate()
	}
}

// closedErr is what the tasks of a closed or terminated pool fail with:
// ErrClosed, or the initializer's error if that is why.
func (p *Pool) closedErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closedErrLocked()
}

func (p *Pool) closedErrLocked() error {
	if p.initErr != nil {
		return p.initErr
	}
	return ErrClosed
}

// initFailed records that the initializer failed, with err: the pool
// starts no more workers and, once none is left, fails its tasks with err.
func (p *Pool) initFailed(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.initErr == nil {
		p.initErr = err
	}
}

// replace starts a worker in place of one that exited, retrying for a
// while if the start fails (the machine may be out of processes for a
// moment), and failing the waiting tasks if it never succeeds and no
// worker is left.
func (p *Pool) replace() {
	var err error
	for attempt := range 10 {
		if err = p.startWorker(); err == nil || err == ErrClosed {
			return
		}
		select {
		case <-p.stop:
			return
		case <-time.After(time.Duration(attempt+1) * 10 * time.Millisecond):
		}
	}
	p.mu.Lock()
	p.startErr = err
	none := len(p.workers) == 0
	p.mu.Unlock()
	if none {
		// Nothing would run the tasks left. Not from this goroutine:
		// Terminate waits for it.
		go p.Terminate()
	}
}
