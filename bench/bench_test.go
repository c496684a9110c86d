//go:build linux

package bench

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/queue"
	"github.com/shmkit/shmkit/shm"
)

func TestMain(m *testing.M) { shmtest.Main(m) }

// TestPipelines runs the queue workloads and their channel baseline in
// goroutines (0) and in 1 and 3 pairs of processes. A message lost or
// taken twice leaves a consumer waiting for ever, which the deadline
// turns into a failure.
func TestPipelines(t *testing.T) {
	for _, w := range []string{"queue.putget", "queue.batch", "pipe.send", "go.chan"} {
		for _, procs := range []int{0, 1, 3} {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			const n = 5000
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
