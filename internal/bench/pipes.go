package bench

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/shmkit/shmkit/queue"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/value"
)

// PipeSend is a pipeline of pipes: with P processes, P pairs, each a
// producer sending n int64 messages through its own one-way pipe of
// pipeCapacity messages to its consumer. Each consumer creates a pipe
// (holding its receiving end) under the next free number, and each
// producer opens the sending end of the next number, so that the pairs
// form whatever order the processes start in.
var PipeSend = Register(&Workload{
	Name: "pipe.send",
	Setup: func(seg *shm.Segment) error {
		_, err1 := value.New[int64](seg, pipeNextRecv)
		_, err2 := value.New[int64](seg, pipeNextSend)
		return errors.Join(err1, err2)
	},
	Prepare: func(seg *shm.Segment) (func(int) error, func(), error) {
		k, err := nextNumber(seg, pipeNextSend)
		if err != nil {
			return nil, nil, err
		}
		// The pipe is opened by the first loop, once every consumer
		// has been prepared and so has created its pipe (in this
		// process too, when the pairs are goroutines).
		var p *queue.Pipe[int64]
		return func(n int) error {
				if p == nil {
					if p, err = openSendEnd(seg, pipeName(k)); err != nil {
						return err
					}
				}
				for i := range n {
					if err := p.Send(context.Background(), int64(i)); err != nil {
						p.Close() // the consumer gets io.EOF instead of waiting
						return fmt.Errorf("bench: %s after %d of %d messages: %w", p.Name(), i, n, err)
					}
				}
				return nil
			}, func() {
				if p != nil {
					p.Close()
				}
			}, nil
	},
	Consumer: func(seg *shm.Segment) (func(int) error, func(), error) {
		k, err := nextNumber(seg, pipeNextRecv)
		if err != nil {
			return nil, nil, err
		}
		p, err := queue.NewPipe[int64](seg, pipeName(k), queue.OneWay(), queue.Capacity(pipeCapacity))
		if err != nil {
			return nil, nil, fmt.Errorf("bench: %w", err)
		}
		return func(n int) error {
			for i := range n {
				if _, err := p.Recv(context.Background()); err != nil {
					p.Close() // the producer's Send fails instead of waiting
					return fmt.Errorf("bench: %s after %d of %d messages: %w", p.Name(), i, n, err)
				}
			}
			return nil
		}, func() { p.Close() }, nil
	},
})

const (
	pipeNextRecv = "bench.pipe.recv" // the number of the next consumer's pipe
	pipeNextSend = "bench.pipe.send" // the number of the next producer's pipe
	pipeCapacity = 256               // messages
)

func pipeName(k int64) string { return fmt.Sprintf("bench.pipe.%d", k) }

// nextNumber takes the next number from the counter cell name.
func nextNumber(seg *shm.Segment, name string) (int64, error) {
	c, err := value.Open[int64](seg, name)
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	return c.Add(1) - 1, nil
}

// openSendEnd opens the sending end of the pipe name, waiting up to a
// minute for its consumer to create it (a consumer that failed to does
// not leave the producer waiting for ever).
func openSendEnd(seg *shm.Segment, name string) (*queue.Pipe[int64], error) {
	deadline := time.Now().Add(time.Minute)
	for {
		p, err := queue.OpenPipe[int64](seg, name)
		if !errors.Is(err, fs.ErrNotExist) || time.Now().After(deadline) {
			if err != nil {
				return nil, fmt.Errorf("bench: %w", err)
			}
			return p, nil
		}
		time.Sleep(100 * time.Microsecond)
	}
}
