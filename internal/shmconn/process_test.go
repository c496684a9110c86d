//go:build linux

package shmconn_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/internal/shmconn"
	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/shm"
)

// job tells a worker how to attach to the rings of the segment it
// inherits: their capacity and the Conn's spin.
type job struct {
	Capacity int
	Spin     time.Duration
}

// serve runs f on a Conn over the rings of the inherited segment, the
// worker reading "c2s" and writing "s2c". The Conn is closed when f
// returns or the worker's context ends (its parent died).
func serve(ctx context.Context, j job, f func(c *shmconn.Conn) (int64, error)) (int64, error) {
	segs, err := process.InheritedSegments()
	if err != nil {
		return 0, err
	}
	if len(segs) != 1 {
		return 0, fmt.Errorf("inherited %d segments, want 1", len(segs))
	}
	var mem [2][]byte
	for i, name := range []string{"c2s", "s2c"} {
		obj, err := segs[0].Attach(shm.ObjectSpec{Name: name, Kind: "ring", Size: int64(shmconn.RingSize(j.Capacity))})
		if err != nil {
			return 0, err
		}
		mem[i] = obj.Bytes
	}
	c, err := shmconn.New(mem[0], mem[1], &shmconn.Options{Spin: j.Spin})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	return f(c)
}

// echoLoop writes back what it reads until EOF, and returns how many bytes.
func echoLoop(c net.Conn) (int64, error) {
	buf := make([]byte, 64<<10)
	var total int64
	for {
		n, err := c.Read(buf)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return total, err
		}
		total += int64(n)
	}
}

// sinkLoop reads until EOF and returns how many bytes.
func sinkLoop(c net.Conn) (int64, error) {
	buf := make([]byte, 256<<10)
	var total int64
	for {
		n, err := c.Read(buf)
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// inheritedConn returns the worker's end of a socket pair.
func inheritedConn() (net.Conn, error) {
	files := process.InheritedFiles()
	if len(files) != 1 {
		return nil, fmt.Errorf("inherited %d files, want 1", len(files))
	}
	defer files[0].Close()
	return net.FileConn(files[0])
}

var (
	echo = process.Register("shmconn_test.echo", func(ctx context.Context, j job) (int64, error) {
		return serve(ctx, j, func(c *shmconn.Conn) (int64, error) { return echoLoop(c) })
	})
	sink = process.Register("shmconn_test.sink", func(ctx context.Context, j job) (int64, error) {
		return serve(ctx, j, func(c *shmconn.Conn) (int64, error) { return sinkLoop(c) })
	})
	// stall says "r" and waits, reading nothing, until killed.
	stall = process.Register("shmconn_test.stall", func(ctx context.Context, j job) (int64, error) {
		return serve(ctx, j, func(c *shmconn.Conn) (int64, error) {
			if _, err := c.Write([]byte("r")); err != nil {
				return 0, err
			}
			<-ctx.Done()
			return 0, ctx.Err()
		})
	})
	sockEcho = process.Register("shmconn_test.sockEcho", func(ctx context.Context, j job) (int64, error) {
		c, err := inheritedConn()
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return echoLoop(c)
	})
	sockSink = process.Register("shmconn_test.sockSink", func(ctx context.Context, j job) (int64, error) {
		c, err := inheritedConn()
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return sinkLoop(c)
	})
)

// worker starts fn in a worker process on two new rings of the given
// capacity and returns the parent's Conn to it. At the end of the test the
// Conn is closed, which ends echo and sink workers, and the worker joined.
func worker(t testing.TB, fn *process.Func[job, int64], capacity int, spin time.Duration) (*shmconn.Conn, *process.Process) {
	t.Helper()
	seg := segment(t, capacity)
	c2s, s2c := rings(t, seg, capacity)
	p, err := fn.Start(job{Capacity: capacity, Spin: spin}, process.Segments(seg), process.Daemon())
	if err != nil {
		t.Fatal(err)
	}
	c, err := shmconn.New(s2c, c2s, &shmconn.Options{Spin: spin})
	if err != nil {
		p.Kill()
		<-p.Done()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		join(t, p)
	})
	return c, p
}

// join waits up to a minute for p, killing it after that.
func join(t testing.TB, p *process.Process) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.Join(ctx); err != nil && ctx.Err() != nil {
		p.Kill()
		<-p.Done()
		t.Errorf("worker %s did not end: %v", p.Name(), err)
	}
}

// sockWorker starts fn in a worker process with one end of a Unix socket
// pair and returns the other end.
func sockWorker(t testing.TB, fn *process.Func[job, int64]) (net.Conn, *process.Process) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	local, remote := os.NewFile(uintptr(fds[0]), "local"), os.NewFile(uintptr(fds[1]), "remote")
	defer remote.Close()
	c, err := net.FileConn(local)
	local.Close()
	if err != nil {
		t.Fatal(err)
	}
	p, err := fn.Start(job{}, process.Files(remote), process.Daemon())
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		join(t, p)
	})
	return c, p
}

// TestProcessEcho streams 16 MiB through an echo worker and checks every
// byte that comes back.
func TestProcessEcho(t *testing.T) {
	const total = 16 << 20
	for _, spin := range []time.Duration{0, -1} {
		t.Run(fmt.Sprintf("spin=%v", spin), func(t *testing.T) {
			c, p := worker(t, echo, 64<<10, spin)
			data := stream(20, total)
			werr := make(chan error, 1)
			go func() {
				for off := 0; off < total; off += 10000 {
					if _, err := c.Write(data[off:min(off+10000, total)]); err != nil {
						werr <- err
						return
					}
				}
				werr <- nil
			}()
			got := make([]byte, total)
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatal(err)
			}
			if err := <-werr; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("bytes echoed differ from bytes sent")
			}
			c.Close()
			join(t, p)
			var n int64
			if err := p.Result(&n); err != nil || n != total {
				t.Fatalf("worker echoed %d bytes, %v; want %d", n, err, total)
			}
		})
	}
}

// TestProcessPeerKilled kills the worker while the parent is blocked in
// Read and in Write, and checks that the parent's Close, called from
// another goroutine as the manager's socket monitor would, ends both.
func TestProcessPeerKilled(t *testing.T) {
	const capacity = 4096
	c, p := worker(t, stall, capacity, 0)
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatalf("reading the worker's hello: %v", err)
	}
	r := goRead(c, make([]byte, 1))
	if _, err := c.Write(make([]byte, capacity)); err != nil { // the worker reads none of it
		t.Fatal(err)
	}
	w := goWrite(c, []byte("more"))
	waitAsleep(t, c, 2) // both past their spin
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	select {
	case res := <-r:
		t.Fatalf("Read returned %d, %v when the peer died; it should block until Close", res.n, res.err)
	case res := <-w:
		t.Fatalf("Write returned %d, %v when the peer died; it should block until Close", res.n, res.err)
	default:
	}
	start := time.Now()
	go c.Close()
	if res := await(t, "Read", r); !errors.Is(res.err, net.ErrClosed) {
		t.Errorf("Read = %d, %v; want net.ErrClosed", res.n, res.err)
	}
	if res := await(t, "Write", w); !errors.Is(res.err, net.ErrClosed) {
		t.Errorf("Write = %d, %v; want net.ErrClosed", res.n, res.err)
	}
	t.Logf("blocked calls ended %v after Close", time.Since(start))
}
