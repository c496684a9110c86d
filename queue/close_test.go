//go:build linux

package queue_test

import (
	"context"
	"errors"
	"testing"

	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/queue"
	"github.com/shmkit/shmkit/shm"
)

// closeRace, in a worker, races blocking and non-blocking queue
// and pipe operations against Close of the segment.
var closeRace = process.Register("queue_test.closeRace", func(ctx context.Context, rounds int) (struct{}, error) {
	return struct{}{}, shmtest.RaceClose(rounds, func(seg *shm.Segment) ([]func() error, error) {
		q, err1 := queue.New[int64](seg, "q", queue.Capacity(16))
		b, err2 := queue.New[[]byte](seg, "b", queue.Capacity(8), queue.MaxMessage(256))
		p0, err3 := queue.NewPipe[string](seg, "p", queue.Capacity(4))
		p1, err4 := queue.OpenPipe[string](seg, "p")
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			return nil, err
		}
		try := func(err error) error {
			if errors.Is(err, queue.ErrFull) || errors.Is(err, queue.ErrEmpty) {
				return nil
			}
			return err
		}
		return []func() error{
			func() error { return q.Put(ctx, 1) },
			func() error { _, err := q.Get(ctx); return err },
			func() error { return try(q.TryPut(2)) },
			func() error { _, err := q.TryGet(); return try(err) },
			func() error { return b.Put(ctx, []byte("message")) },
			func() error { _, err := b.GetAppend(ctx, nil); return err },
			func() error { q.Len(); return nil },
			func() error { return p0.Send(ctx, "to 1") },
			func() error { return p1.Send(ctx, "to 0") },
			func() error { _, err := p1.Recv(ctx); return err },
			func() error { _, err := p0.Poll(ctx); return err },
			func() error { _, err := p0.Recv(ctx); return err },
		}, nil
	})
})

// TestCloseRace checks that queue operations racing Close complete or
// fail with shm.ErrClosed and never fault, in a worker so that a fault
// fails the test.
func TestCloseRace(t *testing.T) {
	if _, err := closeRace.Run(t.Context(), 50); err != nil {
		t.Fatal(err)
	}
}
