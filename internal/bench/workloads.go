package bench

import (
	"sync/atomic"
	"unsafe"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/value"
)

// Workloads measured by the benchmarks and by `shmkit bench`.
var (
	// RawAdd is an atomic add on a word of a plain shared mapping, with
	// nothing of shmkit in the way: the hardware's cost.
	RawAdd = Register(&Workload{
		Name: "raw.add",
		Setup: func(seg *shm.Segment) error {
			_, err := seg.Alloc(shm.ObjectSpec{Name: "raw", Kind: "raw", Size: 8})
			return err
		},
		Prepare: func(seg *shm.Segment) (func(int) error, func(), error) {
			o, err := seg.Lookup("raw")
			if err != nil {
				return nil, nil, err
			}
			p := (*int64)(unsafe.Pointer(&o.Bytes[0]))
			return func(n int) error {
				for range n {
					atomic.AddInt64(p, 1)
				}
				return nil
			}, func() {}, nil
		},
	})

	// ValueAdd is value.Cell[int64].Add.
	ValueAdd = Register(&Workload{
		Name: "value.add",
		Setup: func(seg *shm.Segment) error {
			_, err := value.New[int64](seg, "counter")
			return err
		},
		Prepare: func(seg *shm.Segment) (func(int) error, func(), error) {
			c, err := value.Open[int64](seg, "counter")
			if err != nil {
				return nil, nil, err
			}
			return func(n int) error {
				for range n {
					c.Add(1)
				}
				return nil
			}, func() {}, nil
		},
	})

	// GoAdd is atomic.AddInt64 on one word of private memory, shared by
	// goroutines of one process: Go's own in-process cost.
	GoAdd = Register(&Workload{
		Name:       "go.add",
		Goroutines: true,
		Setup:      func(*shm.Segment) error { return nil },
		Prepare: func(seg *shm.Segment) (func(int) error, func(), error) {
			return func(n int) error {
				for range n {
					atomic.AddInt64(&goCounter.n, 1)
				}
				return nil
			}, func() {}, nil
		},
	})

	// ArrayAdd is array.Array[int64].Add cycling over 64 elements (eight
	// cache lines), as processes aggregating into a histogram do.
	ArrayAdd = Register(&Workload{
		Name: "array.add",
		Setup: func(seg *shm.Segment) error {
			_, err := array.New[int64](seg, "hist", 64)
			return err
		},
		Prepare: func(seg *shm.Segment) (func(int) error, func(), error) {
			a, err := array.Open[int64](seg, "hist")
			if err != nil {
				return nil, nil, err
			}
			return func(n int) error {
				for i := range n {
					a.Add(i&63, 1)
				}
				return nil
			}, func() {}, nil
		},
	})
)

// goCounter is the word GoAdd's goroutines share, padded to its own cache
// line.
var goCounter struct {
	_ [64]byte
	n int64
	_ [56]byte
}
