//go:build linux

package array_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/internal/benchtest"
	"github.com/shmkit/shmkit/internal/shmtest"
)

// BenchmarkAdd compares Array[int64].Add (method), and an add through the
// slice Int64s returns (atomic), with atomic adds on a private [64]int64,
// all cycling over 64 elements.
func BenchmarkAdd(b *testing.B) {
	seg := shmtest.Segment(b, 1<<16)
	a, err := array.New[int64](seg, "a", 64)
	if err != nil {
		b.Fatal(err)
	}
	var private [64]atomic.Int64
	base := func(n int) {
		for i := range n {
			private[i&63].Add(1)
		}
	}
	b.Run("method", func(b *testing.B) {
		benchtest.Ratio(b, base, func(n int) {
			for i := range n {
				a.Add(i&63, 1)
			}
		})
	})
	b.Run("atomic", func(b *testing.B) {
		hits := array.Int64s(a)
		benchtest.Ratio(b, base, func(n int) {
			for i := range n {
				hits[i&63].Add(1)
			}
		})
	})
}

// BenchmarkCopy64MiB compares CopyFrom and CopyTo of 64 MiB with a Go copy
// between two heap slices. All memory is touched before timing: first
// touch of fresh pages costs far more than copying them and is not what
// this measures.
func BenchmarkCopy64MiB(b *testing.B) {
	const n = 64 << 20 / 8
	seg := shmtest.Segment(b, 64<<20+1<<16)
	a, err := array.New[int64](seg, "big", n)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	src, dst := make([]int64, n), make([]int64, n)
	for i := range src {
		src[i] = int64(i)
	}
	copy(dst, src)
	if _, err := a.CopyFrom(ctx, src); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(64 << 20)
	b.Run("CopyFrom", func(b *testing.B) {
		benchtest.Ratio(b,
			func(k int) {
				for range k {
					copy(dst, src)
				}
			},
			func(k int) {
				for range k {
					a.CopyFrom(ctx, src)
				}
			})
	})
	b.Run("CopyTo", func(b *testing.B) {
		benchtest.Ratio(b,
			func(k int) {
				for range k {
					copy(dst, src)
				}
			},
			func(k int) {
				for range k {
					a.CopyTo(ctx, dst)
				}
			})
	})
}
