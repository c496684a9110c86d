//go:build linux

package array_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/shm"
)

// closeRace, in a worker, races element and bulk operations on arrays of
// each size class against Close.
var closeRace = process.Register("array_test.closeRace", func(ctx context.Context, rounds int) (struct{}, error) {
	r := 0
	return struct{}{}, shmtest.RaceClose(rounds, func(seg *shm.Segment) ([]func() error, error) {
		r++
		ints, err1 := array.New[int64](seg, "ints", 64)
		bytes, err2 := array.New[uint8](seg, "bytes", 64)
		big, err3 := array.New[[3]int64](seg, "big", 16)
		to, from := make([]int64, 64), make([]int64, 64)
		return []func() error{
			func() error { ints.Add(r%64, 1); return nil },
			func() error { ints.Load(5); return nil },
			func() error { bytes.Update(3, func(v uint8) uint8 { return v + 1 }); return nil },
			func() error { bytes.CompareAndSwap(4, bytes.Load(4), 9); return nil },
			func() error { big.Add(2, [3]int64{1}); return nil },
			func() error { big.Store(1, big.Load(2)); return nil },
			func() error { _, err := ints.CopyTo(ctx, to); return err },
			func() error { _, err := ints.CopyFrom(ctx, from); return err },
		}, errors.Join(err1, err2, err3)
	})
})

// TestCloseRace checks that array operations racing Close complete or
// fail with shm.ErrClosed, in a worker so that a fault fails the test.
// (Before arrays checked their segment, Add faulted here.)
func TestCloseRace(t *testing.T) {
	if _, err := closeRace.Run(t.Context(), 100); err != nil {
		t.Fatal(err)
	}
}

// closedArray, in a worker, calls every method of arrays whose segment is
// closed and returns what did not fail with shm.ErrClosed.
var closedArray = process.Register("array_test.closedArray", func(ctx context.Context, _ struct{}) ([]string, error) {
	seg, err := shm.CreateAnonymous(1 << 16)
	if err != nil {
		return nil, err
	}
	ints, err1 := array.New[int64](seg, "ints", 8)
	big, err2 := array.New[[2]int64](seg, "big", 8)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	if err := seg.Close(); err != nil {
		return nil, err
	}
	var bad []string
	for name, f := range map[string]func() error{
		"Load":           func() error { ints.Load(1); return nil },
		"Store":          func() error { ints.Store(1, 2); return nil },
		"Swap":           func() error { ints.Swap(1, 2); return nil },
		"CompareAndSwap": func() error { ints.CompareAndSwap(1, 0, 2); return nil },
		"Add":            func() error { ints.Add(1, 2); return nil },
		"Update":         func() error { ints.Update(1, func(v int64) int64 { return v }); return nil },
		"big Load":       func() error { big.Load(1); return nil },
		"big Add":        func() error { big.Add(1, [2]int64{1}); return nil },
		"CopyTo":         func() error { _, err := ints.CopyTo(ctx, make([]int64, 8)); return err },
		"CopyFrom":       func() error { _, err := ints.CopyFrom(ctx, make([]int64, 8)); return err },
		"Locked":         func() error { return ints.Locked(ctx, func([]int64) error { return nil }) },
		"Int64s":         func() error { array.Int64s(ints); return nil },
	} {
		if err := shmtest.Call(f); !errors.Is(err, shm.ErrClosed) {
			bad = append(bad, fmt.Sprintf("%s after Close: %v, want shm.ErrClosed", name, err))
		}
	}
	return bad, nil
})

// TestClosedArray checks that every method of an array whose segment is
// closed fails with shm.ErrClosed (by panicking, for those without an
// error result), in a worker so that a fault fails the test.
func TestClosedArray(t *testing.T) {
	shmtest.RunChecks(t, closedArray, struct{}{})
}
