//go:build linux

package shm_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/process"
	. "github.com/shmkit/shmkit/shm"
)

// closeRace, in a worker, races the segment's methods against Close, round
// after round; a method that touched the unmapped memory would kill the
// worker with a fault.
var closeRace = process.Register("shm_test.closeRace", func(ctx context.Context, rounds int) (struct{}, error) {
	return struct{}{}, shmtest.RaceClose(rounds, func(seg *Segment) ([]func() error, error) {
		for i := range 20 {
			if _, err := seg.Alloc(ObjectSpec{Name: fmt.Sprint("o", i), Kind: "test", Size: 64}); err != nil {
				return nil, err
			}
		}
		n := 0
		return []func() error{
			func() error { _, err := seg.Objects(); return err },
			func() error { _, err := seg.Lookup("o7"); return err },
			func() error { _, err := seg.Attach(ObjectSpec{Name: "o3", Kind: "test"}); return err },
			func() error {
				n++
				_, err := seg.Alloc(ObjectSpec{Name: fmt.Sprint("new", n), Kind: "test", Size: 8})
				if errors.Is(err, ErrFull) {
					err = nil
				}
				return err
			},
			func() error {
				f, err := seg.File()
				if err == nil {
					f.Close()
				}
				return err
			},
			func() error {
				if seg.Available() == 0 { // closed
					_, err := seg.Lookup("o1")
					return err
				}
				return nil
			},
		}, nil
	})
})

// TestCloseRace checks that every method of a Segment either completes or
// returns ErrClosed when it races Close, in a worker so that a fault fails
// the test. (Before Close waited for them, Objects faulted here.)
func TestCloseRace(t *testing.T) {
	if _, err := closeRace.Run(t.Context(), 200); err != nil {
		t.Fatal(err)
	}
}

// closedSegment, in a worker, calls every method of a closed segment and
// returns what did not fail with ErrClosed.
var closedSegment = process.Register("shm_test.closedSegment", func(ctx context.Context, _ struct{}) ([]string, error) {
	seg, err := CreateAnonymous(1 << 16)
	if err != nil {
		return nil, err
	}
	obj, err := seg.Alloc(ObjectSpec{Name: "o", Kind: "test", Size: 64})
	if err != nil {
		return nil, err
	}
	obj.Bytes[0] = 0xAB
	var bad []string
	if err := seg.Err(); err != nil {
		bad = append(bad, fmt.Sprintf("Err before Close = %v", err))
	}
	if err := seg.Close(); err != nil {
		return nil, err
	}
	if err := seg.Close(); err != nil {
		bad = append(bad, fmt.Sprintf("second Close: %v", err))
	}
	for name, err := range map[string]error{
		"Err":     seg.Err(),
		"Pin":     seg.Pin(),
		"Alloc":   second(seg.Alloc(ObjectSpec{Name: "p", Kind: "test", Size: 64})),
		"Attach":  second(seg.Attach(ObjectSpec{Name: "o", Kind: "test"})),
		"Lookup":  second(seg.Lookup("o")),
		"Objects": second(seg.Objects()),
		"File":    second(seg.File()),
	} {
		if !errors.Is(err, ErrClosed) {
			bad = append(bad, fmt.Sprintf("%s after Close = %v, want ErrClosed", name, err))
		}
	}
	if n := seg.Available(); n != 0 {
		bad = append(bad, fmt.Sprintf("Available after Close = %d, want 0", n))
	}
	// The object's memory is inert, not unmapped: no fault, and nothing
	// of the segment left in it.
	if obj.Bytes[0] != 0 {
		bad = append(bad, fmt.Sprintf("closed segment's memory reads %#x, want 0", obj.Bytes[0]))
	}
	obj.Bytes[0] = 1
	runtime.KeepAlive(seg)
	return bad, nil
})

// TestClosedSegment checks every method of a closed segment, in a worker
// so that a fault fails the test.
func TestClosedSegment(t *testing.T) {
	shmtest.RunChecks(t, closedSegment, struct{}{})
}

func second[T any](_ T, err error) error { return err }
