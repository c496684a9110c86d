//go:build linux

package pool_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/shmkit/shmkit/pool"
	"github.com/shmkit/shmkit/process"
)

// The functions the examples run in the pools' workers. They are
// registered at package level, so that the workers, which are copies of
// the program, register them too. Each example calls process.Main first,
// as a program's main must: in a worker it runs the worker's function and
// exits. (Here the test binary's TestMain has called it already, so it
// returns at once.) Each function has a var of its own, so that an
// example copied out as a program keeps only what it uses.
var cube = process.Register("pool_example.cube", func(ctx context.Context, n int) (int, error) {
	return n * n * n, nil
})

var parseInt = process.Register("pool_example.parseInt", func(ctx context.Context, s string) (int, error) {
	return strconv.Atoi(s)
})

var fibonacci = process.Register("pool_example.fibonacci", func(ctx context.Context, n int) (int, error) {
	a, b := 0, 1
	for range n {
		a, b = b, a+b
	}
	return a, nil
})

var shout = process.Register("pool_example.shout", func(ctx context.Context, s string) (string, error) {
	return strings.ToUpper(s) + "!", nil
})

// A pool of two workers cubes ten numbers with Map, which returns the
// results in the order of the arguments. Join waits for the tasks and lets
// the workers exit; the deferred Terminate is for the early returns. (The
// other examples end with Terminate alone, as Python's "with Pool()"
// does: it kills the workers, idle by then.)
func ExampleNew() {
	process.Main()

	ctx := context.Background()
	p, err := pool.New(ctx, pool.Workers(2))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Terminate()

	cubes, err := pool.Map(ctx, p, cube, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cubes)
	if err := p.Join(ctx); err != nil {
		fmt.Println(err)
	}
	// Output:
	// [0 1 8 27 64 125 216 343 512 729]
}

// Apply runs one call in a worker and waits for it. An error the function
// returns there comes back as a *pool.TaskError carrying its text, and the
// worker goes on with the next task.
func ExampleApply() {
	process.Main()

	ctx := context.Background()
	p, err := pool.New(ctx, pool.Workers(2))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Terminate()

	n, err := pool.Apply(ctx, p, parseInt, "42")
	fmt.Println(n, err)

	_, err = pool.Apply(ctx, p, parseInt, "forty-two")
	var te *pool.TaskError
	if errors.As(err, &te) {
		fmt.Printf("%s failed: %s\n", te.Func, te.Err)
	}
	// Output:
	// 42 <nil>
	// pool_example.parseInt failed: strconv.Atoi: parsing "forty-two": invalid syntax
}

// Submit returns at once with a future, so that the three calls run side
// by side in the workers; Get waits for each result in turn.
func ExampleSubmit() {
	process.Main()

	ctx := context.Background()
	p, err := pool.New(ctx, pool.Workers(2))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Terminate()

	ns := []int{10, 20, 30}
	futures := make([]*pool.Future[int], len(ns))
	for i, n := range ns {
		futures[i] = pool.Submit(ctx, p, fibonacci, n)
	}
	for i, f := range futures {
		v, err := f.Get(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("fibonacci(%d) = %d\n", ns[i], v)
	}
	// Output:
	// fibonacci(10) = 55
	// fibonacci(20) = 6765
	// fibonacci(30) = 832040
}

// IMap yields each result as soon as it and those before it are ready,
// in the order of the arguments, reading the arguments only as fast as the
// workers take them; an error would end the loop after being yielded.
func ExampleIMap() {
	process.Main()

	ctx := context.Background()
	p, err := pool.New(ctx, pool.Workers(2))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Terminate()

	words := []string{"one", "two", "three"}
	for s, err := range pool.IMap(ctx, p, shout, slices.Values(words)) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(s)
	}
	// Output:
	// ONE!
	// TWO!
	// THREE!
}
