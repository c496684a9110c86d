package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/shmkit/shmkit/bench"
)

// benchWorkloads are the rows of the table, in order.
var benchWorkloads = []struct{ name, what string }{
	{"go.add", "sync/atomic add, goroutines of one process"},
	{"raw.add", "atomic add on a raw shared word, processes"},
	{"value.add", "value.Cell[int64].Add, processes"},
	{"array.add", "array.Array[int64].Add over 64 elements, processes"},
}

// runBench runs the contention benchmark: each workload with 1, 2, 4 and
// 8 processes (goroutines for the Go baseline), and prints a table.
func runBench(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	procsFlag := fs.String("procs", "1,2,4,8", "comma-separated process counts")
	ops := fs.Int("ops", 2_000_000, "operations per process in each run")
	runs := fs.Int("runs", 3, "runs per cell; the median is shown")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var procs []int
	for _, f := range strings.Split(*procsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 64 {
			return fmt.Errorf("bench: bad process count %q", f)
		}
		procs = append(procs, n)
	}
	if *ops < 1 || *runs < 1 {
		return fmt.Errorf("bench: -ops and -runs must be positive")
	}

	fmt.Fprintf(out, "shmkit bench: %d ops per process, median of %d runs; total throughput in M ops/s\n\n", *ops, *runs)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "workload\t")
	for _, p := range procs {
		fmt.Fprintf(tw, "%d proc\t", p)
	}
	fmt.Fprintln(tw)
	for _, w := range benchWorkloads {
		fmt.Fprintf(tw, "%s\t", w.name)
		for _, p := range procs {
			var mops []float64
			for range *runs {
				r, err := bench.Run(ctx, w.name, p, *ops)
				if err != nil {
					return err
				}
				mops = append(mops, r.OpsPerSec()/1e6)
			}
			fmt.Fprintf(tw, "%.1f\t", bench.Median(mops))
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out)
	for _, w := range benchWorkloads {
		fmt.Fprintf(out, "%-10s %s\n", w.name, w.what)
	}
	return nil
}
