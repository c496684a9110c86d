//go:build linux

package process_test

import (
	"context"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/shmkit/shmkit/process"
)

var empty = process.Register("test.empty", func(ctx context.Context, _ struct{}) (struct{}, error) {
	return struct{}{}, nil
})

// BenchmarkStartJoin times starting a worker that runs an empty function
// and joining it, with a ready spare (see Prestart), as a program that
// starts workers now and then sees it. The baseline, timed in the same
// iterations, is os/exec starting and waiting for /bin/true, the cheapest
// process there is. Metrics are medians; ns/op is the mean.
func BenchmarkStartJoin(b *testing.B) {
	ctx := context.Background()
	trueBin, err := exec.LookPath("true")
	if err != nil {
		b.Skip("no true binary")
	}
	var lat, base []time.Duration
	b.StopTimer()
	for range b.N {
		if err := process.Prestart(ctx); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if err := exec.Command(trueBin).Run(); err != nil {
			b.Fatal(err)
		}
		base = append(base, time.Since(t0))

		if err := process.Prestart(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 = time.Now()
		p, err := empty.Start(struct{}{})
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Join(ctx); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
		b.StopTimer()
	}
	m, mb := median(lat), median(base)
	b.ReportMetric(float64(m.Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(mb.Nanoseconds()), "exec-true-p50-ns")
	b.ReportMetric(float64(m)/float64(mb), "x-exec-true")
}

// BenchmarkStartJoinBackToBack starts and joins workers as fast as it can:
// spares cannot be ready in time, so this measures starting Go processes
// from scratch, two at a time on two cores.
func BenchmarkStartJoinBackToBack(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		p, err := empty.Start(struct{}{})
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Join(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
