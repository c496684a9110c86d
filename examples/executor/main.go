// Executor is the Go twin of the ProcessPoolExecutor program from Python
// tutorials: four worker processes test numbers for primality, given as
// strings, one of them mistyped, and the parent reports each result or
// error as its task completes.
//
//	import concurrent.futures
//	import math
//
//	NUMBERS = ["112272535095293", "112582705942171", "115280095190773",
//	           "115797848077099", "1099726899285419", "112272535O95293"]
//
//	def is_prime(s):
//	    n = int(s)                  # ValueError for the last one: an O, not a 0
//	    if n < 2:
//	        return False
//	    if n % 2 == 0:
//	        return n == 2
//	    for i in range(3, math.isqrt(n) + 1, 2):
//	        if n % i == 0:
//	            return False
//	    return True
//
//	if __name__ == "__main__":
//	    with concurrent.futures.ProcessPoolExecutor(max_workers=4) as executor:
//	        futures = {executor.submit(is_prime, s): s for s in NUMBERS}
//	        for future in concurrent.futures.as_completed(futures):
//	            s = futures[future]
//	            try:
//	                prime = future.result()
//	            except Exception as exc:
//	                print(f"{s} generated an exception: {exc}")
//	            else:
//	                print(f"{s} is prime: {prime}")
//
// The numbers are those of the ProcessPoolExecutor example in Python's
// documentation. pool.Submit is executor.submit and returns a
// *pool.Future; an error that isPrime returns in a worker comes back from
// the future's Get as a *pool.TaskError holding its text (an error value
// cannot cross processes, its message can). Errors of the pool itself, a
// worker killed for instance, are not the input's fault: they end the
// program with status 1.
//
// pool.AsCompleted is as_completed. The order in which the tasks
// complete depends on which worker is free first and changes from run to
// run, so where Python prints each line as its future completes, this
// program keeps the line and prints them all, in the order of NUMBERS,
// once every future has completed: its output is then the same on every
// run, as the test of the examples needs. A real
// program would act on each result in the loop. The last line, counts of
// the pool's tasks from Stats, has no equivalent in Python.
//
// Python's "with" shuts the executor down waiting for its tasks, which is
// Join here.
//
// Run it from the repository root with:
//
//	go run ./examples/executor
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/shmkit/shmkit/pool"
	"github.com/shmkit/shmkit/process"
)

var numbers = []string{
	"112272535095293", "112582705942171", "115280095190773",
	"115797848077099", "1099726899285419", "112272535O95293",
}

// isPrime runs in the pool's worker processes: it parses s and tests it
// by trial division.
var isPrime = process.Register("executor.isPrime", func(ctx context.Context, s string) (bool, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return false, err
	}
	if n < 2 {
		return false, nil
	}
	if n%2 == 0 {
		return n == 2, nil
	}
	for i := uint64(3); i*i <= n; i += 2 {
		if n%i == 0 {
			return false, nil
		}
	}
	return true, nil
})

func main() {
	process.Main() // must come first: in a worker, it serves the pool and exits

	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "executor:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx := context.Background()
	p, err := pool.New(ctx, pool.Workers(4))
	if err != nil {
		return err
	}
	defer p.Terminate() // for the error returns; after Join it has nothing left to do

	futures := make([]*pool.Future[bool], len(numbers))
	for i, s := range numbers {
		futures[i] = pool.Submit(ctx, p, isPrime, s)
	}

	// pool.AsCompleted is as_completed: it yields each future, with its
	// index, once it is ready.
	reports := make([]string, len(futures))
	for i, f := range pool.AsCompleted(ctx, futures) {
		prime, err := f.Get(ctx) // ready: Get does not wait
		var te *pool.TaskError
		switch {
		case errors.As(err, &te):
			reports[i] = fmt.Sprintf("%s generated an error: %s", numbers[i], te.Err)
		case err != nil:
			return fmt.Errorf("%s: %w", numbers[i], err)
		default:
			reports[i] = fmt.Sprintf("%s is prime: %t", numbers[i], prime)
		}
	}
	for _, r := range reports {
		fmt.Println(r)
	}

	st := p.Stats()
	fmt.Printf("%d submitted, %d succeeded, %d failed\n", st.Submitted, st.Succeeded, st.Failed)
	return p.Join(ctx)
}
