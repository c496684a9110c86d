//go:build linux

package queue_test

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// python runs testdata/mp_queue.py's workload what for n messages and
// returns the time Python's multiprocessing took, skipping b without
// python3.
func python(b *testing.B, what string, n int) time.Duration {
	b.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		b.Skip("python3 is not installed: no side-by-side row")
	}
	out, err := exec.CommandContext(b.Context(), py, "testdata/mp_queue.py", what, strconv.Itoa(n)).Output()
	if err != nil {
		b.Fatalf("python3 mp_queue.py %s %d: %v", what, n, err)
	}
	s, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		b.Fatalf("python3 mp_queue.py printed %q", out)
	}
	return time.Duration(s * float64(time.Second))
}

// BenchmarkVsPython runs Python's multiprocessing beside the queue and the
// pipe, in the same run: small ints from one producer process to one
// consumer process through a Queue, and round trips of 64 bytes through a
// Pipe to an echo process. Python moves fewer messages (at most 200 000
// ints, 20 000 round trips), as its rate is what is compared. x-python is
// the speed-up.
func BenchmarkVsPython(b *testing.B) {
	b.Run("queue/int64", func(b *testing.B) {
		n := max(b.N, 1000)
		pn := min(n, 200_000)
		py := python(b, "queue", pn)
		d := transfer(b, "int64", 0, 1, 1, n)
		rate, pyRate := float64(n)/d.Seconds(), float64(pn)/py.Seconds()
		b.ReportMetric(rate, "msgs/s")
		b.ReportMetric(pyRate, "python-msgs/s")
		b.ReportMetric(rate/pyRate, "x-python")
	})
	b.Run("pipe/64B", func(b *testing.B) {
		n := max(b.N, 1000)
		pn := min(n, 20_000)
		py := python(b, "pipe", pn)
		d := pipeRoundTrips(b, n)
		rt, pyRT := float64(d.Nanoseconds())/float64(n), float64(py.Nanoseconds())/float64(pn)
		b.ReportMetric(rt, "ns/rt")
		b.ReportMetric(pyRT, "python-ns/rt")
		b.ReportMetric(pyRT/rt, "x-python")
	})
}
