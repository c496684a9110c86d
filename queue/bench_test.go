//go:build linux

package queue_test

import (
	"strings"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/queue"
	"github.com/shmkit/shmkit/shm"
)

// transfer moves n messages of kind through a new queue from producers
// producer processes to consumers consumer processes, all started before
// the clock and released together, and returns the time from the release
// until every consumer has drained the closed queue.
func transfer(b *testing.B, kind string, size, producers, consumers, n int) time.Duration {
	b.Helper()
	seg := shmtest.Segment(b, 8<<20)
	shmtest.NewGate(b, seg)
	var err error
	switch kind {
	case "int64":
		_, err = queue.New[int64](seg, "q")
	case "bytes", "bytes-get":
		_, err = queue.New[[]byte](seg, "q", queue.MaxMessage(size))
	case "record":
		_, err = queue.New[record](seg, "q", queue.MaxMessage(64))
	}
	if err != nil {
		b.Fatal(err)
	}
	w := work{Segment: seg.Name(), Queue: "q", Kind: kind, Size: size, Gate: true}
	prods := shmtest.Start(b, producers, func(i int) (*process.Process, error) {
		w := w
		w.Producer, w.N = int64(i), n/producers
		if i == 0 {
			w.N += n % producers
		}
		return produce.Start(w)
	})
	cons := shmtest.Start(b, consumers, func(int) (*process.Process, error) { return consume.Start(w) })
	all := append(append([]*process.Process{}, prods...), cons...)
	shmtest.Release(b, seg, all)
	t0 := time.Now()
	shmtest.JoinAll(b, prods)
	closeQueue(b, seg, kind)
	shmtest.JoinAll(b, cons)
	d := time.Since(t0)
	got := 0
	for _, p := range cons {
		var c consumed
		if err := p.Result(&c); err != nil {
			b.Fatal(err)
		}
		got += c.N
	}
	if got != n {
		b.Fatalf("consumers got %d messages, want %d", got, n)
	}
	return d
}

func closeQueue(b *testing.B, seg *shm.Segment, kind string) {
	b.Helper()
	var err error
	switch kind {
	case "int64":
		err = closeOf[int64](seg)
	case "bytes", "bytes-get":
		err = closeOf[[]byte](seg)
	case "record":
		err = closeOf[record](seg)
	}
	if err != nil {
		b.Fatal(err)
	}
}

func closeOf[T any](seg *shm.Segment) error {
	q, err := queue.Open[T](seg, "q")
	if err != nil {
		return err
	}
	return q.Close()
}

// chanTransfer is the baseline: n int64s through a buffered channel of
// the queue's default capacity, from one goroutine to another.
func chanTransfer(n int) time.Duration {
	ch := make(chan int64, queue.DefaultCapacity)
	t0 := time.Now()
	go func() {
		for i := range n {
			ch <- int64(i)
		}
		close(ch)
	}()
	for range ch {
	}
	return time.Since(t0)
}

// BenchmarkQueue moves messages between processes. Metrics: msgs/s (total
// of all consumers), and for int64 the ratio to a buffered channel between
// two goroutines of one process (x-chan), for 4 producers and 4 consumers
// the ratio to one of each measured in the same run (x-1p1c), and for
// bytes the throughput in MB/s.
func BenchmarkQueue(b *testing.B) {
	n := func(b *testing.B) int { return max(b.N, 1000) }
	b.Run("int64/1p1c", func(b *testing.B) {
		d := transfer(b, "int64", 0, 1, 1, n(b))
		base := chanTransfer(n(b))
		b.ReportMetric(float64(n(b))/d.Seconds(), "msgs/s")
		b.ReportMetric(float64(n(b))/base.Seconds(), "chan-msgs/s")
		b.ReportMetric(base.Seconds()/d.Seconds(), "x-chan")
	})
	b.Run("int64/4p4c", func(b *testing.B) {
		d := transfer(b, "int64", 0, 4, 4, n(b))
		one := transfer(b, "int64", 0, 1, 1, n(b))
		b.ReportMetric(float64(n(b))/d.Seconds(), "msgs/s")
		b.ReportMetric(one.Seconds()/d.Seconds(), "x-1p1c")
	})
	// The consumer of bytes1KiB reuses one buffer (GetAppend); that of
	// bytes1KiB-get takes a new slice per message (Get), which the
	// garbage collector then has to reclaim.
	for _, kind := range []string{"bytes", "bytes-get"} {
		b.Run(strings.Replace(kind, "bytes", "bytes1KiB", 1)+"/1p1c", func(b *testing.B) {
			d := transfer(b, kind, 1024, 1, 1, n(b))
			b.ReportMetric(float64(n(b))/d.Seconds(), "msgs/s")
			b.ReportMetric(float64(n(b))*1024/d.Seconds()/1e6, "MB/s")
		})
	}
	b.Run("record/1p1c", func(b *testing.B) {
		d := transfer(b, "record", 0, 1, 1, n(b))
		b.ReportMetric(float64(n(b))/d.Seconds(), "msgs/s")
	})
}
