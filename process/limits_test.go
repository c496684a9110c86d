//go:build linux

package process_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/shmkit/shmkit/process"
)

// node makes values as deep as their length.
type node struct {
	V    int
	Next *node
}

func list(n int) *node {
	var head *node
	for i := range n {
		head = &node{V: i, Next: head}
	}
	return head
}

func (n *node) len() int {
	l := 0
	for ; n != nil; n = n.Next {
		l++
	}
	return l
}

func cyclic() *node {
	n := &node{V: 1}
	n.Next = n
	return n
}

var (
	echoInts = process.Register("test.echoInts", func(ctx context.Context, v []int) ([]int, error) {
		return v, nil
	})
	makeInts = process.Register("test.makeInts", func(ctx context.Context, n int) ([]int, error) {
		return make([]int, n), nil
	})
	echoList = process.Register("test.echoList", func(ctx context.Context, n *node) (*node, error) {
		return n, nil
	})
	echoString = process.Register("test.echoString", func(ctx context.Context, s string) (string, error) {
		return s, nil
	})
	// startCyclic starts echoList with a cyclic list, and returns Start's
	// error. It runs in a worker, so that a stack overflow in the encoder
	// fails the test rather than killing the test binary.
	startCyclic = process.Register("test.startCyclic", func(ctx context.Context, _ struct{}) (string, error) {
		p, err := echoList.Start(cyclic())
		if err == nil {
			p.Join(ctx)
			return "", errors.New("Start of a cyclic value succeeded")
		}
		return err.Error(), nil
	})
	returnCyclic = process.Register("test.returnCyclic", func(ctx context.Context, _ struct{}) (*node, error) {
		return cyclic(), nil
	})
	returnBytes = process.Register("test.returnBytes", func(ctx context.Context, n int) ([]byte, error) {
		return make([]byte, n), nil
	})
)

// TestBeyondDefaultDecodeLimits sends values the CBOR decoder's defaults
// (131072 elements, 32 levels) refuse, both ways: the worker and the
// parent must decode what the other side encoded.
func TestBeyondDefaultDecodeLimits(t *testing.T) {
	const n = 131073
	t.Run("argument", func(t *testing.T) {
		got, err := echoInts.Run(ctxT(t), make([]int, n))
		if err != nil || len(got) != n {
			t.Fatalf("echo of %d ints = %d ints, %v", n, len(got), err)
		}
	})
	t.Run("result", func(t *testing.T) {
		p, err := makeInts.Start(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Join(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		var got []int
		if err := p.Result(&got); err != nil || len(got) != n {
			t.Fatalf("Result = %d ints, %v; want %d", len(got), err, n)
		}
	})
	t.Run("nesting", func(t *testing.T) {
		const depth = 1000
		got, err := echoList.Run(ctxT(t), list(depth))
		if err != nil || got.len() != depth {
			t.Fatalf("echo of a list of %d = a list of %d, %v", depth, got.len(), err)
		}
	})
}

// TestInvalidUTF8 sends a string that is not valid UTF-8: a Go string may
// hold any bytes, and the result must not be lost for it.
func TestInvalidUTF8(t *testing.T) {
	const s = "ok \xff\xfe"
	got, err := echoString.Run(ctxT(t), s)
	if err != nil || got != s {
		t.Fatalf("echo of %q = %q, %v", s, got, err)
	}
}

func TestCyclicValues(t *testing.T) {
	const want = "nested deeper than 10000 levels (is it cyclic?)"
	t.Run("argument", func(t *testing.T) {
		msg, err := startCyclic.Run(ctxT(t), struct{}{})
		if err != nil {
			t.Fatalf("the worker calling Start: %v", err)
		}
		if !strings.Contains(msg, want) {
			t.Fatalf("Start = %q, want an error saying %q", msg, want)
		}
	})
	t.Run("result", func(t *testing.T) {
		_, err := returnCyclic.Run(ctxT(t), struct{}{})
		var ee *process.ExitError
		if !errors.As(err, &ee) || ee.Code != 1 || !strings.Contains(ee.Err, want) {
			t.Fatalf("Run = %v, want an ExitError with status 1 saying %q", err, want)
		}
	})
}

// TestResultTooLarge returns a result whose encoding does not fit in a
// frame: Join must say so, not report a clean exit without a result.
func TestResultTooLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 256 MiB in a worker")
	}
	p, err := returnBytes.Start(256<<20 + 1)
	if err != nil {
		t.Fatal(err)
	}
	err = p.Join(ctxT(t))
	var ee *process.ExitError
	if !errors.As(err, &ee) || ee.Code != 1 || !strings.Contains(ee.Err, "too large") || !strings.Contains(ee.Err, "at most 256 MiB") {
		t.Fatalf("Join = %v, want an ExitError with status 1 saying the result is too large, at most 256 MiB", err)
	}
}
