// Pipe is the Go twin of the pipe program from Python's multiprocessing
// tutorial, one pipe per worker: each worker adds up its share of the
// numbers and sends the subtotal to the parent through its own pipe.
//
//	from multiprocessing import Process, Pipe
//
//	def work(conn, k, lo, hi):
//	    conn.send({"worker": k, "sum": sum(range(lo, hi + 1))})
//	    conn.close()
//
//	if __name__ == "__main__":
//	    conns, procs = [], []
//	    for k in range(4):
//	        parent_conn, child_conn = Pipe()
//	        p = Process(target=work, args=(child_conn, k, k * 25_000 + 1, (k + 1) * 25_000))
//	        p.start()
//	        conns.append(parent_conn)
//	        procs.append(p)
//	    total = 0
//	    for conn in conns:
//	        r = conn.recv()
//	        print("worker", r["worker"], "sent", r["sum"])
//	        total += r["sum"]
//	    for p in procs:
//	        p.join()
//	    print("sum:", total)   # 5000050000
//
// Python hands the child's end to the worker as an argument. A Go worker
// is a new copy of the program, so it gets the segment that holds the
// pipes instead (process.Segments) and opens its end by name with
// queue.OpenPipe; the parent created the pipe, and holds the other end,
// with queue.NewPipe. A subtotal is a struct, CBOR-encoded on the way.
//
// Where Python's recv waits for ever on a worker that died before
// sending, Recv here returns an error matching queue.ErrPeerDied (and
// io.EOF) within milliseconds of the death; a worker that closes its end
// without sending gives io.EOF. Either is reported with the worker's own
// error from Join.
//
// Run it from the repository root with:
//
//	go run ./examples/pipe
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
	workers = 4
	total   = 100_000 // the numbers 1 .. total are added, once each
)

// job is what a worker is started with: its number and its share of the
// numbers, both ends included.
type job struct {
	K      int
	Lo, Hi int64
}

// subtotal is the message a worker sends.
type subtotal struct {
	Worker int
	Sum    int64
}

func pipeName(k int) string { return fmt.Sprintf("result-%d", k) }

// work runs in each worker process: it opens its end of its pipe, sends
// its subtotal and closes the end.
var work = process.Register("pipe.work", func(ctx context.Context, j job) (struct{}, error) {
	segs, err := process.InheritedSegments()
	if err != nil {
		return struct{}{}, err
	}
	conn, err := queue.OpenPipe[subtotal](segs[0], pipeName(j.K))
	if err != nil {
		return struct{}{}, err
	}
	defer conn.Close()
	var sum int64
	for i := j.Lo; i <= j.Hi; i++ {
		sum += i
	}
	return struct{}{}, conn.Send(ctx, subtotal{Worker: j.K, Sum: sum})
})

func main() {
	process.Main() // must come first: in a worker, it runs work and exits

	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "pipe:", err)
		os.Exit(1)
	}
}

func run() (err error) {
	ctx := context.Background()
	size, err := queue.PipeSize[subtotal]()
	if err != nil {
		return err
	}
	seg, err := shm.CreateAnonymous(workers*size + 64<<10) // the pipes, and room for the segment's header
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, seg.Close()) }()

	conns := make([]*queue.Pipe[subtotal], workers)
	for k := range conns {
		if conns[k], err = queue.NewPipe[subtotal](seg, pipeName(k)); err != nil {
			return err
		}
		defer conns[k].Close()
	}
	var procs []*process.Process
	defer func() {
		for _, p := range procs {
			err = errors.Join(err, p.Join(ctx))
		}
	}()
	per := int64(total / workers)
	for k := range workers {
		// Daemon: a worker must not outlive this process.
		p, err := work.Start(job{K: k, Lo: int64(k)*per + 1, Hi: int64(k+1) * per}, process.Segments(seg), process.Daemon())
		if err != nil {
			return err
		}
		procs = append(procs, p)
	}

	var sum int64
	for _, conn := range conns {
		r, err := conn.Recv(ctx)
		if err != nil {
			return fmt.Errorf("pipe %s: %w", conn.Name(), err)
		}
		fmt.Println("worker", r.Worker, "sent", r.Sum)
		sum += r.Sum
	}
	fmt.Println("sum:", sum)
	return nil
}
