package manager

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/shmtest"
)

// countRequests returns a counter and a preparation that makes a server
// count the requests it handles.
func countRequests() (*atomic.Int64, func(*Server)) {
	var n atomic.Int64
	return &n, func(s *Server) { s.testHook = func(request) { n.Add(1) } }
}

func TestWrongAuthKeyRefused(t *testing.T) {
	for _, tr := range serverTransports(t)[2:4] { // tcp and tls
		t.Run(tr.name, func(t *testing.T) {
			handled, counting := countRequests()
			ts := startServer(t, tr, counting)
			for _, key := range [][]byte{[]byte("wrong key"), nil} {
				opts := tr.client
				opts.AuthKey = key
				if _, err := Dial(ctx, tr.network, ts.address, &opts); !errors.Is(err, ErrAuth) {
					t.Errorf("Dial with key %q = %v, want ErrAuth", key, err)
				}
			}
			// A client that skips the handshake and sends a request
			// straight away has it ignored and the connection closed.
			raw := rawConn(t, tr, ts.address)
			var w frameWriter
			for i := range 10 {
				w.beginRequest(uint64(i), opPing, 0)
				w.end()
			}
			raw.Write(w.buf)
			raw.SetReadDeadline(time.Now().Add(10 * time.Second))
			// The server closes the connection (a reset, with our
			// unread request still queued, is fine); it must not
			// wait for more.
			if _, err := io.ReadAll(raw); errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("server kept the connection open: %v", err)
			}
			if n := handled.Load(); n != 0 {
				t.Errorf("server handled %d requests from unauthenticated clients", n)
			}
			// A client with the key is still served.
			c := ts.dial(t)
			must(t, c.Ping(ctx))
		})
	}
}

func TestClientRefusesServerWithoutKey(t *testing.T) {
	ts := startServer(t, transports(t)[0])
	if _, err := Dial(ctx, "unix", ts.address, &Options{AuthKey: testKey}); !errors.Is(err, ErrAuth) {
		t.Errorf("Dial with a key to a server without one = %v, want ErrAuth", err)
	}
}

func TestTCPNeedsAuthKey(t *testing.T) {
	l, err := Listen("tcp", "127.0.0.1:0")
	must(t, err)
	s := NewServer(nil)
	if err := s.Serve(l); err == nil || errors.Is(err, ErrClosed) {
		t.Errorf("Serve on TCP without a key = %v, want a refusal", err)
	}
}

func TestPeerUIDRefused(t *testing.T) {
	tr := transports(t)[0]
	otherUser := func(s *Server) { s.uid = os.Geteuid() + 1 } // as if the server ran as another user
	handled, counting := countRequests()
	ts := startServer(t, tr, otherUser, counting)
	if _, err := Dial(ctx, "unix", ts.address, nil); !errors.Is(err, ErrAuth) {
		t.Errorf("Dial as another user = %v, want ErrAuth", err)
	}
	if handled.Load() != 0 {
		t.Error("server handled a refused peer's request")
	}
	allowed := startServer(t, tr, otherUser, func(s *Server) { s.opts.AllowUIDs = []int{os.Geteuid()} })
	must(t, allowed.dial(t).Ping(ctx))
}

func TestSocketMode(t *testing.T) {
	ts := startServer(t, transports(t)[0])
	fi, err := os.Stat(ts.address)
	must(t, err)
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("socket mode %v, want 0600", perm)
	}
}

// rawConn connects to the server and returns the connection without a
// handshake.
func rawConn(t *testing.T, tr transport, address string) net.Conn {
	t.Helper()
	c, err := net.Dial(tr.network, address)
	must(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// handshaken connects over a plain Unix socket and completes the
// handshake, for tests that then write frames by hand.
func handshaken(t *testing.T, ts *testServer) (net.Conn, *frameReader) {
	t.Helper()
	c := rawConn(t, ts.tr, ts.address)
	if _, err := clientHandshake(c, nil, false, false, func(v []byte) error {
		_, err := io.ReadFull(c, v)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(time.Minute))
	return c, newFrameReader(c, DefaultMaxFrame)
}

// attachRaw opens or creates the object name of kind k over a connection
// from handshaken, and returns its id.
func attachRaw(t *testing.T, raw net.Conn, fr *frameReader, k kind, name string) uint32 {
	t.Helper()
	var w frameWriter
	w.beginRequest(1, opAttach, 0)
	w.uint(uint64(k))
	w.text(name)
	w.uint(attachOpenOrCreate)
	w.int(0)
	w.end()
	raw.Write(w.buf)
	var id uint64
	res := results{it: readResponse(t, fr).results}
	res.uint(&id)
	must(t, res.done())
	return uint32(id)
}

func readResponse(t *testing.T, fr *frameReader) response {
	t.Helper()
	body, err := fr.next()
	if err != nil {
		t.Fatalf("reading a response: %v", err)
	}
	r, err := parseResponse(body)
	if err != nil {
		t.Fatalf("parsing a response: %v", err)
	}
	return r
}

func TestMalformedFrames(t *testing.T) {
	ts := startServer(t, transports(t)[0])

	t.Run("bad items answered, connection kept", func(t *testing.T) {
		c, fr := handshaken(t, ts)
		cases := [][]byte{
			{0, 0, 0, 9, 1, 2},       // item longer than its frame
			{0, 0},                   // truncated item length
			{0, 0, 0, 0},             // empty item
			{0, 0, 0, 1, 0xff},       // a lone CBOR break is not an item
			{0, 0, 0, 2, 0x9f, 0x01}, // indefinite-length array, refused
		}
		for i, args := range cases {
			var w frameWriter
			w.beginRequest(uint64(100+i), opAttach, 0)
			w.buf = append(w.buf, args...)
			w.end()
			c.Write(w.buf)
			r := readResponse(t, fr)
			if r.id != uint64(100+i) || r.status != statusBadRequest {
				t.Errorf("case %d: response id %d status %d, want id %d BadRequest", i, r.id, r.status, 100+i)
			}
		}
		for _, o := range []op{999, opFirstObject - 1, opMapGet} {
			var w frameWriter
			w.beginRequest(7, o, 12345)
			w.end()
			c.Write(w.buf)
			if r := readResponse(t, fr); r.status == statusOK {
				t.Errorf("op %d on object 12345 succeeded", o)
			}
		}
		var w frameWriter
		w.beginRequest(8, opPing, 0)
		w.end()
		c.Write(w.buf)
		if r := readResponse(t, fr); r.id != 8 || r.status != statusOK {
			t.Errorf("ping after bad requests: %+v", r)
		}
	})

	t.Run("oversized frame closes", func(t *testing.T) {
		c, fr := handshaken(t, ts)
		c.Write([]byte{0xff, 0xff, 0xff, 0xff, 1})
		r := readResponse(t, fr)
		if r.id != 0 || r.status != statusTooLarge {
			t.Errorf("response %+v, want id 0 TooLarge", r)
		}
		if _, err := fr.next(); err == nil {
			t.Error("connection still open after an oversized frame")
		}
	})

	t.Run("wrong frame type closes", func(t *testing.T) {
		c, fr := handshaken(t, ts)
		c.Write([]byte{0, 0, 0, 15, typeResponse, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0})
		if r := readResponse(t, fr); r.id != 0 || r.status != statusBadRequest {
			t.Errorf("response %+v, want id 0 BadRequest", r)
		}
		if _, err := fr.next(); err == nil {
			t.Error("connection still open after a response frame from the client")
		}
	})

	t.Run("short frame closes", func(t *testing.T) {
		c, fr := handshaken(t, ts)
		c.Write([]byte{0, 0, 0, 3, 1, 2, 3})
		readResponse(t, fr)
		if _, err := fr.next(); err == nil {
			t.Error("connection still open after a short frame")
		}
	})

	// The server is unharmed.
	c := ts.dial(t)
	must(t, c.Ping(ctx))
}

func TestTooLarge(t *testing.T) {
	tr := transports(t)[0]
	tr.server.MaxFrame = 64 << 10
	tr.client.MaxFrame = 64 << 10
	ts := startServer(t, tr)
	c := ts.dial(t)
	d, _ := OpenDict[string, string](ctx, c, "d")
	big := strings.Repeat("x", 100<<10)
	if err := d.Set(ctx, "k", big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Set of a value over the limit = %v, want ErrTooLarge", err)
	}
	// Values under the limit whose sum is over it: Items is refused,
	// the connection survives.
	for i := range 3 {
		must(t, d.Set(ctx, string(rune('a'+i)), strings.Repeat("y", 30<<10)))
	}
	if _, err := d.Items(ctx); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Items over the limit = %v, want ErrTooLarge", err)
	}
	must(t, c.Ping(ctx))
}

func TestHandlerPanic(t *testing.T) {
	ts := startServer(t, transports(t)[0], func(s *Server) {
		s.testHook = func(r request) {
			if r.op == opMapLen {
				panic("injected")
			}
		}
	})
	c := ts.dial(t)
	d, _ := OpenDict[string, int](ctx, c, "d")
	if _, err := d.Len(ctx); !errors.Is(err, ErrServer) {
		t.Errorf("Len with a panicking handler = %v, want ErrServer", err)
	}
	must(t, d.Set(ctx, "k", 1))
	if v, _, err := d.Get(ctx, "k"); v != 1 || err != nil {
		t.Errorf("Get after the panic = %d, %v", v, err)
	}
}

func TestShutdownDrains(t *testing.T) {
	forEachServerTransport(t, func(t *testing.T, ts *testServer) {
		c := ts.dial(t)
		l, _ := OpenLock(ctx, c, "L")
		q, _ := OpenQueue[int](ctx, c, "Q", 0)
		must(t, l.Acquire(ctx))
		parked := make(chan error, 1)
		go func() {
			_, err := q.Get(ctx)
			parked <- err
		}()
		// Pipelined requests in flight when Shutdown starts are
		// answered.
		v, _ := OpenValue[int](ctx, c, "v")
		b := c.NewBatch()
		var fs []*Future[int]
		for range 1000 {
			fs = append(fs, v.AddIn(b, 1))
		}
		batchDone := make(chan error, 1)
		go func() { batchDone <- b.Do(ctx) }()
		time.Sleep(5 * time.Millisecond)
		must(t, ts.Shutdown(ctx))
		if err := <-parked; !errors.Is(err, ErrClosed) {
			t.Errorf("parked Get at Shutdown = %v, want ErrClosed", err)
		}
		<-batchDone
		answered := 0
		for _, f := range fs {
			if _, err := f.Result(); err == nil {
				answered++
			} else if !errors.Is(err, ErrClosed) {
				t.Errorf("batch item: %v", err)
			}
		}
		t.Logf("%d of 1000 pipelined requests answered before Shutdown closed the connection", answered)
		if err := c.Ping(ctx); !errors.Is(err, ErrClosed) {
			t.Errorf("Ping after Shutdown = %v, want ErrClosed", err)
		}
		must(t, ts.Close())
	})
}

// TestManyConnections opens and closes 1000 connections and checks that
// the server keeps neither goroutines nor descriptors nor mappings.
func TestManyConnections(t *testing.T) {
	for _, tr := range transports(t)[:3] {
		t.Run(tr.name, func(t *testing.T) {
			ts := startServer(t, tr)
			c := ts.dial(t) // warm up: the first connection starts the poller
			must(t, c.Ping(ctx))
			goroutines, fds, maps := runtime.NumGoroutine(), openFDs(t), mappings(t)
			const total, concurrent = 1000, 50
			for i := 0; i < total; i += concurrent {
				parallelDo(concurrent, func(int) {
					c, err := Dial(ctx, tr.network, ts.address, &tr.client)
					if err != nil {
						t.Error(err)
						return
					}
					if err := c.Ping(ctx); err != nil {
						t.Error(err)
					}
					c.Close()
				})
			}
			shmtest.WaitUntil(t, "connections to close", func() bool {
				ts.omu.Lock()
				conns := len(ts.conns)
				ts.omu.Unlock()
				return conns == 1 && runtime.NumGoroutine() <= goroutines && openFDs(t) <= fds && mappings(t) <= maps
			})
		})
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// mappings counts the process's mappings of anonymous segments.
func mappings(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skip("no /proc/self/maps")
	}
	return bytes.Count(b, []byte("memfd:shmkit"))
}

// FuzzServerFrames feeds arbitrary bytes to a server connection as if a
// client had sent them after the handshake: the server must answer or
// close, never panic or hang, and must keep serving others.
func FuzzServerFrames(f *testing.F) {
	var w frameWriter
	w.beginRequest(1, opAttach, 0)
	w.uint(uint64(kindDict))
	w.text("d")
	w.uint(attachOpenOrCreate)
	w.int(0)
	w.end()
	w.beginRequest(2, opMapSet, 1)
	w.value("k")
	w.value(1)
	w.end()
	w.beginRequest(3, opMapAdd, 1)
	w.value("k")
	w.value(2.5)
	w.end()
	w.beginRequest(4, opMapItems, 1)
	w.end()
	f.Add(w.buf)
	f.Add([]byte{0, 0, 0, 15, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	s := NewServer(nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		defer client.Close()
		go io.Copy(io.Discard, client)
		c := newSconn(s, server)
		c.fr = newFrameReader(io.MultiReader(bytes.NewReader(data), eofReader{}), 1<<16)
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.run()
			server.Close()
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("server connection did not end")
		}
	})
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// FuzzParseResponse checks the client's decoder of server frames.
func FuzzParseResponse(f *testing.F) {
	var w frameWriter
	w.beginResponse(1, statusOK)
	w.uint(3)
	w.value(map[string]int{"a": 1})
	w.end()
	f.Add(w.buf[frameLenSize:])
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := parseResponse(body)
		if err != nil {
			return
		}
		res := results{it: r.results}
		for res.more() {
			var v any
			res.value(&v)
			res.err = nil
		}
		if binary.BigEndian.Uint64(body[1:]) != r.id {
			t.Fatal("id mismatch")
		}
	})
}

// TestSharedMemoryBound checks that connections of clients without bells
// beyond maxShmConns stay on the socket, and that a closed one frees its
// place; and that those with bells are not bounded.
func TestSharedMemoryBound(t *testing.T) {
	if !shmSupported {
		t.Skip("no shared-memory transport here")
	}
	ts := startServer(t, transports(t)[0])
	var bells []*Client
	for i := range 3 * maxShmConns() {
		c := ts.dial(t)
		bells = append(bells, c)
		if s, err := c.session(ctx); err != nil || s.rings == nil {
			t.Fatalf("connection %d with bells on shared memory: %v, %v; want true", i, s != nil && s.rings != nil, err)
		}
	}
	for _, c := range bells {
		c.Close()
	}
	ts.tr.client.noBells = true
	n := int(maxShmConns())
	var cs []*Client
	onShm := func(c *Client) bool {
		s, err := c.session(ctx)
		must(t, err)
		return s.rings != nil
	}
	for i := range n + 2 {
		c := ts.dial(t)
		cs = append(cs, c)
		if got, want := onShm(c), i < n; got != want {
			t.Fatalf("connection %d on shared memory: %v, want %v", i, got, want)
		}
	}
	cs[0].Close()
	shmtest.WaitUntil(t, "the server to drop a shared-memory connection", func() bool {
		return ts.shmConns.Load() < int32(n)
	})
	if !onShm(ts.dial(t)) {
		t.Error("a new connection after one closed is not on shared memory")
	}
}

// TestParkedIDReused sends two blocking requests with one id: the second
// is refused, and the first is cleaned up with its connection, so the lock
// is not granted to a dead connection.
func TestParkedIDReused(t *testing.T) {
	ts := startServer(t, transports(t)[0])
	c1 := ts.dial(t)
	l1, _ := OpenLock(ctx, c1, "L")
	must(t, l1.Acquire(ctx))
	raw, fr := handshaken(t, ts)
	id := attachRaw(t, raw, fr, kindLock, "L")
	var w frameWriter
	for range 2 {
		w.beginRequest(5, opLockAcquire, id)
		w.int(-1)
		w.end()
	}
	raw.Write(w.buf)
	if r := readResponse(t, fr); r.id != 5 || r.status != statusBadRequest {
		t.Errorf("second parked request with id 5: id %d status %d, want BadRequest", r.id, r.status)
	}
	raw.Close()
	must(t, l1.Release(ctx))
	c2 := ts.dial(t)
	l2, _ := OpenLock(ctx, c2, "L")
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := l2.Acquire(wctx); err != nil && !errors.Is(err, ErrOwnerDead) {
		t.Fatalf("Acquire after the raw client left = %v", err)
	}
}

// TestAddTypeArgument sends Adds by hand: the number type is optional, as
// for clients that send none, and an unknown one is BadRequest.
func TestAddTypeArgument(t *testing.T) {
	ts := startServer(t, transports(t)[0])
	raw, fr := handshaken(t, ts)
	id := attachRaw(t, raw, fr, kindValue, "v")
	var w frameWriter
	for i, tc := range []struct {
		delta  int64
		typ    []uint64 // none, or the type argument
		status status
		sum    int64
	}{
		{100, []uint64{uint64(numInt8)}, statusOK, 100},
		{100, []uint64{uint64(numInt8)}, statusType, 0}, // 200 overflows int8
		{100, nil, statusOK, 200},                       // no type: any CBOR integer
		{55, []uint64{uint64(numUint8)}, statusOK, 255},
		{1, []uint64{uint64(numUint8)}, statusType, 0},
		{1, []uint64{0}, statusBadRequest, 0},
		{1, []uint64{uint64(numTypes)}, statusBadRequest, 0},
		{1, []uint64{uint64(numInt16), uint64(numInt16)}, statusBadRequest, 0},
	} {
		delta := tc.delta
		w.buf = w.buf[:0]
		w.beginRequest(uint64(10+i), opValueAdd, id)
		w.int(delta)
		for _, typ := range tc.typ {
			w.uint(typ)
		}
		w.end()
		raw.Write(w.buf)
		r := readResponse(t, fr)
		if r.status != tc.status {
			t.Errorf("Add %d with type %v: status %d, want %d", delta, tc.typ, r.status, tc.status)
			continue
		}
		if r.status == statusOK {
			var sum int64
			res := results{it: r.results}
			res.int(&sum)
			if err := res.done(); err != nil || sum != tc.sum {
				t.Errorf("Add %d with type %v = %d, %v; want %d", delta, tc.typ, sum, err, tc.sum)
			}
		}
	}
}

// feed is a reader of the bytes appended to data, which reports
// errStarved when it has none.
type feed struct{ data []byte }

var errStarved = errors.New("no data yet")

func (f *feed) Read(b []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, errStarved
	}
	n := copy(b, f.data)
	f.data = f.data[n:]
	return n, nil
}

// TestFrameReaderGrowsWithData feeds a frame reader a large frame a piece
// at a time: its buffer must follow the bytes that have arrived, not the
// length the frame's prefix claims, and the frame must come out whole.
func TestFrameReaderGrowsWithData(t *testing.T) {
	const n = 1 << 20
	frame := make([]byte, frameLenSize+n)
	binary.BigEndian.PutUint32(frame, n)
	for i := range frame[frameLenSize:] {
		frame[frameLenSize+i] = byte(i % 251)
	}
	src := &feed{}
	fr := newFrameReader(src, n)
	sent := 0
	for _, upTo := range []int{5, 64 << 10, 100 << 10, 300 << 10, len(frame)} {
		src.data = append(src.data, frame[sent:upTo]...)
		sent = upTo
		body, err := fr.next()
		if sent < len(frame) {
			if err != errStarved {
				t.Fatalf("after %d of %d bytes: next = %v, want to wait for more", sent, len(frame), err)
			}
			if limit := max(frameBufSize, 2*sent); len(fr.buf) > limit {
				t.Errorf("after %d bytes of a %d-byte frame the buffer has %d bytes, want at most %d",
					sent, len(frame), len(fr.buf), limit)
			}
			continue
		}
		if err != nil || !bytes.Equal(body, frame[frameLenSize:]) {
			t.Fatalf("frame read in pieces: %d bytes, %v; want the %d sent", len(body), err, n)
		}
	}
}

// rawSession returns the session of a client of ts, for tests that write
// frames by hand on a connection of any transport, and read its
// responses.
func rawSession(t *testing.T, ts *testServer) *session {
	t.Helper()
	s, err := ts.dial(t).session(ctx)
	must(t, err)
	return s
}

// frameStart returns a Ping request, then the first bytes of a request
// frame whose body is to be n bytes long, of which it has body bytes.
func frameStart(id uint64, n, body int) []byte {
	var w frameWriter
	w.beginRequest(id, opPing, 0)
	w.end()
	b := binary.BigEndian.AppendUint32(w.buf, uint32(n))
	b = append(b, typeRequest)
	return append(b, make([]byte, body)...)
}

// TestPartialFramesHoldLittle opens many connections that each announce a
// frame of the largest size and send nothing more: the server must not
// hold memory for the frames announced, and must serve others meanwhile.
func TestPartialFramesHoldLittle(t *testing.T) {
	const conns, claimed = 64, 1 << 20
	forEachTransportWith(t, func(s *Server) { s.opts.MaxFrame = claimed }, func(t *testing.T, ts *testServer) {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range conns {
			s := rawSession(t, ts)
			if _, err := s.conn.Write(frameStart(uint64(1000+i), claimed, 0)); err != nil {
				t.Fatal(err)
			}
			// The Ping came in the same write as the frame's prefix:
			// once it is answered, the server has read the prefix.
			body, err := s.fr.next()
			must(t, err)
			if r, err := parseResponse(body); err != nil || r.id != uint64(1000+i) || r.status != statusOK {
				t.Fatalf("Ping before the prefix: %+v, %v", r, err)
			}
		}
		c := ts.dial(t)
		d, _ := OpenDict[string, string](ctx, c, "d")
		must(t, d.Set(ctx, "k", "v"))
		if v, _, err := d.Get(ctx, "k"); v != "v" || err != nil {
			t.Errorf("Get while %d connections hold partial frames = %q, %v", conns, v, err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
		t.Logf("heap grew by %d bytes for %d connections holding a frame prefix each", grew, conns)
		if grew > conns*claimed/2 {
			t.Errorf("the heap grew by %d bytes for %d connections that each announced a %d-byte frame and sent 5 bytes of it",
				grew, conns, claimed)
		}
		if n := ts.buffered.used.Load(); n != 0 {
			t.Errorf("%d bytes charged to the frame budget for frames of which 5 bytes came", n)
		}
	})
}

// TestFrameBudget has connections send parts of large frames until the
// server's budget for them is spent: the connection that would go past it
// is closed, the others keep their frames, small requests are served
// throughout, and the budget is whole again once the connections close.
func TestFrameBudget(t *testing.T) {
	const frame, part = 1 << 20, 300 << 10
	forEachTransportWith(t, func(s *Server) {
		s.opts.MaxFrame = frame
		s.buffered.limit = frame
	}, func(t *testing.T, ts *testServer) {
		// A reader holding part+5 bytes has doubled its buffer to 512
		// KiB: 448 KiB more than its first 64 KiB.
		const each = 512<<10 - frameBufSize
		used := func(want int64) {
			t.Helper()
			shmtest.WaitUntil(t, fmt.Sprintf("%d bytes charged to the frame budget", want), func() bool {
				return ts.buffered.used.Load() == want
			})
		}
		c := ts.dial(t)
		d, _ := OpenDict[string, []byte](ctx, c, "d")
		var holders []*session
		for i := range 2 {
			s := rawSession(t, ts)
			holders = append(holders, s)
			if _, err := s.conn.Write(frameStart(uint64(i+1), frame, part)); err != nil {
				t.Fatal(err)
			}
			used(int64(i+1) * each)
			must(t, d.Set(ctx, "small", []byte("v")))
		}
		// A third frame fits in 128 KiB of growth, not in 256.
		s := rawSession(t, ts)
		s.conn.Write(frameStart(3, frame, part)) // may fail as the server closes
		var err error
		for err == nil {
			var body []byte
			if body, err = s.fr.next(); err == nil {
				if r, perr := parseResponse(body); perr != nil || r.status != statusOK && (r.id != 0 || r.status != statusTooLarge) {
					t.Errorf("the connection past the budget got %+v, %v; want its Ping answered, then TooLarge with id 0", r, perr)
				}
			}
		}
		used(2 * each)
		if v, _, err := d.Get(ctx, "small"); string(v) != "v" || err != nil {
			t.Errorf("Get with the frame budget spent = %q, %v", v, err)
		}
		for _, s := range holders {
			s.fail(ErrClosed)
		}
		used(0)
		// With the budget back, a frame of 600 KiB goes through, and
		// its buffer is given back once it has been handled.
		big := bytes.Repeat([]byte{7}, 600<<10)
		must(t, d.Set(ctx, "big", big))
		if v, _, err := d.Get(ctx, "big"); !bytes.Equal(v, big) || err != nil {
			t.Errorf("Get of the large value = %d bytes, %v", len(v), err)
		}
		used(0)
	})
}
