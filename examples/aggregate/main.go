// Aggregate is the Go twin of the shared-array program from Python
// multiprocessing tutorials: several processes fill in one histogram that
// lives in shared memory, and the parent reads it once they are done.
//
//	from multiprocessing import Process, Array
//
//	def count(k, hist):
//	    for j in range(10_000):
//	        x = k * 10_000 + j
//	        with hist.get_lock():  # without it, hist[b] += 1 loses updates
//	            hist[x % 10] += 1
//
//	if __name__ == "__main__":
//	    hist = Array('q', 10)      # ten int64s in shared memory, all zero
//	    procs = [Process(target=count, args=(k, hist)) for k in range(4)]
//	    for p in procs:
//	        p.start()
//	    for p in procs:
//	        p.join()
//	    for b, n in enumerate(hist[:]):
//	        print(f"bucket {b}: {n}")
//	    print("total:", sum(hist[:]))
//
// Worker k counts the numbers k*10000 .. k*10000+9999 by their last digit.
// Every digit occurs 1000 times in each worker's range, so each of the ten
// buckets ends at 4 x 1000 = 4000, and the total is 40000.
//
// The Go version needs no lock around the increment: array.Array's Add is
// one atomic read-modify-write on the shared element, so the four workers
// can hit the same bucket at the same time without losing a count. CopyTo
// then takes the array's lock and copies all ten buckets out at once, as
// Python's hist[:] does.
//
// As in Python, where hist is handed to each Process in args, the workers
// receive the shared memory itself rather than a name to look up: the
// process.Segments option passes the segment to each worker as a file
// descriptor, and the worker maps it with process.InheritedSegments. So the
// segment can be anonymous (shm.CreateAnonymous): it has no name in
// /dev/shm, and the kernel frees it when the last process holding it
// closes it, so it cannot be left behind. (examples/counter shows the
// other way: a named segment that workers open by name.)
//
// Run it from the repository root with:
//
//	go run ./examples/aggregate
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/shm"
)

const (
	workers   = 4
	perWorker = 10_000 // numbers each worker counts
	buckets   = 10     // one per last digit
	histName  = "hist" // the array's name inside the segment
)

// count runs in worker process k. It attaches to the histogram in the
// segment its parent passed, and counts its numbers into it.
var count = process.Register("aggregate.count", func(ctx context.Context, k int) (struct{}, error) {
	// The segments passed with process.Segments, mapped in the same order.
	// They stay mapped until this function returns; the worker does not
	// close them itself.
	segs, err := process.InheritedSegments()
	if err != nil {
		return struct{}{}, err
	}
	if len(segs) != 1 {
		return struct{}{}, fmt.Errorf("got %d segments, want 1", len(segs))
	}
	hist, err := array.Open[int64](segs[0], histName)
	if err != nil {
		return struct{}{}, err
	}
	for j := range perWorker {
		x := k*perWorker + j
		hist.Add(x%buckets, 1) // atomic across processes: no lock needed
	}
	return struct{}{}, nil
})

func main() {
	process.Main() // must come first: in a worker, it runs count and exits

	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "aggregate:", err)
		os.Exit(1)
	}
}

func run() (err error) {
	seg, err := shm.CreateAnonymous(4096) // one page holds ten int64s easily
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, seg.Close()) }()

	hist, err := array.New[int64](seg, histName, buckets)
	if err != nil {
		return err
	}

	// Start the workers, each with its index and the segment, then wait for
	// all of them. If a Start fails, still wait for those already running.
	var procs []*process.Process
	var errs []error
	for k := range workers {
		p, err := count.Start(k, process.Segments(seg))
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

	// Copy the buckets out of shared memory in one consistent snapshot.
	counts := make([]int64, hist.Len())
	if _, err := hist.CopyTo(context.Background(), counts); err != nil {
		return err
	}
	var total int64
	for b, n := range counts {
		fmt.Printf("bucket %d: %d\n", b, n)
		total += n
	}
	fmt.Println("total:", total)
	return nil
}
