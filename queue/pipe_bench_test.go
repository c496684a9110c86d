//go:build linux

package queue_test

import (
	"context"
	"encoding/binary"
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/queue"
	"github.com/shmkit/shmkit/shm"
)

// msg64 is the message of the round-trip benchmarks: 64 bytes, copied
// as they are.
type msg64 [64]byte

// benchPeer is the worker end of the pipe benchmarks: "echo" answers each
// msg64 over the pipe "p" of the segment handed to it, "stream" sends N
// int64s over it, and "socket" answers each 64-byte message over the file
// handed to it.
var benchPeer = process.Register("queue_test.benchPeer", func(ctx context.Context, j peerJob) (int, error) {
	if j.Mode == "socket" {
		f := process.InheritedFiles()[0]
		defer f.Close()
		var b msg64
		for n := 0; ; n++ {
			if _, err := io.ReadFull(f, b[:]); err != nil {
				if err == io.EOF {
					return n, nil
				}
				return n, err
			}
			if _, err := f.Write(b[:]); err != nil {
				return n, err
			}
		}
	}
	segs, err := process.InheritedSegments()
	if err != nil {
		return 0, err
	}
	if j.Mode == "stream" {
		end, err := queue.OpenPipe[int64](segs[0], "p")
		if err != nil {
			return 0, err
		}
		defer end.Close()
		for i := range j.N {
			if err := end.Send(ctx, int64(i)); err != nil {
				return i, err
			}
		}
		return j.N, nil
	}
	end, err := queue.OpenPipe[msg64](segs[0], "p")
	if err != nil {
		return 0, err
	}
	defer end.Close()
	n := 0
	for v, err := range end.All(ctx) {
		if err != nil {
			return n, err
		}
		v[0]++
		if err := end.Send(ctx, v); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
})

// pipeRoundTrips makes n round trips of a 64-byte message to an echo
// worker and returns their time, from the first Send to the last Recv.
func pipeRoundTrips(b *testing.B, n int) time.Duration {
	seg, err := shm.CreateAnonymous(1 << 20)
	if err != nil {
		b.Fatal(err)
	}
	defer seg.Close()
	end, err := queue.NewPipe[msg64](seg, "p")
	if err != nil {
		b.Fatal(err)
	}
	p, err := benchPeer.Start(peerJob{Mode: "echo"}, process.Segments(seg))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var m msg64
	roundTrip := func(i int) {
		m[0], m[63] = byte(i), byte(i)
		if err := end.Send(ctx, m); err != nil {
			b.Fatal(err)
		}
		v, err := end.Recv(ctx)
		if err != nil || v[0] != byte(i+1) || v[63] != byte(i) {
			b.Fatalf("answer %d, %d, %v; want %d, %d", v[0], v[63], err, byte(i+1), byte(i))
		}
	}
	roundTrip(0) // the worker is up
	t0 := time.Now()
	for i := range n {
		roundTrip(i)
	}
	d := time.Since(t0)
	end.Close()
	if err := p.Join(ctx); err != nil {
		b.Fatal(err)
	}
	return d
}

// socketRoundTrips is the baseline: the same over a Unix socket pair,
// the fastest transport between processes that the kernel offers.
func socketRoundTrips(b *testing.B, n int) time.Duration {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "bench-parent"), os.NewFile(uintptr(fds[1]), "bench-worker")
	defer mine.Close()
	p, err := benchPeer.Start(peerJob{Mode: "socket"}, process.Files(theirs))
	theirs.Close()
	if err != nil {
		b.Fatal(err)
	}
	var buf msg64
	roundTrip := func(i uint64) {
		binary.LittleEndian.PutUint64(buf[:], i)
		if _, err := mine.Write(buf[:]); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(mine, buf[:]); err != nil {
			b.Fatal(err)
		}
	}
	roundTrip(0)
	t0 := time.Now()
	for i := range uint64(n) {
		roundTrip(i)
	}
	d := time.Since(t0)
	syscall.Shutdown(fds[0], syscall.SHUT_WR)
	if err := p.Join(context.Background()); err != nil {
		b.Fatal(err)
	}
	return d
}

// pipeStream receives n int64s that a worker sends one way.
func pipeStream(b *testing.B, n int) time.Duration {
	seg, err := shm.CreateAnonymous(1 << 20)
	if err != nil {
		b.Fatal(err)
	}
	defer seg.Close()
	end, err := queue.NewPipe[int64](seg, "p", queue.OneWay(), queue.Capacity(1024))
	if err != nil {
		b.Fatal(err)
	}
	defer end.Close()
	p, err := benchPeer.Start(peerJob{Mode: "stream", N: n + 1}, process.Segments(seg))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := end.Recv(ctx); err != nil { // the worker is up
		b.Fatal(err)
	}
	t0 := time.Now()
	for i := range n {
		if v, err := end.Recv(ctx); err != nil || v != int64(i+1) {
			b.Fatalf("message %d, %v; want %d", v, err, i+1)
		}
	}
	d := time.Since(t0)
	if err := p.Join(ctx); err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkPipe: round trips of a 64-byte message to a worker process
// that answers it (ns/op is one round trip; x-socketpair is the speed-up over
// a Unix socket pair measured in the same run), and int64s sent one way
// (msgs/s).
func BenchmarkPipe(b *testing.B) {
	b.Run("roundtrip/64B", func(b *testing.B) {
		n := max(b.N, 1000)
		d := pipeRoundTrips(b, n)
		base := socketRoundTrips(b, n)
		b.ReportMetric(float64(d.Nanoseconds())/float64(n), "ns/rt")
		b.ReportMetric(float64(base.Nanoseconds())/float64(n), "socket-ns/rt")
		b.ReportMetric(base.Seconds()/d.Seconds(), "x-socketpair")
	})
	b.Run("oneway/int64", func(b *testing.B) {
		n := max(b.N, 1000)
		d := pipeStream(b, n)
		b.ReportMetric(float64(n)/d.Seconds(), "msgs/s")
	})
}
