//go:build linux

package array_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"runtime"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/shm"
)

// An array has a fixed length, set by the process that creates it with
// New; other processes open it by name with the same element type. Each
// element operation is atomic in every process, as for a value.Cell. Here
// the second mapping of the segment stands for another process.
func ExampleNew() {
	name := fmt.Sprintf("shmkit-example-array-%d", os.Getpid())
	seg, err := shm.Create(name, 1<<16)
	if err != nil {
		log.Fatal(err)
	}
	defer shm.Remove(name)
	defer seg.Close()
	scores, err := array.New[int64](seg, "scores", 4)
	if err != nil {
		log.Fatal(err)
	}
	scores.Store(0, 10)
	scores.Store(3, 40)

	// In another process:
	other, err := shm.Open(name)
	if err != nil {
		log.Fatal(err)
	}
	defer other.Close()
	s, err := array.Open[int64](other, "scores")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.Len(), s.Load(0), s.Load(1), s.Load(3))
	s.Add(1, 5)
	fmt.Println(s.Swap(3, 41), s.CompareAndSwap(0, 10, 11))

	// Back in the creator:
	fmt.Println(scores.Load(0), scores.Load(1), scores.Load(3))
	// Output:
	// 4 10 0 40
	// 40 true
	// 11 5 41
}

// CopyFrom and CopyTo move many elements at once under the array's lock,
// so a CopyTo in one process never sees half of a CopyFrom in another.
// Both copy as many elements as fit and say how many.
func ExampleArray_CopyTo() {
	ctx := context.Background()
	seg, err := shm.CreateAnonymous(1 << 16)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	frame, err := array.New[float32](seg, "frame", 4)
	if err != nil {
		log.Fatal(err)
	}

	n, err := frame.CopyFrom(ctx, []float32{0.5, 1.5, 2.5, 3.5, 4.5})
	fmt.Println("copied in:", n, err)

	snapshot := make([]float32, 3)
	n, err = frame.CopyTo(ctx, snapshot)
	fmt.Println("copied out:", n, err, snapshot)
	// Output:
	// copied in: 4 <nil>
	// copied out: 3 <nil> [0.5 1.5 2.5]
}

// Locked hands a function the elements themselves, as a slice of the
// shared memory, while it holds the array's lock, for changes that must
// not be seen half done. Here a transfer between two accounts keeps the
// total constant for every process that reads it with Locked or CopyTo.
// If a process dies while holding the lock, the next Locked still runs its
// function (which may repair the elements) and returns an error matching
// array.ErrOwnerDead.
func ExampleArray_Locked() {
	ctx := context.Background()
	seg, err := shm.CreateAnonymous(1 << 16)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	balances, err := array.New[int64](seg, "balances", 2)
	if err != nil {
		log.Fatal(err)
	}
	balances.Store(0, 100)

	err = balances.Locked(ctx, func(b []int64) error {
		if b[0] < 30 {
			return fmt.Errorf("insufficient funds: %d", b[0])
		}
		b[0] -= 30
		b[1] += 30
		return nil
	})
	fmt.Println(err)

	var total int64
	err = balances.Locked(ctx, func(b []int64) error {
		total = b[0] + b[1]
		fmt.Println(b) // the slice must not be kept after f returns
		return nil
	})
	fmt.Println(total, err)
	// Output:
	// <nil>
	// [70 30]
	// 100 <nil>
}

// Int64s gives tight loops the elements as atomic.Int64s in the shared
// memory: one atomic instruction per operation, interoperating with the
// Array's methods in every process.
func ExampleInt64s() {
	seg, err := shm.CreateAnonymous(1 << 16)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	hist, err := array.New[int64](seg, "histogram", 4)
	if err != nil {
		log.Fatal(err)
	}

	buckets := array.Int64s(hist)
	for _, v := range []int{3, 1, 4, 1, 5, 9, 2, 6} {
		buckets[v%4].Add(1)
	}
	runtime.KeepAlive(hist) // the slice alone does not keep the memory mapped

	counts := make([]int64, hist.Len())
	for i := range counts {
		counts[i] = hist.Load(i)
	}
	fmt.Println(counts)
	// Output:
	// [1 4 2 1]
}
