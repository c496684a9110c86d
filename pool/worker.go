package pool

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/shmkit/shmkit/internal/funcs"
	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/queue"
	"github.com/shmkit/shmkit/value"
)

// Names of a worker's objects in its segment.
const (
	pipeName    = "pool.tasks"   // the pipe: end 0 the parent's, end 1 the worker's
	runningName = "pool.running" // the id of the task the worker runs or last ran
	budgetName  = "pool.budget"  // how many of the tasks sent the worker may still start
)

// workerArgs is what a worker process is started with.
type workerArgs struct {
	MaxMessage int
	InitFunc   string // the initializer's registered name, or empty
	InitArg    []byte // its argument, as a one-element slice (funcs.EncodeSlice)
}

// workerFunc is the loop every pool worker runs.
var workerFunc = process.Register("shmkit/pool.worker", runWorker)

// runWorker answers the tasks that arrive on its pipe, in order, until the
// parent closes its end. Before it runs a task it takes one from the
// budget cell, which the parent raises by the tasks it sends before it
// sends them and lowers to take back tasks not yet started (see
// worker.revoke): a task that finds the budget spent is skipped, and
// answered as revoked. Then it stores the task's id in the running cell,
// so that the parent, if the worker dies, knows which task it was running
// and which it had not started.
func runWorker(ctx context.Context, a workerArgs) (int, error) {
	segs, err := process.InheritedSegments()
	if err != nil {
		return 0, err
	}
	if len(segs) != 1 {
		return 0, fmt.Errorf("pool: worker got %d segments, want 1", len(segs))
	}
	pipe, err := queue.OpenPipe[[]byte](segs[0], pipeName)
	if err != nil {
		return 0, err
	}
	defer pipe.Close()
	running, err := value.Open[uint64](segs[0], runningName)
	if err != nil {
		return 0, err
	}
	budget, err := value.Open[int64](segs[0], budgetName)
	if err != nil {
		return 0, err
	}
	armed, err := value.Open[uint32](segs[0], armedName)
	if err != nil {
		return 0, err
	}
	files := process.InheritedFiles()
	if len(files) != 1 {
		return 0, fmt.Errorf("pool: worker got %d files, want its doorbell", len(files))
	}
	bell := &ringer{f: files[0], armed: armed}
	frame := func(b []byte) ([]byte, error) { return pipe.RecvAppend(ctx, b) }
	claim := func() bool {
		for {
			b := budget.Load()
			if b <= 0 {
				return false
			}
			if budget.CompareAndSwap(b, b-1) {
				return true
			}
		}
	}
	var out, held, in []byte
	send := func(r result) error {
		// Only an error's text can exceed a message: it is cut short.
		r.payload = r.payload[:min(len(r.payload), a.MaxMessage-resultHeader)]
		out = appendResult(beginMessage(out[:0]), r)
		return sendMessage(ctx, pipe, out, bell)
	}
	if a.InitFunc != "" {
		// The initializer's failure is this worker's last word, as the
		// answer to task 0, which no task has.
		if r := runTask(ctx, a.InitFunc, a.InitArg, a.MaxMessage-resultHeader, func([]byte, int) error { return nil }); r.status != statusOK {
			r.id, r.index = 0, 0
			send(r)
			return 0, fmt.Errorf("pool: initializer %s failed", a.InitFunc)
		}
	}
	// run runs one task. Each part of its results is sent when the next
	// is ready, so that the last goes with the task's status: one
	// message for a task whose results fit in one.
	run := func(id uint64, fn string, args []byte) error {
		running.Store(id)
		held = held[:0]
		heldCount, holding := 0, false
		r := runTask(ctx, fn, args, a.MaxMessage-resultHeader, func(part []byte, count int) error {
			if holding {
				if err := send(result{id: id, status: statusPartial, count: heldCount, payload: held}); err != nil {
					return err
				}
			}
			held, heldCount, holding = append(held[:0], part...), count, true
			return nil
		})
		r.id = id
		if r.status == statusOK {
			r.count, r.payload = heldCount, held
		}
		return send(r)
	}
	for n := 0; ; {
		var m []byte
		m, in, err = recvMessage(frame, in, a.MaxMessage)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		for len(m) > 0 {
			var (
				id   uint64
				fn   string
				args []byte
			)
			if id, fn, args, m, err = parseTask(m); err != nil {
				return n, err
			}
			if !claim() {
				if err := send(result{id: id, status: statusRevoked}); err != nil {
					return n, err
				}
				continue
			}
			if err := run(id, fn, args); err != nil {
				return n, err
			}
			n++
		}
	}
}

// runTask runs the batch task of function fn and returns its last result
// message (without the id), having emitted the parts before it.
func runTask(ctx context.Context, fn string, args []byte, max int, emit func([]byte, int) error) (r result) {
	batch := funcs.Lookup(fn)
	if batch == nil {
		return result{status: statusFailed, payload: fmt.Appendf(nil, "function %q is not registered in the worker", fn)}
	}
	done := 0
	defer func() {
		if v := recover(); v != nil {
			r = result{status: statusPanicked, index: done, payload: fmt.Appendf(nil, "%v\x00%s", v, debug.Stack())}
		}
	}()
	if failed, err := batch(ctx, args, max, &done, emit); err != nil {
		return result{status: statusFailed, index: failed, payload: []byte(err.Error())}
	}
	return result{status: statusOK}
}
