// Poolmap is the Go twin of the Pool program from Python multiprocessing
// tutorials: a pool of four worker processes squares numbers with map,
// apply, apply_async, map_async and imap.
//
//	from multiprocessing import Pool
//
//	def square(x):
//	    return x * x
//
//	if __name__ == "__main__":
//	    with Pool(4) as pool:
//	        print(pool.map(square, range(10)))        # [0, 1, 4, ..., 81]
//	        for x in [4, 3, 2, 1]:
//	            print(pool.apply(square, (x,)))       # 16, 9, 4, 1
//	        results = [pool.apply_async(square, (x,)) for x in range(5, 9)]
//	        for r in results:
//	            print(r.get())                        # 25, 36, 49, 64
//	        print("map:", pool.map(square, [1, 2, 3]))
//	        print("map_async:", pool.map_async(square, [1, 2, 3]).get())
//	        print("imap:", list(pool.imap(square, [1, 2, 3])))
//
// Python's pool pickles the function by name; a Go pool's workers are
// copies of this program, so square is registered with process.Register
// under a name at package level, where every copy registers it too, and
// main calls process.Main first. The pool calls are functions, not
// methods, because Go methods cannot have type parameters:
// pool.Map(ctx, p, square, xs) is Python's pool.map(square, xs), and its
// result is a []int, not a list of anything.
//
// The output does not depend on which worker runs what: Map, MapAsync and
// IMap return the results in the order of the arguments, and the futures
// of ApplyAsync are waited for in the order they were made.
//
// Python's "with Pool(4)" calls terminate on the way out, killing the
// workers whatever they do. Here the pool is joined at the end, which
// waits for its tasks and lets the workers exit on their own, and
// terminated by a deferred call only on the way out of an error.
//
// Run it from the repository root with:
//
//	go run ./examples/poolmap
package main

import (
	"context"
	"fmt"
	"os"
	"slices"

	"github.com/shmkit/shmkit/pool"
	"github.com/shmkit/shmkit/process"
)

// square runs in the pool's worker processes.
var square = process.Register("poolmap.square", func(ctx context.Context, x int) (int, error) {
	return x * x, nil
})

func main() {
	process.Main() // must come first: in a worker, it serves the pool and exits

	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "poolmap:", err)
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

	xs := make([]int, 10)
	for i := range xs {
		xs[i] = i
	}
	squares, err := pool.Map(ctx, p, square, xs)
	if err != nil {
		return err
	}
	fmt.Println(squares)

	for _, x := range []int{4, 3, 2, 1} {
		n, err := pool.Apply(ctx, p, square, x)
		if err != nil {
			return err
		}
		fmt.Println(n)
	}

	// ApplyAsync returns at once; the four tasks run side by side.
	var results []*pool.Future[int]
	for x := 5; x <= 8; x++ {
		results = append(results, pool.ApplyAsync(ctx, p, square, x))
	}
	for _, r := range results {
		n, err := r.Get(ctx)
		if err != nil {
			return err
		}
		fmt.Println(n)
	}

	small := []int{1, 2, 3}
	mapped, err := pool.Map(ctx, p, square, small)
	if err != nil {
		return err
	}
	fmt.Println("map:", mapped)
	mapped, err = pool.MapAsync(ctx, p, square, small).Get(ctx)
	if err != nil {
		return err
	}
	fmt.Println("map_async:", mapped)
	var imapped []int
	for n, err := range pool.IMap(ctx, p, square, slices.Values(small)) {
		if err != nil {
			return err
		}
		imapped = append(imapped, n)
	}
	fmt.Println("imap:", imapped)

	return p.Join(ctx)
}
