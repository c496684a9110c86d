//go:build linux

package process_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strconv"
	"strings"
	"time"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/shm"
)

// The functions the examples run in workers. A worker is a new copy of the
// program's executable, so each function must be registered in every copy
// under the same name: register it in a package-level var, as here, never
// inside a function.

var cube = process.Register("process_example.cube", func(ctx context.Context, n int) (int, error) {
	return n * n * n, nil
})

var wordCount = process.Register("process_example.wordCount", func(ctx context.Context, text string) (map[string]int, error) {
	counts := make(map[string]int)
	for _, w := range strings.Fields(text) {
		counts[strings.ToLower(w)]++
	}
	return counts, nil
})

var parse = process.Register("process_example.parse", func(ctx context.Context, s string) (int, error) {
	return strconv.Atoi(s)
})

// waitForCancel runs until it is killed, or until its context ends (when
// the parent dies).
var waitForCancel = process.Register("process_example.waitForCancel", func(ctx context.Context, _ struct{}) (struct{}, error) {
	<-ctx.Done()
	return struct{}{}, ctx.Err()
})

// fillSquares writes i*i into each element of the array "squares" in the
// first segment its parent passed it.
var fillSquares = process.Register("process_example.fillSquares", func(ctx context.Context, _ struct{}) (struct{}, error) {
	segs, err := process.InheritedSegments()
	if err != nil {
		return struct{}{}, err
	}
	sq, err := array.Open[int64](segs[0], "squares")
	if err != nil {
		return struct{}{}, err
	}
	for i := range sq.Len() {
		sq.Store(i, int64(i*i))
	}
	return struct{}{}, nil
})

// A worker runs one registered function in a new process and exits. The
// program must call process.Main as the first statement of main (in tests,
// of TestMain): in a worker, Main runs the function the worker was started
// for and exits; in the original process it returns at once. (The examples
// call it where main would; this package's TestMain has called it already,
// through shmtest.Main, so here it just returns.)
func Example_worker() {
	process.Main() // first in main: in a worker, runs its function and exits

	ctx := context.Background()
	p, err := cube.Start(7)
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Join(ctx); err != nil { // wait for it to exit
		log.Fatal(err)
	}
	var n int
	if err := p.Result(&n); err != nil {
		log.Fatal(err)
	}
	code, exited := p.ExitCode()
	fmt.Println(n, code, exited)
	// Output: 343 0 true
}

// Run is Start, Join and Result in one call. The argument and the result
// are encoded to travel between the processes, so they may be any values
// of numbers, strings, slices, maps and structs.
func ExampleFunc_Run() {
	process.Main() // first in main: in a worker, runs its function and exits

	counts, err := wordCount.Run(context.Background(), "the cat saw the other cat The end")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(counts)
	// Output: map[cat:2 end:1 other:1 saw:1 the:3]
}

// When the function returns an error in the worker, Join (or Run) returns
// an *ExitError carrying the error's text and the worker's exit status,
// which is 1; a panic in the worker gives status 2 and the panic's text.
func ExampleExitError() {
	process.Main() // first in main: in a worker, runs its function and exits

	_, err := parse.Run(context.Background(), "twelve")
	var exit *process.ExitError
	if errors.As(err, &exit) {
		fmt.Println(exit.Code)
		fmt.Println(exit.Err)
	}
	// Output:
	// 1
	// strconv.Atoi: parsing "twelve": invalid syntax
}

// Join waits only as long as its context allows, and the worker runs on
// when it gives up, as with Python's join(timeout). Terminate sends the
// worker SIGTERM; a worker killed by a signal has the signal's number,
// negated, as its exit code.
func ExampleProcess_Terminate() {
	process.Main() // first in main: in a worker, runs its function and exits

	p, err := waitForCancel.Start(struct{}{})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err = p.Join(ctx)
	fmt.Println(errors.Is(err, context.DeadlineExceeded), p.IsAlive())

	if err := p.Terminate(); err != nil {
		log.Fatal(err)
	}
	<-p.Done() // closed once the worker has exited and been reaped
	code, _ := p.ExitCode()
	fmt.Println(code, p.IsAlive())
	// Output:
	// true true
	// -15 false
}

// Segments hands shared-memory segments to a worker, which maps them with
// InheritedSegments. An anonymous segment has no name to open, so this is
// the only way it reaches another process; a named one may also be passed
// by name. Here the worker fills an array that the parent then reads.
func ExampleSegments() {
	process.Main() // first in main: in a worker, runs its function and exits

	seg, err := shm.CreateAnonymous(1 << 16)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	squares, err := array.New[int64](seg, "squares", 6)
	if err != nil {
		log.Fatal(err)
	}

	_, err = fillSquares.Run(context.Background(), struct{}{}, process.Segments(seg))
	if err != nil {
		log.Fatal(err)
	}
	got := make([]int64, squares.Len())
	if _, err := squares.CopyTo(context.Background(), got); err != nil {
		log.Fatal(err)
	}
	fmt.Println(got)
	// Output: [0 1 4 9 16 25]
}
