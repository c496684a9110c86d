package bench

import (
	"context"
	"fmt"

	"github.com/shmkit/shmkit/queue"
	"github.com/shmkit/shmkit/shm"
)

// Queue workloads are pipelines (see Workload.Consumer): with P
// processes, P producers each put n int64 messages and P consumers each
// get n, through one queue of queueCapacity messages; an operation is one
// message, put and got. Producers and consumers are separate processes,
// so every message crosses from one process to another, as in a pool's
// task queue. The baseline is a buffered Go channel of the same capacity
// between goroutines of one process.
var (
	QueuePutGet = Register(&Workload{
		Name:  "queue.putget",
		Setup: setupQueue,
		Prepare: func(seg *shm.Segment) (func(int) error, func(), error) {
			return queueLoop(seg, func(ctx context.Context, q *queue.Queue[int64], n int) (int, error) {
				for i := range n {
					if err := q.Put(ctx, int64(i)); err != nil {
						return i, err
					}
				}
				return n, nil
			})
		},
		Consumer: func(seg *shm.Segment) (func(int) error, func(), error) {
			return queueLoop(seg, func(ctx context.Context, q *queue.Queue[int64], n int) (int, error) {
				for i := range n {
					if _, err := q.Get(ctx); err != nil {
						return i, err
					}
				}
				return n, nil
			})
		},
	})

	// QueueBatch moves the same messages with PutMany and GetMany, up to
	// queueBatch at a time: one wake-up of the other side per batch.
	QueueBatch = Register(&Workload{
		Name:  "queue.batch",
		Setup: setupQueue,
		Prepare: func(seg *shm.Segment) (func(int) error, func(), error) {
			buf := make([]int64, queueBatch)
			return queueLoop(seg, func(ctx context.Context, q *queue.Queue[int64], n int) (int, error) {
				done := 0
				for done < n {
					k, err := q.PutMany(ctx, buf[:min(len(buf), n-done)])
					done += k
					if err != nil {
						return done, err
					}
				}
				return done, nil
			})
		},
		Consumer: func(seg *shm.Segment) (func(int) error, func(), error) {
			buf := make([]int64, queueBatch)
			return queueLoop(seg, func(ctx context.Context, q *queue.Queue[int64], n int) (int, error) {
				done := 0
				for done < n {
					// At most what is still due: each consumer takes
					// exactly n, or another would wait for ever.
					k, err := q.GetMany(ctx, buf[:min(len(buf), n-done)])
					done += k
					if err != nil {
						return done, err
					}
				}
				return done, nil
			})
		},
	})

	// GoChan is a buffered channel of int64 between P sending and P
	// receiving goroutines of one process.
	GoChan = Register(&Workload{
		Name:       "go.chan",
		Goroutines: true,
		Setup:      func(*shm.Segment) error { return nil },
		Prepare: func(*shm.Segment) (func(int) error, func(), error) {
			return func(n int) error {
				for i := range n {
					goChan <- int64(i)
				}
				return nil
			}, func() {}, nil
		},
		Consumer: func(*shm.Segment) (func(int) error, func(), error) {
			return func(n int) error {
				for range n {
					<-goChan
				}
				return nil
			}, func() {}, nil
		},
	})
)

const (
	queueName     = "bench.queue"
	queueCapacity = queue.DefaultCapacity // messages
	queueBatch    = 64                    // messages per PutMany and GetMany
)

// goChan is what GoChan's goroutines share. Every run takes off it as many
// messages as it puts, so it is empty between runs.
var goChan = make(chan int64, queueCapacity)

func setupQueue(seg *shm.Segment) error {
	_, err := queue.New[int64](seg, queueName, queue.Capacity(queueCapacity))
	return err
}

// queueLoop attaches to the queue and returns a loop that runs body, which
// moves n messages and says how many it moved. A body that fails closes
// the queue, so that its peers fail too rather than wait for ever for
// messages or room that will not come.
func queueLoop(seg *shm.Segment, body func(context.Context, *queue.Queue[int64], int) (int, error)) (func(int) error, func(), error) {
	q, err := queue.Open[int64](seg, queueName)
	if err != nil {
		return nil, nil, fmt.Errorf("bench: %w", err)
	}
	return func(n int) error {
		done, err := body(context.Background(), q, n)
		if err != nil {
			q.Close()
			return fmt.Errorf("bench: %s after %d of %d messages: %w", q.Name(), done, n, err)
		}
		return nil
	}, func() {}, nil
}
