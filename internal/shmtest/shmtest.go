// Package shmtest holds the helpers every shmkit test binary uses: unique
// segment names, segments removed at cleanup, and a TestMain that fails the
// run when it leaves segments, goroutines or file descriptors behind.
package shmtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shmkit/shmkit/internal/proc"
	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/value"
)

var seq atomic.Int64

// Prefix starts the name of every segment this test binary creates; other
// test binaries running in parallel use other prefixes.
func Prefix() string { return fmt.Sprintf("shmkit-test-%d-", os.Getpid()) }

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// Name returns a segment name unique to this test and this call.
func Name(t testing.TB) string {
	n := fmt.Sprintf("%s%d-%s", Prefix(), seq.Add(1), unsafeChars.ReplaceAllString(t.Name(), "_"))
	return n[:min(len(n), shm.MaxNameLen)]
}

// Segment creates a named segment of size bytes that is closed and removed
// when the test ends.
func Segment(t testing.TB, size int64) *shm.Segment {
	t.Helper()
	name := Name(t)
	s, err := shm.Create(name, size)
	if err != nil {
		t.Fatalf("shm.Create(%q, %d): %v", name, size, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := shm.Remove(name); err != nil {
			t.Errorf("Remove: %v", err)
		}
	})
	return s
}

// Main runs worker processes (process.Main) and otherwise the tests, and
// then fails the run if they left behind segments named with Prefix, child
// processes, goroutines, or open file descriptors. Call it from TestMain:
// func TestMain(m *testing.M) { shmtest.Main(m) }.
func Main(m *testing.M, opts ...goleak.Option) {
	process.Main()
	// Under -race, a process that exits normally first sleeps for a second
	// (GORACE atexit_sleep_ms) so that other goroutines can report races.
	// Tests start hundreds of workers; they inherit this setting.
	if _, ok := os.LookupEnv("GORACE"); !ok {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	// os/exec and os.Pipe start the runtime's poller, which keeps its
	// descriptors for the life of the process; start it before counting.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	fdsBefore := openFDs()
	code := m.Run()
	process.StopSpares()
	if code == 0 {
		code = check(fdsBefore, opts)
	}
	os.Exit(code)
}

func check(fdsBefore int, opts []goleak.Option) int {
	code := 0
	left, _ := filepath.Glob(filepath.Join(shm.DefaultDir, Prefix()+"*"))
	tmp, _ := filepath.Glob(filepath.Join(shm.DefaultDir, fmt.Sprintf(".shmkit-tmp-%d-*", os.Getpid())))
	for _, p := range append(left, tmp...) {
		fmt.Fprintf(os.Stderr, "shmtest: test left segment %s\n", p)
		os.Remove(p)
		code = 1
	}
	if kids := children(); len(kids) > 0 {
		fmt.Fprintf(os.Stderr, "shmtest: tests left child processes running: %v\n", kids)
		code = 1
	}
	if err := goleak.Find(opts...); err != nil {
		fmt.Fprintf(os.Stderr, "shmtest: goroutines leaked: %v\n", err)
		code = 1
	}
	if after := openFDs(); after > fdsBefore {
		fmt.Fprintf(os.Stderr, "shmtest: %d file descriptors leaked (%d before the tests, %d after): %s\n",
			after-fdsBefore, fdsBefore, after, describeFDs())
		code = 1
	}
	return code
}

func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents) - 1 // the directory's own descriptor
}

func describeFDs() string {
	ents, _ := os.ReadDir("/proc/self/fd")
	var b strings.Builder
	for _, e := range ents {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		fmt.Fprintf(&b, "%s->%s ", e.Name(), target)
	}
	return b.String()
}

// children returns the pids of this process's children.
func children() []int {
	ents, _ := os.ReadDir("/proc")
	var kids []int
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		if ppid, err := proc.Parent(pid); err == nil && ppid == os.Getpid() {
			kids = append(kids, pid)
		}
	}
	return kids
}

// Gate cell names: workers count themselves in on the first and wait for
// the second.
const (
	gateReady = "shmtest.gate.ready"
	gateGo    = "shmtest.gate.go"
)

// NewGate adds to seg the cells that let worker processes start together:
// each worker calls Await, and Release lets them all go once every one has
// arrived. Workers boot milliseconds apart; loops that should contend must
// not start as each worker happens to finish booting.
func NewGate(t testing.TB, seg *shm.Segment) {
	t.Helper()
	if _, err := value.New[int64](seg, gateReady); err != nil {
		t.Fatal(err)
	}
	if _, err := value.New[bool](seg, gateGo); err != nil {
		t.Fatal(err)
	}
}

// Await, in a worker, checks in at the gate in seg and waits until it
// opens.
func Await(seg *shm.Segment) error {
	ready, err := value.Open[int64](seg, gateReady)
	if err != nil {
		return err
	}
	open, err := value.Open[bool](seg, gateGo)
	if err != nil {
		return err
	}
	ready.Add(1)
	for !open.Load() {
		runtime.Gosched()
	}
	return nil
}

// Release waits until every worker in ps has checked in at the gate in seg
// and opens it. It fails the test if a worker ends first or they do not
// all arrive within a minute.
func Release(t testing.TB, seg *shm.Segment, ps []*process.Process) {
	t.Helper()
	ready, err := value.Open[int64](seg, gateReady)
	if err != nil {
		t.Fatal(err)
	}
	open, err := value.Open[bool](seg, gateGo)
	if err != nil {
		t.Fatal(err)
	}
	WaitUntil(t, "every worker at the gate", func() bool { return ready.Load() >= int64(len(ps)) }, ps...)
	open.Store(true)
}

// WaitUntil polls cond every millisecond until it holds. It fails the test,
// killing the workers in ps, if one of them ends first or a minute passes:
// a test waiting for workers to reach some point must not hang when they
// cannot.
func WaitUntil(t testing.TB, what string, cond func() bool, ps ...*process.Process) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		for _, p := range ps {
			p.Kill()
			<-p.Done()
		}
		t.Fatalf(format, args...)
	}
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		for _, p := range ps {
			if !p.IsAlive() {
				fail("worker %s ended before %s: %v", p.Name(), what, p.Join(context.Background()))
			}
		}
		if time.Now().After(deadline) {
			fail("no %s after a minute", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Start starts n workers with start and returns them.
func Start(t testing.TB, n int, start func(i int) (*process.Process, error)) []*process.Process {
	t.Helper()
	ps := make([]*process.Process, 0, n)
	for i := range n {
		p, err := start(i)
		if err != nil {
			for _, p := range ps {
				p.Kill()
				<-p.Done()
			}
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

// JoinAll joins every worker in ps and fails the test for any that failed
// or did not end within a minute.
func JoinAll(t testing.TB, ps []*process.Process) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, p := range ps {
		if err := p.Join(ctx); err != nil {
			p.Kill()
			t.Errorf("worker %s: %v", p.Name(), err)
		}
	}
}

// RaceClose, round after round, creates an anonymous segment of 256 KiB,
// lets setup make objects in it and return operations on them, calls each
// operation over and over, each in its own goroutine, and closes the
// segment while they run. Every call must return nil, or fail with an
// error matching shm.ErrClosed, by returning it or, for methods without an
// error result, by panicking with it; once a goroutine has seen ErrClosed
// it stops. RaceClose returns an error describing the first other result,
// or a goroutine that does not stop within a minute of Close. A fault
// kills the process: call it in a worker (package process), so that the
// test sees the worker die.
func RaceClose(rounds int, setup func(seg *shm.Segment) ([]func() error, error)) error {
	for r := range rounds {
		seg, err := shm.CreateAnonymous(1 << 18)
		if err != nil {
			return err
		}
		ops, err := setup(seg)
		if err == nil {
			err = raceClose(seg, ops)
		}
		if err != nil {
			seg.Close()
			return fmt.Errorf("round %d: %w", r, err)
		}
	}
	return nil
}

func raceClose(seg *shm.Segment, ops []func() error) error {
	var calls atomic.Int64
	type result struct {
		op  int
		err error
	}
	results := make(chan result, len(ops))
	for i, op := range ops {
		go func() {
			for n := 1; ; n++ {
				err := Call(op)
				if calls.Add(1); n%64 == 0 {
					runtime.Gosched() // let RaceClose's goroutine run
				}
				if err != nil {
					if errors.Is(err, shm.ErrClosed) {
						err = nil
					}
					results <- result{i, err}
					return
				}
			}
		}()
	}
	// Close once every op has had a few calls, at a moment that varies.
	for calls.Load() < int64(4*len(ops)) {
		runtime.Gosched()
	}
	for range rand.IntN(200) {
		runtime.Gosched()
	}
	if err := seg.Close(); err != nil {
		return err
	}
	timeout := time.After(time.Minute)
	running := make(map[int]bool)
	for i := range ops {
		running[i] = true
	}
	var first error
	for range ops {
		select {
		case r := <-results:
			delete(running, r.op)
			if first == nil && r.err != nil {
				first = fmt.Errorf("operation %d racing Close: %w", r.op, r.err)
			}
		case <-timeout:
			return fmt.Errorf("operations %v racing Close did not return ErrClosed within a minute", slices.Sorted(maps.Keys(running)))
		}
	}
	return first
}

// RunChecks runs fn(arg) in a worker, fn being a function that checks
// things and returns what it found wrong, and fails t with each problem,
// or with the worker's failure (a fault, say).
func RunChecks[A any](t *testing.T, fn *process.Func[A, []string], arg A) {
	t.Helper()
	problems, err := fn.Run(t.Context(), arg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// Call runs op and returns its error or, if it panics, the panic value as
// an error.
func Call(op func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = e
			} else {
				err = fmt.Errorf("panic: %v", r)
			}
		}
	}()
	return op()
}
