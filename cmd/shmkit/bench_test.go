//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/bench"
	"github.com/shmkit/shmkit/internal/redistest"
)

// runBenchTest runs `shmkit bench args` in this process, with a standard
// error that is a terminal or not, and returns its error and output. It
// draws no chart unless args ask for one.
func runBenchTest(t *testing.T, tty bool, args ...string) (err error, stdout, stderr string) {
	t.Helper()
	var out, errOut strings.Builder
	err = benchCommand{stdout: &out, stderr: &errOut, tty: tty}.run(t.Context(), append([]string{"-chart="}, args...))
	return err, out.String(), errOut.String()
}

// TestBenchBadUsage checks that every mistake on the command line exits
// with status 2 and bench's usage on standard error, before anything
// runs (-time 1m would make a run take minutes).
func TestBenchBadUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-procs", "0"}, `bad process count "0"`},
		{[]string{"-procs", "1,x"}, `bad process count "x"`},
		{[]string{"-procs", "65"}, `bad process count "65"`},
		{[]string{"-procs", "2,2"}, "2 given twice"},
		{[]string{"-procs", ""}, "bad process count"},
		{[]string{"-chart", "c.gif"}, "must end in .svg or .png"},
		{[]string{"-chart", "chart"}, "must end in .svg or .png"},
		{[]string{"nope"}, `no family "nope" (have values, locks, queue, pipe, pool, manager)`},
		{[]string{"locks", "nope"}, `no family "nope"`},
		{[]string{"-suite", "locks,nope"}, `no family "nope"`},
		{[]string{"-workloads", "nope"}, `no workload "nope"`},
		{[]string{"-workloads", "raw.add", "locks"}, "not both"},
		{[]string{"-runs", "0"}, "-runs 0 is out of range"},
		{[]string{"-time", "0s"}, "-time 0s is out of range"},
		{[]string{"-time", "2m"}, "-time 2m0s is out of range"},
		{[]string{"-time", "soon"}, `invalid value "soon" for flag -time`},
		{[]string{"-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"locks", "-bogus"}, "flag provided but not defined: -bogus"},
	} {
		args := append([]string{"-time", "1m", "-q"}, tc.args...)
		t0 := time.Now()
		// run maps a usageError to status 2.
		err, out, errOut := runBenchTest(t, false, args...)
		if _, ok := err.(usageError); !ok || out != "" {
			t.Errorf("bench %q: %v, stdout %q; want a usageError and nothing", args, err, out)
		}
		if !strings.Contains(errOut, tc.msg) || !strings.Contains(errOut, "usage: shmkit bench") {
			t.Errorf("bench %q: stderr %q, want %q and the usage", args, errOut, tc.msg)
		}
		if d := time.Since(t0); d > 5*time.Second {
			t.Errorf("bench %q took %v: it ran something before checking", args, d)
		}
	}
}

// TestBenchExitStatus checks the statuses of the whole command. (The
// flag package's messages go to the real standard error here.)
func TestBenchExitStatus(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{{[]string{"-procs", "0"}, 2}, {[]string{"-chart", "c.gif"}, 2}, {[]string{"nope"}, 2}, {[]string{"-h"}, 0}} {
		if code, out, _ := shmkit(t, t.TempDir(), append([]string{"bench", "-q"}, tc.args...)...); code != tc.code || out != "" {
			t.Errorf("shmkit bench %q: status %d, stdout %q; want %d and nothing", tc.args, code, out, tc.code)
		}
	}
}

func TestBenchHelp(t *testing.T) {
	err, _, errOut := runBenchTest(t, false, "-h")
	for _, want := range []string{"usage: shmkit bench", "* value.add", "  raw.add", "py.dict.get", "-procs"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("bench -h (%v) does not show %q:\n%s", err, want, errOut)
		}
	}
}

// TestBenchSelect checks which rows the families, -suite and -workloads
// pick.
func TestBenchSelect(t *testing.T) {
	rows := func(names []string, only string, compare bool) []string {
		fs, err := selectRows(names, only, compare)
		if err != nil {
			t.Fatalf("selectRows(%q, %q): %v", names, only, err)
		}
		var got []string
		for _, f := range fs {
			for _, r := range f.rows {
				got = append(got, r.name)
			}
		}
		return got
	}
	if got := rows(nil, "", true); !slices.Contains(got, "value.add") || slices.Contains(got, "raw.add") || !slices.Contains(got, "redis.get") {
		t.Errorf("default rows %q, want value.add and redis.get but not raw.add", got)
	}
	if got, want := rows([]string{"pipe"}, "", true), []string{"pipe.send", "py.pipe"}; !slices.Equal(got, want) {
		t.Errorf("family pipe: %q, want %q", got, want)
	}
	if got, want := rows([]string{"pipe"}, "", false), []string{"pipe.send"}; !slices.Equal(got, want) {
		t.Errorf("family pipe without -compare: %q, want %q", got, want)
	}
	if got, want := rows(nil, "py.lock,go.add", false), []string{"go.add", "py.lock"}; !slices.Equal(got, want) {
		t.Errorf("-workloads py.lock,go.add: %q, want %q in table order", got, want)
	}
}

func TestParseCounts(t *testing.T) {
	got, err := parseCounts("8, 1,4,2")
	if want := []int{1, 2, 4, 8}; err != nil || !slices.Equal(got, want) {
		t.Errorf("parseCounts = %v, %v; want %v", got, err, want)
	}
}

// runJSON runs bench with -json and decodes its report.
func runJSON(t *testing.T, args ...string) (*benchReport, string) {
	t.Helper()
	err, out, errOut := runBenchTest(t, false, append([]string{"-json"}, args...)...)
	if err != nil {
		t.Fatalf("bench %q: %v\n%s", args, err, errOut)
	}
	var rep benchReport
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("bench -json printed %q: %v", out, err)
	}
	return &rep, errOut
}

// TestBenchTinyRun runs one family for real with one process, checks the
// shape of -json, and that standard error, not a terminal, has a line per
// family and no control characters of a progress bar.
func TestBenchTinyRun(t *testing.T) {
	rep, errOut := runJSON(t, "-procs", "1", "-time", "20ms", "-runs", "2", "-compare=false", "locks")
	m := rep.Machine
	if m.CPUs < 1 || m.Go == "" || !strings.HasPrefix(m.Kernel, "Linux ") || m.Date == "" {
		t.Errorf("machine %+v, want CPUs, kernel, Go and date", m)
	}
	if len(rep.Families) != 1 || rep.Families[0].Name != "locks" || len(rep.Families[0].Rows) != 5 {
		t.Fatalf("families %+v, want locks alone with its 5 rows of ours", rep.Families)
	}
	for _, r := range rep.Families[0].Rows {
		if len(r.Cells) != 1 || r.Error != "" || r.Missing != "" {
			t.Errorf("row %+v, want one cell", r)
			continue
		}
		c := r.Cells[0]
		if c.Procs != 1 || !(c.MOpsPerS > 0) || len(c.RunSeconds) != 2 || c.OpsPerRun < 1 {
			t.Errorf("%s: cell %+v, want 1 process, a throughput and 2 runs", r.Workload, c)
		}
	}
	if rep.Procs[0] != 1 || rep.TargetNs != 20e6 || rep.Runs != 2 {
		t.Errorf("report says procs %v, target %d ns, %d runs", rep.Procs, rep.TargetNs, rep.Runs)
	}
	if strings.ContainsAny(errOut, "\r\x1b") {
		t.Errorf("stderr, not a terminal, has control characters: %q", errOut)
	}
	if !regexp.MustCompile(`(?m)^shmkit bench: locks: 5 rows in [0-9.]+s$`).MatchString(errOut) {
		t.Errorf("stderr %q, want a line for the family", errOut)
	}
}

// TestBenchProgress checks the progress bar on a terminal, nothing with
// -q, and the warning about more processes than CPUs.
func TestBenchProgress(t *testing.T) {
	args := []string{"-procs", "1", "-time", "2ms", "-runs", "1", "-workloads", "raw.add"}
	if _, _, errOut := runBenchTest(t, true, args...); !strings.Contains(errOut, "\r") {
		t.Errorf("stderr on a terminal %q, want a progress bar", errOut)
	}
	if _, _, errOut := runBenchTest(t, false, append(args, "-q")...); errOut != "" {
		t.Errorf("stderr with -q: %q, want nothing", errOut)
	}
	// Only the warning matters: a count just past the CPUs, one short run.
	many := []string{"-procs", strconv.Itoa(runtime.NumCPU() + 1), "-q", "-workloads", "raw.add"}
	_, _, errOut := runBenchTest(t, false, append(many, "-time", "2ms", "-runs", "1")...)
	if !strings.Contains(errOut, "warning: -procs asks for") {
		t.Errorf("stderr %q, want a warning about too many processes", errOut)
	}
}

// TestBenchTable checks the table: the machine line, a part per family,
// figures for each process count.
func TestBenchTable(t *testing.T) {
	chart := filepath.Join(t.TempDir(), "c.png")
	err, out, errOut := runBenchTest(t, false, "-procs", "1,2", "-time", "5ms", "-runs", "1", "-q", "-workloads", "value.add,pipe.send", "-chart", chart)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if f, err := os.Open(chart); err != nil {
		t.Error(err)
	} else {
		if _, err := png.Decode(f); err != nil {
			t.Errorf("chart %s: %v", chart, err)
		}
		f.Close()
	}
	for _, re := range []string{
		`^shmkit bench: \d+ CPUs.*, Linux .*, go1\.\S+; \d{4}-\d\d-\d\d \d\d:\d\d UTC\n`,
		`(?m)^P =\s+1\s+2$`,
		`(?m)^values: .*\n  value\.add\s+[0-9.]+\s+[0-9.]+$`,
		`(?m)^pipes: .*\n  pipe\.send\s+[0-9.]+\s+[0-9.]+$`,
		`(?m)^A run lasted `,
		`(?m)^chart: .*c\.png$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("table does not match %s:\n%s", re, out)
		}
	}
}

// TestBenchPython runs Python's row beside ours, and checks that it
// leaves no script or process behind (TestMain checks processes).
func TestBenchPython(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not found: the Python rows cannot run")
	}
	before := scripts(t)
	rep, _ := runJSON(t, "-procs", "1,2", "-time", "20ms", "-runs", "1", "-workloads", "value.add,py.value")
	rows := rep.Families[0].Rows
	if len(rows) != 2 || rows[1].Workload != "py.value" || rows[1].Vs != "value.add" || len(rows[1].Cells) != 2 {
		t.Fatalf("rows %+v, want value.add and py.value with 2 cells", rows)
	}
	for _, c := range rows[1].Cells {
		ours := rows[0].cell(c.Procs)
		if !(c.MOpsPerS > 0) || ours == nil || c.Ratio != ours.MOpsPerS/c.MOpsPerS {
			t.Errorf("py.value cell %+v, want a throughput and the ratio to ours", c)
		}
	}
	if rep.Machine.Python == "" {
		t.Errorf("machine %+v does not name Python's version", rep.Machine)
	}
	if after := scripts(t); len(after) != len(before) {
		t.Errorf("temporary directories %q after the run, %q before", after, before)
	}
}

// scripts lists the directories that hold the Python script.
func scripts(t *testing.T) []string {
	m, err := filepath.Glob(filepath.Join(os.TempDir(), "shmkit-bench-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestBenchMissing checks that rows that cannot run say why.
func TestBenchMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no python3, no redis-server
	err, out, errOut := runBenchTest(t, false, "-procs", "1", "-time", "2ms", "-runs", "1", "-q", "-workloads", "raw.add,py.value,redis.get")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	for _, re := range []string{`(?m)^  py\.value\s+python3 not found$`, `(?m)^  redis\.get\s+redis-server not found$`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("table does not match %s:\n%s", re, out)
		}
	}
	err, out, _ = runBenchTest(t, false, "-procs", "1", "-time", "2ms", "-runs", "1", "-q", "-python", "", "-workloads", "py.value")
	if err != nil || !strings.Contains(out, "no Python (-python is empty)") {
		t.Errorf("with -python empty: %v\n%s", err, out)
	}
}

// TestBenchRedis runs Redis's row beside the manager's.
func TestBenchRedis(t *testing.T) {
	for _, bin := range []string{"redis-server", "redis-benchmark"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv(redistest.RequireEnv) != "" {
				t.Fatalf("%s not found and %s is set", bin, redistest.RequireEnv)
			}
			t.Skipf("%s not found: the Redis rows cannot run", bin)
		}
	}
	rep, _ := runJSON(t, "-procs", "1,2", "-time", "20ms", "-runs", "1", "-workloads", "manager.get,redis.get")
	rows := rep.Families[0].Rows
	if len(rows) != 2 || rows[1].Workload != "redis.get" || len(rows[1].Cells) != 2 || rows[1].Cells[1].Ratio <= 0 {
		t.Fatalf("rows %+v, want manager.get and redis.get with 2 cells and ratios", rows)
	}
	if rep.Machine.Redis == "" {
		t.Errorf("machine %+v does not name Redis's version", rep.Machine)
	}
}

// TestChart draws a report of a full run (testdata/bench-report.json) as
// PNG and SVG, and one family alone.
func TestChart(t *testing.T) {
	b, err := os.ReadFile("testdata/bench-report.json")
	if err != nil {
		t.Fatal(err)
	}
	var rep benchReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	rep.Families[0].Rows[4] = rowReport{Workload: "py.value", Kind: kindPython, Missing: "python3 not found", Cells: []benchResult{}}
	dir := t.TempDir()
	if d := os.Getenv("SHMKIT_TEST_CHART_DIR"); d != "" {
		dir = d // to look at the charts
	}
	pngPath, svgPath := filepath.Join(dir, "all.png"), filepath.Join(dir, "all.svg")
	if err := drawChart(pngPath, &rep); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if w, h := img.Bounds().Dx(), img.Bounds().Dy(); w < 1000 || h < 1000 || w > 2000 || h > 3000 {
		t.Errorf("PNG of six families is %dx%d", w, h)
	}
	if err := drawChart(svgPath, &rep); err != nil {
		t.Fatal(err)
	}
	svg, err := os.ReadFile(svgPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "@font-face", "queue.putget", "python3 not found", "2 CPUs"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("SVG has no %q", want)
		}
	}
	one := rep
	one.Families = rep.Families[3:4]
	if err := drawChart(filepath.Join(dir, "one.png"), &one); err != nil {
		t.Fatal(err)
	}
	none := rep
	none.Families = nil
	if err := drawChart(filepath.Join(dir, "none.png"), &none); err == nil {
		t.Error("a chart of nothing succeeded")
	}
}

func TestTimes(t *testing.T) {
	for _, tc := range []struct {
		r    float64
		want string
	}{{335.2, "x335"}, {33.5, "x34"}, {3.44, "x3.4"}, {0.523, "x0.52"}} {
		if got := times(tc.r); got != tc.want {
			t.Errorf("times(%v) = %q, want %q", tc.r, got, tc.want)
		}
	}
}

// TestBenchManager runs the manager rows with one and three clients; each
// get checks its value, and the servers must be gone at the end, which
// TestMain checks.
func TestBenchManager(t *testing.T) {
	rep, _ := runJSON(t, "-procs", "1,3", "-time", "10ms", "-runs", "1", "-workloads", "manager.get,manager.set")
	for _, r := range rep.Families[0].Rows {
		if len(r.Cells) != 2 || r.Error != "" || !(r.Cells[1].MOpsPerS > 0) {
			t.Errorf("row %+v, want two cells", r)
		}
	}
}

// TestMeasureRowSizing checks that cells last about -time when a run has
// a large fixed cost, as ending processes has (the old pilot, timing one
// short run, made cells of 150 ms last 13-36 ms), and when contention
// makes the throughput collapse as processes are added.
func TestMeasureRowSizing(t *testing.T) {
	const target = 100 * time.Millisecond
	for _, tc := range []struct {
		name  string
		fixed time.Duration
		perOp func(procs int) time.Duration // per operation, all processes together
	}{
		{"fixed cost", 20 * time.Millisecond, func(int) time.Duration { return 50 * time.Nanosecond }},
		{"collapse", time.Millisecond, func(p int) time.Duration { return time.Duration(p*p) * time.Microsecond }},
	} {
		var longest time.Duration
		run := func(_ context.Context, procs, n, runs int) ([]bench.Result, error) {
			var rs []bench.Result
			for range runs {
				d := tc.fixed + time.Duration(procs*n)*tc.perOp(procs)
				longest = max(longest, d)
				rs = append(rs, bench.Result{Procs: procs, Ops: int64(procs * n), Elapsed: d})
			}
			return rs, nil
		}
		cfg := benchConfig{procs: []int{1, 2, 4, 8}, cell: target, runs: 3}
		cells, err := measureRow(t.Context(), run, "fake", cfg, &progress{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cells {
			if d := time.Duration(bench.Median(c.RunSeconds) * 1e9); d < target*8/10 || d > target*12/10 {
				t.Errorf("%s: with %d, runs of %v, want about %v", tc.name, c.Procs, d, target)
			}
		}
		if longest > 10*target {
			t.Errorf("%s: a run took %v, want none much beyond %v", tc.name, longest, target)
		}
	}
}
