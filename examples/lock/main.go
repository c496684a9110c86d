// Lock is the Go twin of the Lock program in Python's multiprocessing
// documentation, in which ten processes take turns printing through one
// shared lock:
//
//	from multiprocessing import Process, Lock
//
//	def f(l, i):
//	    l.acquire()
//	    try:
//	        print('hello world', i)
//	    finally:
//	        l.release()
//
//	if __name__ == '__main__':
//	    lock = Lock()
//	    for num in range(10):
//	        Process(target=f, args=(lock, num)).start()
//
// The ten workers run at the same time and share one standard output. Each
// worker here writes its line in two pieces, "hello " and then "world i",
// with a short pause between them, so that without the lock another
// worker's "hello " could land in the middle of the line. Holding a
// semaphore.Mutex from the first write to the last makes each line one
// unbroken unit: the order of the ten lines still varies from run to run,
// but every line is whole. The parent waits for all of them (Python joins
// the non-daemon processes implicitly at exit) and then reports.
//
// The mutex lives in a named segment, /dev/shm/shmkit-example-lock-PID,
// which each worker opens by name. The parent removes the segment on every
// path, once every worker it started has exited.
//
// One difference from Python matters when things go wrong. If a process is
// killed while it holds a Python Lock, the lock stays held for ever and
// every other process waiting on it hangs. A semaphore.Mutex records which
// process holds it: when the holder dies, the next process to lock it takes
// it over, and LockContext tells it so by returning an error matching
// semaphore.ErrOwnerDead, with the lock held. That process repairs what the
// lock protects and calls MarkConsistent. Here the worst a dead holder
// leaves behind is half a line, so the worker below has nothing to repair.
//
// Run it from the repository root with:
//
//	go run ./examples/lock
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/semaphore"
	"github.com/shmkit/shmkit/shm"
)

const (
	workers  = 10
	lockName = "stdout" // the mutex's name inside the segment: what it guards
)

// job is what a worker receives: where the lock is, and which number to
// print.
type job struct {
	Segment string
	I       int
}

// hello runs in a worker process: f(l, i) in the Python program. It opens
// the segment and the mutex by name, and prints its line while holding the
// mutex.
var hello = process.Register("lock.hello", func(ctx context.Context, j job) (_ struct{}, err error) {
	seg, err := shm.Open(j.Segment)
	if err != nil {
		return struct{}{}, err
	}
	// Unmap the segment when done; the parent removes it.
	defer func() { err = errors.Join(err, seg.Close()) }()

	mu, err := semaphore.OpenMutex(seg, lockName)
	if err != nil {
		return struct{}{}, err
	}

	// l.acquire(). LockContext also gives up if ctx ends, which happens
	// when the parent dies.
	switch err := mu.LockContext(ctx); {
	case errors.Is(err, semaphore.ErrOwnerDead):
		// A worker died holding the lock, perhaps half-way through its
		// line. We hold the lock now; there is nothing to repair, so say
		// so, or the Unlock below would make the lock unusable.
		if err := mu.MarkConsistent(); err != nil {
			return struct{}{}, err
		}
	case err != nil:
		return struct{}{}, err
	}
	// try: ... finally: l.release()
	defer mu.Unlock()

	// One line in two writes (os.Stdout is not buffered): without the
	// lock, another worker's output could come between them.
	fmt.Print("hello ")
	time.Sleep(time.Millisecond)
	fmt.Println("world", j.I)
	return struct{}{}, nil
})

func main() {
	process.Main() // must come first: in a worker, it runs hello and exits

	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "lock:", err)
		os.Exit(1)
	}
}

func run() (err error) {
	// Include our pid so that two runs at once do not collide.
	name := fmt.Sprintf("shmkit-example-lock-%d", os.Getpid())
	seg, err := shm.Create(name, 4096) // one page holds the mutex easily
	if err != nil {
		return err
	}
	// The segment would stay in /dev/shm after we exit: close our mapping
	// and remove it on every return path, and report a failure to do either.
	defer func() { err = errors.Join(err, seg.Close(), shm.Remove(name)) }()

	// lock = Lock(). The parent itself never locks it; creating it here,
	// before any worker starts, means every worker finds it.
	if _, err := semaphore.NewMutex(seg, lockName); err != nil {
		return err
	}

	// Start the workers, then wait for all of them. If a Start fails, start
	// no more, but still wait for those already running: the deferred
	// Remove must not pull the segment away before they have opened it.
	var procs []*process.Process
	var errs []error
	for i := range workers {
		p, err := hello.Start(job{Segment: name, I: i})
		if err != nil {
			errs = append(errs, err)
			break
		}
		procs = append(procs, p)
	}
	for _, p := range procs {
		errs = append(errs, p.Join(context.Background()))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}

	fmt.Println(len(procs), "workers done")
	return nil
}
