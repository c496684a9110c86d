// Package bench measures shared-memory operations across real processes,
// next to their in-process and plain-memory baselines.
//
// A Workload names an operation. Run creates an anonymous segment, lets
// the workload create its objects there, starts worker processes (copies of
// the running binary, package process) that inherit the segment and attach
// to the objects, waits until all of them are ready, releases them at once,
// and times them until the last one has done its share. The segment has no
// name, so a benchmark that is killed leaves nothing in /dev/shm. The program (or test binary) must call
// process.Main at the top of main (or TestMain).
package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/value"
)

// Workload is an operation to measure.
type Workload struct {
	Name string
	// Goroutines makes Run use goroutines of the measuring process instead
	// of worker processes: the in-process baseline for an operation.
	Goroutines bool
	// Setup runs once, in the measuring process, and creates the objects
	// the operation uses in seg.
	Setup func(seg *shm.Segment) error
	// Prepare runs in each worker process and returns a function that does
	// the operation n times on the objects Setup created.
	Prepare func(seg *shm.Segment) (loop func(n int), cleanup func(), err error)
}

var workloads = struct {
	sync.RWMutex
	m map[string]*Workload
}{m: map[string]*Workload{}}

// Register makes w available to Run. Like process.Register, it must be
// called during package initialisation, so that workers have it too.
func Register(w *Workload) *Workload {
	workloads.Lock()
	defer workloads.Unlock()
	if _, dup := workloads.m[w.Name]; dup {
		panic("bench: Register called twice for " + w.Name)
	}
	workloads.m[w.Name] = w
	return w
}

// Lookup returns the workload registered under name, or nil.
func Lookup(name string) *Workload {
	workloads.RLock()
	defer workloads.RUnlock()
	return workloads.m[name]
}

// Result is one timed run.
type Result struct {
	Workload string
	Procs    int
	Ops      int64 // operations done by all processes together
	Elapsed  time.Duration
}

// NsPerOp is the wall time per operation, all processes together.
func (r Result) NsPerOp() float64 { return float64(r.Elapsed.Nanoseconds()) / float64(r.Ops) }

// OpsPerSec is the total throughput of all processes.
func (r Result) OpsPerSec() float64 { return float64(r.Ops) / r.Elapsed.Seconds() }

type workerArgs struct {
	Workload string
	N        int
}

var worker = process.Register("shmkit/bench.worker", func(ctx context.Context, a workerArgs) (struct{}, error) {
	segs, err := process.InheritedSegments()
	if err != nil {
		return struct{}{}, err
	}
	if len(segs) != 1 {
		return struct{}{}, fmt.Errorf("bench: worker got %d segments, want 1", len(segs))
	}
	seg := segs[0]
	loop, cleanup, err := prepare(seg, a.Workload)
	if err != nil {
		return struct{}{}, err
	}
	defer cleanup()
	ready, err := value.Open[int64](seg, "bench.ready")
	if err != nil {
		return struct{}{}, err
	}
	start, err := value.Open[bool](seg, "bench.start")
	if err != nil {
		return struct{}{}, err
	}
	ready.Add(1)
	for !start.Load() {
		runtime.Gosched()
	}
	loop(a.N)
	return struct{}{}, nil
})

func prepare(seg *shm.Segment, name string) (func(int), func(), error) {
	w := Lookup(name)
	if w == nil {
		return nil, nil, fmt.Errorf("bench: no workload %q", name)
	}
	return w.Prepare(seg)
}

// Run times procs worker processes that each do the workload n times.
// With procs == 0 the measuring process does the operations itself, in one
// goroutine, which measures the operation without process start-up or
// cross-process traffic.
func Run(ctx context.Context, name string, procs, n int) (Result, error) {
	w := Lookup(name)
	if w == nil {
		return Result{}, fmt.Errorf("bench: no workload %q", name)
	}
	seg, err := shm.CreateAnonymous(1 << 20)
	if err != nil {
		return Result{}, err
	}
	defer seg.Close()
	if err := w.Setup(seg); err != nil {
		return Result{}, err
	}
	if procs == 0 || w.Goroutines {
		return runGoroutines(w, seg, max(procs, 1), n)
	}
	ready, err := value.New[int64](seg, "bench.ready")
	if err != nil {
		return Result{}, err
	}
	start, err := value.New[bool](seg, "bench.start")
	if err != nil {
		return Result{}, err
	}
	ps := make([]*process.Process, 0, procs)
	defer func() {
		for _, p := range ps {
			p.Kill()
			<-p.Done()
		}
	}()
	for i := range procs {
		p, err := worker.Start(workerArgs{Workload: name, N: n}, process.Daemon(), process.Segments(seg),
			process.Name(fmt.Sprintf("bench-%s-%d", name, i)))
		if err != nil {
			return Result{}, err
		}
		ps = append(ps, p)
	}
	for ready.Load() < int64(procs) {
		for _, p := range ps {
			if !p.IsAlive() {
				return Result{}, fmt.Errorf("bench: worker failed before starting: %w", p.Join(ctx))
			}
		}
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		time.Sleep(50 * time.Microsecond)
	}
	t0 := time.Now()
	start.Store(true)
	var errs []error
	for _, p := range ps {
		errs = append(errs, p.Join(ctx))
	}
	elapsed := time.Since(t0)
	ps = nil
	if err := errors.Join(errs...); err != nil {
		return Result{}, err
	}
	return Result{Workload: name, Procs: procs, Ops: int64(procs) * int64(n), Elapsed: elapsed}, nil
}

// runGoroutines runs the workload in g goroutines of this process.
func runGoroutines(w *Workload, seg *shm.Segment, g, n int) (Result, error) {
	loops := make([]func(int), g)
	for i := range loops {
		loop, cleanup, err := w.Prepare(seg)
		if err != nil {
			return Result{}, err
		}
		defer cleanup()
		loops[i] = loop
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, loop := range loops {
		wg.Go(func() {
			<-start
			loop(n)
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	return Result{Workload: w.Name, Procs: g, Ops: int64(g) * int64(n), Elapsed: time.Since(t0)}, nil
}

// Median returns the middle value of xs (the upper middle for even counts).
func Median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
