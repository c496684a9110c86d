//go:build linux

package queue_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"

	"github.com/shmkit/shmkit/queue"
	"github.com/shmkit/shmkit/shm"
)

// A pipe has two ends: NewPipe makes the pipe and returns end 0, and
// OpenPipe opens end 1, usually in a worker process that was handed the
// segment (process.Segments); here one program holds both ends.
func ExampleNewPipe() {
	ctx := context.Background()
	seg, err := shm.CreateAnonymous(1 << 20)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()

	parent, err := queue.NewPipe[[]any](seg, "conn")
	if err != nil {
		log.Fatal(err)
	}
	defer parent.Close()

	// In the worker:
	child, err := queue.OpenPipe[[]any](seg, "conn")
	if err != nil {
		log.Fatal(err)
	}
	if err := child.Send(ctx, []any{42, nil, "hello"}); err != nil {
		log.Fatal(err)
	}
	child.Close() // the parent receives what was sent, then io.EOF

	v, err := parent.Recv(ctx)
	fmt.Println(v, err)
	_, err = parent.Recv(ctx)
	fmt.Println(err == io.EOF)
	// Had the worker died instead of closing its end, Recv would have
	// returned an error matching both io.EOF and queue.ErrPeerDied.
	fmt.Println(errors.Is(err, queue.ErrPeerDied))
	// Output:
	// [42 <nil> hello] <nil>
	// true
	// false
}
