//go:build linux

package bench

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/pool"
	"github.com/shmkit/shmkit/queue"
	"github.com/shmkit/shmkit/shm"
)

func TestMain(m *testing.M) { shmtest.Main(m) }

// TestPipelines runs the queue workloads and their channel baseline in
// goroutines (0) and in 1 and 3 pairs of processes. A message lost or
// taken twice leaves a consumer waiting for ever, which the deadline
// turns into a failure.
func TestPipelines(t *testing.T) {
	runEach(t, []string{"queue.putget", "queue.batch", "pipe.send", "go.chan"}, []int{0, 1, 3}, 5000)
}

// runEach runs each workload with each number of processes, n operations
// each, within a minute, and checks that the results count them all.
func runEach(t *testing.T, workloads []string, procsList []int, n int) {
	t.Helper()
	for _, w := range workloads {
		for _, procs := range procsList {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			r, err := Run(ctx, w, procs, n)
			cancel()
			if err != nil {
				t.Fatalf("Run(%s, %d, %d): %v", w, procs, n, err)
			}
			if want := int64(max(procs, 1) * n); r.Ops != want || r.Elapsed <= 0 || r.Procs != max(procs, 1) {
				t.Errorf("Run(%s, %d, %d) = %+v, want %d ops in a positive time", w, procs, n, r, want)
			}
		}
	}
}

// errInjected is what the failing workloads' producers fail with.
var errInjected = errors.New("injected failure")

// Pipelines whose producers fail half-way: one closes the queue as the
// real workloads do (queueLoop), so that the consumers fail too; the
// other leaves it open, its consumers waiting for ever, as a producer that
// died would. Run must return the producer's error either way.
var (
	failClosing = Register(&Workload{
		Name:  "bench_test.fail-closing",
		Setup: setupQueue,
		Prepare: func(seg *shm.Segment) (func(int) error, func(), error) {
			return queueLoop(seg, func(ctx context.Context, q *queue.Queue[int64], n int) (int, error) {
				for i := range n / 2 {
					if err := q.Put(ctx, int64(i)); err != nil {
						return i, err
					}
				}
				return n / 2, errInjected
			})
		},
		Consumer: QueuePutGet.Consumer,
	})
	failSilent = Register(&Workload{
		Name:  "bench_test.fail-silent",
		Setup: setupQueue,
		Prepare: func(seg *shm.Segment) (func(int) error, func(), error) {
			return func(int) error { return errInjected }, func() {}, nil
		},
		Consumer: QueuePutGet.Consumer,
	})
)

func TestPipelineFailure(t *testing.T) {
	for _, tc := range []struct {
		w     *Workload
		procs []int
	}{
		{failClosing, []int{0, 2}}, // goroutines cannot be killed: only a closed queue ends them
		{failSilent, []int{2}},
	} {
		for _, procs := range tc.procs {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			_, err := Run(ctx, tc.w.Name, procs, 1000)
			cancel()
			if err == nil || !strings.Contains(err.Error(), errInjected.Error()) {
				t.Errorf("Run(%s, %d) = %v, want the producer's %q", tc.w.Name, procs, err, errInjected)
			}
		}
	}
}

func TestRunBadInput(t *testing.T) {
	for _, tc := range []struct {
		name     string
		procs, n int
	}{
		{"nonesuch", 1, 1},
		{"queue.putget", -1, 1},
		{"queue.putget", 1, -1},
	} {
		if _, err := Run(t.Context(), tc.name, tc.procs, tc.n); err == nil {
			t.Errorf("Run(%q, %d, %d) succeeded", tc.name, tc.procs, tc.n)
		}
	}
}

// TestPools runs the pool workloads with 1 and 2 workers (and 0, which
// counts as 1). Every result is checked by the workload itself; the
// pools' workers must be gone at the end, which TestMain checks.
func TestPools(t *testing.T) {
	runEach(t, []string{"pool.map", "pool.map1", "pool.submit"}, []int{0, 1, 2}, 3000)
}

// TestDriveFailure checks that a driven run fails with the error of
// whichever step failed, with a zero Result, and that stop runs exactly
// when Drive succeeded; then that a pool whose run fails is terminated
// (TestMain fails the binary if its workers outlive the test).
func TestDriveFailure(t *testing.T) {
	errStop := errors.New("stop failed")
	for _, tc := range []struct {
		name                   string
		driveErr, runErr, stop error
		want                   []error
		wantStops              int
	}{
		{name: "drive", driveErr: errInjected, want: []error{errInjected}},
		{name: "run", runErr: errInjected, want: []error{errInjected}, wantStops: 1},
		{name: "stop", stop: errStop, want: []error{errStop}, wantStops: 1},
		{name: "run and stop", runErr: errInjected, stop: errStop, want: []error{errInjected, errStop}, wantStops: 1},
	} {
		stops := 0
		w := &Workload{Name: "bench_test.drive", Drive: func(context.Context, int, int) (func() error, func() error, error) {
			if tc.driveErr != nil {
				return nil, nil, tc.driveErr
			}
			return func() error { return tc.runErr }, func() error { stops++; return tc.stop }, nil
		}}
		r, err := runDriven(t.Context(), w, 2, 100)
		for _, want := range tc.want {
			if !errors.Is(err, want) {
				t.Errorf("%s: runDriven = %+v, %v; want an error matching %v", tc.name, r, err, want)
			}
		}
		if r != (Result{}) {
			t.Errorf("%s: runDriven = %+v with its error, want a zero Result", tc.name, r)
		}
		if stops != tc.wantStops {
			t.Errorf("%s: stop called %d times, want %d", tc.name, stops, tc.wantStops)
		}
	}

	w := &Workload{Name: "bench_test.pool-fails", Drive: drivePool(func(context.Context, *pool.Pool, []int) error { return errInjected })}
	if r, err := runDriven(t.Context(), w, 2, 100); !errors.Is(err, errInjected) {
		t.Errorf("pool: runDriven = %+v, %v; want %v", r, err, errInjected)
	}
}
