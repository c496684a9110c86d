// Squares is the Go twin of the "one process per item" program from Python
// multiprocessing tutorials: start a process for each number, let each
// report who it is, and wait for them all.
//
//	import os
//	from multiprocessing import Process, current_process
//
//	def square(i):
//	    me = current_process()
//	    print(f"{me.name} pid {os.getpid()}: {i}*{i} = {i*i}")
//
//	if __name__ == "__main__":
//	    procs = [Process(target=square, args=(i,), name=f"worker-{i}")
//	             for i in range(1, 10)]
//	    for p in procs:
//	        p.start()
//	    for p in procs:
//	        p.join()
//	    print("done")
//
// Each worker is a real OS process (a copy of this program), with its own
// pid, running square with its own argument. The workers run at the same
// time, so the order of their lines varies from run to run, exactly as in
// Python.
//
// One thing Python's Process cannot do is hand back a return value (you
// would reach for a Queue or a Pool). Here the worker's function returns
// i*i, and the parent collects it with Result once the worker has been
// joined. The parent prints those results in the order it started the
// workers, so that part of the output is always the same:
//
//	1 1
//	2 4
//	...
//	9 81
//	done
//
// Run it from the repository root with:
//
//	go run ./examples/squares
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/shmkit/shmkit/process"
)

// square runs in a worker process. process.Current describes the worker:
// the name given with process.Name when it was started, and its own pid.
var square = process.Register("squares.square", func(ctx context.Context, i int) (int, error) {
	me := process.Current()
	fmt.Printf("%s pid %d: %d*%d = %d\n", me.Name, me.Pid, i, i, i*i)
	return i * i, nil
})

func main() {
	process.Main() // must come first: in a worker, it runs square and exits

	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "squares:", err)
		os.Exit(1)
	}
}

func run() error {
	// Start one worker per item. The argument, i, travels to the worker
	// encoded; the result travels back the same way.
	var procs []*process.Process
	var errs []error
	for i := 1; i <= 9; i++ {
		p, err := square.Start(i, process.Name(fmt.Sprintf("worker-%d", i)))
		if err != nil {
			errs = append(errs, err)
			break // start no more, but still wait for those already running
		}
		procs = append(procs, p)
	}

	// Wait for every worker, like p.join() in Python.
	for _, p := range procs {
		errs = append(errs, p.Join(context.Background()))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}

	// All workers have exited: collect their results, in order.
	for i, p := range procs {
		var sq int
		if err := p.Result(&sq); err != nil {
			return err
		}
		fmt.Println(i+1, sq)
	}
	fmt.Println("done")
	return nil
}
