package lock_test

import (
	"context"
	"sync"
	"testing"

	"github.com/shmkit/shmkit/internal/benchtest"
	"github.com/shmkit/shmkit/internal/lock"
)

// BenchmarkUncontended compares an uncontended lock + unlock of the robust
// lock word with sync.Mutex's.
func BenchmarkUncontended(b *testing.B) {
	m, err := lock.New(new(uint64), nil)
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	ctx := context.Background()
	benchtest.Ratio(b,
		func(n int) {
			for range n {
				mu.Lock()
				mu.Unlock()
			}
		},
		func(n int) {
			for range n {
				m.Lock(ctx)
				m.Unlock()
			}
		})
}
