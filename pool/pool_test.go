//go:build linux

package pool_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/pool"
	"github.com/shmkit/shmkit/process"
)

func TestMain(m *testing.M) { shmtest.Main(m) }

var square = process.Register("pool_test.square", func(ctx context.Context, n int) (int, error) {
	return n * n, nil
})

// job is what the misbehaving functions take.
type job struct {
	N     int
	Fail  bool          // return an error
	Panic bool          // panic
	Sleep time.Duration // sleep first (until ctx ends)
	Exit  bool          // exit the worker process
}

type answer struct {
	N     int
	Pid   int
	Start int64 // when the job began, in ns of the wall clock, which processes share
}

var work = process.Register("pool_test.work", func(ctx context.Context, j job) (answer, error) {
	start := time.Now().UnixNano()
	if j.Sleep > 0 {
		select {
		case <-time.After(j.Sleep):
		case <-ctx.Done():
		}
	}
	switch {
	case j.Fail:
		return answer{}, fmt.Errorf("job %d failed", j.N)
	case j.Panic:
		panic(fmt.Sprintf("job %d panicked", j.N))
	case j.Exit:
		os.Exit(3)
	}
	return answer{N: j.N, Pid: os.Getpid(), Start: start}, nil
})

func newPool(t *testing.T, opts ...pool.Option) *pool.Pool {
	t.Helper()
	p, err := pool.New(t.Context(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Terminate(); err != nil {
			t.Error(err)
		}
	})
	return p
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func squares(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i * i
	}
	return out
}

func TestMapApplySubmit(t *testing.T) {
	ctx := ctxT(t)
	p := newPool(t, pool.Workers(4))
	xs := make([]int, 10)
	for i := range xs {
		xs[i] = i
	}
	got, err := pool.Map(ctx, p, square, xs)
	if err != nil || !slices.Equal(got, squares(10)) {
		t.Fatalf("Map = %v, %v", got, err)
	}
	for _, n := range []int{4, 3, 2, 1} {
		if v, err := pool.Apply(ctx, p, square, n); err != nil || v != n*n {
			t.Fatalf("Apply(%d) = %d, %v", n, v, err)
		}
	}
	var fs []*pool.Future[int]
	for i := range 4 {
		fs = append(fs, pool.ApplyAsync(ctx, p, square, i))
	}
	for i, f := range fs {
		if v, err := f.Get(ctx); err != nil || v != i*i || !f.Ready() || !f.Successful() {
			t.Fatalf("future %d = %d, %v", i, v, err)
		}
	}
	mf := pool.MapAsync(ctx, p, square, []int{1, 2, 3})
	if v, err := mf.Get(ctx); err != nil || !slices.Equal(v, []int{1, 4, 9}) {
		t.Fatalf("MapAsync = %v, %v", v, err)
	}
	var im []int
	for v, err := range pool.IMap(ctx, p, square, slices.Values([]int{1, 2, 3})) {
		if err != nil {
			t.Fatal(err)
		}
		im = append(im, v)
	}
	if !slices.Equal(im, []int{1, 4, 9}) {
		t.Fatalf("IMap = %v", im)
	}
	if st := p.Stats(); st.Failed != 0 || st.Succeeded != st.Submitted || st.Workers != 4 {
		t.Fatalf("Stats = %+v", st)
	}
	if err := p.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Apply(ctx, p, square, 1); !errors.Is(err, pool.ErrClosed) {
		t.Fatalf("Apply after Join = %v, want ErrClosed", err)
	}
}

// TestMapsComplete: Map, IMap and IMapUnordered over 100 000 items, with 1
// to 8 workers, each result once and in order where promised.
func TestMapsComplete(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	xs := make([]int, n)
	for i := range xs {
		xs[i] = i
	}
	want := squares(n)
	for _, workers := range []int{1, 2, 3, 8} {
		t.Run(fmt.Sprint(workers), func(t *testing.T) {
			ctx := ctxT(t)
			p := newPool(t, pool.Workers(workers))
			got, err := pool.Map(ctx, p, square, xs)
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("Map: %v (%d results)", err, len(got))
			}
			got, err = pool.Map(ctx, p, square, xs[:n/10], pool.ChunkSize(1))
			if err != nil || !slices.Equal(got, want[:n/10]) {
				t.Fatalf("Map with chunks of 1: %v (%d results)", err, len(got))
			}
			got = got[:0]
			for v, err := range pool.IMap(ctx, p, square, slices.Values(xs), pool.ChunkSize(100)) {
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, v)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("IMap: %d results, not in order", len(got))
			}
			got = got[:0]
			for v, err := range pool.IMapUnordered(ctx, p, square, slices.Values(xs), pool.ChunkSize(100)) {
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, v)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("IMapUnordered: %d results, not each once", len(got))
			}
		})
	}
}

func TestTaskErrors(t *testing.T) {
	ctx := ctxT(t)
	p := newPool(t, pool.Workers(2))
	_, err := pool.Apply(ctx, p, work, job{N: 1, Fail: true})
	var te *pool.TaskError
	if !errors.As(err, &te) || te.Err != "job 1 failed" || te.Panicked() {
		t.Fatalf("Apply of a failing job = %v", err)
	}
	_, err = pool.Apply(ctx, p, work, job{N: 2, Panic: true})
	if !errors.As(err, &te) || te.Err != "job 2 panicked" || !te.Panicked() || !strings.Contains(te.Stack, "pool_test") {
		t.Fatalf("Apply of a panicking job = %v", err)
	}
	jobs := make([]job, 50)
	for i := range jobs {
		jobs[i] = job{N: i, Fail: i == 37}
	}
	_, err = pool.Map(ctx, p, work, jobs, pool.ChunkSize(5))
	if !errors.As(err, &te) || te.Index != 37 {
		t.Fatalf("Map with job 37 failing = %v, want its TaskError", err)
	}
	var ierr error
	for _, err := range pool.IMap(ctx, p, work, slices.Values(jobs), pool.ChunkSize(5)) {
		if err != nil {
			ierr = err
		}
	}
	if !errors.As(ierr, &te) || te.Index != 37 {
		t.Fatalf("IMap with job 37 failing = %v, want its TaskError", ierr)
	}
	// The workers go on.
	if a, err := pool.Apply(ctx, p, work, job{N: 3}); err != nil || a.N != 3 {
		t.Fatalf("Apply after failures = %v, %v", a, err)
	}
	if st := p.Stats(); st.Workers != 2 {
		t.Fatalf("Stats after failures = %+v", st)
	}
}

// TestWorkerExits: a task whose worker exits fails with ErrWorkerDied; the
// pool replaces the worker and the other tasks complete.
func TestWorkerExits(t *testing.T) {
	ctx := ctxT(t)
	p := newPool(t, pool.Workers(2))
	var fs []*pool.Future[answer]
	for i := range 20 {
		fs = append(fs, pool.Submit(ctx, p, work, job{N: i, Exit: i == 7, Sleep: time.Millisecond}))
	}
	for i, f := range fs {
		a, err := f.Get(ctx)
		if i == 7 {
			var wd *pool.WorkerDiedError
			if !errors.As(err, &wd) || wd.Code != 3 || !errors.Is(err, pool.ErrWorkerDied) {
				t.Fatalf("task 7 = %v, want its worker's death with status 3", err)
			}
			continue
		}
		if err != nil || a.N != i {
			t.Fatalf("task %d = %v, %v", i, a, err)
		}
	}
	shmtest.WaitUntil(t, "a replacement worker", func() bool { return p.Stats().Workers == 2 })
}

func TestExecutor(t *testing.T) {
	ctx := ctxT(t)
	p := newPool(t, pool.Workers(2))
	var fs []*pool.Future[answer]
	for i := range 6 {
		// Later tasks are quicker, so they tend to complete first.
		fs = append(fs, pool.Submit(ctx, p, work, job{N: i, Sleep: time.Duration(6-i) * 20 * time.Millisecond, Fail: i == 4}))
	}
	seen := map[int]bool{}
	for i, f := range pool.AsCompleted(ctx, fs) {
		if !f.Ready() || seen[i] {
			t.Fatalf("AsCompleted yielded future %d (ready %v, seen %v)", i, f.Ready(), seen[i])
		}
		seen[i] = true
		if a, err := f.Get(ctx); (i == 4) != (err != nil) || (err == nil && a.N != i) {
			t.Fatalf("future %d = %v, %v", i, a, err)
		}
	}
	if len(seen) != 6 {
		t.Fatalf("AsCompleted yielded %d futures of 6", len(seen))
	}

	slow := pool.Submit(ctx, p, work, job{Sleep: time.Minute})
	quick := pool.Submit(ctx, p, work, job{N: 1})
	done, notDone, err := pool.Wait(ctx, []*pool.Future[answer]{slow, quick}, pool.FirstCompleted)
	if err != nil || len(done) != 1 || done[0] != quick || len(notDone) != 1 {
		t.Fatalf("Wait(FirstCompleted) = %d done, %d not, %v", len(done), len(notDone), err)
	}
	bad := pool.Submit(ctx, p, work, job{Fail: true})
	done, _, err = pool.Wait(ctx, []*pool.Future[answer]{slow, bad}, pool.FirstException)
	if err != nil || len(done) != 1 || done[0] != bad {
		t.Fatalf("Wait(FirstException) = %d done, %v", len(done), err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, _, err := pool.Wait(short, []*pool.Future[answer]{slow}, pool.AllCompleted); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait(AllCompleted) on a slow task = %v, want DeadlineExceeded", err)
	}
	// Shutdown with cancelPending: the slow task's worker is killed by
	// Terminate below; tasks queued behind the busy workers are cancelled.
	slow2 := pool.Submit(ctx, p, work, job{Sleep: time.Minute})
	time.Sleep(20 * time.Millisecond) // both workers are well into a long task
	_ = slow2
	var queued []*pool.Future[answer]
	for range 20 {
		queued = append(queued, pool.Submit(ctx, p, work, job{Sleep: time.Minute}))
	}
	sctx, scancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer scancel()
	if err := p.Shutdown(sctx, true); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with minute-long tasks running = %v, want DeadlineExceeded", err)
	}
	cancelled := 0
	for _, f := range queued {
		if errors.Is(f.Err(), context.Canceled) {
			cancelled++
		}
	}
	if cancelled < 10 {
		t.Fatalf("Shutdown(cancelPending) cancelled %d of 20 queued tasks", cancelled)
	}
}

// initState is what the initializer leaves in each worker process.
var initState string

var setUp = process.Register("pool_test.setUp", func(ctx context.Context, s string) (struct{}, error) {
	if s == "fail" {
		return struct{}{}, errors.New("cannot set up")
	}
	initState = fmt.Sprintf("%s in %d", s, os.Getpid())
	return struct{}{}, nil
})

var state = process.Register("pool_test.state", func(ctx context.Context, _ int) (string, error) {
	return initState, nil
})

func TestInitializer(t *testing.T) {
	ctx := ctxT(t)
	p := newPool(t, pool.Workers(2), pool.Initializer(setUp, "ready"))
	got, err := pool.Map(ctx, p, state, make([]int, 20), pool.ChunkSize(1))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range got {
		if !strings.HasPrefix(s, "ready in ") {
			t.Fatalf("a task saw the state %q", s)
		}
	}

	bad := newPool(t, pool.Workers(2), pool.Initializer(setUp, "fail"))
	var te *pool.TaskError
	if _, err := pool.Apply(ctx, bad, state, 0); !errors.As(err, &te) || te.Func != "pool_test.setUp" || te.Err != "cannot set up" {
		t.Fatalf("Apply on a pool whose initializer fails = %v", err)
	}
	if _, err := pool.Map(ctx, bad, state, make([]int, 5)); !errors.As(err, &te) {
		t.Fatalf("Map on a pool whose initializer failed = %v", err)
	}
	shmtest.WaitUntil(t, "no workers left", func() bool { return bad.Stats().Workers == 0 })
}

func TestMapAfterClose(t *testing.T) {
	ctx := ctxT(t)
	p := newPool(t, pool.Workers(1))
	p.Close()
	if _, err := pool.Map(ctx, p, square, []int{1, 2, 3}); !errors.Is(err, pool.ErrClosed) {
		t.Fatalf("Map after Close = %v, want ErrClosed", err)
	}
	for _, err := range pool.IMap(ctx, p, square, slices.Values([]int{1})) {
		if !errors.Is(err, pool.ErrClosed) {
			t.Fatalf("IMap after Close yielded %v, want ErrClosed", err)
		}
	}
}

// TestLargeMessages: arguments and results many frames long, near the
// default MaxMessage, arrive whole.
func TestLargeMessages(t *testing.T) {
	ctx := ctxT(t)
	p := newPool(t, pool.Workers(2))
	const n = pool.DefaultMaxMessage - 100
	if got, err := pool.Apply(ctx, p, echo, strings.Repeat("a", n)); err != nil || got != n {
		t.Fatalf("echo of %d bytes = %d, %v", n, got, err)
	}
	ss, err := pool.Map(ctx, p, huge, []int{n, 1, n / 2, n}, pool.ChunkSize(1))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{n, 1, n / 2, n} {
		if ss[i] != strings.Repeat("x", want) {
			t.Fatalf("result %d has %d bytes, want %d", i, len(ss[i]), want)
		}
	}
}
