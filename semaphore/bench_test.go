//go:build linux

package semaphore_test

import (
	"context"
	"sync"
	"testing"

	"github.com/shmkit/shmkit/internal/benchtest"
	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/semaphore"
)

// BenchmarkMutex compares Mutex with sync.Mutex uncontended, and with
// Drepper's three-state futex mutex when two processes contend on it (lock;
// counter++; unlock; total throughput).
func BenchmarkMutex(b *testing.B) {
	b.Run("uncontended", func(b *testing.B) {
		seg := shmtest.Segment(b, 1<<16)
		mu, err := semaphore.NewMutex(seg, "mu")
		if err != nil {
			b.Fatal(err)
		}
		benchtest.Ratio(b, syncMutex(), func(n int) {
			for range n {
				mu.Lock()
				mu.Unlock()
			}
		})
	})
	b.Run("2proc", func(b *testing.B) {
		benchtest.Processes(b, "drepper.lock", "mutex.lock", 2)
	})
}

// BenchmarkSemaphore compares an uncontended Acquire and Release with
// sync.Mutex's Lock and Unlock.
func BenchmarkSemaphore(b *testing.B) {
	seg := shmtest.Segment(b, 1<<16)
	s, err := semaphore.NewSemaphore(seg, "s", 1)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	benchtest.Ratio(b, syncMutex(), func(n int) {
		for range n {
			s.Acquire(ctx)
			s.Release()
		}
	})
}

// syncMutex returns the baseline loop: n uncontended sync.Mutex Lock and
// Unlock pairs.
func syncMutex() func(n int) {
	var mu sync.Mutex
	return func(n int) {
		for range n {
			mu.Lock()
			mu.Unlock()
		}
	}
}
