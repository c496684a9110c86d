// Primes is the Go twin of the CPU-bound Pool program from Python
// multiprocessing tutorials: it counts the primes below 2 000 000 by
// trial division, in 100 ranges of 20 000 numbers, once with one worker
// process and once with two, and prints how much faster two were.
//
//	import math, time
//	from multiprocessing import Pool
//
//	N, RANGES = 2_000_000, 100
//
//	def is_prime(n):
//	    if n < 2:
//	        return False
//	    if n % 2 == 0:
//	        return n == 2
//	    return all(n % i for i in range(3, math.isqrt(n) + 1, 2))
//
//	def count_primes(r):
//	    lo, hi = r
//	    return sum(1 for n in range(lo, hi) if is_prime(n))
//
//	if __name__ == "__main__":
//	    step = N // RANGES
//	    ranges = [(lo, lo + step) for lo in range(0, N, step)]
//	    took = {}
//	    for workers in (1, 2):
//	        start = time.perf_counter()
//	        with Pool(workers) as pool:
//	            total = sum(pool.map(count_primes, ranges, chunksize=1))
//	        took[workers] = time.perf_counter() - start
//	        print(f"{workers} worker(s): {total} primes below {N}")  # 148933
//	    print(f"speed-up with 2 workers: {took[1] / took[2]:.2f}x")
//
// Each range is one task (ChunkSize(1), Python's chunksize=1): the ranges
// near 2 000 000 cost more than those near 0, as their numbers have more
// divisors to try, and with a task per range a worker that is done with
// its share takes the next, so that the two finish together. With Map's
// default rule, 100/(4·2) rounded up, the 100 ranges would be 8 tasks of
// 13, and a worker that happens to take the last ones would be left
// working alone.
//
// The time of each run is that of the whole pool, from New to Join, as in
// Python it is that of the "with" block: the workers' start is part of
// what a pool costs. The speed-up is at most the number of CPUs the
// machine can give the two workers, and less on a busy one.
//
// Run it from the repository root with:
//
//	go run ./examples/primes
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/shmkit/shmkit/pool"
	"github.com/shmkit/shmkit/process"
)

const (
	below  = 2_000_000 // count the primes below this
	ranges = 100       // in this many ranges of numbers, a task each
)

// span is the range of numbers Lo ≤ n < Hi.
type span struct{ Lo, Hi int }

// countPrimes runs in the pool's worker processes: it counts the primes
// in r by trial division.
var countPrimes = process.Register("primes.count", func(ctx context.Context, r span) (int, error) {
	count := 0
	for n := r.Lo; n < r.Hi; n++ {
		if isPrime(n) {
			count++
		}
	}
	return count, nil
})

func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	if n%2 == 0 {
		return n == 2
	}
	for i := 3; i*i <= n; i += 2 {
		if n%i == 0 {
			return false
		}
	}
	return true
}

func main() {
	process.Main() // must come first: in a worker, it serves the pool and exits

	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "primes:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx := context.Background()
	spans := make([]span, ranges)
	step := below / ranges
	for i := range spans {
		spans[i] = span{Lo: i * step, Hi: (i + 1) * step}
	}
	took := map[int]time.Duration{}
	for _, workers := range []int{1, 2} {
		start := time.Now()
		total, err := count(ctx, workers, spans)
		if err != nil {
			return err
		}
		took[workers] = time.Since(start)
		unit := "workers"
		if workers == 1 {
			unit = "worker"
		}
		fmt.Printf("%d %s: %d primes below %d\n", workers, unit, total, below)
	}
	fmt.Printf("speed-up with 2 workers: %.2fx (%.2fs with 1, %.2fs with 2)\n",
		took[1].Seconds()/took[2].Seconds(), took[1].Seconds(), took[2].Seconds())
	return nil
}

// count counts the primes in spans with a pool of the given number of
// workers, and ends the pool.
func count(ctx context.Context, workers int, spans []span) (int, error) {
	p, err := pool.New(ctx, pool.Workers(workers))
	if err != nil {
		return 0, err
	}
	defer p.Terminate() // for the error returns; after Join it has nothing left to do
	counts, err := pool.Map(ctx, p, countPrimes, spans, pool.ChunkSize(1))
	if err != nil {
		return 0, err
	}
	total := 0
	for _, c := range counts {
		total += c
	}
	return total, p.Join(ctx)
}
