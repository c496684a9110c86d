//go:build linux

package shmconn_test

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/benchtest"
	"github.com/shmkit/shmkit/process"
)

// pingPong sends a msg-sized message to an echo peer and reads the answer,
// n times.
func pingPong(b *testing.B, c net.Conn, size int) func(n int) {
	msg, buf := make([]byte, size), make([]byte, size)
	return func(n int) {
		for range n {
			if _, err := c.Write(msg); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkRoundTrip measures a 64-byte request and its echo between two
// processes over shmconn, against the same over a Unix socket pair
// (net.UnixConn) in the same run (base-ns/op).
func BenchmarkRoundTrip(b *testing.B) {
	const size = 64
	for _, spin := range []time.Duration{0, -1} {
		name := "spin=default"
		if spin < 0 {
			name = "spin=off"
		}
		b.Run(name, func(b *testing.B) {
			c, _ := worker(b, echo, 64<<10, spin)
			sock, _ := sockWorker(b, sockEcho)
			target, baseline := pingPong(b, c, size), pingPong(b, sock, size)
			target(100) // the workers are up and have run the loop
			baseline(100)
			b.ReportAllocs()
			benchtest.Ratio(b, baseline, target)
		})
	}
}

// BenchmarkStream measures one-way throughput into a worker that reads
// and discards, over shmconn (with 1 MiB rings) and over a Unix socket
// pair.
func BenchmarkStream(b *testing.B) {
	for _, size := range []int{4 << 10, 64 << 10} {
		for _, transport := range []string{"shm", "unix"} {
			b.Run(fmt.Sprintf("%s/write=%dKiB", transport, size>>10), func(b *testing.B) {
				var c net.Conn
				var p *process.Process
				if transport == "shm" {
					c, p = worker(b, sink, 1<<20, 0)
				} else {
					c, p = sockWorker(b, sockSink)
				}
				buf := make([]byte, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				n := int64(0)
				for b.Loop() {
					if _, err := c.Write(buf); err != nil {
						b.Fatal(err)
					}
					n += int64(size)
				}
				c.Close()
				join(b, p)
				var got int64
				if err := p.Result(&got); err != nil || got != n {
					b.Fatalf("worker read %d bytes, %v; want %d", got, err, n)
				}
			})
		}
	}
}
