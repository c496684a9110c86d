package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// benchFamily is a group of rows measured and shown together: our
// workload, its in-process Go baseline, and Python's or Redis's
// counterpart.
type benchFamily struct {
	name  string
	title string // the heading of its part of the table and its chart panel
	rows  []benchRow
}

// benchRow is one row of the table: a workload of package bench (kind
// "shmkit" or "go"), one of bench_mp.py's ("python"), or a Redis test of
// redis-benchmark ("redis").
type benchRow struct {
	name string
	kind string
	what string
	vs   string // for python and redis rows: the row of ours beside it
	arg  string // bench_mp.py's workload, or redis-benchmark's test
	def  bool   // in the default selection
}

// The rows' kinds.
const (
	kindShmkit = "shmkit"
	kindGo     = "go"
	kindPython = "python"
	kindRedis  = "redis"
)

var benchFamilies = []benchFamily{
	{"values", "values: every process adds to one shared int64", []benchRow{
		{name: "go.add", kind: kindGo, what: "sync/atomic add; goroutines of one process", def: true},
		{name: "value.add", kind: kindShmkit, what: "value.Cell[int64].Add; processes", def: true},
		{name: "raw.add", kind: kindShmkit, what: "atomic add on a raw shared word; processes (the hardware)"},
		{name: "array.add", kind: kindShmkit, what: "array.Array[int64].Add over 64 elements; processes"},
		{name: "py.value", kind: kindPython, what: "multiprocessing Value('q'): with v.get_lock(): v.value += 1", vs: "value.add", arg: "value", def: true},
	}},
	{"locks", "locks: lock, n++, unlock; every process", []benchRow{
		{name: "go.mutex", kind: kindGo, what: "sync.Mutex: lock, n++, unlock; goroutines of one process", def: true},
		{name: "mutex.lock", kind: kindShmkit, what: "semaphore.Mutex: lock, n++, unlock; processes", def: true},
		{name: "drepper.lock", kind: kindShmkit, what: "three-state futex mutex (Drepper): lock, n++, unlock; processes"},
		{name: "sema.acquire", kind: kindShmkit, what: "semaphore.Semaphore(1): acquire, n++, release; processes"},
		{name: "flock.lock", kind: kindShmkit, what: "flock(2) on the segment file: lock, n++, unlock; processes"},
		{name: "py.lock", kind: kindPython, what: "multiprocessing Lock: acquire, RawValue += 1, release", vs: "mutex.lock", arg: "lock", def: true},
	}},
	{"queue", "queues: P producers and P consumers, one queue of 1024", []benchRow{
		{name: "go.chan", kind: kindGo, what: "buffered chan int64, capacity 1024: send, receive; goroutines of one process", def: true},
		{name: "queue.putget", kind: kindShmkit, what: "queue.Queue[int64], capacity 1024: Put, Get; processes", def: true},
		{name: "queue.batch", kind: kindShmkit, what: "queue.Queue[int64], capacity 1024: PutMany, GetMany of up to 64; processes"},
		{name: "py.queue", kind: kindPython, what: "multiprocessing Queue(1024): put, get of ints", vs: "queue.putget", arg: "queue", def: true},
	}},
	{"pipe", "pipes: P pairs of processes, one way", []benchRow{
		{name: "pipe.send", kind: kindShmkit, what: "queue.Pipe[int64], one way, capacity 256: Send, Recv; a pipe per pair", def: true},
		{name: "py.pipe", kind: kindPython, what: "multiprocessing Pipe(duplex=False): send, recv of ints; a pipe per pair", vs: "pipe.send", arg: "pipe", def: true},
	}},
	{"pool", "pools: this process drives P workers squaring ints", []benchRow{
		{name: "pool.map", kind: kindShmkit, what: "pool.Map, default chunks (len/(4·P))", def: true},
		{name: "pool.map1", kind: kindShmkit, what: "pool.Map with ChunkSize(1): a task per item"},
		{name: "pool.submit", kind: kindShmkit, what: "pool.Submit of each item, then Get of each", def: true},
		{name: "py.map", kind: kindPython, what: "multiprocessing Pool(P).map, default chunks", vs: "pool.map", arg: "map", def: true},
		{name: "py.map1", kind: kindPython, what: "multiprocessing Pool(P).map with chunksize=1", vs: "pool.map1", arg: "map1"},
		{name: "py.submit", kind: kindPython, what: "concurrent.futures ProcessPoolExecutor(P).submit, then each result", vs: "pool.submit", arg: "submit", def: true},
	}},
	{"manager", "manager: P connections get or set one key of a dict", []benchRow{
		{name: "manager.get", kind: kindShmkit, what: "manager Dict.Get; server process, P client connections", def: true},
		{name: "manager.set", kind: kindShmkit, what: "manager Dict.Set; server process, P client connections"},
		{name: "py.dict.get", kind: kindPython, what: "multiprocessing Manager().dict(): d[key]; P client processes", vs: "manager.get", arg: "dict.get", def: true},
		{name: "py.dict.set", kind: kindPython, what: "multiprocessing Manager().dict(): d[key] = value; P client processes", vs: "manager.set", arg: "dict.set"},
		{name: "redis.get", kind: kindRedis, what: "Redis GET, redis-benchmark with P connections", vs: "manager.get", arg: "get", def: true},
		{name: "redis.set", kind: kindRedis, what: "Redis SET, redis-benchmark with P connections", vs: "manager.set", arg: "set"},
	}},
}

// benchConfig is a checked command line.
type benchConfig struct {
	families []benchFamily // with only the selected rows, in table order
	procs    []int
	cell     time.Duration
	runs     int
	chart    string
	json     bool
	quiet    bool
	python   string // the interpreter's name or path; "" for no Python rows
	compare  bool   // select Python's and Redis's rows too
}

// benchCommand is `shmkit bench` with its streams: stderr gets progress,
// warnings and the reasons for failures; tty says whether it is a
// terminal (and so can show a progress bar).
type benchCommand struct {
	stdout, stderr io.Writer
	tty            bool
}

// runBench runs `shmkit bench` (see benchUsage).
func runBench(ctx context.Context, args []string, out io.Writer) error {
	return benchCommand{stdout: out, stderr: os.Stderr, tty: term.IsTerminal(int(os.Stderr.Fd()))}.run(ctx, args)
}

const benchUsage = `usage: shmkit bench [FLAGS] [FAMILY...]

Measures total throughput across processes for each process count, next to
Go's in-process baselines and, where python3, redis-server and
redis-benchmark are installed, Python's multiprocessing and Redis doing the
same in the same run. Without FAMILY (or -suite) it runs the default
selection, the rows marked * below; a family named runs all its rows.

Families and rows:
`

func (bc benchCommand) run(ctx context.Context, args []string) error {
	cfg, err := bc.parse(args)
	if err != nil {
		return err
	}
	if n := slices.Max(cfg.procs); n > runtime.NumCPU() {
		fmt.Fprintf(bc.stderr, "shmkit: warning: -procs asks for %d processes on a machine with %d CPUs: beyond %d they take turns on the CPUs (queues and pipes run twice as many), so those columns measure the scheduler as much as the operation\n",
			n, runtime.NumCPU(), runtime.NumCPU())
	}
	rep, err := bc.measure(ctx, cfg)
	if err != nil {
		return err
	}
	if cfg.json {
		err = writeBenchJSON(bc.stdout, rep)
	} else {
		err = printTable(bc.stdout, rep)
	}
	if err != nil {
		return err
	}
	if cfg.chart != "" {
		if err := drawChart(cfg.chart, rep); err != nil {
			return err
		}
		if !cfg.json {
			fmt.Fprintf(bc.stdout, "\nchart: %s\n", cfg.chart)
		} else if !cfg.quiet {
			fmt.Fprintf(bc.stderr, "shmkit bench: chart: %s\n", cfg.chart)
		}
	}
	if n := rep.failures(); n > 0 {
		return fmt.Errorf("bench: %d rows failed (their errors are above)", n)
	}
	return nil
}

// parse checks the whole command line before anything runs; a mistake is
// a usageError, reported with bench's usage.
func (bc benchCommand) parse(args []string) (benchConfig, error) {
	fs := flag.NewFlagSet("shmkit bench", flag.ContinueOnError)
	fs.SetOutput(bc.stderr)
	fs.Usage = func() {
		fmt.Fprint(bc.stderr, benchUsage)
		for _, f := range benchFamilies {
			fmt.Fprintf(bc.stderr, "  %s\n", f.name)
			for _, r := range f.rows {
				mark := " "
				if r.def {
					mark = "*"
				}
				fmt.Fprintf(bc.stderr, "   %s %-13s %s\n", mark, r.name, r.what)
			}
		}
		fmt.Fprintln(bc.stderr, "\nFlags:")
		fs.PrintDefaults()
	}
	procsFlag := fs.String("procs", "1,2,4,8", "comma-separated numbers of processes (1 to 64)")
	suite := fs.String("suite", "", "comma-separated families to run, as FAMILY arguments do")
	only := fs.String("workloads", "", "comma-separated rows to run, instead of families")
	cell := fs.Duration("time", 100*time.Millisecond, "target duration of each run, from 1ms to 1m")
	runs := fs.Int("runs", 3, "runs per cell, 1 to 100; the median is reported")
	chart := fs.String("chart", "shmkit-bench.svg", "draw the results to this file, ending in .svg or .png; empty for none")
	asJSON := fs.Bool("json", false, "print the results as JSON instead of a table")
	quiet := fs.Bool("q", false, "do not report progress on standard error")
	python := fs.String("python", "python3", "the Python interpreter for the multiprocessing rows")
	compare := fs.Bool("compare", true, "run Python's and Redis's rows beside ours, where installed")

	usage := func(format string, a ...any) error {
		msg := fmt.Sprintf("bench: "+format, a...)
		fmt.Fprintf(bc.stderr, "shmkit: %s\n", msg)
		fs.Usage()
		return usageError{msg: msg, reported: true}
	}
	// Families may stand before, between or after the flags.
	var names []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return benchConfig{}, err
		}
		if fs.NArg() == 0 {
			break
		}
		names = append(names, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if *suite != "" {
		names = append(names, strings.Split(*suite, ",")...)
	}

	cfg := benchConfig{cell: *cell, runs: *runs, chart: *chart, json: *asJSON, quiet: *quiet, compare: *compare}
	var err error
	if cfg.procs, err = parseCounts(*procsFlag); err != nil {
		return cfg, usage("%v", err)
	}
	if cfg.cell < time.Millisecond || cfg.cell > time.Minute {
		return cfg, usage("-time %v is out of range (1ms to 1m)", cfg.cell)
	}
	if cfg.runs < 1 || cfg.runs > 100 {
		return cfg, usage("-runs %d is out of range (1 to 100)", cfg.runs)
	}
	if cfg.chart != "" {
		switch strings.ToLower(filepath.Ext(cfg.chart)) {
		case ".svg", ".png":
		default:
			return cfg, usage("-chart %s: the name must end in .svg or .png", cfg.chart)
		}
	}
	if cfg.families, err = selectRows(names, *only, cfg.compare); err != nil {
		return cfg, usage("%v", err)
	}
	cfg.python = *python
	return cfg, nil
}

// parseCounts parses -procs: distinct counts from 1 to 64, which it sorts.
func parseCounts(s string) ([]int, error) {
	var counts []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 64 {
			return nil, fmt.Errorf("-procs: bad process count %q (want 1 to 64)", f)
		}
		if slices.Contains(counts, n) {
			return nil, fmt.Errorf("-procs: %d given twice", n)
		}
		counts = append(counts, n)
	}
	slices.Sort(counts)
	return counts, nil
}

// selectRows returns the families to run with the rows to run in each:
// the default rows of every family when neither names nor only picks
// any; every row of the named families; or the rows only names. Python's
// and Redis's rows are left out unless compare is set, except where only
// names them.
func selectRows(names []string, only string, compare bool) ([]benchFamily, error) {
	if len(names) > 0 && only != "" {
		return nil, errors.New("name families or -workloads, not both")
	}
	var known []string
	for _, f := range benchFamilies {
		known = append(known, f.name)
	}
	picked := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		if !slices.Contains(known, n) {
			return nil, fmt.Errorf("no family %q (have %s)", n, strings.Join(known, ", "))
		}
		picked[n] = true
	}
	rows := map[string]bool{}
	if only != "" {
		for _, n := range strings.Split(only, ",") {
			n = strings.TrimSpace(n)
			if _, ok := findRow(n); !ok {
				return nil, fmt.Errorf("no workload %q (bench -h lists them)", n)
			}
			rows[n] = true
		}
	}
	var sel []benchFamily
	for _, f := range benchFamilies {
		g := f
		g.rows = nil
		for _, r := range f.rows {
			var take bool
			switch {
			case only != "":
				take = rows[r.name]
			case len(picked) > 0:
				take = picked[f.name]
			default:
				take = r.def
			}
			if only == "" && !compare && (r.kind == kindPython || r.kind == kindRedis) {
				take = false
			}
			if take {
				g.rows = append(g.rows, r)
			}
		}
		if len(g.rows) > 0 {
			sel = append(sel, g)
		}
	}
	return sel, nil
}

// findRow returns the row named name.
func findRow(name string) (benchRow, bool) {
	for _, f := range benchFamilies {
		for _, r := range f.rows {
			if r.name == name {
				return r, true
			}
		}
	}
	return benchRow{}, false
}

// progress reports how the run goes on standard error: a bar on a
// terminal, otherwise a line per family done, or nothing with -q.
type progress struct {
	bar   *progressbar.ProgressBar
	lines io.Writer // nil without lines
}

func (bc benchCommand) newProgress(cfg benchConfig) *progress {
	if cfg.quiet {
		return &progress{}
	}
	if !bc.tty {
		return &progress{lines: bc.stderr}
	}
	cells := 0
	for _, f := range cfg.families {
		cells += len(f.rows) * len(cfg.procs)
	}
	return &progress{bar: progressbar.NewOptions(cells,
		progressbar.OptionSetWriter(bc.stderr),
		progressbar.OptionSetDescription("shmkit bench"),
		progressbar.OptionShowCount(),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetPredictTime(true))}
}

// cell says that a cell of row is about to run.
func (p *progress) cell(row string, procs int) {
	if p.bar != nil {
		p.bar.Describe(fmt.Sprintf("%-12s P=%d", row, procs))
	}
}

// cellDone says that a cell has finished.
func (p *progress) cellDone() {
	if p.bar != nil {
		p.bar.Add(1)
	}
}

// family says that a family has finished.
func (p *progress) family(f benchFamily, took time.Duration, failed int) {
	if p.lines == nil {
		return
	}
	status := ""
	if failed > 0 {
		status = fmt.Sprintf(", %d failed", failed)
	}
	fmt.Fprintf(p.lines, "shmkit bench: %s: %d rows in %.1fs%s\n", f.name, len(f.rows), took.Seconds(), status)
}

func (p *progress) finish() {
	if p.bar != nil {
		p.bar.Finish()
	}
}

// clear takes the bar off the terminal before a message.
func (p *progress) clear() {
	if p.bar != nil {
		p.bar.Clear()
	}
}
