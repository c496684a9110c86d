//go:build linux

package value_test

import (
	"sync/atomic"
	"testing"

	"github.com/shmkit/shmkit/internal/benchtest"
	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/value"
)

// BenchmarkAdd compares Cell[int64].Add with atomic.AddInt64: on private
// memory in one process (1proc), and with a raw atomic add on a plain
// shared mapping from two processes hammering one word (2proc, total
// throughput of both).
func BenchmarkAdd(b *testing.B) {
	b.Run("1proc", func(b *testing.B) {
		seg := shmtest.Segment(b, 1<<16)
		c, err := value.New[int64](seg, "c")
		if err != nil {
			b.Fatal(err)
		}
		var private int64
		benchtest.Ratio(b,
			func(n int) {
				for range n {
					atomic.AddInt64(&private, 1)
				}
			},
			func(n int) {
				for range n {
					c.Add(1)
				}
			})
	})
	b.Run("1proc-atomic", func(b *testing.B) {
		// The hot-loop form: value.Int64's *atomic.Int64.
		seg := shmtest.Segment(b, 1<<16)
		c, err := value.New[int64](seg, "c")
		if err != nil {
			b.Fatal(err)
		}
		hits := value.Int64(c)
		var private atomic.Int64
		benchtest.Ratio(b,
			func(n int) {
				for range n {
					private.Add(1)
				}
			},
			func(n int) {
				for range n {
					hits.Add(1)
				}
			})
	})
	b.Run("2proc", func(b *testing.B) {
		benchtest.Processes(b, "raw.add", "value.add", 2)
	})
}

// BenchmarkLoadMultiWord reads a 64-byte struct cell while nobody writes.
func BenchmarkLoadMultiWord(b *testing.B) {
	seg := shmtest.Segment(b, 1<<16)
	c, err := value.New[[8]int64](seg, "c")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		c.Load()
	}
}

// BenchmarkUpdateMultiWord updates a 64-byte struct cell under its lock.
func BenchmarkUpdateMultiWord(b *testing.B) {
	seg := shmtest.Segment(b, 1<<16)
	c, err := value.New[[8]int64](seg, "c")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		c.Update(func(v [8]int64) [8]int64 { v[0]++; return v })
	}
}
