//go:build linux

package queue_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"sync"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/queue"
	"github.com/shmkit/shmkit/shm"
)

func TestMain(m *testing.M) { shmtest.Main(m) }

type point struct {
	Name    string
	X, Y, Z int
}

func TestPutGetInOrder(t *testing.T) {
	ctx := context.Background()
	seg := shmtest.Segment(t, 1<<20)
	q, err := queue.New[int64](seg, "q", queue.Capacity(8))
	if err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		for i := range int64(8) {
			if err := q.Put(ctx, i+int64(round)*8); err != nil {
				t.Fatal(err)
			}
		}
		if err := q.TryPut(99); !errors.Is(err, queue.ErrFull) {
			t.Fatalf("TryPut on a full queue = %v, want ErrFull", err)
		}
		if q.Len() != 8 {
			t.Fatalf("Len = %d, want 8", q.Len())
		}
		for i := range int64(8) {
			v, err := q.Get(ctx)
			if err != nil || v != i+int64(round)*8 {
				t.Fatalf("Get = %d, %v; want %d", v, err, i+int64(round)*8)
			}
		}
		if _, err := q.TryGet(); !errors.Is(err, queue.ErrEmpty) {
			t.Fatalf("TryGet on an empty queue = %v, want ErrEmpty", err)
		}
	}
}

func TestTypes(t *testing.T) {
	ctx := context.Background()
	seg := shmtest.Segment(t, 1<<22)
	b, err := queue.New[[]byte](seg, "bytes", queue.MaxMessage(16))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, make([]byte, 17)); !errors.Is(err, queue.ErrTooLarge) {
		t.Fatalf("Put of 17 bytes = %v, want ErrTooLarge", err)
	}
	if got, err := b.Get(ctx); err != nil || string(got) != "hello" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	p, err := queue.New[point](seg, "points")
	if err != nil {
		t.Fatal(err)
	}
	want := point{"a", 1, 2, 3}
	if err := p.Put(ctx, want); err != nil {
		t.Fatal(err)
	}
	p2, err := queue.Open[point](seg, "points")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p2.Get(ctx); err != nil || got != want {
		t.Fatalf("Get = %v, %v; want %v", got, err, want)
	}
	if _, err := queue.Open[string](seg, "points"); !errors.Is(err, shm.ErrTypeMismatch) {
		t.Fatalf("Open as string = %v, want ErrTypeMismatch", err)
	}
	if _, err := queue.Open[int64](seg, "nothing"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open of a missing queue = %v, want ErrNotExist", err)
	}
	if _, err := queue.New[int64](seg, "points"); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("New of a taken name = %v, want ErrExist", err)
	}
	if _, err := queue.OpenJoinable[point](seg, "points"); !errors.Is(err, shm.ErrTypeMismatch) {
		t.Fatalf("OpenJoinable of a plain queue = %v, want ErrTypeMismatch", err)
	}
}

func TestCloseDrainsThenEOF(t *testing.T) {
	ctx := context.Background()
	seg := shmtest.Segment(t, 1<<20)
	q, err := queue.New[int](seg, "q")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		q.Put(ctx, i)
	}
	q.Close()
	q.Close()
	if err := q.Put(ctx, 5); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("Put after Close = %v, want ErrClosed", err)
	}
	var got []int
	for v, err := range q.All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if len(got) != 5 {
		t.Fatalf("got %v", got)
	}
	if _, err := q.Get(ctx); err != io.EOF {
		t.Fatalf("Get after drain = %v, want io.EOF", err)
	}
}

func TestGetWaitsAndCancels(t *testing.T) {
	seg := shmtest.Segment(t, 1<<20)
	q, err := queue.New[int](seg, "q")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := q.Get(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get = %v, want DeadlineExceeded", err)
	}
	done := make(chan int)
	go func() {
		v, _ := q.Get(context.Background())
		done <- v
	}()
	time.Sleep(5 * time.Millisecond)
	q.Put(context.Background(), 7)
	if v := <-done; v != 7 {
		t.Fatalf("Get = %d", v)
	}
}

func TestGoroutinesExactlyOnce(t *testing.T) {
	ctx := context.Background()
	seg := shmtest.Segment(t, 1<<20)
	q, err := queue.New[[2]int64](seg, "q", queue.Capacity(64))
	if err != nil {
		t.Fatal(err)
	}
	const producers, consumers, n = 4, 4, 20000
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range int64(n) {
				if err := q.Put(ctx, [2]int64{int64(p), i}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	results := make([][][2]int64, consumers)
	var cw sync.WaitGroup
	for c := range consumers {
		cw.Go(func() {
			for v, err := range q.All(ctx) {
				if err != nil {
					t.Error(err)
					return
				}
				results[c] = append(results[c], v)
			}
		})
	}
	wg.Wait()
	q.Close()
	cw.Wait()
	seen := make([][]bool, producers)
	for p := range seen {
		seen[p] = make([]bool, n)
	}
	for _, r := range results {
		last := []int64{-1, -1, -1, -1}
		for _, v := range r {
			if seen[v[0]][v[1]] {
				t.Fatalf("message %v twice", v)
			}
			seen[v[0]][v[1]] = true
			if v[1] <= last[v[0]] {
				t.Fatalf("message %v after %d from the same producer", v, last[v[0]])
			}
			last[v[0]] = v[1]
		}
	}
	for p := range seen {
		for i, ok := range seen[p] {
			if !ok {
				t.Fatalf("message %d of producer %d lost", i, p)
			}
		}
	}
}
