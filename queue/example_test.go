//go:build linux

package queue_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"sync/atomic"

	"github.com/shmkit/shmkit/queue"
	"github.com/shmkit/shmkit/shm"
)

// A queue lives in a segment under a name: one process creates it with New,
// every other attaches with Open. Here one program plays both parts, the
// second through its own mapping of the segment, opened by name as another
// process (or another program) would open it.
func ExampleNew() {
	ctx := context.Background()
	name := fmt.Sprintf("shmkit-example-queue-%d", os.Getpid())
	seg, err := shm.Create(name, 1<<20)
	if err != nil {
		log.Fatal(err)
	}
	// A named segment stays in /dev/shm until it is removed, even after
	// every process using it has exited.
	defer shm.Remove(name)
	defer seg.Close()

	jobs, err := queue.New[string](seg, "jobs", queue.Capacity(16))
	if err != nil {
		log.Fatal(err)
	}
	for _, job := range []string{"wash", "dry", "fold"} {
		if err := jobs.Put(ctx, job); err != nil {
			log.Fatal(err)
		}
	}
	jobs.Close() // no more jobs: consumers get what is left, then io.EOF

	// In another process: open the segment and the queue by name, with
	// the same message type.
	other, err := shm.Open(name)
	if err != nil {
		log.Fatal(err)
	}
	defer other.Close()
	q, err := queue.Open[string](other, "jobs")
	if err != nil {
		log.Fatal(err)
	}
	first, err := q.Get(ctx)
	fmt.Println(first, err, q.Len())
	for job, err := range q.All(ctx) { // until the closed queue is drained
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(job)
	}
	_, err = q.Get(ctx)
	fmt.Println(err == io.EOF)
	// Output:
	// wash <nil> 2
	// dry
	// fold
	// true
}

// TryPut and TryGet never wait: they fail with ErrFull and ErrEmpty.
func ExampleQueue_TryPut() {
	seg, err := shm.CreateAnonymous(1 << 20) // no name: nothing to remove
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	q, err := queue.New[int64](seg, "q", queue.Capacity(2))
	if err != nil {
		log.Fatal(err)
	}
	for i := range int64(3) {
		err := q.TryPut(i)
		fmt.Println("put", i, err, errors.Is(err, queue.ErrFull))
	}
	for range 3 {
		v, err := q.TryGet()
		fmt.Println("got", v, err)
	}
	// Output:
	// put 0 <nil> false
	// put 1 <nil> false
	// put 2 queue: full true
	// got 0 <nil>
	// got 1 <nil>
	// got 0 queue: empty
}

// PutMany and GetMany move a batch with one wake-up of the other side,
// instead of one per message.
func ExampleQueue_PutMany() {
	ctx := context.Background()
	seg, err := shm.CreateAnonymous(1 << 20)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	q, err := queue.New[int64](seg, "numbers", queue.Capacity(64))
	if err != nil {
		log.Fatal(err)
	}
	n, err := q.PutMany(ctx, []int64{1, 2, 3, 4, 5})
	fmt.Println("put", n, err)
	q.Close()

	buf := make([]int64, 3)
	for {
		// GetMany waits for one message, then takes as many more as
		// are ready, up to len(buf).
		n, err := q.GetMany(ctx, buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("got", buf[:n])
	}
	// Output:
	// put 5 <nil>
	// got [1 2 3]
	// got [4 5]
}

// A JoinableQueue's consumers mark each task done, and Join waits until
// every task put has been got and marked done, as Python's
// JoinableQueue.join() does. The consumer here is a goroutine; in a real
// program it is usually another process, which attaches with OpenJoinable.
func ExampleJoinableQueue() {
	ctx := context.Background()
	seg, err := shm.CreateAnonymous(1 << 20)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	tasks, err := queue.NewJoinable[int](seg, "tasks")
	if err != nil {
		log.Fatal(err)
	}

	var sum atomic.Int64
	done := make(chan error)
	go func() {
		for n, err := range tasks.All(ctx) {
			if err != nil {
				done <- err
				return
			}
			sum.Add(int64(n)) // the work
			if err := tasks.TaskDone(); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()

	for n := 1; n <= 100; n++ {
		if err := tasks.Put(ctx, n); err != nil {
			log.Fatal(err)
		}
	}
	if err := tasks.Join(ctx); err != nil { // a *LostError if a consumer died
		log.Fatal(err)
	}
	fmt.Println("all done, sum", sum.Load())

	tasks.Close() // lets the consumer's All end
	fmt.Println(<-done, tasks.TaskDone())
	// Output:
	// all done, sum 5050
	// <nil> queue "tasks": queue: TaskDone called more times than Get
}
