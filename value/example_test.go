//go:build linux

package value_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/value"
)

// A cell lives in a segment under a name. The creator makes it with New;
// every other process opens the segment and then the cell by name, with
// the same type. Here the second mapping of the segment stands for another
// process.
func ExampleNew() {
	name := fmt.Sprintf("shmkit-example-value-%d", os.Getpid())
	seg, err := shm.Create(name, 1<<16)
	if err != nil {
		log.Fatal(err)
	}
	defer shm.Remove(name)
	defer seg.Close()
	ratio, err := value.New[float64](seg, "ratio")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ratio.Load()) // a new cell holds the zero value
	ratio.Store(0.25)

	// In another process:
	other, err := shm.Open(name)
	if err != nil {
		log.Fatal(err)
	}
	defer other.Close()
	r, err := value.Open[float64](other, "ratio")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Load())
	fmt.Println(r.Swap(0.5), ratio.Load())

	_, err = value.Open[int64](other, "ratio")
	fmt.Println(errors.Is(err, shm.ErrTypeMismatch))
	// Output:
	// 0
	// 0.25
	// 0.25 0.5
	// true
}

// count runs in worker processes, copies of this program that package
// process starts; the program's main must call process.Main first (here
// the test binary's TestMain has). It adds n to the cell "total" of the
// segment its parent passed it.
var count = process.Register("value_example.count", func(ctx context.Context, n int) (struct{}, error) {
	segs, err := process.InheritedSegments() // closed when count returns
	if err != nil {
		return struct{}{}, err
	}
	total, err := value.Open[int64](segs[0], "total")
	if err != nil {
		return struct{}{}, err
	}
	for range n {
		total.Add(1)
	}
	return struct{}{}, nil
})

// Add is a read-modify-write that loses no updates, however many processes
// add at once: three workers adding 1 a thousand times each leave exactly
// 3000.
func ExampleCell_Add() {
	process.Main() // first in main: in a worker, runs its function and exits

	ctx := context.Background()
	seg, err := shm.CreateAnonymous(1 << 16)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	total, err := value.New[int64](seg, "total")
	if err != nil {
		log.Fatal(err)
	}

	var workers []*process.Process
	for range 3 {
		p, err := count.Start(1000, process.Segments(seg))
		if err != nil {
			log.Fatal(err)
		}
		workers = append(workers, p)
	}
	for _, p := range workers {
		if err := p.Join(ctx); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(total.Load())
	// Output: 3000
}

// CompareAndSwap changes the value only if it still holds what the caller
// last saw. Here it lets exactly one of several claimants, in any
// processes, take a job: the first to swap 0 for its id wins.
func ExampleCell_CompareAndSwap() {
	seg, err := shm.CreateAnonymous(1 << 16)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	owner, err := value.New[int32](seg, "owner") // 0: nobody
	if err != nil {
		log.Fatal(err)
	}
	for _, id := range []int32{7, 8, 9} {
		fmt.Println(id, owner.CompareAndSwap(0, id))
	}
	fmt.Println("owner:", owner.Load())
	// Output:
	// 7 true
	// 8 false
	// 9 false
	// owner: 7
}

// summary is larger than 8 bytes, so its cell serialises writers with a
// lock and publishes each new value whole: a reader in any process sees the
// fields of one write, never a mixture of two.
type summary struct {
	N        int64
	Sum      float64
	Min, Max float64
}

// Update applies a function to the value atomically. For a cell larger than
// 8 bytes it runs once, under the cell's lock, so it must be quick; Add on
// a struct of numbers adds field by field.
func ExampleCell_Update() {
	seg, err := shm.CreateAnonymous(1 << 16)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	stats, err := value.New[summary](seg, "latency")
	if err != nil {
		log.Fatal(err)
	}
	for _, ms := range []float64{12, 7, 30} {
		stats.Update(func(s summary) summary {
			if s.N == 0 || ms < s.Min {
				s.Min = ms
			}
			s.Max = max(s.Max, ms)
			s.N++
			s.Sum += ms
			return s
		})
	}
	fmt.Printf("%+v\n", stats.Load())

	stats.Add(summary{N: 1, Sum: 1}) // every field gets its delta
	s := stats.Load()
	fmt.Println(s.N, s.Sum, s.Min)
	// Output:
	// {N:3 Sum:49 Min:7 Max:30}
	// 4 50 7
}
