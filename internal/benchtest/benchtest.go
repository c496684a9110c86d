// Package benchtest helps benchmarks report an operation's cost next to a
// baseline measured in the same run.
package benchtest

import (
	"context"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/bench"
)

// rounds is how many alternating slices of target and baseline Ratio runs,
// so that the machine's slow and fast moments fall on both alike.
const rounds = 10

// Ratio times target and baseline, each for b.N operations in alternating
// slices, and reports ns/op for the target, base-ns/op for the baseline and
// their quotient as x-base.
func Ratio(b *testing.B, baseline, target func(n int)) {
	b.Helper()
	tTarget, tBase := alternate(b, baseline, target)
	report(b, tTarget, tBase, float64(b.N))
}

// Rates times target and baseline as Ratio does and reports throughput:
// kops/s for the target, base-kops/s for the baseline and x-base, the
// target's throughput over the baseline's (so more is better, unlike
// Ratio's x-base).
func Rates(b *testing.B, baseline, target func(n int)) {
	b.Helper()
	tTarget, tBase := alternate(b, baseline, target)
	ops := float64(b.N)
	b.ReportMetric(float64(tTarget.Nanoseconds())/ops, "ns/op")
	b.ReportMetric(ops/tTarget.Seconds()/1e3, "kops/s")
	b.ReportMetric(ops/tBase.Seconds()/1e3, "base-kops/s")
	b.ReportMetric(float64(tBase)/float64(tTarget), "x-base")
}

// alternate runs baseline and target for b.N operations each in rounds
// alternating slices and returns the time each took.
func alternate(b *testing.B, baseline, target func(n int)) (tTarget, tBase time.Duration) {
	chunk := max(1, b.N/rounds)
	b.ResetTimer()
	for done := 0; done < b.N; done += chunk {
		n := min(chunk, b.N-done)
		t0 := time.Now()
		baseline(n)
		t1 := time.Now()
		target(n)
		tBase += t1.Sub(t0)
		tTarget += time.Since(t1)
	}
	b.StopTimer()
	return tTarget, tBase
}

func report(b *testing.B, target, base time.Duration, ops float64) {
	b.ReportMetric(float64(target.Nanoseconds())/ops, "ns/op")
	b.ReportMetric(float64(base.Nanoseconds())/ops, "base-ns/op")
	b.ReportMetric(float64(target)/float64(base), "x-base")
}

// Processes runs the registered workloads target and baseline with procs
// worker processes doing b.N operations each, alternately, and reports
// total throughput (Mops/s for the target, base-Mops/s for the baseline)
// and their quotient as x-base, the target's share of the baseline's
// throughput.
func Processes(b *testing.B, baseline, target string, procs int) {
	b.Helper()
	ctx := context.Background()
	n := max(b.N, 1000)
	var tBase, tTarget time.Duration
	b.ResetTimer()
	for range 3 {
		rb, err := bench.Run(ctx, baseline, procs, n/3)
		if err != nil {
			b.Fatal(err)
		}
		rt, err := bench.Run(ctx, target, procs, n/3)
		if err != nil {
			b.Fatal(err)
		}
		tBase += rb.Elapsed
		tTarget += rt.Elapsed
	}
	b.StopTimer()
	ops := float64(procs * (n / 3) * 3)
	b.ReportMetric(float64(tTarget.Nanoseconds())/ops, "ns/op")
	b.ReportMetric(ops/tTarget.Seconds()/1e6, "Mops/s")
	b.ReportMetric(ops/tBase.Seconds()/1e6, "base-Mops/s")
	b.ReportMetric(float64(tBase)/float64(tTarget), "x-base")
}
