//go:build linux

// Package examples_test builds each example program, runs it, and checks
// what it prints, so that the examples users read first keep working.
package examples_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/redistest"
	"github.com/shmkit/shmkit/shm"
)

func TestExamples(t *testing.T) {
	goBin, err := exec.LookPath("go") // go test puts its own GOROOT/bin first in PATH
	if err != nil {
		t.Skipf("go command not found: %v", err)
	}
	dir, err := os.Getwd() // go test runs tests in the package directory: examples/
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		check func(t *testing.T, lines []string, pid int)
	}{
		{"counter", checkCounter},
		{"squares", checkSquares},
		{"lifecycle", checkLifecycle},
		{"aggregate", checkAggregate},
		{"lock", checkLock},
		{"managerdict", checkManagerDict},
		{"managerdict/redis", checkManagerDict}, // with SHMKIT_REDIS set
		{"remotemanager", checkRemoteManager},
		{"queuesum", checkQueueSum},
		{"joinable", checkJoinable},
		{"pipe", checkPipe},
		{"progress", checkProgress},
		{"poolmap", checkPoolMap},
		{"executor", checkExecutor},
		{"primes", checkPrimes},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			example, onRedis := strings.CutSuffix(tt.name, "/redis")
			var env []string
			if onRedis {
				rs := redistest.Start(t, redistest.Config{})
				env = append(env, "SHMKIT_REDIS="+rs.URL())
			}
			bin := filepath.Join(t.TempDir(), example)
			build := exec.CommandContext(t.Context(), goBin, "build", "-o", bin, "./"+example)
			build.Dir = dir
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("go build ./%s: %v\n%s", example, err, out)
			}

			stdout, stderr, pid := runExample(t, bin, env...)
			lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
			tt.check(t, lines, pid)
			if t.Failed() {
				t.Logf("stdout:\n%s", stdout)
			}
			checkStderr(t, stderr)
			checkNoSegmentsLeft(t, example, pid)
		})
	}
}

// runExample runs the example binary, with env added to its environment,
// and returns its output and pid. It fails the test unless the example
// exits with status 0 within a minute.
func runExample(t *testing.T, bin string, env ...string) (stdout, stderr string, pid int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, bin)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.Env = append(os.Environ(), env...)
	// Workers inherit the example's stdout and stderr, so Wait also waits
	// for every worker (spares included) to let go of them. WaitDelay
	// bounds that, and turns a worker outliving its parent into an error.
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	switch {
	case errors.Is(err, exec.ErrWaitDelay):
		t.Errorf("workers of %s still held its output %v after it exited", filepath.Base(bin), cmd.WaitDelay)
	case ctx.Err() != nil:
		t.Errorf("%s did not finish within the timeout: %v", filepath.Base(bin), err)
	case err != nil:
		t.Errorf("%s: %v", filepath.Base(bin), err)
	}
	return out.String(), errOut.String(), cmd.Process.Pid
}

// checkStderr fails the test if the example wrote anything to stderr.
func checkStderr(t *testing.T, stderr string) {
	t.Helper()
	for line := range strings.Lines(stderr) {
		if line = strings.TrimRight(line, "\n"); line != "" {
			t.Errorf("unexpected stderr: %s", line)
		}
	}
}

// checkNoSegmentsLeft fails the test if the example run with the given pid
// left a segment in /dev/shm: the examples name theirs
// shmkit-example-NAME-PID, and shm.Create's temporary files are
// .shmkit-tmp-PID-*.
func checkNoSegmentsLeft(t *testing.T, name string, pid int) {
	t.Helper()
	for _, pattern := range []string{
		fmt.Sprintf("shmkit-example-%s-%d*", name, pid),
		fmt.Sprintf(".shmkit-tmp-%d-*", pid),
	} {
		left, err := filepath.Glob(filepath.Join(shm.DefaultDir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range left {
			t.Errorf("example left %s behind", p)
			os.Remove(p)
		}
	}
}

func checkCounter(t *testing.T, lines []string, pid int) {
	last := ""
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			last = l
		}
	}
	if last != "450" {
		t.Errorf("last line = %q, want %q", last, "450")
	}
}

var workerLine = regexp.MustCompile(`^worker-(\d+) pid (\d+): (\d+)\*(\d+) = (\d+)$`)

func checkSquares(t *testing.T, lines []string, pid int) {
	// Workers print in any order, each once, with its own pid.
	seen := make(map[int]bool)
	pids := make(map[int]bool)
	for _, l := range lines {
		m := workerLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		wpid, _ := strconv.Atoi(m[2])
		a, _ := strconv.Atoi(m[3])
		b, _ := strconv.Atoi(m[4])
		sq, _ := strconv.Atoi(m[5])
		if a != n || b != n || sq != n*n {
			t.Errorf("worker line %q, want worker-%d pid P: %d*%d = %d", l, n, n, n, n*n)
		}
		if seen[n] {
			t.Errorf("worker-%d printed twice", n)
		}
		seen[n] = true
		if wpid == pid || pids[wpid] {
			t.Errorf("worker line %q: pid %d is the parent's or another worker's", l, wpid)
		}
		pids[wpid] = true
	}
	for n := 1; n <= 9; n++ {
		if !seen[n] {
			t.Errorf("no line from worker-%d", n)
		}
	}

	// The parent's collected results come in order, then "done".
	var want []string
	for n := 1; n <= 9; n++ {
		want = append(want, fmt.Sprintf("%d %d", n, n*n))
	}
	want = append(want, "done")
	checkInOrder(t, lines, want)
	if last := lines[len(lines)-1]; last != "done" {
		t.Errorf("last line = %q, want %q", last, "done")
	}
}

func checkLifecycle(t *testing.T, lines []string, pid int) {
	checkInOrder(t, lines, []string{
		"alive: true",
		"alive: false",
		"exitcode: -15",
		"exitcode: 0",
		"join timed out: true",
		"exitcode: -9",
	})
}

func checkAggregate(t *testing.T, lines []string, pid int) {
	var want []string
	for b := range 10 {
		want = append(want, fmt.Sprintf("bucket %d: 4000", b))
	}
	want = append(want, "total: 40000")
	checkInOrder(t, lines, want)
}

var helloLine = regexp.MustCompile(`^hello world (\d)$`)

func checkLock(t *testing.T, lines []string, pid int) {
	// Ten whole lines, one per worker, in any order: a line broken by
	// another worker's output (the lock not held) matches neither pattern.
	// Then the parent's summary, last.
	const done = "10 workers done"
	if len(lines) == 0 || lines[len(lines)-1] != done {
		t.Errorf("last line is not %q", done)
	}
	seen := make(map[int]bool)
	for i, l := range lines {
		if i == len(lines)-1 && l == done {
			continue
		}
		m := helloLine.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("unexpected line %q", l)
			continue
		}
		n, _ := strconv.Atoi(m[1])
		if seen[n] {
			t.Errorf("%q printed twice", l)
		}
		seen[n] = true
	}
	for n := range 10 {
		if !seen[n] {
			t.Errorf("no line %q", fmt.Sprintf("hello world %d", n))
		}
	}
}

// checkLines fails the test unless lines are exactly want.
func checkLines(t *testing.T, lines, want []string) {
	t.Helper()
	if got, want := strings.Join(lines, "\n"), strings.Join(want, "\n"); got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
}

// checkInOrder fails the test unless every line of want appears in lines,
// in that order (other lines may come between them).
func checkInOrder(t *testing.T, lines, want []string) {
	t.Helper()
	i := 0
	for _, l := range lines {
		if i < len(want) && l == want[i] {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("output lacks %q (after %q)", want[i], want[:i])
	}
}

func checkManagerDict(t *testing.T, lines []string, pid int) {
	checkInOrder(t, lines, []string{"hits: 2000"})
	for _, name := range []string{"a", "b"} {
		checkInOrder(t, lines, []string{name + ": done"})
	}
}

func checkRemoteManager(t *testing.T, lines []string, pid int) {
	checkInOrder(t, lines, []string{"wrong key refused: true", "got job 1", "got job 2", "got job 3"})
}

func checkQueueSum(t *testing.T, lines []string, pid int) {
	// Five workers count to 10 000 each; the parent sums their subtotals.
	checkLines(t, lines, []string{"5 subtotals from 5 workers", "total: 50000"})
}

func checkJoinable(t *testing.T, lines []string, pid int) {
	// The total is read after Join and before the workers exit: it must
	// already hold every task's share.
	checkInOrder(t, lines, []string{"all tasks done", "sum of squares: 333833500", "4 workers did 1000 tasks"})
}

func checkPipe(t *testing.T, lines []string, pid int) {
	// Worker k adds k*25000+1 .. (k+1)*25000 and sends it through its own
	// pipe; the parent reads the pipes in order.
	var want []string
	for k := range int64(4) {
		lo, hi := k*25000+1, (k+1)*25000
		want = append(want, fmt.Sprintf("worker %d sent %d", k, (lo+hi)*(hi-lo+1)/2))
	}
	want = append(want, "sum: 5000050000")
	checkLines(t, lines, want)
}

func checkPoolMap(t *testing.T, lines []string, pid int) {
	// Every call returns its results in the order of its arguments, and
	// the futures are waited for in the order they were made: the output
	// is Python's, with Go's formatting of a slice. Map over 0..9; Apply
	// of 4, 3, 2, 1; ApplyAsync of 5..8, then Get of each; Map, MapAsync
	// and IMap over 1..3.
	checkLines(t, lines, []string{
		"[0 1 4 9 16 25 36 49 64 81]",
		"16", "9", "4", "1",
		"25", "36", "49", "64",
		"map: [1 4 9]",
		"map_async: [1 4 9]",
		"imap: [1 4 9]",
	})
}

func checkExecutor(t *testing.T, lines []string, pid int) {
	// The tasks complete in any order; the program prints their reports
	// in the order of its inputs, the mistyped one's with the text of the
	// error its worker returned, and then the pool's counts of tasks.
	checkLines(t, lines, []string{
		"112272535095293 is prime: true",
		"112582705942171 is prime: true",
		"115280095190773 is prime: true",
		"115797848077099 is prime: true",
		"1099726899285419 is prime: false",
		`112272535O95293 generated an error: strconv.ParseUint: parsing "112272535O95293": invalid syntax`,
		"6 submitted, 5 succeeded, 1 failed",
	})
}

var speedUpLine = regexp.MustCompile(`^speed-up with 2 workers: (\d+\.\d\d)x \(\d+\.\d\ds with 1, \d+\.\d\ds with 2\)$`)

func checkPrimes(t *testing.T, lines []string, pid int) {
	// The count is exact with one worker and with two; the times, and so
	// the speed-up, depend on the machine and on the other tests running
	// beside this one: only their format is checked, and that the
	// speed-up is a positive number.
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3", len(lines))
	}
	checkLines(t, lines[:2], []string{
		"1 worker: 148933 primes below 2000000",
		"2 workers: 148933 primes below 2000000",
	})
	m := speedUpLine.FindStringSubmatch(lines[2])
	if m == nil {
		t.Fatalf("last line %q, want speed-up with 2 workers: N.NNx (N.NNs with 1, N.NNs with 2)", lines[2])
	}
	if x, err := strconv.ParseFloat(m[1], 64); err != nil || x <= 0 {
		t.Errorf("speed-up %s, want a positive number", m[1])
	}
}

func checkProgress(t *testing.T, lines []string, pid int) {
	// Standard error is not a terminal here: no bar, only the result.
	checkLines(t, lines, []string{"400 tasks: 400 succeeded, 0 failed", "33860 primes below 400000"})
}
