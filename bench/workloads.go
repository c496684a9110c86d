package bench

import (
	"sync/atomic"
	"unsafe"

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
		Prepare: func(seg *shm.Segment) (func(int), func(), error) {
			o, err := seg.Lookup("raw")
			if err != nil {
				return nil, nil, err
			}
			p := (*int64)(unsafe.Pointer(&o.Bytes[0]))
			return func(n int) {
				for range n {
					atomic.AddInt64(p, 1)
				}
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
		Prepare: func(seg *shm.Segment) (func(int), func(), error) {
			c, err := value.Open[int64](seg, "counter")
			if err != nil {
				return nil, nil, err
			}
			return func(n int) {
				for range n {
					c.Add(1)
				}
			}, func() {}, nil
		},
	})
)
