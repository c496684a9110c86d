// Queuesum is the Go twin of the queue program from Python
// multiprocessing tutorials: five workers each count to 10 000 and put
// their subtotal on one queue, and the parent takes the subtotals off and
// adds them up.
//
//	from multiprocessing import Process, Queue
//
//	def count(q, k):
//	    n = 0
//	    for _ in range(10_000):
//	        n += 1
//	    q.put((k, n))
//
//	if __name__ == "__main__":
//	    q = Queue()
//	    procs = [Process(target=count, args=(q, k)) for k in range(5)]
//	    for p in procs:
//	        p.start()
//	    total = 0
//	    for _ in procs:             # one subtotal per worker, or hang
//	        k, n = q.get()
//	        total += n
//	    for p in procs:
//	        p.join()
//	    print("total:", total)      # 50000
//
// The queue is a queue.Queue[subtotal] in shared memory: a subtotal, a
// struct of two ints, is copied into a slot as its bytes, with no
// pickling and no pipe in between.
//
// Python's consumer must know how many messages to expect (or count
// sentinels such as "exit"), and a worker that dies before putting its
// subtotal hangs it for ever. Here the parent waits for the workers itself
// and then closes the queue: Close ends the stream for every process, the
// parent's range over q.All(ctx) takes what is left and stops, and no
// sentinel is needed. A worker that dies mid-Put leaves no half-written
// message behind (see package queue), and its Join reports the failure.
//
// The segment is anonymous, as in examples/aggregate: the workers receive
// it with process.Segments, so nothing named in /dev/shm can outlive the
// program, whatever happens to it.
//
// Run it from the repository root with:
//
//	go run ./examples/queuesum
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/queue"
	"github.com/shmkit/shmkit/shm"
)

const (
	workers   = 5
	countTo   = 10_000
	queueName = "subtotals"
)

// subtotal is a worker's message: who counted, and how far.
type subtotal struct {
	Worker int64
	N      int64
}

// count runs in each worker process: it counts to countTo and puts its
// subtotal on the queue in the segment its parent passed.
var count = process.Register("queuesum.count", func(ctx context.Context, k int64) (struct{}, error) {
	segs, err := process.InheritedSegments()
	if err != nil {
		return struct{}{}, err
	}
	if len(segs) != 1 {
		return struct{}{}, fmt.Errorf("got %d segments, want 1", len(segs))
	}
	q, err := queue.Open[subtotal](segs[0], queueName)
	if err != nil {
		return struct{}{}, err
	}
	var n int64
	for range countTo {
		n++
	}
	return struct{}{}, q.Put(ctx, subtotal{Worker: k, N: n})
})

func main() {
	process.Main() // must come first: in a worker, it runs count and exits

	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "queuesum:", err)
		os.Exit(1)
	}
}

func run() (err error) {
	ctx := context.Background()
	size, err := queue.Size[subtotal]()
	if err != nil {
		return err
	}
	seg, err := shm.CreateAnonymous(size + 64<<10) // the queue, and room for the segment's header
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, seg.Close()) }()
	q, err := queue.New[subtotal](seg, queueName)
	if err != nil {
		return err
	}

	// Start the workers. Daemon: a worker must not outlive this process.
	// If a Start fails, start no more, but still wait for those already
	// running.
	var procs []*process.Process
	var startErr error
	for k := range int64(workers) {
		p, err := count.Start(k, process.Segments(seg), process.Daemon())
		if err != nil {
			startErr = err
			break
		}
		procs = append(procs, p)
	}

	// Close the queue once every worker has ended, however it ended:
	// that is what ends the loop below.
	joined := make(chan error, 1)
	go func() {
		var errs []error
		for _, p := range procs {
			errs = append(errs, p.Join(ctx))
		}
		joined <- errors.Join(append(errs, q.Close())...)
	}()

	var total int64
	got := 0
	var getErr error
	for s, err := range q.All(ctx) {
		if err != nil {
			// Stop the workers too: their Puts fail once the queue
			// is closed.
			getErr = errors.Join(err, q.Close())
			break
		}
		total += s.N
		got++
	}
	if err := errors.Join(startErr, getErr, <-joined); err != nil {
		return err
	}
	fmt.Printf("%d subtotals from %d workers\n", got, len(procs))
	fmt.Println("total:", total)
	return nil
}
