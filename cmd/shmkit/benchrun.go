package main

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shmkit/shmkit/internal/bench"
	"github.com/shmkit/shmkit/internal/redisbench"
)

// pythonWorkloads is the script of the Python rows, standard library only.
//
//go:embed bench_mp.py
var pythonWorkloads []byte

// benchReport is everything one run measured; -json prints it.
type benchReport struct {
	Machine  machineInfo    `json:"machine"`
	Procs    []int          `json:"procs"`
	TargetNs int64          `json:"target_ns"` // -time: the duration each run aims at
	Runs     int            `json:"runs"`      // runs per cell
	Families []familyReport `json:"families"`
}

type familyReport struct {
	Name  string      `json:"name"`
	Title string      `json:"title"`
	Rows  []rowReport `json:"rows"`
}

// rowReport is a row: its cells, or why it has none (or fewer than the
// process counts).
type rowReport struct {
	Workload string        `json:"workload"`
	Kind     string        `json:"kind"` // shmkit, go, python or redis
	What     string        `json:"what"`
	Vs       string        `json:"vs,omitempty"`      // the row of ours it is compared with
	Missing  string        `json:"missing,omitempty"` // why it did not run, such as "python3 not found"
	Error    string        `json:"error,omitempty"`   // why it stopped
	Cells    []benchResult `json:"cells"`
}

// benchResult is one cell: a row with one number of processes.
type benchResult struct {
	Procs      int       `json:"procs"`
	MOpsPerS   float64   `json:"mops_per_s"`      // median total throughput, millions of operations per second
	NsPerOp    float64   `json:"ns_per_op"`       // wall time per operation, all processes together
	Ratio      float64   `json:"ratio,omitempty"` // for python and redis rows: Vs's throughput over this one's
	OpsPerRun  int64     `json:"ops_per_run"`     // operations of all processes in each run
	RunSeconds []float64 `json:"run_seconds"`     // each run's measured time
}

// failures counts the rows that stopped with an error.
func (r *benchReport) failures() int {
	n := 0
	for _, f := range r.Families {
		for _, row := range f.Rows {
			if row.Error != "" {
				n++
			}
		}
	}
	return n
}

// row returns the row named name, or nil.
func (f *familyReport) row(name string) *rowReport {
	for i := range f.Rows {
		if f.Rows[i].Workload == name {
			return &f.Rows[i]
		}
	}
	return nil
}

// cell returns the cell with procs processes, or nil.
func (r *rowReport) cell(procs int) *benchResult {
	for i := range r.Cells {
		if r.Cells[i].Procs == procs {
			return &r.Cells[i]
		}
	}
	return nil
}

// fillRatios sets each python and redis cell's ratio, where the row of
// ours beside it was measured with as many processes.
func (r *benchReport) fillRatios() {
	for _, f := range r.Families {
		for i := range f.Rows {
			row := &f.Rows[i]
			ours := f.row(row.Vs)
			if row.Vs == "" || ours == nil {
				continue
			}
			for j := range row.Cells {
				c := &row.Cells[j]
				if o := ours.cell(c.Procs); o != nil && c.MOpsPerS > 0 {
					c.Ratio = o.MOpsPerS / c.MOpsPerS
				}
			}
		}
	}
}

// A cellRunner does runs timed runs of a row's workload with procs
// processes (goroutines, workers, connections), n operations for each.
type cellRunner func(ctx context.Context, procs, n, runs int) ([]bench.Result, error)

func (bc benchCommand) measure(ctx context.Context, cfg benchConfig) (*benchReport, error) {
	env := &rowEnv{python: cfg.python}
	defer env.close()
	prog := bc.newProgress(cfg)
	defer prog.finish()
	rep := &benchReport{Procs: cfg.procs, TargetNs: cfg.cell.Nanoseconds(), Runs: cfg.runs}
	for _, f := range cfg.families {
		t0 := time.Now()
		fr := familyReport{Name: f.name, Title: f.title}
		failed := 0
		for _, row := range f.rows {
			rr := rowReport{Workload: row.name, Kind: row.kind, What: row.what, Vs: row.vs, Cells: []benchResult{}}
			run, missing := env.runner(ctx, row)
			if missing != "" {
				rr.Missing = missing
				for range cfg.procs {
					prog.cellDone()
				}
			} else {
				cells, err := measureRow(ctx, run, row.name, cfg, prog)
				if ctx.Err() != nil {
					return nil, fmt.Errorf("bench: stopped: %w", ctx.Err())
				}
				rr.Cells = append(rr.Cells, cells...)
				if err != nil {
					rr.Error = err.Error()
					failed++
					prog.clear()
					fmt.Fprintf(bc.stderr, "shmkit: bench: %v\n", err)
				}
			}
			fr.Rows = append(fr.Rows, rr)
		}
		rep.Families = append(rep.Families, fr)
		prog.family(f, time.Since(t0), failed)
	}
	rep.fillRatios()
	rep.Machine = describeMachine(env)
	return rep, nil
}

// measureRow measures a row with each number of processes. It first
// finds how long an operation takes in the steady state (see pilot).
// Each cell then starts with a probe, a run sized to last a quarter of
// cfg.cell if the throughput of all processes together fell as much as
// processes were added since the cell before (contention can make it
// fall further still); its throughput sizes the cell's runs, which are
// sized again, and run again, if their median missed cfg.cell by more
// than a factor of two.
func measureRow(ctx context.Context, run cellRunner, name string, cfg benchConfig, prog *progress) ([]benchResult, error) {
	target := cfg.cell.Seconds()
	prog.cell(name, cfg.procs[0])
	perOp, fixed, err := pilot(ctx, run, target)
	if err != nil {
		return nil, fmt.Errorf("%s: pilot: %w", name, err)
	}
	rate, prev := 1/perOp, 1 // total operations per second, with prev processes
	// steady returns the throughput of p processes doing n each in secs,
	// less the fixed cost (but no more than half of the run).
	steady := func(p, n int, secs float64) float64 { return float64(p*n) / max(secs-fixed, secs/2) }
	var cells []benchResult
	for _, p := range cfg.procs {
		prog.cell(name, p)
		n := sizeRun(rate*float64(prev)/float64(p), target/4, p)
		probe, err := runCell(ctx, run, p, n, benchConfig{runs: 1, cell: cfg.cell})
		if err != nil {
			return cells, fmt.Errorf("%s with %d: %w", name, p, err)
		}
		rate = steady(p, n, probe[0].Elapsed.Seconds())
		var rs []bench.Result
		for attempt := 0; attempt < 2; attempt++ {
			n = sizeRun(rate, max(target-fixed, target/2), p)
			if rs, err = runCell(ctx, run, p, n, cfg); err != nil {
				return cells, fmt.Errorf("%s with %d: %w", name, p, err)
			}
			med := medianElapsed(rs)
			rate = steady(p, n, med)
			if med > target/2 && med < 2*target || n == maxOps/p {
				break
			}
		}
		prev = p
		cells = append(cells, summarize(p, rs))
		prog.cellDone()
	}
	return cells, nil
}

// maxOps bounds the operations of a run, all processes together.
const maxOps = 1 << 30

// sizeRun returns the operations per process that last secs at rate.
func sizeRun(rate, secs float64, procs int) int {
	n := rate * secs / float64(procs)
	return int(min(max(n, 1), float64(maxOps/procs)))
}

// runCell runs one cell within a deadline far beyond what it should take,
// so that a workload that hangs fails instead.
func runCell(ctx context.Context, run cellRunner, procs, n int, cfg benchConfig) ([]bench.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute+20*time.Duration(cfg.runs)*cfg.cell)
	defer cancel()
	rs, err := run(ctx, procs, n, cfg.runs)
	if err == nil && len(rs) != cfg.runs {
		err = fmt.Errorf("%d results for %d runs", len(rs), cfg.runs)
	}
	return rs, err
}

// pilot returns the seconds an operation takes with one process in the
// steady state, and the fixed cost of a run (ending the processes, say),
// which a single short run mixes up: it doubles n until a run lasts a
// quarter of target, then times one of twice that size and takes the
// difference.
func pilot(ctx context.Context, run cellRunner, target float64) (perOp, fixed float64, err error) {
	one := func(n int) (float64, error) {
		rs, err := runCell(ctx, run, 1, n, benchConfig{runs: 1, cell: time.Duration(target * 1e9)})
		if err != nil {
			return 0, err
		}
		return rs[0].Elapsed.Seconds(), nil
	}
	n := 64
	e1, err := one(n)
	for err == nil && e1 < target/4 && n < maxOps/4 {
		// Grow fast while runs are all fixed cost, by 2 to 64 times.
		n = int(float64(n) * min(64, max(2, target/4/max(e1, 1e-9))))
		n = min(n, maxOps/4)
		e1, err = one(n)
	}
	if err != nil {
		return 0, 0, err
	}
	e2, err := one(2 * n)
	if err != nil {
		return 0, 0, err
	}
	// Noise can make the difference small or negative: an operation costs
	// at most the mean of the longer run and, say, at least 1% of it.
	mean := e2 / float64(2*n)
	perOp = min(max((e2-e1)/float64(n), mean/100), mean)
	fixed = max(0, e1-perOp*float64(n))
	return perOp, fixed, nil
}

func medianElapsed(rs []bench.Result) float64 {
	var s []float64
	for _, r := range rs {
		s = append(s, r.Elapsed.Seconds())
	}
	return bench.Median(s)
}

// summarize makes a cell of a cell's runs.
func summarize(procs int, rs []bench.Result) benchResult {
	c := benchResult{Procs: procs, OpsPerRun: rs[0].Ops}
	var mops []float64
	for _, r := range rs {
		mops = append(mops, r.OpsPerSec()/1e6)
		c.RunSeconds = append(c.RunSeconds, math.Round(r.Elapsed.Seconds()*1e6)/1e6)
	}
	c.MOpsPerS = bench.Median(mops)
	c.NsPerOp = 1e3 / c.MOpsPerS
	return c
}

// rowEnv runs the rows that need more than package bench: it finds the
// Python interpreter and writes the script once, and starts a Redis
// server when the first Redis row comes, and removes or stops them in
// close.
type rowEnv struct {
	python        string // the name asked for, then its path
	pythonChecked bool
	pythonMissing string
	pythonVersion string
	dir           string // holds the script

	redis        *redisbench.Server
	redisChecked bool
	redisMissing string
	redisVersion string
}

// runner returns the runner of row, or why it cannot run.
func (e *rowEnv) runner(ctx context.Context, row benchRow) (cellRunner, string) {
	switch row.kind {
	case kindPython:
		if msg := e.checkPython(); msg != "" {
			return nil, msg
		}
		return e.pythonRunner(row.arg), ""
	case kindRedis:
		if msg := e.startRedis(ctx); msg != "" {
			return nil, msg
		}
		return e.redisRunner(row.arg), ""
	}
	if bench.Lookup(row.name) == nil {
		return nil, "not on this platform"
	}
	return func(ctx context.Context, procs, n, runs int) ([]bench.Result, error) {
		var rs []bench.Result
		for range runs {
			r, err := bench.Run(ctx, row.name, procs, n)
			if err != nil {
				return nil, err
			}
			rs = append(rs, r)
		}
		return rs, nil
	}, ""
}

// checkPython finds the interpreter and writes the script, once.
func (e *rowEnv) checkPython() string {
	if e.pythonChecked {
		return e.pythonMissing
	}
	e.pythonChecked = true
	if e.python == "" {
		e.pythonMissing = "no Python (-python is empty)"
		return e.pythonMissing
	}
	path, err := exec.LookPath(e.python)
	if err != nil {
		e.pythonMissing = e.python + " not found"
		return e.pythonMissing
	}
	e.python = path
	out, err := exec.Command(path, "-I", "-c", "import sys; print(sys.version.split()[0])").Output()
	if err != nil {
		e.pythonMissing = fmt.Sprintf("%s does not run: %v", path, err)
		return e.pythonMissing
	}
	e.pythonVersion = strings.TrimSpace(string(out))
	if e.dir, err = os.MkdirTemp("", "shmkit-bench-"); err == nil {
		err = os.WriteFile(filepath.Join(e.dir, "bench_mp.py"), pythonWorkloads, 0o600)
	}
	if err != nil {
		e.pythonMissing = fmt.Sprintf("cannot write the script: %v", err)
	}
	return e.pythonMissing
}

// pythonRunner runs bench_mp.py's workload, all runs in one interpreter.
// The interpreter leads a process group of its own, which is killed when
// it has ended or ctx ends, so that no worker of it outlives the cell;
// and it kills the group itself if this process dies (its standard input
// ends).
func (e *rowEnv) pythonRunner(workload string) cellRunner {
	return func(ctx context.Context, procs, n, runs int) ([]bench.Result, error) {
		cmd := exec.CommandContext(ctx, e.python, "-I", "-W", "ignore::DeprecationWarning",
			filepath.Join(e.dir, "bench_mp.py"), workload, strconv.Itoa(procs), strconv.Itoa(n), strconv.Itoa(runs))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if _, err := cmd.StdinPipe(); err != nil {
			return nil, err
		}
		ownProcessGroup(cmd)
		cmd.WaitDelay = time.Second
		err := cmd.Run()
		if cmd.Process != nil {
			killProcessGroup(cmd.Process.Pid)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("python %s: %w", workload, ctx.Err())
			}
			return nil, fmt.Errorf("python %s: %w: %s", workload, err, lastLines(stderr.String(), 5))
		}
		var rs []bench.Result
		for _, f := range strings.Fields(stdout.String()) {
			secs, err := strconv.ParseFloat(f, 64)
			if err != nil || !(secs > 0) || math.IsInf(secs, 0) {
				return nil, fmt.Errorf("python %s printed %q, want seconds", workload, f)
			}
			rs = append(rs, bench.Result{Procs: procs, Ops: int64(procs) * int64(n), Elapsed: time.Duration(secs * 1e9)})
		}
		return rs, nil
	}
}

// lastLines returns the last k lines of s.
func lastLines(s string, k int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-k):], "\n")
}

// startRedis starts the server, once.
func (e *rowEnv) startRedis(ctx context.Context) string {
	if e.redisChecked {
		return e.redisMissing
	}
	e.redisChecked = true
	for _, bin := range []string{"redis-server", "redis-benchmark"} {
		if _, err := exec.LookPath(bin); err != nil {
			e.redisMissing = bin + " not found"
			return e.redisMissing
		}
	}
	s, err := redisbench.Launch(ctx)
	if err != nil {
		e.redisMissing = "redis-server did not start: " + lastLines(err.Error(), 1)
		return e.redisMissing
	}
	e.redis = s
	if out, err := exec.Command("redis-server", "--version").Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if v, ok := strings.CutPrefix(f, "v="); ok {
				e.redisVersion = v
			}
		}
	}
	return ""
}

// redisRunner runs redis-benchmark's test with procs connections for
// procs*n requests, and at least minRedisRequests; a run lasts as long as
// redis-benchmark said.
func (e *rowEnv) redisRunner(test string) cellRunner {
	return func(ctx context.Context, procs, n, runs int) ([]bench.Result, error) {
		var rs []bench.Result
		for range runs {
			ops := max(procs*n, minRedisRequests)
			got, err := e.redis.Run(ctx, procs, 1, ops, test)
			if err != nil {
				return nil, err
			}
			rps := got[strings.ToUpper(test)]
			if !(rps > 0) {
				return nil, fmt.Errorf("redis-benchmark reported no %s figure: %v", strings.ToUpper(test), got)
			}
			rs = append(rs, bench.Result{Procs: procs, Ops: int64(ops), Elapsed: time.Duration(float64(ops) / rps * 1e9)})
		}
		return rs, nil
	}
}

// minRedisRequests is the fewest requests a redis-benchmark run makes:
// it times a run in milliseconds, and reports a run shorter than one as
// "inf" requests per second (a pilot of a short -time asks for a few
// dozen).
const minRedisRequests = 1000

// close removes the script and stops the Redis server.
func (e *rowEnv) close() error {
	var errs []error
	if e.dir != "" {
		errs = append(errs, os.RemoveAll(e.dir))
	}
	if e.redis != nil {
		errs = append(errs, e.redis.Close())
	}
	return errors.Join(errs...)
}

// machineInfo says what the figures were measured on.
type machineInfo struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
	Kernel   string `json:"kernel"`
	Go       string `json:"go"`
	Python   string `json:"python,omitempty"`
	Redis    string `json:"redis,omitempty"`
	Date     string `json:"date"` // RFC 3339, UTC
}

// cpuModel returns the first "model name" of /proc/cpuinfo, or "".
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for l := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return ""
}

// String is the machine line of the table and the chart.
func (m machineInfo) String() string {
	parts := []string{fmt.Sprintf("%d CPUs", m.CPUs)}
	if m.CPUModel != "" {
		parts[0] += " (" + m.CPUModel + ")"
	}
	parts = append(parts, m.Kernel, m.Go)
	if m.Python != "" {
		parts = append(parts, "Python "+m.Python)
	}
	if m.Redis != "" {
		parts = append(parts, "Redis "+m.Redis)
	}
	date := m.Date
	if t, err := time.Parse(time.RFC3339, m.Date); err == nil {
		date = t.Format("2006-01-02 15:04 UTC")
	}
	return strings.Join(slices.DeleteFunc(parts, func(s string) bool { return s == "" }), ", ") + "; " + date
}
