package shmtest

import (
	"context"
	"testing"

	"github.com/shmkit/shmkit/process"
)

// spin keeps one CPU busy until it is killed.
var spin = process.Register("shmtest/spin", func(ctx context.Context, _ struct{}) (struct{}, error) {
	var x uint64
	for ctx.Err() == nil {
		for i := range 1 << 20 {
			x += uint64(i) ^ x>>3
		}
	}
	return struct{}{}, nil
})

// Load starts n worker processes that each keep a CPU busy, at the
// default scheduling priority, until the test or benchmark ends: the
// machine is then as busy as one running other work. It returns the
// workers' pids.
func Load(tb testing.TB, n int) []int {
	tb.Helper()
	pids := make([]int, n)
	for i := range n {
		p, err := spin.Start(struct{}{})
		if err != nil {
			tb.Fatalf("starting a spinning worker: %v", err)
		}
		tb.Cleanup(func() {
			p.Kill()
			p.Join(context.Background())
		})
		pids[i] = p.Pid()
	}
	return pids
}
