//go:build linux

package queue_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/queue"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/value"
)

func TestPipeDuplex(t *testing.T) {
	ctx := context.Background()
	seg := shmtest.Segment(t, 1<<20)
	a, err := queue.NewPipe[point](seg, "p", queue.Capacity(4))
	if err != nil {
		t.Fatal(err)
	}
	b, err := queue.OpenPipe[point](seg, "p")
	if err != nil {
		t.Fatal(err)
	}
	if a.End() != 0 || b.End() != 1 || a.Name() != "p" {
		t.Fatalf("ends %d, %d, name %q", a.End(), b.End(), a.Name())
	}
	expired, cancel := context.WithCancel(ctx)
	cancel()
	if ok, err := b.Poll(expired); ok || err != nil {
		t.Fatalf("Poll of an empty pipe = %v, %v; want false, nil", ok, err)
	}
	for i := range 4 {
		if err := a.Send(ctx, point{"to b", i, 0, 0}); err != nil {
			t.Fatal(err)
		}
		if err := b.Send(ctx, point{"to a", 0, i, 0}); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := a.Send(short, point{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send on a full pipe = %v, want DeadlineExceeded", err)
	}
	if ok, err := b.Poll(expired); !ok || err != nil {
		t.Fatalf("Poll with messages = %v, %v; want true, nil", ok, err)
	}
	for i := range 4 {
		if v, err := b.Recv(ctx); err != nil || v != (point{"to b", i, 0, 0}) {
			t.Fatalf("b.Recv = %v, %v", v, err)
		}
		if v, err := a.Recv(ctx); err != nil || v != (point{"to a", 0, i, 0}) {
			t.Fatalf("a.Recv = %v, %v", v, err)
		}
	}
	if _, err := queue.OpenPipe[point](seg, "p"); !errors.Is(err, queue.ErrEndInUse) {
		t.Fatalf("second OpenPipe = %v, want ErrEndInUse", err)
	}
	b.Send(ctx, point{"last", 0, 0, 0})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if v, err := a.Recv(ctx); err != nil || v.Name != "last" {
		t.Fatalf("Recv after the peer closed = %v, %v; want what it sent", v, err)
	}
	if _, err := a.Recv(ctx); err != io.EOF {
		t.Fatalf("Recv once drained = %v, want io.EOF", err)
	}
	if ok, err := a.Poll(ctx); !ok || err != nil {
		t.Fatalf("Poll at the end of the stream = %v, %v; want true, nil", ok, err)
	}
	if err := a.Send(ctx, point{}); !errors.Is(err, io.ErrClosedPipe) || errors.Is(err, queue.ErrPeerDied) {
		t.Fatalf("Send to a closed peer = %v, want io.ErrClosedPipe", err)
	}
	if err := b.Send(ctx, point{}); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("Send on a closed end = %v, want ErrClosed", err)
	}
	if _, err := b.Recv(ctx); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("Recv on a closed end = %v, want ErrClosed", err)
	}
	if _, err := queue.OpenPipe[point](seg, "p"); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("OpenPipe of a closed end = %v, want ErrClosed", err)
	}
	a.Close()
}

func TestPipeCloseWakesWaiters(t *testing.T) {
	seg := shmtest.Segment(t, 1<<20)
	a, err := queue.NewPipe[int](seg, "p", queue.Capacity(1))
	if err != nil {
		t.Fatal(err)
	}
	b, err := queue.OpenPipe[int](seg, "p")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a.Send(ctx, 1) // fills a's direction
	errs := make(chan error, 3)
	go func() { _, err := b.Recv(ctx); _, err = b.Recv(ctx); errs <- err }()
	go func() { errs <- a.Send(ctx, 2) }()
	go func() { _, err := a.Recv(ctx); errs <- err }()
	time.Sleep(20 * time.Millisecond)
	// b's second Recv got a's second message or waits; a's Recv waits.
	a.Close()
	for range 3 {
		select {
		case err := <-errs:
			if err != nil && !errors.Is(err, queue.ErrClosed) && err != io.EOF {
				t.Errorf("a waiter woken by Close got %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Close left a call waiting")
		}
	}
	b.Close()
}

func TestPipeOneWay(t *testing.T) {
	ctx := context.Background()
	seg := shmtest.Segment(t, 1<<20)
	r, err := queue.NewPipe[string](seg, "p", queue.OneWay())
	if err != nil {
		t.Fatal(err)
	}
	w, err := queue.OpenPipe[string](seg, "p")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Send(ctx, "x"); !errors.Is(err, queue.ErrOneWay) {
		t.Fatalf("Send on the receiving end = %v, want ErrOneWay", err)
	}
	if _, err := w.Recv(ctx); !errors.Is(err, queue.ErrOneWay) {
		t.Fatalf("Recv on the sending end = %v, want ErrOneWay", err)
	}
	if _, err := w.Poll(ctx); !errors.Is(err, queue.ErrOneWay) {
		t.Fatalf("Poll on the sending end = %v, want ErrOneWay", err)
	}
	for _, s := range []string{"a", "bb", "ccc"} {
		if err := w.Send(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	var got []string
	for s, err := range r.All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if fmt.Sprint(got) != "[a bb ccc]" {
		t.Fatalf("received %q", got)
	}
	r.Close()
	one, _ := queue.PipeSize[string](queue.OneWay())
	two, _ := queue.PipeSize[string]()
	if one <= 0 || two <= one {
		t.Fatalf("PipeSize one-way %d, duplex %d", one, two)
	}
}

func TestPipeBadInput(t *testing.T) {
	seg := shmtest.Segment(t, 1<<20)
	if _, err := queue.NewPipe[int](seg, "p", queue.Capacity(0)); err == nil {
		t.Fatal("NewPipe with capacity 0 succeeded")
	}
	if _, err := queue.OpenPipe[int](seg, "none"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenPipe of a missing pipe = %v, want ErrNotExist", err)
	}
	p, err := queue.NewPipe[[]byte](seg, "p", queue.MaxMessage(8))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Send(context.Background(), make([]byte, 9)); !errors.Is(err, queue.ErrTooLarge) {
		t.Fatalf("Send of 9 bytes = %v, want ErrTooLarge", err)
	}
	if _, err := queue.OpenPipe[string](seg, "p"); !errors.Is(err, shm.ErrTypeMismatch) {
		t.Fatalf("OpenPipe as string = %v, want ErrTypeMismatch", err)
	}
	if _, err := queue.Open[[]byte](seg, "p"); !errors.Is(err, shm.ErrTypeMismatch) {
		t.Fatalf("Open of a pipe as a queue = %v, want ErrTypeMismatch", err)
	}
	if _, err := queue.NewPipe[int](seg, "p"); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("NewPipe of a taken name = %v, want ErrExist", err)
	}
	// A damaged header is refused, not trusted.
	obj, err := seg.Attach(shm.ObjectSpec{Name: "p", Kind: queue.PipeKind, Type: "[]uint8", Layout: "bytes"})
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int{0, 8, 12, 16} {
		old := obj.Bytes[off]
		obj.Bytes[off] ^= 0x40
		if _, err := queue.OpenPipe[[]byte](seg, "p"); !errors.Is(err, queue.ErrCorrupt) {
			t.Errorf("OpenPipe with byte %d damaged = %v, want ErrCorrupt", off, err)
		}
		obj.Bytes[off] = old
	}
}

// peerJob tells a pipe's worker end what to do.
type peerJob struct {
	Mode string // "tutorial", "echo", "stream" (send until killed), "hang" (send N, then wait)
	N    int
}

// pipePeer opens end 1 of the pipe "p" in the segment handed to it.
var pipePeer = process.Register("queue_test.pipePeer", func(ctx context.Context, j peerJob) (int, error) {
	segs, err := process.InheritedSegments()
	if err != nil {
		return 0, err
	}
	switch j.Mode {
	case "tutorial":
		conn, err := queue.OpenPipe[[]any](segs[0], "p")
		if err != nil {
			return 0, err
		}
		defer conn.Close()
		return 1, conn.Send(ctx, []any{42, nil, "hello"})
	case "echo":
		conn, err := queue.OpenPipe[point](segs[0], "p")
		if err != nil {
			return 0, err
		}
		defer conn.Close()
		n := 0
		for v, err := range conn.All(ctx) {
			if err != nil {
				return n, err
			}
			v.Y = v.X * 2
			if err := conn.Send(ctx, v); err != nil {
				return n, err
			}
			n++
		}
		return n, nil
	}
	conn, err := queue.OpenPipe[msg](segs[0], "p")
	if err != nil {
		return 0, err
	}
	ready, err := value.Open[bool](segs[0], started)
	if err != nil {
		return 0, err
	}
	for i := 0; j.Mode == "stream" || i < j.N; i++ {
		if err := conn.Send(ctx, newMsg(1, int64(i))); err != nil {
			return i, err
		}
		if j.Mode == "stream" && i == 0 {
			ready.Store(true)
		}
	}
	ready.Store(true)
	<-ctx.Done() // until killed
	return j.N, nil
})

// TestPipeTutorial is the seed's tutorial: a worker sends one value
// through a pipe handed to it in an anonymous segment.
func TestPipeTutorial(t *testing.T) {
	seg, err := shm.CreateAnonymous(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	parent, err := queue.NewPipe[[]any](seg, "p")
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Close()
	p, err := pipePeer.Start(peerJob{Mode: "tutorial"}, process.Segments(seg))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v, err := parent.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(v) != "[42 <nil> hello]" {
		t.Fatalf("received %v", v)
	}
	if _, err := parent.Recv(ctx); err != io.EOF {
		t.Fatalf("Recv after the worker closed = %v, want io.EOF", err)
	}
	if err := p.Join(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestPipeEcho sends messages to a worker that answers each, in order.
func TestPipeEcho(t *testing.T) {
	seg, err := shm.CreateAnonymous(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	end, err := queue.NewPipe[point](seg, "p", queue.Capacity(8))
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipePeer.Start(peerJob{Mode: "echo"}, process.Segments(seg))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 20_000
	errc := make(chan error, 1)
	go func() {
		for i := range n {
			if err := end.Send(ctx, point{"m", i, 0, 0}); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i := range n {
		v, err := end.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v.X != i || v.Y != 2*i {
			t.Fatalf("answer %d is %v", i, v)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	end.Close()
	var got int
	if err := p.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Result(&got); err != nil || got != n {
		t.Fatalf("worker answered %d, %v; want %d", got, err, n)
	}
}

// startPeer starts a pipePeer on end 1 of a pipe of msg and waits until it
// has sent its first message (in "hang" mode, all N).
func startPeer(t *testing.T, j peerJob, capacity int) (*queue.Pipe[msg], *process.Process, *shm.Segment) {
	t.Helper()
	seg, err := shm.CreateAnonymous(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seg.Close() })
	end, err := queue.NewPipe[msg](seg, "p", queue.Capacity(capacity))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { end.Close() })
	ready, err := value.New[bool](seg, started)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipePeer.Start(j, process.Segments(seg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill(); p.Join(context.Background()) })
	shmtest.WaitUntil(t, "the peer under way", ready.Load, p)
	return end, p, seg
}

// killDuring starts call, which should block, kills p with SIGKILL while
// it waits, and returns its error, failing t unless it returns within
// 100 ms of the death.
func killDuring(t *testing.T, p *process.Process, call func() error) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- call() }()
	time.Sleep(10 * time.Millisecond)
	p.Kill()
	p.Join(context.Background())
	died := time.Now()
	err := <-errc
	if d := time.Since(died); d > 100*time.Millisecond {
		t.Errorf("the call returned %v after the death", d)
	}
	return err
}

// TestPipePeerKilled: a peer that dies without closing its end ends the
// other's Recv and Send, with ErrPeerDied, within 100 ms.
func TestPipePeerKilled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t.Run("waiting in Recv", func(t *testing.T) {
		end, p, seg := startPeer(t, peerJob{Mode: "hang", N: 3}, 16)
		for i := range 3 {
			if m, err := end.Recv(ctx); err != nil || m.Seq != int64(i) || !m.whole() {
				t.Fatalf("Recv %d = %+v, %v", i, m, err)
			}
		}
		err := killDuring(t, p, func() error { _, err := end.Recv(ctx); return err })
		if !errors.Is(err, queue.ErrPeerDied) || !errors.Is(err, io.EOF) {
			t.Fatalf("Recv from a dead peer = %v, want ErrPeerDied and io.EOF", err)
		}
		obj, err := seg.Lookup("p")
		if err != nil {
			t.Fatal(err)
		}
		if st, err := queue.StatPipe(obj); err != nil || !st.Ends[1].Dead || st.Ends[1].Pid != p.Pid() || st.Ends[0].Dead {
			t.Fatalf("StatPipe after the peer died = %+v, %v", st, err)
		}
		if err := end.Send(ctx, newMsg(0, 0)); !errors.Is(err, queue.ErrPeerDied) && err != nil {
			t.Fatalf("Send to a dead peer = %v", err)
		}
	})
	t.Run("waiting in Send", func(t *testing.T) {
		end, p, _ := startPeer(t, peerJob{Mode: "hang", N: 11}, 16)
		// The peer is not reading: fill its direction.
		for i := 0; ; i++ {
			short, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
			err := end.Send(short, newMsg(0, int64(i)))
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		err := killDuring(t, p, func() error { return end.Send(ctx, newMsg(0, 99)) })
		if !errors.Is(err, queue.ErrPeerDied) || !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("Send to a dead peer = %v, want ErrPeerDied and io.ErrClosedPipe", err)
		}
		// What the peer sent before it died is still received.
		for i := range 11 {
			if m, err := end.Recv(ctx); err != nil || m.Seq != int64(i) {
				t.Fatalf("Recv %d = %+v, %v", i, m, err)
			}
		}
		if _, err := end.Recv(ctx); !errors.Is(err, queue.ErrPeerDied) {
			t.Fatalf("Recv once drained = %v, want ErrPeerDied", err)
		}
	})
}

// TestPipeSenderKilledMidSend kills a peer that sends as fast as it can,
// at random moments: the survivor receives a whole, in-order prefix of what
// was sent and then ErrPeerDied, never a hang or a torn message.
func TestPipeSenderKilledMidSend(t *testing.T) {
	trials := 30
	if testing.Short() {
		trials = 5
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for trial := range trials {
		end, p, _ := startPeer(t, peerJob{Mode: "stream"}, 8)
		go func() {
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
			p.Kill()
		}()
		var next int64
		var err error
		for {
			var m msg
			if m, err = end.Recv(ctx); err != nil {
				break
			}
			if !m.whole() || m.Seq != next {
				t.Fatalf("trial %d: got %+v, want whole message %d", trial, m, next)
			}
			next++
		}
		if !errors.Is(err, queue.ErrPeerDied) {
			t.Fatalf("trial %d: Recv after %d messages = %v, want ErrPeerDied", trial, next, err)
		}
		p.Join(ctx)
		end.Close()
	}
}

func TestStatPipe(t *testing.T) {
	ctx := context.Background()
	seg := shmtest.Segment(t, 1<<20)
	a, err := queue.NewPipe[int](seg, "p", queue.Capacity(8))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := seg.Lookup("p")
	if err != nil {
		t.Fatal(err)
	}
	st, err := queue.StatPipe(obj)
	if err != nil {
		t.Fatal(err)
	}
	if st.OneWay || st.Cap != 8 || st.Ends[0] != (queue.PipeEnd{Opened: true, Pid: os.Getpid()}) || st.Ends[1].Opened {
		t.Fatalf("StatPipe of a new pipe = %+v", st)
	}
	b, err := queue.OpenPipe[int](seg, "p")
	if err != nil {
		t.Fatal(err)
	}
	a.Send(ctx, 1)
	a.Send(ctx, 2)
	b.Send(ctx, 3)
	b.Close()
	if st, err = queue.StatPipe(obj); err != nil || st.Len != [2]int{1, 2} || st.Ends[1] != (queue.PipeEnd{Opened: true, Closed: true}) {
		t.Fatalf("StatPipe = %+v, %v; want 1 and 2 waiting, end 1 closed", st, err)
	}
	a.Close()
	if _, err := queue.Stat(obj); !errors.Is(err, shm.ErrTypeMismatch) {
		t.Fatalf("Stat of a pipe = %v, want ErrTypeMismatch", err)
	}
}

// bytePipe returns the two ends of a new pipe of byte slices, closed at
// the test's end, in the segment it also returns.
func bytePipe(t *testing.T, opts ...queue.Option) (a, b *queue.Pipe[[]byte], seg *shm.Segment) {
	t.Helper()
	seg = shmtest.Segment(t, 1<<20)
	a, err := queue.NewPipe[[]byte](seg, "p", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if b, err = queue.OpenPipe[[]byte](seg, "p"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b, seg
}

func TestPipeRecvAppend(t *testing.T) {
	ctx := context.Background()
	a, b, seg := bytePipe(t, queue.Capacity(4), queue.MaxMessage(64))
	var err error
	for _, m := range []string{"one", "", "three"} {
		if err := b.Send(ctx, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	buf := []byte("kept:")
	for _, want := range []string{"kept:one", "kept:one", "kept:onethree"} {
		if buf, err = a.RecvAppend(ctx, buf); err != nil || string(buf) != want {
			t.Fatalf("RecvAppend = %q, %v; want %q", buf, err, want)
		}
	}
	b.Close()
	if buf, err = a.RecvAppend(ctx, buf); err != io.EOF || string(buf) != "kept:onethree" {
		t.Fatalf("RecvAppend after the peer closed = %q, %v; want the buffer unchanged and io.EOF", buf, err)
	}
	// Raw pipes append the element's memory.
	c, err := queue.NewPipe[int64](seg, "raw", queue.Capacity(2))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d, err := queue.OpenPipe[int64](seg, "raw")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := c.Send(ctx, 0x0807060504030201); err != nil {
		t.Fatal(err)
	}
	got, err := d.RecvAppend(ctx, nil)
	if err != nil || string(got) != "\x01\x02\x03\x04\x05\x06\x07\x08" {
		t.Fatalf("RecvAppend of an int64 = %x, %v", got, err)
	}
}

func TestPipeTryRecvAppend(t *testing.T) {
	ctx := context.Background()
	a, b, _ := bytePipe(t, queue.Capacity(2), queue.MaxMessage(16))
	if buf, err := a.TryRecvAppend([]byte("x")); err != queue.ErrEmpty || string(buf) != "x" {
		t.Fatalf("TryRecvAppend of an empty pipe = %q, %v; want x, ErrEmpty", buf, err)
	}
	if err := b.Send(ctx, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if buf, err := a.TryRecvAppend([]byte("x")); err != nil || string(buf) != "xhello" {
		t.Fatalf("TryRecvAppend = %q, %v", buf, err)
	}
	b.Close()
	if _, err := a.TryRecvAppend(nil); err != io.EOF {
		t.Fatalf("TryRecvAppend after the peer closed = %v, want io.EOF", err)
	}
	if _, err := b.TryRecvAppend(nil); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("TryRecvAppend on a closed end = %v, want ErrClosed", err)
	}
}
