//go:build linux

package pool_test

import (
	"context"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shmkit/shmkit/pool"
	"github.com/shmkit/shmkit/process"
)

// python runs testdata/mp_pool.py's workload what with n and returns the
// time Python's multiprocessing took, skipping b without python3.
func python(b *testing.B, what string, n int) time.Duration {
	b.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		b.Skip("python3 is not installed: no side-by-side row")
	}
	out, err := exec.CommandContext(b.Context(), py, "testdata/mp_pool.py", what, strconv.Itoa(n)).Output()
	if err != nil {
		b.Fatalf("python3 mp_pool.py %s %d: %v", what, n, err)
	}
	s, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		b.Fatalf("python3 mp_pool.py printed %q", out)
	}
	return time.Duration(s * float64(time.Second))
}

func benchPool(b *testing.B) *pool.Pool {
	p, err := pool.New(context.Background(), pool.Workers(2))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Terminate() })
	if _, err := pool.Apply(context.Background(), p, square, 1); err != nil { // the workers are up
		b.Fatal(err)
	}
	return p
}

func ints(n int) []int {
	xs := make([]int, n)
	for i := range xs {
		xs[i] = i
	}
	return xs
}

// BenchmarkPool: trivial tasks (squaring an int) on 2 workers, beside
// Python's Pool(2) and ProcessPoolExecutor(2) on the same work in the same
// run (x-python is the speed-up): Map of 1 M items with the default
// chunks, Map with chunks of one item, Submit of many tasks then Get of
// each, and a pool's start until its first result.
func BenchmarkPool(b *testing.B) {
	ctx := context.Background()
	b.Run("map", func(b *testing.B) {
		const n = 1_000_000
		py := python(b, "map", n)
		p := benchPool(b)
		xs := ints(n)
		b.ResetTimer()
		for range b.N {
			if _, err := pool.Map(ctx, p, square, xs); err != nil {
				b.Fatal(err)
			}
		}
		rate := float64(n) * float64(b.N) / b.Elapsed().Seconds()
		b.ReportMetric(rate, "items/s")
		b.ReportMetric(rate/(n/py.Seconds()), "x-python")
	})
	b.Run("map-chunk1", func(b *testing.B) {
		const n = 100_000
		py := python(b, "map1", n/4)
		p := benchPool(b)
		xs := ints(n)
		b.ResetTimer()
		for range b.N {
			if _, err := pool.Map(ctx, p, square, xs, pool.ChunkSize(1)); err != nil {
				b.Fatal(err)
			}
		}
		rate := float64(n) * float64(b.N) / b.Elapsed().Seconds()
		b.ReportMetric(rate, "items/s")
		b.ReportMetric(rate/(n/4/py.Seconds()), "x-python")
	})
	b.Run("submit", func(b *testing.B) {
		const n = 100_000
		py := python(b, "submit", n/20)
		p := benchPool(b)
		fs := make([]*pool.Future[int], n)
		b.ResetTimer()
		for range b.N {
			for i := range fs {
				fs[i] = pool.Submit(ctx, p, square, i)
			}
			for i, f := range fs {
				if v, err := f.Get(ctx); err != nil || v != i*i {
					b.Fatalf("task %d = %d, %v", i, v, err)
				}
			}
		}
		rate := float64(n) * float64(b.N) / b.Elapsed().Seconds()
		b.ReportMetric(rate, "tasks/s")
		b.ReportMetric(rate/(n/20/py.Seconds()), "x-python")
	})
	b.Run("start", func(b *testing.B) {
		py := python(b, "start", 5)
		ds := make([]time.Duration, 0, b.N)
		for range b.N {
			t0 := time.Now()
			p, err := pool.New(ctx, pool.Workers(2))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := pool.Apply(ctx, p, square, 3); err != nil {
				b.Fatal(err)
			}
			ds = append(ds, time.Since(t0))
			p.Terminate()
		}
		slices.Sort(ds)
		med := ds[len(ds)/2]
		b.ReportMetric(float64(med.Microseconds())/1000, "median-ms")
		b.ReportMetric(py.Seconds()/med.Seconds(), "x-python")
	})
}

// primeRange is a range of numbers [Lo, Hi) to count the primes of.
type primeRange struct{ Lo, Hi int }

var countPrimes = process.Register("pool_test.countPrimes", func(ctx context.Context, r primeRange) (int, error) {
	n := 0
	for x := max(r.Lo, 2); x < r.Hi; x++ {
		prime := true
		for d := 2; d*d <= x; d++ {
			if x%d == 0 {
				prime = false
				break
			}
		}
		if prime {
			n++
		}
	}
	return n, nil
})

// primesOn counts the primes below 2 000 000 in 100 ranges on a warm pool
// of the given workers and returns the time, without the pool's start.
func primesOn(b *testing.B, workers int) time.Duration {
	ctx := context.Background()
	p, err := pool.New(ctx, pool.Workers(workers))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Terminate()
	// Warm every worker: one tiny range each, at the same time.
	warm := make([]primeRange, workers)
	for i := range warm {
		warm[i] = primeRange{0, 1000}
	}
	if _, err := pool.Map(ctx, p, countPrimes, warm, pool.ChunkSize(1)); err != nil {
		b.Fatal(err)
	}
	const limit, parts = 2_000_000, 100
	rs := make([]primeRange, parts)
	for i := range rs {
		rs[i] = primeRange{i * limit / parts, (i + 1) * limit / parts}
	}
	t0 := time.Now()
	counts, err := pool.Map(ctx, p, countPrimes, rs, pool.ChunkSize(1))
	d := time.Since(t0)
	if err != nil {
		b.Fatal(err)
	}
	total := 0
	for _, c := range counts {
		total += c
	}
	if total != 148933 {
		b.Fatalf("%d primes below %d, want 148933", total, limit)
	}
	return d
}

// BenchmarkPrimes: the CPU-bound job of examples/primes on 2 workers
// against 1 worker in the same run (x-1worker is the speed-up).
func BenchmarkPrimes(b *testing.B) {
	var one, two time.Duration
	for range b.N {
		one += primesOn(b, 1)
		two += primesOn(b, 2)
	}
	b.ReportMetric(one.Seconds()/two.Seconds(), "x-1worker")
	b.ReportMetric(float64(two.Milliseconds())/float64(b.N), "ms-2workers")
}
