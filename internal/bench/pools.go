package bench

import (
	"context"
	"errors"
	"fmt"

	"github.com/shmkit/shmkit/pool"
	"github.com/shmkit/shmkit/process"
)

// Pool workloads are driven (see Workload.Drive): the measuring process
// squares ints on a pool of P worker processes (package pool), created
// and warmed up with one Apply before the clock starts, and checks every
// result. An operation is one item: its argument sent to a worker and its
// square back. The work being nothing, they measure what the pool costs
// per item.
var (
	// PoolMap is Map with the default chunks (Python's rule,
	// len/(4·workers)): an item is a small part of a task.
	PoolMap = Register(&Workload{
		Name: "pool.map",
		Drive: drivePool(func(ctx context.Context, p *pool.Pool, xs []int) error {
			return mapSquares(ctx, p, xs)
		}),
	})

	// PoolMap1 is Map with ChunkSize(1): a task per item.
	PoolMap1 = Register(&Workload{
		Name: "pool.map1",
		Drive: drivePool(func(ctx context.Context, p *pool.Pool, xs []int) error {
			return mapSquares(ctx, p, xs, pool.ChunkSize(1))
		}),
	})

	// PoolSubmit is a Submit per item, then Get of each future in turn.
	PoolSubmit = Register(&Workload{
		Name: "pool.submit",
		Drive: drivePool(func(ctx context.Context, p *pool.Pool, xs []int) error {
			fs := make([]*pool.Future[int], len(xs))
			for i, x := range xs {
				fs[i] = pool.Submit(ctx, p, square, x)
			}
			for i, f := range fs {
				r, err := f.Get(ctx)
				if err != nil {
					return fmt.Errorf("bench: task %d of %d: %w", i, len(fs), err)
				}
				if r != xs[i]*xs[i] {
					return fmt.Errorf("bench: square(%d) = %d", xs[i], r)
				}
			}
			return nil
		}),
	})
)

// square is the pool workloads' task.
var square = process.Register("shmkit/bench.square", func(ctx context.Context, x int) (int, error) {
	return x * x, nil
})

// drivePool returns a Drive that starts a pool of procs workers, waits
// until one has answered, and runs body on the ints 0 to ops-1. The pool
// is terminated however Drive or the run ends.
func drivePool(body func(ctx context.Context, p *pool.Pool, xs []int) error) func(context.Context, int, int) (func() error, func() error, error) {
	return func(ctx context.Context, procs, ops int) (func() error, func() error, error) {
		p, err := pool.New(ctx, pool.Workers(procs))
		if err != nil {
			return nil, nil, fmt.Errorf("bench: %w", err)
		}
		if _, err := pool.Apply(ctx, p, square, 1); err != nil {
			return nil, nil, errors.Join(fmt.Errorf("bench: warm-up: %w", err), p.Terminate())
		}
		xs := make([]int, ops)
		for i := range xs {
			xs[i] = i
		}
		return func() error { return body(ctx, p, xs) }, p.Terminate, nil
	}
}

// mapSquares squares xs with one Map and checks the results.
func mapSquares(ctx context.Context, p *pool.Pool, xs []int, opts ...pool.CallOption) error {
	rs, err := pool.Map(ctx, p, square, xs, opts...)
	if err != nil {
		return fmt.Errorf("bench: map of %d: %w", len(xs), err)
	}
	for i, r := range rs {
		if r != xs[i]*xs[i] {
			return fmt.Errorf("bench: square(%d) = %d", xs[i], r)
		}
	}
	return nil
}
