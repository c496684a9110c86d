package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/shmkit/shmkit/bench"
)

// benchWorkloads are the rows of the table and the lines of the chart, in
// order.
var benchWorkloads = []struct{ name, what string }{
	{"go.add", "sync/atomic add; goroutines of one process"},
	{"value.add", "value.Cell[int64].Add; processes"},
	{"raw.add", "atomic add on a raw shared word; processes (the hardware)"},
	{"go.mutex", "sync.Mutex: lock, n++, unlock; goroutines of one process"},
	{"mutex.lock", "semaphore.Mutex: lock, n++, unlock; processes"},
	{"drepper.lock", "three-state futex mutex (Drepper): lock, n++, unlock; processes"},
	{"sema.acquire", "semaphore.Semaphore(1): acquire, n++, release; processes"},
	{"flock.lock", "flock(2) on the segment file: lock, n++, unlock; processes"},
	{"go.chan", "buffered chan int64, capacity 1024: send, receive; goroutines of one process"},
	{"queue.putget", "queue.Queue[int64], capacity 1024: Put, Get; processes"},
	{"queue.batch", "queue.Queue[int64], capacity 1024: PutMany, GetMany of up to 64; processes"},
	{"pipe.send", "queue.Pipe[int64], one way, capacity 256: Send, Recv; a pipe per pair of processes"},
	{"pool.map", "pool.Map squaring ints, default chunks (len/(4·P)); this process drives P workers"},
	{"pool.map1", "pool.Map squaring ints, ChunkSize(1): a task per item; this process drives P workers"},
	{"pool.submit", "pool.Submit of an int to square, then Get of each; this process drives P workers"},
}

// benchResult is one cell of the table.
type benchResult struct {
	Workload string  `json:"workload"`
	Procs    int     `json:"procs"`
	MOpsPerS float64 `json:"mops_per_s"` // median total throughput, millions of operations per second
	NsPerOp  float64 `json:"ns_per_op"`  // wall time per operation, all processes together
}

// runBench runs the contention benchmark: every workload with each number
// of processes (goroutines for the in-process baselines), prints a table of
// total throughput, and draws it as a chart.
func runBench(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	procsFlag := fs.String("procs", "1,2,3,4,5,6,7,8", "comma-separated numbers of processes")
	only := fs.String("workloads", "", "comma-separated workloads to run (default: all)")
	cell := fs.Duration("time", 150*time.Millisecond, "target duration of each run")
	runs := fs.Int("runs", 3, "runs per cell; the median is reported")
	chart := fs.String("chart", "shmkit-bench.svg", "write a chart to this file (.svg or .png); empty for none")
	asJSON := fs.Bool("json", false, "print the results as JSON instead of a table")
	quiet := fs.Bool("q", false, "do not show progress")
	fs.SetOutput(out)
	if err := fs.Parse(args); err != nil {
		return err
	}
	procs, err := parseCounts(*procsFlag)
	if err != nil {
		return err
	}
	workloads, err := selectWorkloads(*only)
	if err != nil {
		return err
	}
	if *runs < 1 || *cell <= 0 {
		return fmt.Errorf("bench: -runs and -time must be positive")
	}

	var bar *progressbar.ProgressBar
	if !*quiet {
		bar = progressbar.NewOptions(len(workloads)*len(procs)*(*runs)+len(workloads),
			progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetDescription("shmkit bench"),
			progressbar.OptionShowCount(),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionSetPredictTime(true))
	}
	step := func(desc string) {
		if bar != nil {
			bar.Describe(desc)
			bar.Add(1)
		}
	}

	var results []benchResult
	for _, w := range workloads {
		nsPerOp, err := pilot(ctx, w)
		if err != nil {
			return err
		}
		step(w)
		for _, p := range procs {
			// Size each run for the target duration if the operation
			// scaled perfectly; contention only makes it longer.
			n := max(1000, int(float64(*cell)/nsPerOp)/p)
			var mops []float64
			for range *runs {
				r, err := bench.Run(ctx, w, p, n)
				if err != nil {
					return fmt.Errorf("bench: %s with %d: %w", w, p, err)
				}
				mops = append(mops, r.OpsPerSec()/1e6)
				step(fmt.Sprintf("%s x%d", w, p))
			}
			m := bench.Median(mops)
			results = append(results, benchResult{Workload: w, Procs: p, MOpsPerS: m, NsPerOp: 1e3 / m})
		}
	}
	if bar != nil {
		bar.Finish()
	}

	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			return err
		}
	} else if err := printTable(out, workloads, procs, results, *cell, *runs); err != nil {
		return err
	}
	if *chart != "" {
		if err := drawChart(*chart, workloads, results); err != nil {
			return err
		}
		if !*asJSON {
			fmt.Fprintf(out, "\nchart: %s\n", *chart)
		}
	}
	return nil
}

// pilot times a short run of w in one process and returns its ns/op.
func pilot(ctx context.Context, w string) (float64, error) {
	r, err := bench.Run(ctx, w, 1, 20000)
	if err != nil {
		return 0, fmt.Errorf("bench: %s: %w", w, err)
	}
	return max(r.NsPerOp(), 1), nil
}

func parseCounts(s string) ([]int, error) {
	var counts []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 64 {
			return nil, fmt.Errorf("bench: bad process count %q (want 1 to 64)", f)
		}
		counts = append(counts, n)
	}
	return counts, nil
}

func selectWorkloads(only string) ([]string, error) {
	var all []string
	for _, w := range benchWorkloads {
		if bench.Lookup(w.name) != nil { // some are for some platforms only
			all = append(all, w.name)
		}
	}
	if only == "" {
		return all, nil
	}
	var sel []string
	for _, f := range strings.Split(only, ",") {
		f = strings.TrimSpace(f)
		if bench.Lookup(f) == nil {
			return nil, fmt.Errorf("bench: no workload %q (have %s)", f, strings.Join(all, ", "))
		}
		sel = append(sel, f)
	}
	return sel, nil
}

func printTable(out io.Writer, workloads []string, procs []int, results []benchResult, cell time.Duration, runs int) error {
	fmt.Fprintf(out, "shmkit bench: total throughput of all processes, M ops/s (median of %d runs of about %v)\n\n", runs, cell)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "workload\t")
	for _, p := range procs {
		fmt.Fprintf(tw, "%d\t", p)
	}
	fmt.Fprintln(tw)
	for _, w := range workloads {
		fmt.Fprintf(tw, "%s\t", w)
		for _, r := range results {
			if r.Workload == w {
				fmt.Fprintf(tw, "%s\t", figure(r.MOpsPerS))
			}
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out, "\ncolumns: number of processes P (goroutines for go.*); for go.chan and queue.*, P producers")
	fmt.Fprintln(out, "and P more consumers, and an operation is one message put and got; for pool.*, P workers")
	fmt.Fprintln(out, "of a pool, and an operation is one item sent and its result back")
	for _, w := range benchWorkloads {
		for _, sel := range workloads {
			if sel == w.name {
				fmt.Fprintf(out, "%-13s %s\n", w.name, w.what)
			}
		}
	}
	return nil
}

// figure formats a throughput in M ops/s with two decimals, or with two
// significant digits below 0.1 (a pool's tasks, at tens of thousands a
// second), where two decimals would leave one or none.
func figure(m float64) string {
	prec := 2
	if m > 0 && m < 0.1 {
		prec = 1 - int(math.Floor(math.Log10(m)))
	}
	return strconv.FormatFloat(m, 'f', prec, 64)
}
