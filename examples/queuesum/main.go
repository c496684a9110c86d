// Queuesum is the Go twin of the producer/consumer program from Python
// multiprocessing tutorials: several processes put numbers on one queue,
// and the parent takes them off and adds them up.
//
//	from multiprocessing import Process, Queue
//
//	def produce(q, lo, hi):
//	    for i in range(lo, hi + 1):
//	        q.put(i)
//	    q.put(None)                # "no more from me"
//
//	if __name__ == "__main__":
//	    q = Queue(1024)
//	    procs = [Process(target=produce, args=(q, k * 25_000 + 1, (k + 1) * 25_000))
//	             for k in range(4)]
//	    for p in procs:
//	        p.start()
//	    total, finished = 0, 0
//	    while finished < len(procs):
//	        v = q.get()
//	        if v is None:
//	            finished += 1
//	        else:
//	            total += v
//	    for p in procs:
//	        p.join()
//	    print("sum:", total)       # 5000050000
//
// Worker k puts the numbers k*25000+1 .. (k+1)*25000, so that the four of
// them put 1 .. 100000 once each, and the parent prints their sum,
// 100000*100001/2 = 5000050000.
//
// The queue is a queue.Queue[int64] in shared memory: an int64 is copied
// into a slot as its eight bytes, with no pickling and no pipe in between.
// It holds 1024 numbers, so a producer that gets ahead of the parent waits
// in Put until there is room.
//
// Python's consumer counts sentinels to know when every producer is done,
// and a producer that dies before putting its None hangs it for ever. Here
// the parent waits for the workers itself and then closes the queue:
// Close ends the stream for every process, the parent's range over
// q.All(ctx) takes what is left and stops, and no sentinel is needed. A
// worker that dies mid-Put leaves no half-written number behind (see
// package queue), and its Join reports the failure.
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
	workers   = 4
	total     = 100_000 // the numbers 1 .. total are put, once each
	queueName = "numbers"
)

// share is the range of numbers a worker puts, both ends included.
type share struct{ Lo, Hi int64 }

// produce runs in each worker process: it attaches to the queue in the
// segment its parent passed and puts its share of the numbers. It returns
// how many it put.
var produce = process.Register("queuesum.produce", func(ctx context.Context, s share) (int64, error) {
	segs, err := process.InheritedSegments()
	if err != nil {
		return 0, err
	}
	if len(segs) != 1 {
		return 0, fmt.Errorf("got %d segments, want 1", len(segs))
	}
	q, err := queue.Open[int64](segs[0], queueName)
	if err != nil {
		return 0, err
	}
	for i := s.Lo; i <= s.Hi; i++ {
		if err := q.Put(ctx, i); err != nil {
			return i - s.Lo, err
		}
	}
	return s.Hi - s.Lo + 1, nil
})

func main() {
	process.Main() // must come first: in a worker, it runs produce and exits

	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "queuesum:", err)
		os.Exit(1)
	}
}

func run() (err error) {
	ctx := context.Background()
	size, err := queue.Size[int64](queue.Capacity(1024))
	if err != nil {
		return err
	}
	seg, err := shm.CreateAnonymous(size + 64<<10) // the queue, and room for the segment's header
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, seg.Close()) }()
	q, err := queue.New[int64](seg, queueName, queue.Capacity(1024))
	if err != nil {
		return err
	}

	// Start the producers. Daemon: a producer waiting for room would
	// otherwise wait for ever if this process died. If a Start fails,
	// start no more, but still wait for those already running.
	var procs []*process.Process
	var startErr error
	per := int64(total / workers)
	for k := range int64(workers) {
		p, err := produce.Start(share{Lo: k*per + 1, Hi: (k + 1) * per}, process.Segments(seg), process.Daemon())
		if err != nil {
			startErr = err
			break
		}
		procs = append(procs, p)
	}

	// Close the queue once every producer has ended, however it ended:
	// that is what ends the loop below.
	joined := make(chan error, 1)
	go func() {
		var errs []error
		for _, p := range procs {
			errs = append(errs, p.Join(ctx))
		}
		joined <- errors.Join(append(errs, q.Close())...)
	}()

	var sum int64
	var getErr error
	for v, err := range q.All(ctx) {
		if err != nil {
			// Stop the producers too: their Puts fail once the
			// queue is closed.
			getErr = errors.Join(err, q.Close())
			break
		}
		sum += v
	}
	if err := errors.Join(startErr, getErr, <-joined); err != nil {
		return err
	}

	for k, p := range procs {
		var n int64
		if err := p.Result(&n); err != nil {
			return err
		}
		fmt.Printf("worker %d put %d numbers\n", k, n)
	}
	fmt.Println("sum:", sum)
	return nil
}
