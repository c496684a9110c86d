//go:build linux

package shmconn_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/shmconn"
	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/shm"
)

func TestMain(m *testing.M) { shmtest.Main(m) }

// rings allocates and formats two rings of the given capacity in seg:
// "c2s" (client to server) and "s2c".
func rings(t testing.TB, seg *shm.Segment, capacity int) (c2s, s2c []byte) {
	t.Helper()
	var mem [2][]byte
	for i, name := range []string{"c2s", "s2c"} {
		obj, err := seg.Alloc(shm.ObjectSpec{Name: name, Kind: "ring", Size: int64(shmconn.RingSize(capacity)), Align: shmconn.Alignment})
		if err != nil {
			t.Fatal(err)
		}
		if err := shmconn.InitRing(obj.Bytes, capacity); err != nil {
			t.Fatal(err)
		}
		mem[i] = obj.Bytes
	}
	return mem[0], mem[1]
}

// segment returns an anonymous segment with room for two rings of the
// given capacity, closed when the test ends.
func segment(t testing.TB, capacity int) *shm.Segment {
	t.Helper()
	seg, err := shm.CreateAnonymous(int64(2*shmconn.RingSize(capacity) + 1<<16))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := seg.Close(); err != nil {
			t.Error(err)
		}
	})
	return seg
}

// pair is two Conns connected over two rings in one process.
type pair struct {
	client, server *shmconn.Conn
	c2s, s2c       []byte
}

func newPair(t testing.TB, capacity int, opts *shmconn.Options) pair {
	t.Helper()
	copts, sopts := opts, opts
	if onBells {
		// Each side a Bell of its own, as in two processes.
		copts, sopts = withBells(t, opts)
	}
	return newPairWith(t, capacity, copts, sopts)
}

// newPairWith is newPair with each side's options.
func newPairWith(t testing.TB, capacity int, copts, sopts *shmconn.Options) pair {
	t.Helper()
	seg := segment(t, capacity)
	c2s, s2c := rings(t, seg, capacity)
	client, err := shmconn.New(s2c, c2s, copts)
	if err != nil {
		t.Fatal(err)
	}
	server, err := shmconn.New(c2s, s2c, sopts)
	if err != nil {
		t.Fatal(err)
	}
	// Registered after the segment's cleanup, so it runs before it.
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return pair{client, server, c2s, s2c}
}

var sleepNow = &shmconn.Options{Spin: -1}

// onBells makes newPair's Conns sleep on Bells (see TestOnBells).
var onBells bool

// withBells returns opts for two sides, each with a Bell of its own and
// a Ringer of the other's; they are closed at the end of the test, after
// the Conns (cleanups run last first).
func withBells(t testing.TB, opts *shmconn.Options) (a, b *shmconn.Options) {
	t.Helper()
	var o shmconn.Options
	if opts != nil {
		o = *opts
	}
	var bells [2]*shmconn.Bell
	var ringers [2]*shmconn.Ringer
	for i := range bells {
		bell, err := shmconn.NewBell()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { bell.Close() })
		bells[i] = bell
	}
	for i := range ringers {
		f, err := bells[1-i].File()
		if err != nil {
			t.Fatal(err)
		}
		r, err := shmconn.NewRinger(f)
		if err != nil {
			f.Close()
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		ringers[i] = r
	}
	oa, ob := o, o
	oa.Bell, oa.Peer = bells[0], ringers[0]
	ob.Bell, ob.Peer = bells[1], ringers[1]
	return &oa, &ob
}

// TestOnBells runs the tests of Conns' blocking, waking and closing with
// both sides sleeping on Bells instead of futexes.
func TestOnBells(t *testing.T) {
	onBells = true
	defer func() { onBells = false }()
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"WrapAround", TestWrapAround},
		{"ReadReturnsWhatIsThere", TestReadReturnsWhatIsThere},
		{"LargeWrite", TestLargeWrite},
		{"StreamChecksum", TestStreamChecksum},
		{"FullDuplex", TestFullDuplex},
		{"ConcurrentReadersWriters", TestConcurrentReadersWriters},
		{"Deadlines", TestDeadlines},
		{"CloseWakesBlockedCalls", TestCloseWakesBlockedCalls},
		{"CloseConcurrent", TestCloseConcurrent},
		{"PeerCloseEOF", TestPeerCloseEOF},
		{"PeerCloseEPIPE", TestPeerCloseEPIPE},
		{"PollBackoff", TestPollBackoff},
	} {
		t.Run(tc.name, tc.f)
	}
}

// stream returns n bytes of a deterministic pseudo-random stream.
func stream(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, (n+7)&^7)
	for i := 0; i < len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b[:n]
}

// waitAsleep waits until c has n calls asleep in futex.Wait.
func waitAsleep(t *testing.T, c *shmconn.Conn, n int32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for shmconn.Asleep(c) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls asleep after 10s, want %d", shmconn.Asleep(c), n)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// result is what a Read or Write in a goroutine returned.
type result struct {
	n   int
	err error
}

func goRead(c *shmconn.Conn, p []byte) <-chan result {
	ch := make(chan result, 1)
	go func() {
		n, err := c.Read(p)
		ch <- result{n, err}
	}()
	return ch
}

func goWrite(c *shmconn.Conn, p []byte) <-chan result {
	ch := make(chan result, 1)
	go func() {
		n, err := c.Write(p)
		ch <- result{n, err}
	}()
	return ch
}

// await returns the result from ch, failing the test if it takes longer
// than two seconds (the calls under test should end within milliseconds).
func await(t *testing.T, what string, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(2 * time.Second):
		t.Fatalf("%s still blocked after 2s", what)
		return result{}
	}
}

// TestWrapAround writes and reads odd-sized pieces in lock step, so that
// every piece size meets every position of the ring.
func TestWrapAround(t *testing.T) {
	const capacity = 4096
	p := newPair(t, capacity, nil)
	data := stream(1, 1<<20)
	buf := make([]byte, capacity)
	sizes := []int{1, 7, 13, 61, 127, 509, 1021, 2039, 4093, 4096}
	off := 0
	for i := 0; off < len(data); i++ {
		k := min(sizes[i%len(sizes)], len(data)-off)
		if n, err := p.client.Write(data[off : off+k]); n != k || err != nil {
			t.Fatalf("Write(%d bytes) = %d, %v", k, n, err)
		}
		// Read the piece back in reads of another odd size.
		rsize := sizes[(i*3+1)%len(sizes)]
		for got := 0; got < k; {
			n, err := p.server.Read(buf[:min(rsize, k-got)])
			if err != nil || n == 0 {
				t.Fatalf("Read = %d, %v", n, err)
			}
			if !bytes.Equal(buf[:n], data[off+got:off+got+n]) {
				t.Fatalf("bytes %d-%d differ", off+got, off+got+n)
			}
			got += n
		}
		off += k
	}
}

// TestReadReturnsWhatIsThere checks that Read returns as soon as some
// bytes are there, not waiting to fill p.
func TestReadReturnsWhatIsThere(t *testing.T) {
	p := newPair(t, 4096, nil)
	if _, err := p.client.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if n, err := p.server.Read(buf); n != 3 || err != nil || string(buf[:n]) != "abc" {
		t.Fatalf("Read = %d %q, %v; want 3 \"abc\", nil", n, buf[:n], err)
	}
	if n, err := p.server.Read(nil); n != 0 || err != nil {
		t.Errorf("Read(nil) = %d, %v; want 0, nil", n, err)
	}
	if n, err := p.client.Write(nil); n != 0 || err != nil {
		t.Errorf("Write(nil) = %d, %v; want 0, nil", n, err)
	}
}

// TestLargeWrite writes several times the capacity in one Write.
func TestLargeWrite(t *testing.T) {
	for _, spin := range []time.Duration{0, -1} {
		t.Run(fmt.Sprintf("spin=%v", spin), func(t *testing.T) {
			const capacity = 4096
			p := newPair(t, capacity, &shmconn.Options{Spin: spin})
			data := stream(2, 7*capacity/2+3)
			w := goWrite(p.client, data)
			got := make([]byte, len(data))
			if _, err := io.ReadFull(p.server, got); err != nil {
				t.Fatal(err)
			}
			if r := await(t, "Write", w); r.n != len(data) || r.err != nil {
				t.Fatalf("Write = %d, %v; want %d, nil", r.n, r.err, len(data))
			}
			if !bytes.Equal(got, data) {
				t.Fatal("data read differs from data written")
			}
		})
	}
}

// TestStreamChecksum streams 32 MiB in random-sized writes and reads and
// compares checksums.
func TestStreamChecksum(t *testing.T) {
	const total = 32 << 20
	p := newPair(t, 64<<10, nil)
	data := stream(3, 1<<20)
	var wsum [sha256.Size]byte
	werr := make(chan error, 1)
	go func() {
		h := sha256.New()
		r := rand.New(rand.NewPCG(4, 5))
		for sent := 0; sent < total; {
			k := min(1+r.IntN(200<<10), total-sent)
			off := r.IntN(len(data) - k + 1)
			if n, err := p.client.Write(data[off : off+k]); n != k || err != nil {
				werr <- fmt.Errorf("Write = %d, %v", n, err)
				return
			}
			h.Write(data[off : off+k])
			sent += k
		}
		h.Sum(wsum[:0])
		werr <- nil
	}()
	h := sha256.New()
	r := rand.New(rand.NewPCG(6, 7))
	buf := make([]byte, 256<<10)
	for got := 0; got < total; {
		n, err := p.server.Read(buf[:1+r.IntN(len(buf))])
		if err != nil {
			t.Fatalf("Read after %d bytes: %v", got, err)
		}
		h.Write(buf[:n])
		got += n
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if rsum := h.Sum(nil); !bytes.Equal(rsum, wsum[:]) {
		t.Fatalf("checksum read %x, written %x", rsum, wsum)
	}
}

// TestFullDuplex sends 8 MiB each way at once through small rings, each
// side writing and reading in its own goroutine.
func TestFullDuplex(t *testing.T) {
	const total = 8 << 20
	p := newPair(t, 4096, nil)
	sides := []struct {
		conn *shmconn.Conn
		out  []byte
	}{{p.client, stream(10, total)}, {p.server, stream(11, total)}}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i, s := range sides {
		peerOut := sides[1-i].out
		wg.Add(2)
		go func() {
			defer wg.Done()
			for off := 0; off < total; off += 3000 {
				if _, err := s.conn.Write(s.out[off:min(off+3000, total)]); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			got := make([]byte, total)
			if _, err := io.ReadFull(s.conn, got); err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(got, peerOut) {
				errs <- errors.New("bytes read differ from bytes written")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestConcurrentReadersWriters has four goroutines writing 8-byte records
// and four reading them on one pair: calls of one direction take turns,
// so records arrive whole as long as every read takes a multiple of 8.
func TestConcurrentReadersWriters(t *testing.T) {
	const perWriter = 20000
	p := newPair(t, 4096, nil)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rec [8]byte
			for i := range perWriter {
				rec = [8]byte{byte(w), byte(i), byte(i >> 8), byte(i >> 16), 0xAA, 0xBB, 0xCC, 0xDD}
				if _, err := p.client.Write(rec[:]); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var records atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 8)
			for records.Load() < 4*perWriter {
				p.server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				n, err := io.ReadFull(p.server, buf)
				if errors.Is(err, os.ErrDeadlineExceeded) && n == 0 {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if buf[0] >= 4 || !bytes.Equal(buf[4:], []byte{0xAA, 0xBB, 0xCC, 0xDD}) {
					t.Errorf("torn record %x", buf)
					return
				}
				records.Add(1)
			}
		}()
	}
	wg.Wait()
	if got := records.Load(); got != 4*perWriter {
		t.Errorf("read %d records, want %d", got, 4*perWriter)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
}

func TestDeadlines(t *testing.T) {
	for _, spin := range []time.Duration{0, -1} {
		t.Run(fmt.Sprintf("spin=%v", spin), func(t *testing.T) {
			p := newPair(t, 4096, &shmconn.Options{Spin: spin})
			buf := make([]byte, 10)

			// A deadline in the past fails a Read at once.
			p.server.SetReadDeadline(time.Unix(1, 0))
			start := time.Now()
			if n, err := p.server.Read(buf); n != 0 || !isTimeout(err) {
				t.Fatalf("Read past deadline = %d, %v; want 0, a timeout", n, err)
			}
			if d := time.Since(start); d > 100*time.Millisecond {
				t.Errorf("Read past deadline took %v", d)
			}
			// ... but not one that finds data.
			p.client.Write([]byte("x"))
			if n, err := p.server.Read(buf); n != 1 || err != nil {
				t.Fatalf("Read with data past deadline = %d, %v; want 1, nil", n, err)
			}

			// A deadline in the future expires.
			p.server.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			start = time.Now()
			if _, err := p.server.Read(buf); !isTimeout(err) {
				t.Fatalf("Read = %v, want a timeout", err)
			}
			if d := time.Since(start); d < 15*time.Millisecond {
				t.Errorf("Read timed out after %v, before its deadline", d)
			}

			// A deadline set from another goroutine wakes a blocked Read.
			p.server.SetReadDeadline(time.Time{})
			r := goRead(p.server, buf)
			waitAsleepOrSpin(t, p.server, spin)
			p.server.SetReadDeadline(time.Unix(1, 0))
			if res := await(t, "Read after the deadline moved into the past", r); !isTimeout(res.err) {
				t.Fatalf("Read = %d, %v; want a timeout", res.n, res.err)
			}

			// Extending a deadline keeps a blocked Read blocked; the new
			// deadline ends it.
			p.server.SetReadDeadline(time.Now().Add(time.Hour))
			r = goRead(p.server, buf)
			waitAsleepOrSpin(t, p.server, spin)
			p.server.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
			if res := await(t, "Read with a shortened deadline", r); !isTimeout(res.err) {
				t.Fatalf("Read = %d, %v; want a timeout", res.n, res.err)
			}

			// Clearing the deadline lets Reads block again, and data
			// ends them.
			p.server.SetReadDeadline(time.Time{})
			r = goRead(p.server, buf)
			waitAsleepOrSpin(t, p.server, spin)
			p.client.Write([]byte("yz"))
			if res := await(t, "Read", r); res.n != 2 || res.err != nil {
				t.Fatalf("Read = %d, %v; want 2, nil", res.n, res.err)
			}

			// Write deadlines: fill the ring, then a Write blocks until
			// its deadline.
			full := make([]byte, 4096)
			if n, err := p.client.Write(full); n != len(full) || err != nil {
				t.Fatalf("Write to fill the ring = %d, %v", n, err)
			}
			p.client.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
			if n, err := p.client.Write([]byte("more")); n != 0 || !isTimeout(err) {
				t.Fatalf("Write to a full ring = %d, %v; want 0, a timeout", n, err)
			}
			p.client.SetWriteDeadline(time.Time{})
			w := goWrite(p.client, []byte("more"))
			waitAsleepOrSpin(t, p.client, spin)
			p.client.SetDeadline(time.Unix(1, 0))
			if res := await(t, "Write after the deadline moved into the past", w); res.n != 0 || !isTimeout(res.err) {
				t.Fatalf("Write = %d, %v; want 0, a timeout", res.n, res.err)
			}
		})
	}
}

// waitAsleepOrSpin waits until the blocked call has fallen asleep, when
// the Conn sleeps without spinning; with spinning, the call may be
// spinning or asleep, both of which must see the change that follows.
func waitAsleepOrSpin(t *testing.T, c *shmconn.Conn, spin time.Duration) {
	t.Helper()
	if spin < 0 {
		waitAsleep(t, c, 1)
	}
}

func TestCloseWakesBlockedCalls(t *testing.T) {
	for _, spin := range []time.Duration{0, -1} {
		t.Run(fmt.Sprintf("spin=%v", spin), func(t *testing.T) {
			p := newPair(t, 4096, &shmconn.Options{Spin: spin})
			r := goRead(p.client, make([]byte, 10))
			if _, err := p.client.Write(make([]byte, 4096)); err != nil {
				t.Fatal(err)
			}
			w := goWrite(p.client, []byte("blocked"))
			if spin < 0 {
				waitAsleep(t, p.client, 2)
			}
			if err := p.client.Close(); err != nil {
				t.Fatalf("Close = %v", err)
			}
			if res := await(t, "Read", r); !errors.Is(res.err, net.ErrClosed) {
				t.Errorf("blocked Read = %d, %v; want net.ErrClosed", res.n, res.err)
			}
			if res := await(t, "Write", w); !errors.Is(res.err, net.ErrClosed) {
				t.Errorf("blocked Write = %d, %v; want net.ErrClosed", res.n, res.err)
			}
			if _, err := p.client.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Read after Close = %v, want net.ErrClosed", err)
			}
			if _, err := p.client.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Write after Close = %v, want net.ErrClosed", err)
			}
			if err := p.client.SetDeadline(time.Now()); !errors.Is(err, net.ErrClosed) {
				t.Errorf("SetDeadline after Close = %v, want net.ErrClosed", err)
			}
			if err := p.client.Close(); err != nil {
				t.Errorf("second Close = %v", err)
			}
		})
	}
}

// TestCloseConcurrent closes a Conn from several goroutines while others
// read and write: every Close returns after every call has ended.
func TestCloseConcurrent(t *testing.T) {
	for range 20 {
		p := newPair(t, 4096, nil)
		var calls sync.WaitGroup
		var ended atomic.Int32
		for range 3 {
			calls.Add(2)
			go func() {
				defer calls.Done()
				defer ended.Add(1)
				buf := make([]byte, 100)
				for {
					if _, err := p.client.Read(buf); err != nil {
						return
					}
				}
			}()
			go func() {
				defer calls.Done()
				defer ended.Add(1)
				for {
					if _, err := p.client.Write(make([]byte, 1000)); err != nil {
						return
					}
				}
			}()
		}
		var closers sync.WaitGroup
		for range 3 {
			closers.Add(1)
			go func() {
				defer closers.Done()
				p.client.Close()
				// Calls that had not started may still be entering,
				// but none of them touches the rings any more; the
				// ones in progress have ended.
			}()
		}
		closers.Wait()
		calls.Wait()
		if ended.Load() != 6 {
			t.Fatalf("%d calls ended", ended.Load())
		}
	}
}

func TestPeerCloseEOF(t *testing.T) {
	p := newPair(t, 4096, nil)
	if _, err := p.client.Write([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	p.client.Close()
	got, err := io.ReadAll(p.server)
	if string(got) != "last words" || err != nil {
		t.Fatalf("ReadAll = %q, %v; want \"last words\", nil", got, err)
	}
	if n, err := p.server.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("Read after EOF = %d, %v; want 0, io.EOF", n, err)
	}

	// A blocked Read wakes with EOF.
	for _, spin := range []time.Duration{0, -1} {
		p := newPair(t, 4096, &shmconn.Options{Spin: spin})
		r := goRead(p.server, make([]byte, 1))
		waitAsleepOrSpin(t, p.server, spin)
		p.client.Close()
		if res := await(t, "Read", r); res.n != 0 || res.err != io.EOF {
			t.Errorf("spin %v: blocked Read after peer Close = %d, %v; want 0, io.EOF", spin, res.n, res.err)
		}
	}
}

func TestPeerCloseEPIPE(t *testing.T) {
	p := newPair(t, 4096, nil)
	p.server.Close()
	if n, err := p.client.Write([]byte("anyone?")); n != 0 || !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("Write after peer Close = %d, %v; want 0, EPIPE", n, err)
	}

	// A Write blocked on a full ring wakes with EPIPE, reporting what it
	// wrote.
	for _, spin := range []time.Duration{0, -1} {
		p := newPair(t, 4096, &shmconn.Options{Spin: spin})
		w := goWrite(p.client, make([]byte, 5000))
		waitAsleepOrSpin(t, p.client, spin)
		p.server.Close()
		// With spinning, the Write may not have started before the
		// Close, and then writes nothing.
		if res := await(t, "Write", w); !(res.n == 4096 || spin >= 0 && res.n == 0) || !errors.Is(res.err, syscall.EPIPE) {
			t.Errorf("spin %v: blocked Write after peer Close = %d, %v; want 4096, EPIPE", spin, res.n, res.err)
		}
	}
}

// TestCorruptPositions writes impossible positions into the rings and
// checks that Read and Write report ErrCorrupt, for good.
func TestCorruptPositions(t *testing.T) {
	const capacity = 4096
	tests := []struct {
		name    string
		corrupt func(p pair)
		read    bool // the server's Read fails (else the client's Write)
	}{
		{"tail beyond capacity", func(p pair) { atomic.StoreUint64(shmconn.Word64(p.c2s, shmconn.OffTail), 100+capacity+1) }, true},
		{"tail backwards", func(p pair) { atomic.StoreUint64(shmconn.Word64(p.c2s, shmconn.OffTail), 50) }, true},
		{"tail below head", func(p pair) { atomic.StoreUint64(shmconn.Word64(p.c2s, shmconn.OffTail), 0) }, true},
		{"tail huge", func(p pair) { atomic.StoreUint64(shmconn.Word64(p.c2s, shmconn.OffTail), 1<<63) }, true},
		{"head backwards", func(p pair) { atomic.StoreUint64(shmconn.Word64(p.c2s, shmconn.OffHead), 10) }, false},
		{"head beyond tail", func(p pair) { atomic.StoreUint64(shmconn.Word64(p.c2s, shmconn.OffHead), 4101) }, false},
		{"head huge", func(p pair) { atomic.StoreUint64(shmconn.Word64(p.c2s, shmconn.OffHead), ^uint64(0)) }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair(t, capacity, nil)
			// 100 bytes written, 60 read: tail 100, head 60.
			p.client.Write(make([]byte, 100))
			io.ReadFull(p.server, make([]byte, 60))
			if !tc.read {
				// Read the rest, and write more than the room the
				// client knows of, so that it loads the head: tail
				// 4100, head 100.
				io.ReadFull(p.server, make([]byte, 40))
				p.client.Write(make([]byte, 4000))
			}
			tc.corrupt(p)
			for i := range 2 { // the error is sticky
				var err error
				if tc.read {
					p.server.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
					_, err = p.server.Read(make([]byte, capacity))
				} else {
					p.client.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
					_, err = p.client.Write(make([]byte, 2*capacity))
				}
				if !errors.Is(err, shmconn.ErrCorrupt) {
					t.Fatalf("call %d: error %v, want ErrCorrupt", i+1, err)
				}
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	const capacity = 4096
	seg := segment(t, capacity)
	good, other := rings(t, seg, capacity)
	fresh := func() []byte {
		if err := shmconn.InitRing(good, capacity); err != nil {
			t.Fatal(err)
		}
		return good
	}
	tests := []struct {
		name    string
		rx      func() []byte
		corrupt bool // wantErrCorrupt
	}{
		{"bad magic", func() []byte { m := fresh(); m[shmconn.OffMagic]++; return m }, true},
		{"bad version", func() []byte { m := fresh(); m[shmconn.OffVersion]++; return m }, true},
		{"capacity not a power of two", func() []byte {
			m := fresh()
			*shmconn.Word64(m, shmconn.OffCapacity) = capacity + 8
			return m
		}, true},
		{"capacity too small", func() []byte { m := fresh(); *shmconn.Word64(m, shmconn.OffCapacity) = 2048; return m }, true},
		{"capacity beyond the slice", func() []byte { return fresh()[:shmconn.RingSize(capacity)-1] }, true},
		{"shorter than the header", func() []byte { return fresh()[:100] }, true},
		{"positions", func() []byte { m := fresh(); *shmconn.Word64(m, shmconn.OffTail) = capacity + 1; return m }, true},
		{"misaligned", func() []byte { return fresh()[8:] }, false},
		{"overlapping", func() []byte { return other }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := shmconn.New(tc.rx(), other, nil)
			if err == nil {
				t.Fatal("New succeeded")
			}
			if got := errors.Is(err, shmconn.ErrCorrupt); got != tc.corrupt {
				t.Errorf("New = %v; matches ErrCorrupt: %v, want %v", err, got, tc.corrupt)
			}
		})
	}
	for _, c := range []int{0, -4096, 4095, 4097, 2048, 3 << 12, shmconn.MaxCapacity * 2} {
		if err := shmconn.InitRing(good, c); err == nil {
			t.Errorf("InitRing(capacity %d) succeeded", c)
		}
	}
	if err := shmconn.InitRing(good[:shmconn.RingSize(capacity)-1], capacity); err == nil {
		t.Errorf("InitRing on a short slice succeeded")
	}
	if err := shmconn.InitRing(good[64:], capacity/2); err == nil {
		t.Errorf("InitRing with a capacity below the minimum succeeded")
	}
	if err := shmconn.InitRing(good[8:], capacity); err == nil {
		t.Errorf("InitRing on a misaligned slice succeeded")
	}
}

// TestScribble writes random bytes over random words of the ring headers
// of a working pair, at random moments, and checks that nothing panics or
// hangs: calls may fail, within their deadline.
func TestScribble(t *testing.T) {
	const capacity = 4096
	seg := segment(t, capacity)
	c2s, s2c := rings(t, seg, capacity)
	r := rand.New(rand.NewPCG(8, 9))
	buf := make([]byte, 3*capacity)
	for iter := range 300 {
		for _, m := range [][]byte{c2s, s2c} {
			if err := shmconn.InitRing(m, capacity); err != nil {
				t.Fatal(err)
			}
		}
		scribble := func() {
			m := [][]byte{c2s, s2c}[r.IntN(2)]
			for range 1 + r.IntN(4) {
				// Mostly the words that matter, sometimes anywhere.
				offs := []int{shmconn.OffTail, shmconn.OffHead, shmconn.OffProdClosed, shmconn.OffConsClosed,
					shmconn.OffDataWait, shmconn.OffSpaceWait, shmconn.OffCapacity, r.IntN(shmconn.HeaderSize)}
				off := offs[r.IntN(len(offs))]
				for i := range 1 + r.IntN(8) {
					if off+i < shmconn.HeaderSize {
						m[off+i] = byte(r.Uint32())
					}
				}
			}
		}
		if iter%4 == 0 {
			scribble() // before New, too
		}
		opts := &shmconn.Options{Spin: time.Duration(r.IntN(3)-1) * time.Microsecond}
		a, errA := shmconn.New(s2c, c2s, opts)
		b, errB := shmconn.New(c2s, s2c, opts)
		if errA != nil || errB != nil {
			if a != nil {
				a.Close()
			}
			if b != nil {
				b.Close()
			}
			continue
		}
		var wg sync.WaitGroup
		for _, c := range []*shmconn.Conn{a, b} {
			c.SetDeadline(time.Now().Add(2 * time.Millisecond))
			wsize := 1 + r.IntN(len(buf))
			wg.Add(2)
			go func() {
				defer wg.Done()
				for range 4 {
					c.Write(buf[:wsize])
				}
			}()
			go func() {
				defer wg.Done()
				rb := make([]byte, capacity)
				for range 4 {
					c.Read(rb)
				}
			}()
		}
		scribble()
		wg.Wait()
		done := make(chan struct{})
		go func() {
			a.Close()
			b.Close()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("iteration %d: Close hangs", iter)
		}
	}
}

// TestSpinLimit blocks more Reads than may spin at once, each on its own
// Conn with a spin longer than the test, and checks that the surplus goes
// straight to sleep.
func TestSpinLimit(t *testing.T) {
	limit := shmconn.SpinLimit()
	n := int(limit) + 3
	var pairs []pair
	var reads []<-chan result
	for range n {
		p := newPair(t, 4096, &shmconn.Options{Spin: time.Hour})
		pairs = append(pairs, p)
		reads = append(reads, goRead(p.server, make([]byte, 1)))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		asleep := int32(0)
		for _, p := range pairs {
			asleep += shmconn.Asleep(p.server)
		}
		if s := shmconn.Spinners(); s > limit {
			t.Fatalf("%d goroutines spinning, limit %d", s, limit)
		}
		if asleep == int32(n)-limit && shmconn.Spinners() == limit {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %d Reads asleep, %d spinning; want %d and %d", asleep, shmconn.Spinners(), int32(n)-limit, limit)
		}
		time.Sleep(time.Millisecond)
	}
	for i, p := range pairs {
		p.client.Write([]byte{1})
		if res := await(t, "Read", reads[i]); res.n != 1 || res.err != nil {
			t.Errorf("Read = %d, %v", res.n, res.err)
		}
	}
	if s := shmconn.Spinners(); s != 0 {
		t.Errorf("%d goroutines spinning after every Read returned", s)
	}
}

func TestAddrs(t *testing.T) {
	p := newPair(t, 4096, nil)
	if a := p.client.LocalAddr(); a.Network() != "shm" || a.String() != "shm" {
		t.Errorf("default LocalAddr = %s %s", a.Network(), a)
	}
	seg := segment(t, 4096)
	c2s, s2c := rings(t, seg, 4096)
	c, err := shmconn.New(s2c, c2s, &shmconn.Options{LocalAddr: shmconn.Addr("client"), RemoteAddr: shmconn.Addr("server")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.LocalAddr().String() != "client" || c.RemoteAddr().String() != "server" {
		t.Errorf("addresses %s, %s; want client, server", c.LocalAddr(), c.RemoteAddr())
	}
}

// TestPollBackoff checks the adaptive polling: a poll that fails and is
// followed by a long sleep makes the next waits sleep at once, and a poll
// that succeeds restores polling.
func TestPollBackoff(t *testing.T) {
	p := newPair(t, 4096, &shmconn.Options{Spin: 10 * time.Millisecond})
	buf := make([]byte, 1)
	// lateRead reads while the peer writes only once the Read sleeps,
	// and reports whether the Read polled first.
	read := func(after time.Duration) (polled bool) {
		ch := goRead(p.server, buf)
		for shmconn.Asleep(p.server) == 0 {
			if shmconn.Spinners() > 0 {
				polled = true
			}
			runtime.Gosched()
		}
		time.Sleep(after)
		p.client.Write([]byte{1})
		if res := await(t, "Read", ch); res.err != nil {
			t.Fatal(res.err)
		}
		return polled
	}
	lateRead := func() bool { return read(100 * time.Millisecond) } // well past a poll's length
	// A near miss, a failed poll whose sleep is short, keeps polling.
	if !read(0) {
		t.Fatal("first wait did not poll")
	}
	if got := shmconn.SkipPolls(p.server); got != 0 {
		t.Fatalf("after a near miss, %d waits to skip, want 0", got)
	}
	if !lateRead() {
		t.Fatal("wait after a near miss did not poll")
	}
	if got := shmconn.SkipPolls(p.server); got != 2 {
		t.Fatalf("after a failed poll and a long sleep, %d waits to skip, want 2", got)
	}
	for i := range 2 {
		if lateRead() {
			t.Errorf("wait %d after the failed poll polled", i)
		}
	}
	if !lateRead() {
		t.Fatal("no poll once the skipped waits were over")
	}
	if got := shmconn.SkipPolls(p.server); got != 4 {
		t.Fatalf("after a second failed poll, %d waits to skip, want 4", got)
	}
	for range 4 {
		lateRead()
	}
	// A poll that succeeds resets the backoff.
	ch := goRead(p.server, buf)
	for shmconn.Spinners() == 0 {
		runtime.Gosched()
	}
	p.client.Write([]byte{1})
	if res := await(t, "Read", ch); res.err != nil {
		t.Fatal(res.err)
	}
	lateRead()
	if got := shmconn.SkipPolls(p.server); got != 2 {
		t.Errorf("after a successful poll and one failure, %d waits to skip, want 2", got)
	}
}
