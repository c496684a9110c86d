// Counter is the Go twin of the classic "lost update" program from Python
// multiprocessing tutorials, in which nine processes each add one to a
// shared counter fifty times:
//
//	from multiprocessing import Process, Value
//
//	def increment(v):
//	    for _ in range(50):
//	        v.value += 1          # a read, then a write: not atomic
//
//	if __name__ == "__main__":
//	    v = Value('i', 0)
//	    procs = [Process(target=increment, args=(v,)) for _ in range(9)]
//	    for p in procs:
//	        p.start()
//	    for p in procs:
//	        p.join()
//	    print(v.value)            # often less than 450
//
// In Python, v.value += 1 reads the value and then writes value+1 back. Two
// processes that read the same value both write the same value+1, and one
// increment is lost, so the total usually falls short of 450. (The Python
// fix is to hold v.get_lock() around the increment.)
//
// Here each worker calls Add(1) on a value.Cell[int64]: Add is a single
// atomic read-modify-write on the shared memory, so two processes can never
// both read the same old value, and no increment is lost. The program
// always prints 450, without any lock.
//
// The counter lives in a named segment, /dev/shm/shmkit-example-counter-PID,
// which each worker opens by name, as Python's
// multiprocessing.shared_memory.SharedMemory(name=...) would. A named segment
// outlives every process that uses it, so the parent removes it when it is
// done, on every path, including when a worker fails.
//
// Run it from the repository root with:
//
//	go run ./examples/counter
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/value"
)

const (
	workers    = 9  // how many processes to start
	increments = 50 // how many times each adds one
	cellName   = "counter"
)

// increment is what each worker process runs: it opens the segment named
// segName, attaches to the counter in it and adds one to it increments
// times. Registering it in a package-level var means that every copy of
// this program, parent and workers alike, knows it under the same name.
var increment = process.Register("counter.increment", func(ctx context.Context, segName string) (_ struct{}, err error) {
	seg, err := shm.Open(segName)
	if err != nil {
		return struct{}{}, err
	}
	// Unmap the segment when done. Closing does not remove it: the parent
	// still needs it.
	defer func() { err = errors.Join(err, seg.Close()) }()

	counter, err := value.Open[int64](seg, cellName)
	if err != nil {
		return struct{}{}, err
	}
	for range increments {
		counter.Add(1) // atomic across processes: never a lost update
	}
	return struct{}{}, nil
})

func main() {
	// In a worker, process.Main runs the registered function and exits; in
	// the parent it returns at once. It must come first.
	process.Main()

	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "counter:", err)
		os.Exit(1)
	}
}

func run() (err error) {
	// Include our pid so that two runs at once do not collide.
	name := fmt.Sprintf("shmkit-example-counter-%d", os.Getpid())
	seg, err := shm.Create(name, 4096) // one page is plenty for one int64
	if err != nil {
		return err
	}
	// A named segment stays in /dev/shm until it is removed, even after
	// every process has exited. Close our mapping and remove it on every
	// return path, and report a failure to do either.
	defer func() { err = errors.Join(err, seg.Close(), shm.Remove(name)) }()

	counter, err := value.New[int64](seg, cellName)
	if err != nil {
		return err
	}

	fmt.Printf("%d processes x %d increments\n", workers, increments)

	// Start all the workers, then wait for all of them. If a Start fails,
	// start no more, but still wait for those already running: the deferred
	// Remove must not pull the segment away before they have opened it.
	var procs []*process.Process
	var errs []error
	for range workers {
		p, err := increment.Start(name)
		if err != nil {
			errs = append(errs, err)
			break
		}
		procs = append(procs, p)
	}
	for _, p := range procs {
		// Join returns nil when the worker's function returned nil, and an
		// *process.ExitError describing what went wrong otherwise.
		errs = append(errs, p.Join(context.Background()))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}

	// Every worker has exited, so every Add it made is visible here.
	fmt.Println(counter.Load())
	return nil
}
