// Package bench measures shared-memory operations across real processes,
// next to their in-process and plain-memory baselines. It is the engine
// of `shmkit bench` and of the packages' benchmarks, internal because its
// API serves them and is not promised to anyone else.
//
// A Workload names an operation. Run creates an anonymous segment, lets
// the workload create its objects there, starts worker processes (copies of
// the running binary, package process) that inherit the segment and attach
// to the objects, waits until all of them are ready, releases them at once,
// and times them until the last one has done its share. The segment has no
// name, so a benchmark that is killed leaves nothing in /dev/shm. The
// program (or test binary) must call process.Main at the top of main (or
// TestMain).
//
// A workload with a Consumer is a pipeline, such as a queue: Run starts as
// many consumers as producers, and an operation is one item passed from a
// producer to a consumer.
//
// A workload with a Drive is driven by the measuring process, which
// hands its operations to P processes of its own, such as a pool's
// workers: Run lets it start them untimed and times its run.
package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"syscall"
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
	// the operation n times on the objects Setup created. The loop's error
	// fails the run.
	Prepare func(seg *shm.Segment) (loop func(n int) error, cleanup func(), err error)
	// Consumer, if not nil, makes the workload a pipeline: with procs
	// processes, Run starts procs running Prepare's loop (the producers)
	// and procs more running Consumer's (the consumers), all with the
	// same n, and counts procs*n operations. Each consumer's loop must
	// take exactly n items, and a loop that fails must make the others
	// end too (a queue's by closing it), so that none waits for ever.
	Consumer func(seg *shm.Segment) (loop func(n int) error, cleanup func(), err error)
	// Drive, if not nil, makes the measuring process do the operations,
	// through procs processes that Drive starts itself (a pool's
	// workers), instead of Run starting processes that each loop; Setup,
	// Prepare and Consumer are then unused. Drive gets ready untimed
	// (processes started, warmed up), and Run times run, which must do
	// ops operations in all. Run calls stop once Drive has succeeded,
	// whether or not run does: it must end every process and goroutine
	// Drive started. ctx is Run's, for run too.
	Drive func(ctx context.Context, procs, ops int) (run func() error, stop func() error, err error)
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
	Consumer bool // run the workload's Consumer, not its Prepare
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
	loop, cleanup, err := prepare(seg, a.Workload, a.Consumer)
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
	return struct{}{}, loop(a.N)
})

func prepare(seg *shm.Segment, name string, consumer bool) (func(int) error, func(), error) {
	w := Lookup(name)
	switch {
	case w == nil:
		return nil, nil, fmt.Errorf("bench: no workload %q", name)
	case consumer && w.Consumer == nil:
		return nil, nil, fmt.Errorf("bench: workload %q has no consumer", name)
	case consumer:
		return w.Consumer(seg)
	case w.Prepare == nil:
		return nil, nil, fmt.Errorf("bench: workload %q has no worker loop", name)
	}
	return w.Prepare(seg)
}

// Run times procs worker processes that each do the workload n times
// (and, for a pipeline, procs consumers that each take n items). With
// procs == 0 the measuring process does the operations itself, in one
// goroutine (one producer and one consumer for a pipeline), which measures
// the operation without process start-up or cross-process traffic. A
// worker that fails ends the run with its error; the others are killed.
//
// A workload with a Drive does procs*n operations, n for each process as
// with the others, driven by the measuring process; procs == 0 counts as
// one, there being no process to drive without.
func Run(ctx context.Context, name string, procs, n int) (Result, error) {
	w := Lookup(name)
	if w == nil {
		return Result{}, fmt.Errorf("bench: no workload %q", name)
	}
	if procs < 0 || n < 0 {
		return Result{}, fmt.Errorf("bench: %d processes of %d operations", procs, n)
	}
	if w.Drive != nil {
		return runDriven(ctx, w, max(procs, 1), n)
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
	args := []workerArgs{{Workload: name, N: n}}
	if w.Consumer != nil {
		args = append(args, workerArgs{Workload: name, N: n, Consumer: true})
	}
	ps := make([]*process.Process, 0, procs*len(args))
	defer func() {
		for _, p := range ps {
			p.Kill()
			<-p.Done()
		}
	}()
	for i := range procs {
		for _, a := range args {
			role := ""
			if a.Consumer {
				role = "consumer-"
			}
			p, err := worker.Start(a, process.Daemon(), process.Segments(seg),
				process.Name(fmt.Sprintf("bench-%s-%s%d", name, role, i)))
			if err != nil {
				return Result{}, err
			}
			ps = append(ps, p)
		}
	}
	for ready.Load() < int64(len(ps)) {
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
	err = joinAll(ctx, ps)
	elapsed := time.Since(t0)
	if err != nil {
		return Result{}, err
	}
	ps = nil
	return Result{Workload: name, Procs: procs, Ops: int64(procs) * int64(n), Elapsed: elapsed}, nil
}

// joinAll waits until every process in ps has ended. When one fails, it
// kills those still running, which may be waiting for it (as a pipeline's
// consumers wait for a producer that died), and returns the errors of all
// that failed by themselves, the first first.
func joinAll(ctx context.Context, ps []*process.Process) error {
	ended := make(chan *process.Process, len(ps))
	for _, p := range ps {
		go func() {
			<-p.Done()
			ended <- p
		}()
	}
	var errs []error
	for range ps {
		var p *process.Process
		select {
		case p = <-ended:
		case <-ctx.Done():
			return ctx.Err() // Run's deferred kill ends them
		}
		err := p.Join(ctx)
		if err == nil {
			continue
		}
		if len(errs) == 0 {
			for _, q := range ps {
				q.Kill() // fails harmlessly for those that have ended
			}
		} else if ee, ok := errors.AsType[*process.ExitError](err); ok && ee.Code == -int(syscall.SIGKILL) && ee.Err == "" && ee.Panic == "" {
			continue // killed above
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// runDriven times w's Drive with procs processes doing n operations each.
func runDriven(ctx context.Context, w *Workload, procs, n int) (r Result, err error) {
	ops := procs * n
	run, stop, err := w.Drive(ctx, procs, ops)
	if err != nil {
		return Result{}, err
	}
	defer func() {
		if stopErr := stop(); stopErr != nil {
			r, err = Result{}, errors.Join(err, stopErr)
		}
	}()
	t0 := time.Now()
	err = run()
	elapsed := time.Since(t0)
	if err != nil {
		return Result{}, err
	}
	return Result{Workload: w.Name, Procs: procs, Ops: int64(ops), Elapsed: elapsed}, nil
}

// runGoroutines runs the workload in g goroutines of this process (and g
// consumer goroutines for a pipeline).
func runGoroutines(w *Workload, seg *shm.Segment, g, n int) (Result, error) {
	preps := []func(*shm.Segment) (func(int) error, func(), error){w.Prepare}
	if w.Consumer != nil {
		preps = append(preps, w.Consumer)
	}
	var loops []func(int) error
	for range g {
		for _, prepare := range preps {
			loop, cleanup, err := prepare(seg)
			if err != nil {
				return Result{}, err
			}
			defer cleanup()
			loops = append(loops, loop)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(loops))
	start := make(chan struct{})
	for i, loop := range loops {
		wg.Go(func() {
			<-start
			errs[i] = loop(n)
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(t0)
	if err := errors.Join(errs...); err != nil {
		return Result{}, err
	}
	return Result{Workload: w.Name, Procs: g, Ops: int64(g) * int64(n), Elapsed: elapsed}, nil
}

// Median returns the middle value of xs (the upper middle for even counts).
func Median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
