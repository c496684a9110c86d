//go:build linux

package value_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/value"
)

// closeRace, in a worker, races every method of cells of each size class
// (one atomic word, a byte in a word, a locked copy) against Close.
var closeRace = process.Register("value_test.closeRace", func(ctx context.Context, rounds int) (struct{}, error) {
	return struct{}{}, shmtest.RaceClose(rounds, func(seg *shm.Segment) ([]func() error, error) {
		i64, err1 := value.New[int64](seg, "i64")
		i8, err2 := value.New[int8](seg, "i8")
		big, err3 := value.New[[8]int64](seg, "big")
		return []func() error{
			func() error { i64.Add(1); return nil },
			func() error { i64.Load(); return nil },
			func() error { i64.CompareAndSwap(i64.Load(), 3); return nil },
			func() error { i8.Update(func(v int8) int8 { return v + 1 }); return nil },
			func() error { i8.Swap(i8.Load()); return nil },
			func() error { big.Add([8]int64{1}); return nil },
			func() error { big.Load(); return nil },
			func() error { big.Store([8]int64{2}); return nil },
		}, errors.Join(err1, err2, err3)
	})
})

// TestCloseRace checks that cell methods racing Close complete or panic
// with shm.ErrClosed, in a worker so that a fault fails the test. (Before
// cells checked their segment, Add faulted here.)
func TestCloseRace(t *testing.T) {
	if _, err := closeRace.Run(t.Context(), 100); err != nil {
		t.Fatal(err)
	}
}

// closedCell, in a worker, calls every method of cells whose segment is
// closed and returns what did not panic with an error matching
// shm.ErrClosed.
var closedCell = process.Register("value_test.closedCell", func(ctx context.Context, _ struct{}) ([]string, error) {
	seg, err := shm.CreateAnonymous(1 << 16)
	if err != nil {
		return nil, err
	}
	small, err1 := value.New[int32](seg, "small")
	i64, err2 := value.New[int64](seg, "i64") // Add's inlined fast path
	big, err3 := value.New[[4]int64](seg, "big")
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, err
	}
	small.Store(7)
	if err := seg.Close(); err != nil {
		return nil, err
	}
	var bad []string
	for name, f := range map[string]func(){
		"Load":           func() { small.Load() },
		"Store":          func() { small.Store(1) },
		"Swap":           func() { small.Swap(1) },
		"CompareAndSwap": func() { small.CompareAndSwap(7, 1) },
		"Add":            func() { small.Add(1) },
		"Update":         func() { small.Update(func(v int32) int32 { return v }) },
		"int64 Add":      func() { i64.Add(1) },
		"Int64":          func() { value.Int64(i64) },
		"big Load":       func() { big.Load() },
		"big Store":      func() { big.Store([4]int64{1}) },
		"big Add":        func() { big.Add([4]int64{1}) },
		"big Update":     func() { big.Update(func(v [4]int64) [4]int64 { return v }) },
	} {
		if err := shmtest.Call(func() error { f(); return nil }); !errors.Is(err, shm.ErrClosed) {
			bad = append(bad, fmt.Sprintf("%s after Close panicked with %v, want shm.ErrClosed", name, err))
		}
	}
	if _, err := value.Open[int64](seg, "i64"); !errors.Is(err, shm.ErrClosed) {
		bad = append(bad, fmt.Sprintf("Open on a closed segment: %v, want shm.ErrClosed", err))
	}
	return bad, nil
})

// TestClosedCell checks that every method of a cell whose segment is
// closed panics with an error matching shm.ErrClosed, in a worker so that
// a fault fails the test. (Before, Load faulted.)
func TestClosedCell(t *testing.T) {
	shmtest.RunChecks(t, closedCell, struct{}{})
}
