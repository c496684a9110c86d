// Joinable is the Go twin of the JoinableQueue program from Python
// multiprocessing tutorials: the parent hands out tasks, worker processes
// do them and mark each one done, and the parent waits until every task
// is done before it reads the result.
//
//	from multiprocessing import Process, JoinableQueue, Value
//
//	def work(tasks, total):
//	    while True:
//	        n = tasks.get()
//	        with total.get_lock():
//	            total.value += n * n
//	        tasks.task_done()
//
//	if __name__ == "__main__":
//	    tasks, total = JoinableQueue(), Value('q', 0)
//	    for _ in range(4):
//	        Process(target=work, args=(tasks, total), daemon=True).start()
//	    for n in range(1, 1001):
//	        tasks.put(n)
//	    tasks.join()               # every task got and marked done
//	    print("sum of squares:", total.value)
//
// Each task is a number n; a worker adds n*n to a shared total and marks
// the task done. Join returns once the queue is empty and every worker
// has marked done every task it got, so the total is then complete,
// 1000*1001*2001/6 = 333833500, although the workers are still running.
// The parent then closes the queue, which ends each worker's loop, and
// waits for them to exit.
//
// Python's join() waits for ever if a worker dies holding a task. Here
// Join returns once the survivors are done, with a *queue.LostError that
// counts the lost tasks; and since a task that nobody can take would
// stall Join too, the parent also stops waiting as soon as a worker fails.
//
// The queue and the total live in a named segment,
// /dev/shm/shmkit-example-joinable-PID, which each worker opens by name,
// as another program could. A named segment outlives every process that
// uses it, so the parent removes it on every return path. (examples/queuesum
// passes an anonymous segment to its workers instead.)
//
// Run it from the repository root with:
//
//	go run ./examples/joinable
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/queue"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/value"
)

const (
	workers   = 4
	tasks     = 1000 // the numbers 1 .. tasks
	queueName = "tasks"
	totalName = "total"
)

// work runs in each worker process: it takes tasks until the queue is
// closed and drained, and returns how many it did.
var work = process.Register("joinable.work", func(ctx context.Context, segName string) (_ int, err error) {
	seg, err := shm.Open(segName)
	if err != nil {
		return 0, err
	}
	defer func() { err = errors.Join(err, seg.Close()) }()
	q, err := queue.OpenJoinable[int64](seg, queueName)
	if err != nil {
		return 0, err
	}
	total, err := value.Open[int64](seg, totalName)
	if err != nil {
		return 0, err
	}
	done := 0
	for {
		n, err := q.Get(ctx)
		if err == io.EOF {
			return done, nil
		}
		if err != nil {
			return done, err
		}
		total.Add(n * n)
		// Done after the work: Join must not return before the total
		// has this task's share.
		if err := q.TaskDone(); err != nil {
			return done, err
		}
		done++
	}
})

func main() {
	process.Main() // must come first: in a worker, it runs work and exits

	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "joinable:", err)
		os.Exit(1)
	}
}

func run() (err error) {
	// Include our pid so that two runs at once do not collide.
	name := fmt.Sprintf("shmkit-example-joinable-%d", os.Getpid())
	seg, err := shm.Create(name, 1<<20)
	if err != nil {
		return err
	}
	// Remove the segment on every return path, and report a failure to
	// close or remove it.
	defer func() { err = errors.Join(err, seg.Close(), shm.Remove(name)) }()

	q, err := queue.NewJoinable[int64](seg, queueName, queue.Capacity(64))
	if err != nil {
		return err
	}
	total, err := value.New[int64](seg, totalName)
	if err != nil {
		return err
	}

	// ctx ends when a worker fails: a Put waiting for room, or the Join,
	// would otherwise wait for ever for workers that are gone.
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)

	// Start the workers. Daemon: a worker waiting for a task would
	// otherwise wait for ever if this process died before closing the
	// queue. Each is watched until it exits.
	var procs []*process.Process
	var watch sync.WaitGroup
	for range workers {
		p, err := work.Start(name, process.Daemon())
		if err != nil {
			cancel(err)
			break
		}
		procs = append(procs, p)
		watch.Go(func() {
			if err := p.Join(context.Background()); err != nil {
				cancel(err)
			}
		})
	}

	// The queue holds 64 tasks: Put waits while the workers catch up.
	for n := int64(1); n <= tasks && ctx.Err() == nil; n++ {
		if err := q.Put(ctx, n); err != nil {
			break // context.Cause says why
		}
	}
	if ctx.Err() == nil {
		if err := q.Join(ctx); err != nil && ctx.Err() == nil {
			cancel(err) // tasks lost to a worker that died
		}
	}
	if ctx.Err() == nil {
		fmt.Println("all tasks done")
		fmt.Println("sum of squares:", total.Load())
	}

	// Close the queue, so that the workers' Gets return io.EOF, and wait
	// for them to exit (on the way out of an error too: the deferred
	// Remove must not pull the segment away from under them).
	closeErr := q.Close()
	watch.Wait()
	if err := errors.Join(context.Cause(ctx), closeErr); err != nil {
		return err
	}

	done := 0
	for _, p := range procs {
		var n int
		if err := p.Result(&n); err != nil {
			return err
		}
		done += n
	}
	fmt.Printf("%d workers did %d tasks\n", len(procs), done)
	return nil
}
