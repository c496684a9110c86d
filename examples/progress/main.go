// Progress shows a progress bar for a pool's work, drawn from the pool's
// counts (pool.Pool.Stats) while a Map runs: what Python programs do with
// tqdm around imap.
//
//	from multiprocessing import Pool
//	from tqdm import tqdm
//
//	with Pool() as p:
//	    counts = list(tqdm(p.imap(count_primes, ranges), total=len(ranges)))
//
// Here the bar is fed by a goroutine that samples Stats ten times a
// second, so the loop that consumes the results does not have to know
// about it, and any call (Map, IMap, Submit) is measured the same way:
// Stats counts the pool's tasks as they are submitted, succeed and fail.
// The bar is drawn on standard error only when it is a terminal; the
// program's result goes to standard output either way.
//
// Run it from the repository root with:
//
//	go run ./examples/progress
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/shmkit/shmkit/pool"
	"github.com/shmkit/shmkit/process"
)

const (
	below  = 400_000
	ranges = 400
)

type span struct{ Lo, Hi int }

// countPrimes runs in the workers: the primes in [Lo, Hi), by trial
// division.
var countPrimes = process.Register("progress.countPrimes", func(ctx context.Context, s span) (int, error) {
	n := 0
	for x := max(s.Lo, 2); x < s.Hi; x++ {
		prime := true
		for d := 2; d*d <= x; d++ {
			if x%d == 0 {
				prime = false
				break
			}
		}
		if prime {
			n++
		}
	}
	return n, nil
})

func main() {
	process.Main() // must come first: in a worker, it serves the pool and exits

	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "progress:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx := context.Background()
	p, err := pool.New(ctx)
	if err != nil {
		return err
	}
	defer p.Terminate()
	spans := make([]span, ranges)
	for i := range spans {
		spans[i] = span{i * below / ranges, (i + 1) * below / ranges}
	}

	done := make(chan struct{})
	drawn := make(chan struct{})
	go func() {
		defer close(drawn)
		if !term.IsTerminal(int(os.Stderr.Fd())) {
			return
		}
		bar := progressbar.NewOptions(ranges, progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetDescription("counting primes"), progressbar.OptionShowCount())
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			st := p.Stats()
			bar.Set64(st.Succeeded + st.Failed)
			select {
			case <-done:
				bar.Finish()
				fmt.Fprintln(os.Stderr)
				return
			case <-tick.C:
			}
		}
	}()
	counts, err := pool.Map(ctx, p, countPrimes, spans, pool.ChunkSize(1))
	close(done)
	<-drawn
	if err != nil {
		return err
	}
	total := 0
	for _, c := range counts {
		total += c
	}
	st := p.Stats()
	fmt.Printf("%d tasks: %d succeeded, %d failed\n", st.Submitted, st.Succeeded, st.Failed)
	fmt.Printf("%d primes below %d\n", total, below)
	return p.Join(ctx)
}
