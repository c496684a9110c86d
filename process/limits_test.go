//go:build linux

package process_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"

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

// TestForgottenMain runs a program that does not call process.Main (see
// testdata/nomain): its workers run its main instead of their job, and
// the parent must say that Main was not called, with spares and without.
func TestForgottenMain(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build the test program")
	}
	bin := filepath.Join(t.TempDir(), "nomain")
	build := exec.CommandContext(ctxT(t), goTool, "build", "-o", bin, "./testdata/nomain")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, spares := range []string{"1", "0"} {
		t.Run("SHMKIT_SPARES="+spares, func(t *testing.T) {
			cmd := exec.CommandContext(ctxT(t), bin)
			cmd.Env = append(os.Environ(), "SHMKIT_SPARES="+spares)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			want := []string{
				"Prestart: true: process spare",
				"Run: true: process nomain.echo-1",
				"before it was ready for a job: its program did not reach process.Main, which must be called first in main (and in TestMain)",
			}
			if spares == "0" {
				want[0] = "Prestart: false: <nil>"
			}
			for _, w := range want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// zeroPanics encodes itself, and panics doing so when it is zero. Workers
// rehearse every registered function's codecs on zero values before they
// are ready; such a panic must not end them, or every worker of the
// program would look as if it never reached Main.
type zeroPanics struct{ N int }

func (z zeroPanics) MarshalCBOR() ([]byte, error) {
	if z.N == 0 {
		panic("zero zeroPanics")
	}
	return cbor.Marshal(z.N)
}

func (z *zeroPanics) UnmarshalCBOR(b []byte) error { return cbor.Unmarshal(b, &z.N) }

var double = process.Register("test.double", func(ctx context.Context, z zeroPanics) (zeroPanics, error) {
	return zeroPanics{N: 2 * z.N}, nil
})

func TestRehearsalPanics(t *testing.T) {
	got, err := double.Run(ctxT(t), zeroPanics{N: 21})
	if err != nil || got.N != 42 {
		t.Fatalf("Run = %v, %v; want 42", got, err)
	}
}
