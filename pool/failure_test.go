//go:build linux

package pool_test

import (
	"context"
	"errors"
	"iter"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/internal/proc"
	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/pool"
	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/value"
)

// TestWorkerKilled: 50 trials of SIGKILL to a worker in the middle of its
// tasks: the task it ran, and no other, fails with its death; with
// Retries(1), none fails.
func TestWorkerKilled(t *testing.T) {
	trials := 50
	if testing.Short() {
		trials = 10
	}
	for _, retries := range []int{0, 1} {
		hit := 0
		for trial := range trials {
			hit += killTrial(t, trial, retries)
		}
		// A kill lands between two tasks (the worker waits a round trip
		// to the parent between them: microseconds of every 3 ms, but a
		// millisecond on a loaded machine under -race) less often than
		// on one.
		if retries == 0 && hit < trials/2 {
			t.Errorf("only %d of %d kills failed the task the worker ran", hit, trials)
		}
	}
}

// killTrial runs 24 tasks of 3 ms on 2 workers, kills one of them after a
// random delay, and returns how many tasks failed (0 or 1).
func killTrial(t *testing.T, trial, retries int) int {
	ctx := ctxT(t)
	p, err := pool.New(ctx, pool.Workers(2), pool.Retries(retries))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Terminate()
	first, err := pool.Apply(ctx, p, work, job{N: -1})
	if err != nil {
		t.Fatal(err)
	}
	var fs []*pool.Future[answer]
	for i := range 24 {
		fs = append(fs, pool.Submit(ctx, p, work, job{N: i, Sleep: 3 * time.Millisecond}))
	}
	time.Sleep(time.Duration(rand.IntN(15_000)) * time.Microsecond)
	syscall.Kill(first.Pid, syscall.SIGKILL)
	failedTasks := 0
	for i, f := range fs {
		a, err := f.Get(ctx)
		if err != nil {
			var wd *pool.WorkerDiedError
			if !errors.As(err, &wd) || wd.Pid != first.Pid || wd.Code != -9 {
				t.Fatalf("trial %d: task %d = %v, want the death of worker %d by SIGKILL", trial, i, err, first.Pid)
			}
			failedTasks++
			continue
		}
		if a.N != i {
			t.Fatalf("trial %d: task %d answered %d", trial, i, a.N)
		}
	}
	if failedTasks > 1 || (retries > 0 && failedTasks > 0) {
		t.Fatalf("trial %d: %d tasks failed with one worker killed (retries %d)", trial, failedTasks, retries)
	}
	if st := p.Stats(); st.Failed != int64(failedTasks) {
		t.Fatalf("trial %d: Stats = %+v with %d tasks failed", trial, st, failedTasks)
	}
	return failedTasks
}

// TestTimeout: a task overrunning its context's deadline fails with
// context.DeadlineExceeded soon after it; its worker is killed and
// replaced.
func TestTimeout(t *testing.T) {
	ctx := ctxT(t)
	p := newPool(t, pool.Workers(1))
	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := pool.Apply(tctx, p, work, job{Sleep: time.Minute})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Apply of an overrunning task = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the overrunning task ended after %v", d)
	}
	if a, err := pool.Apply(ctx, p, work, job{N: 5}); err != nil || a.N != 5 {
		t.Fatalf("Apply after the timeout = %v, %v", a, err)
	}
}

// TestCancel: cancelling a Map's context ends it promptly, with the
// context's error; the pool goes on.
func TestCancel(t *testing.T) {
	ctx := ctxT(t)
	p := newPool(t, pool.Workers(2))
	cctx, cancel := context.WithCancel(ctx)
	jobs := make([]job, 40)
	for i := range jobs {
		jobs[i] = job{N: i, Sleep: 50 * time.Millisecond}
	}
	time.AfterFunc(60*time.Millisecond, cancel)
	start := time.Now()
	_, err := pool.Map(cctx, p, work, jobs, pool.ChunkSize(1))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Map = %v, want Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("cancelled Map returned after %v", d)
	}
	f := pool.Submit(ctx, p, work, job{N: 1, Sleep: 200 * time.Millisecond})
	g := pool.Submit(ctx, p, work, job{N: 2, Sleep: 200 * time.Millisecond})
	h := pool.Submit(ctx, p, work, job{N: 3})
	_ = f
	_ = g
	// h waits behind the two: a worker may have been sent it ahead,
	// so Cancel may or may not win; either way it ends.
	h.Cancel()
	if _, err := h.Get(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled future = %v", err)
	}
	if a, err := pool.Apply(ctx, p, work, job{N: 4}); err != nil || a.N != 4 {
		t.Fatalf("Apply after cancellations = %v, %v", a, err)
	}
}

// TestCancelRace: contexts ending at every moment of a Map's life, as
// tasks are queued, sent, bundled and run, end the call promptly with the
// context's error, and every task is accounted for.
func TestCancelRace(t *testing.T) {
	ctx := ctxT(t)
	p := newPool(t, pool.Workers(2))
	jobs := make([]job, 200)
	for i := range jobs {
		jobs[i] = job{N: i, Sleep: time.Duration(i%3) * 100 * time.Microsecond}
	}
	for round := range 30 {
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(time.Duration(round)*time.Millisecond/2, cancel)
		start := time.Now()
		rs, err := pool.Map(cctx, p, work, jobs, pool.ChunkSize(1+round%3))
		switch {
		case err == nil:
			for i, r := range rs {
				if r.N != i {
					t.Fatalf("round %d: result %d is %d", round, i, r.N)
				}
			}
		case !errors.Is(err, context.Canceled):
			t.Fatalf("round %d: Map = %v, want Canceled or success", round, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("round %d: cancelled Map returned after %v", round, d)
		}
		cancel()
	}
	if a, err := pool.Apply(ctx, p, work, job{N: 7}); err != nil || a.N != 7 {
		t.Fatalf("Apply after the rounds = %v, %v", a, err)
	}
	if st := p.Stats(); st.Submitted != st.Succeeded+st.Failed {
		t.Fatalf("Stats after every call returned: %+v", st)
	}
}

// TestMaxTasksPerWorker: workers are replaced after 3 tasks each, and no
// task is lost.
func TestMaxTasksPerWorker(t *testing.T) {
	ctx := ctxT(t)
	p := newPool(t, pool.Workers(2), pool.MaxTasksPerWorker(3))
	jobs := make([]job, 30)
	for i := range jobs {
		jobs[i] = job{N: i}
	}
	as, err := pool.Map(ctx, p, work, jobs, pool.ChunkSize(1))
	if err != nil {
		t.Fatal(err)
	}
	pids := map[int]int{}
	for i, a := range as {
		if a.N != i {
			t.Fatalf("task %d answered %d", i, a.N)
		}
		pids[a.Pid]++
	}
	for pid, n := range pids {
		if n > 3 {
			t.Fatalf("worker %d ran %d tasks, more than 3", pid, n)
		}
	}
	if len(pids) < 10 {
		t.Fatalf("30 tasks ran in %d workers, want at least 10", len(pids))
	}
}

// TestTerminate: Terminate with tasks running returns promptly and fails
// them with ErrClosed.
func TestTerminate(t *testing.T) {
	ctx := ctxT(t)
	p, err := pool.New(ctx, pool.Workers(2))
	if err != nil {
		t.Fatal(err)
	}
	var fs []*pool.Future[answer]
	for i := range 8 {
		fs = append(fs, pool.Submit(ctx, p, work, job{N: i, Sleep: time.Minute}))
	}
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	if err := p.Terminate(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Terminate took %v", d)
	}
	for i, f := range fs {
		if _, err := f.Get(ctx); !errors.Is(err, pool.ErrClosed) {
			t.Fatalf("task %d after Terminate = %v, want ErrClosed", i, err)
		}
	}
	if err := p.Terminate(); err != nil {
		t.Fatalf("second Terminate = %v", err)
	}
	if _, err := pool.Apply(ctx, p, square, 1); !errors.Is(err, pool.ErrClosed) {
		t.Fatalf("Apply after Terminate = %v", err)
	}
}

// TestIMapEndless: IMap over an endless input reads only a bounded number
// of arguments ahead of the loop.
func TestIMapEndless(t *testing.T) {
	ctx := ctxT(t)
	p := newPool(t, pool.Workers(2))
	var pulled atomic.Int64 // IMap reads its input on a goroutine of its own
	endless := iter.Seq[int](func(yield func(int) bool) {
		for i := 0; ; i++ {
			pulled.Add(1)
			if !yield(i) {
				return
			}
		}
	})
	got, most := 0, 0
	for v, err := range pool.IMap(ctx, p, square, endless, pool.ChunkSize(10)) {
		if err != nil {
			t.Fatal(err)
		}
		if v != got*got {
			t.Fatalf("result %d is %d", got, v)
		}
		got++
		most = max(most, int(pulled.Load())-got)
		if got == 5000 {
			break
		}
	}
	// 32 per worker sent, one more: 65 chunks of 10, plus the chunk
	// being yielded and the one being read.
	if most > 670 {
		t.Fatalf("IMap read up to %d arguments ahead of the loop", most)
	}
}

// huge returns a string of n bytes.
var huge = process.Register("pool_test.huge", func(ctx context.Context, n int) (string, error) {
	return strings.Repeat("x", n), nil
})

var echo = process.Register("pool_test.echo", func(ctx context.Context, s string) (int, error) {
	return len(s), nil
})

var chanArg = process.Register("pool_test.chan", func(ctx context.Context, c chan int) (int, error) {
	return 0, nil
})

func TestBadInput(t *testing.T) {
	ctx := ctxT(t)
	for _, opts := range [][]pool.Option{
		{pool.Workers(0)}, {pool.Workers(-1)}, {pool.MaxMessage(10)}, {pool.MaxTasksPerWorker(-1)},
		{pool.InFlight(-1)}, {pool.Retries(-1)},
	} {
		if p, err := pool.New(ctx, opts...); err == nil {
			p.Terminate()
			t.Errorf("New with bad options succeeded")
		}
	}
	p := newPool(t, pool.Workers(1), pool.MaxMessage(4<<10))
	if _, err := pool.Apply(ctx, p, echo, strings.Repeat("y", 5<<10)); !errors.Is(err, pool.ErrTooLarge) {
		t.Fatalf("Apply with a 5 KiB argument = %v, want ErrTooLarge", err)
	}
	// A Map whose chunks are too large is split; its results too.
	args := make([]string, 8)
	for i := range args {
		args[i] = strings.Repeat("z", 1<<10)
	}
	if ns, err := pool.Map(ctx, p, echo, args); err != nil || len(ns) != 8 || ns[7] != 1<<10 {
		t.Fatalf("Map of 8 KiB in 4 KiB messages = %v, %v", ns, err)
	}
	if ss, err := pool.Map(ctx, p, huge, []int{3 << 10, 3 << 10, 3 << 10}); err != nil || len(ss) != 3 || len(ss[2]) != 3<<10 {
		t.Fatalf("Map of 9 KiB of results in 4 KiB messages: %v", err)
	}
	var te *pool.TaskError
	if _, err := pool.Apply(ctx, p, huge, 5<<10); !errors.As(err, &te) || !strings.Contains(te.Err, "encode result") {
		t.Fatalf("Apply with a 5 KiB result = %v, want a TaskError", err)
	}
	if _, err := pool.Apply(ctx, p, chanArg, make(chan int)); err == nil {
		t.Fatal("Apply with a channel argument succeeded")
	}
	if n, err := pool.Apply(ctx, p, echo, "still working"); err != nil || n != 13 {
		t.Fatalf("Apply after bad input = %d, %v", n, err)
	}
}

// poolParent makes a pool in a worker of the test, records its workers'
// pids in the segment, and waits to be killed.
var poolParent = process.Register("pool_test.parent", func(ctx context.Context, seg string) (struct{}, error) {
	s, err := shm.Open(seg)
	if err != nil {
		return struct{}{}, err
	}
	defer s.Close()
	pids, err := array.Open[int64](s, "pids")
	if err != nil {
		return struct{}{}, err
	}
	ready, err := value.Open[bool](s, "ready")
	if err != nil {
		return struct{}{}, err
	}
	p, err := pool.New(ctx, pool.Workers(2))
	if err != nil {
		return struct{}{}, err
	}
	defer p.Terminate()
	seen := map[int]bool{}
	for len(seen) < 2 {
		fs := []*pool.Future[answer]{pool.Submit(ctx, p, work, job{Sleep: 5 * time.Millisecond}), pool.Submit(ctx, p, work, job{Sleep: 5 * time.Millisecond})}
		for _, f := range fs {
			a, err := f.Get(ctx)
			if err != nil {
				return struct{}{}, err
			}
			seen[a.Pid] = true
		}
	}
	i := 0
	for pid := range seen {
		pids.Store(i, int64(pid))
		i++
	}
	ready.Store(true)
	<-ctx.Done()
	return struct{}{}, nil
})

// TestParentKilled: a parent killed with SIGKILL leaves no worker behind.
func TestParentKilled(t *testing.T) {
	seg := shmtest.Segment(t, 1<<16)
	pids, err := array.New[int64](seg, "pids", 2)
	if err != nil {
		t.Fatal(err)
	}
	ready, err := value.New[bool](seg, "ready")
	if err != nil {
		t.Fatal(err)
	}
	parent, err := poolParent.Start(seg.Name())
	if err != nil {
		t.Fatal(err)
	}
	shmtest.WaitUntil(t, "the pool's workers", ready.Load, parent)
	parent.Kill()
	parent.Join(context.Background())
	for i := range 2 {
		pid := int(pids.Load(i))
		shmtest.WaitUntil(t, "the orphaned worker to die", func() bool {
			_, err := proc.Lookup(pid)
			return err != nil
		})
	}
}

// TestSteal: tasks sent to a worker behind a task that turns out long are
// taken back and run by the other worker, exactly once each.
func TestSteal(t *testing.T) {
	ctx := ctxT(t)
	p := newPool(t, pool.Workers(2))
	for range 3 {
		// Quick tasks: the workers are sent bundles.
		if _, err := pool.Map(ctx, p, work, make([]job, 200), pool.ChunkSize(1)); err != nil {
			t.Fatal(err)
		}
		jobs := make([]job, 41)
		for i := range jobs {
			jobs[i] = job{N: i, Sleep: 2 * time.Millisecond}
		}
		jobs[0].Sleep = 400 * time.Millisecond
		as, err := pool.Map(ctx, p, work, jobs, pool.ChunkSize(1))
		if err != nil {
			t.Fatal(err)
		}
		var behind []int
		for i, a := range as {
			if a.N != i {
				t.Fatalf("result %d is job %d", i, a.N)
			}
			if i > 0 && a.Pid == as[0].Pid && a.Start >= as[0].Start {
				behind = append(behind, i)
			}
		}
		if len(behind) > 0 {
			t.Fatalf("short jobs %v of 40 waited for the long one on its worker", behind)
		}
		if st := p.Stats(); st.Submitted != st.Succeeded || st.Workers != 2 {
			t.Fatalf("Stats = %+v", st)
		}
	}
}
