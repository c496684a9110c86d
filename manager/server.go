package manager

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Server or a Client. A nil *Options means the
// defaults.
type Options struct {
	// AuthKey, when set, must be known to both sides: each proves it to
	// the other with an HMAC challenge before any request is sent.
	// Servers listening on anything but a Unix socket require one.
	AuthKey []byte

	// TLSConfig, when set, wraps connections in TLS: on a server, the
	// certificate to present; on a client, the roots and server name to
	// verify. The auth key is still required and checked inside TLS.
	TLSConfig *tls.Config

	// AllowUIDs lists users, besides the server's own, whose processes
	// may connect over a Unix socket. Peers are identified by the kernel
	// (SO_PEERCRED). AnyUID accepts every user.
	AllowUIDs []int
	AnyUID    bool

	// NoSharedMemory keeps a Unix-socket connection on the socket. By
	// default a local client and server move requests to a pair of rings
	// in shared memory after the handshake, which costs a few
	// microseconds per round trip instead of tens.
	NoSharedMemory bool

	// noBells makes a client ask for shared memory with futex wake-ups,
	// as clients before bells did: for tests of that path and of the
	// server's bound on such connections.
	noBells bool

	// MaxFrame bounds the size of one request or response body; larger
	// ones are refused. 0 means DefaultMaxFrame.
	MaxFrame int

	// MaxBuffered bounds, on a server, the bytes held for frames longer
	// than 64 KiB, all connections together. Each connection reads into
	// 64 KiB of its own, which is not counted; a longer frame's buffer
	// grows as its bytes arrive, and the growth is counted until the
	// frame has been handled. A connection whose frame would take the
	// total past MaxBuffered is answered TooLarge and closed (what it
	// sent before was handled; that frame has no effect), and the other
	// connections are served on. 0 means 4 × MaxFrame (64 MiB by
	// default); smaller values are raised to MaxFrame, so that a frame
	// of any allowed size fits while no other is buffered.
	MaxBuffered int

	// HandshakeTimeout bounds the handshake on a new connection. 0 means
	// 10 seconds.
	HandshakeTimeout time.Duration

	// KeyPrefix begins the key of every object, on the Redis engine
	// (docs/redis.md); "" means DefaultKeyPrefix.
	KeyPrefix string

	// Lease is, on the Redis engine, how long a client that stops
	// renewing (it died, or lost its network) keeps the locks it holds
	// and the queue items it has taken: a lock's next Acquire after the
	// lease gets ErrOwnerDead, a taken item goes back to its queue. A
	// live client renews every third of it. 0 means DefaultLease.
	Lease time.Duration

	// RedisCluster dials a Redis Cluster, on the Redis engine, through
	// the node of the address.
	RedisCluster bool

	// Logger receives the server's reports: connections refused during
	// the handshake (Info: wrong auth key, another user, not a client)
	// and panics recovered in handlers (Error). nil logs only the panics,
	// to slog.Default().
	Logger *slog.Logger
}

func (o *Options) maxFrame() int {
	if o == nil || o.MaxFrame == 0 {
		return DefaultMaxFrame
	}
	return min(max(o.MaxFrame, minMaxFrame), maxMaxFrame)
}

func (o *Options) maxBuffered() int64 {
	frame := int64(o.maxFrame())
	if o == nil || o.MaxBuffered == 0 {
		return 4 * frame
	}
	return max(int64(o.MaxBuffered), frame)
}

func (o *Options) handshakeTimeout() time.Duration {
	if o == nil || o.HandshakeTimeout <= 0 {
		return 10 * time.Second
	}
	return o.HandshakeTimeout
}

// A Server holds named objects and serves them to clients. Its methods are
// safe for concurrent use.
type Server struct {
	opts Options
	log  *slog.Logger

	omu      sync.Mutex
	byName   map[string]uint32         // guarded by omu
	objects  atomic.Pointer[[]*slot]   // id-1 to object; appended to under omu
	lns      map[net.Listener]struct{} // guarded by omu
	conns    map[*sconn]struct{}       // guarded by omu
	state    int                       // guarded by omu: running, draining, closed
	wg       sync.WaitGroup            // Serve loops and connections
	gone     chan struct{}             // closed when the last connection ends after Shutdown
	uid      int                       // the server's user, allowed on Unix sockets
	testHook func(r request)           // called before each request is handled
	shmConns atomic.Int32              // connections offered shared memory, open
	buffered frameBudget               // bytes of frame buffers beyond each connection's first
}

const (
	running = iota
	draining
	closed
)

// NewServer returns a server with no objects and no listeners.
func NewServer(opts *Options) *Server {
	s := &Server{
		byName: map[string]uint32{},
		lns:    map[net.Listener]struct{}{},
		conns:  map[*sconn]struct{}{},
		gone:   make(chan struct{}),
		uid:    os.Geteuid(),
	}
	if opts != nil {
		s.opts = *opts
	}
	s.buffered.limit = s.opts.maxBuffered()
	s.log = s.opts.Logger
	if s.log == nil {
		s.log = slog.New(errorsOnly{slog.Default().Handler()})
	}
	s.objects.Store(&[]*slot{})
	return s
}

// Listen announces on a local address for Serve. For "unix" it removes a
// stale socket file left by a server that is gone, and makes the new one
// readable and writable by its owner only (peers are also checked by user
// when they connect).
func Listen(network, address string) (net.Listener, error) {
	if network == "unix" {
		return listenUnix(address)
	}
	return net.Listen(network, address)
}

// Serve accepts connections on l and serves them until Shutdown or Close,
// when it returns ErrClosed. It closes l when it returns. Listeners other
// than Unix sockets require Options.AuthKey.
func (s *Server) Serve(l net.Listener) error {
	_, unix := l.(*net.UnixListener)
	if !unix && len(s.opts.AuthKey) == 0 {
		l.Close()
		return errors.New("manager: serving on a network other than a Unix socket requires an auth key")
	}
	s.omu.Lock()
	if s.state != running {
		s.omu.Unlock()
		l.Close()
		return ErrClosed
	}
	s.lns[l] = struct{}{}
	s.wg.Add(1)
	s.omu.Unlock()
	defer s.wg.Done()
	defer func() {
		s.omu.Lock()
		delete(s.lns, l)
		s.omu.Unlock()
		l.Close()
	}()
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			s.omu.Lock()
			st := s.state
			s.omu.Unlock()
			if st != running {
				return ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) || isTemporary(err) {
				// Out of descriptors and the like: back off, as
				// net/http does, rather than spin or stop serving.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		s.omu.Lock()
		if s.state != running {
			s.omu.Unlock()
			nc.Close()
			return ErrClosed
		}
		c := newSconn(s, nc)
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.omu.Unlock()
		go c.serve(unix)
	}
}

// Shutdown stops accepting connections, lets every connection finish the
// requests it has already received, answers parked blocking requests
// (Lock.Acquire, Queue.Get, Event.Wait) with ErrClosed, closes the
// connections and returns. If ctx ends first it closes everything at once
// and returns ctx.Err(). Clients then see ErrClosed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.omu.Lock()
	if s.state == running {
		s.state = draining
	}
	for l := range s.lns {
		l.Close()
	}
	for c := range s.conns {
		c.drain()
	}
	s.omu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.finish()
		return nil
	case <-ctx.Done():
		s.Close()
		return ctx.Err()
	}
}

// Close closes the listeners and every connection at once, and waits for
// the server's goroutines to end. It is idempotent.
func (s *Server) Close() error {
	s.omu.Lock()
	s.state = closed
	for l := range s.lns {
		l.Close()
	}
	for c := range s.conns {
		c.kill()
	}
	s.omu.Unlock()
	s.wg.Wait()
	s.finish()
	return nil
}

func (s *Server) finish() {
	s.omu.Lock()
	defer s.omu.Unlock()
	s.state = closed
	select {
	case <-s.gone:
	default:
		close(s.gone)
	}
}

// errorsOnly passes on records of level Error and above.
type errorsOnly struct{ slog.Handler }

func (h errorsOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError && h.Handler.Enabled(ctx, l)
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// attach finds or creates the object named name.
func (s *Server) attach(k kind, name string, mode uint64, capacity int64) (uint32, error) {
	if name == "" || len(name) > 1024 {
		return 0, failf(statusBadRequest, "object names have 1 to 1024 bytes")
	}
	if mode > attachOpen {
		return 0, failf(statusBadRequest, fmt.Sprintf("unknown attach mode %d", mode))
	}
	s.omu.Lock()
	defer s.omu.Unlock()
	if id, ok := s.byName[name]; ok {
		o := s.object(id)
		switch {
		case mode == attachCreate:
			return 0, failf(statusExists, fmt.Sprintf("%s %q exists", o.kind(), name))
		case o.kind() != k:
			return 0, failf(statusKind, fmt.Sprintf("%q is %s, not %s", name, o.kind().withArticle(), k.withArticle()))
		}
		return id, nil
	}
	if mode == attachOpen {
		return 0, failf(statusNotFound, fmt.Sprintf("no %s named %q", k, name))
	}
	o, err := newObject(k, capacity)
	if err != nil {
		return 0, err
	}
	objs := *s.objects.Load()
	if len(objs) >= 1<<31 {
		return 0, failf(statusBadRequest, "too many objects")
	}
	sl := &slot{}
	sl.obj.Store(&o)
	// Appending in place is safe for readers of the old slice header:
	// they never look past its length.
	grown := append(objs, sl)
	s.objects.Store(&grown)
	id := uint32(len(grown))
	s.byName[name] = id
	return id, nil
}

// A slot holds an object, or nil once the object is removed. Ids index
// slots and are never reused, so a stale proxy cannot reach another
// object; a removed object leaves its 8-byte slot behind.
type slot struct{ obj atomic.Pointer[object] }

// remove forgets the object named name (of kind k, unless k is 0); proxies attached to it get
// fs.ErrNotExist from then on.
func (s *Server) remove(k kind, name string) (bool, error) {
	s.omu.Lock()
	defer s.omu.Unlock()
	id, ok := s.byName[name]
	if !ok {
		return false, nil
	}
	o := s.object(id)
	if k != 0 && o.kind() != k {
		return false, failf(statusKind, fmt.Sprintf("%q is %s, not %s", name, o.kind().withArticle(), k.withArticle()))
	}
	delete(s.byName, name)
	(*s.objects.Load())[id-1].obj.Store(nil)
	if p, ok := o.(interface{ removed() }); ok {
		p.removed()
	}
	return true, nil
}

func (s *Server) object(id uint32) object {
	objs := *s.objects.Load()
	if id == 0 || int(id) > len(objs) {
		return nil
	}
	if o := objs[id-1].obj.Load(); o != nil {
		return *o
	}
	return nil
}

// handle runs one request. It recovers a panic in the handler into a
// statusInternal error: a bug triggered by one request must not take the
// other clients' server down.
func (s *Server) handle(c *sconn, r request, w *frameWriter) (err error) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("manager: panic while handling a request", "op", r.op, "panic", v, "stack", string(debug.Stack()))
			err = failf(statusInternal, fmt.Sprintf("panic while handling operation %d: %v", r.op, v))
		}
	}()
	if s.testHook != nil {
		s.testHook(r)
	}
	if r.op >= opFirstObject {
		o := s.object(r.obj)
		if o == nil {
			return failf(statusNotFound, fmt.Sprintf("no object with id %d", r.obj))
		}
		return o.handle(c, r, w)
	}
	a := args{it: r.args}
	switch r.op {
	case opPing:
		return a.done()
	case opAttach:
		k, name, mode, capacity := kind(a.uint()), a.text(), a.uint(), a.int()
		if err := a.done(); err != nil {
			return err
		}
		id, err := s.attach(k, name, mode, capacity)
		if err != nil {
			return err
		}
		w.uint(uint64(id))
	case opRemove:
		k, name := kind(a.uint()), a.text()
		if err := a.done(); err != nil {
			return err
		}
		ok, err := s.remove(k, name)
		if err != nil {
			return err
		}
		w.bool(ok)
	case opCancel:
		id := a.uint()
		if err := a.done(); err != nil {
			return err
		}
		c.cancel(id)
		return errDeferred // a cancel has no response of its own
	default:
		return failf(statusBadRequest, fmt.Sprintf("unknown operation %d", r.op))
	}
	return nil
}

// maxShmConns bounds the connections that use shared memory with futex
// wake-ups (clients without bells) at once.
// While waiting for the next request, a shared-memory connection holds an
// OS thread (it sleeps on a futex) where a socket holds none, and once
// there are more connections than CPUs their polling stops paying (see
// internal/shmconn) while their futex wake-ups cost more than a socket's
// poller does: connections beyond two per CPU stay on the socket. With
// eight per CPU, 8 to 64 clients made 51-75 k requests/s; with two,
// 77-100 k (BenchmarkClients).
func maxShmConns() int32 { return int32(2 * runtime.NumCPU()) }

// sconn is the server's side of one client connection.
type sconn struct {
	s    *Server
	raw  net.Conn // the socket as accepted, under TLS if any
	nc   net.Conn // the accepted connection, or TLS over it
	conn net.Conn // where requests arrive: nc, or a shared-memory pair
	fr   *frameReader

	resp frameWriter // the response being built; serve's goroutine only

	wmu   sync.Mutex // serializes writes to conn
	spare []byte     // guarded by wmu

	qmu  sync.Mutex // guards out and dead; never held while waiting
	out  []byte     // responses queued for writing
	dead bool
	kick chan struct{} // asks the flusher to write out

	pmu     sync.Mutex // guards the fields below
	closing bool
	waiters map[uint64]parked
	held    map[*lockObj]struct{}

	draining atomic.Bool
	broken   atomic.Bool   // a write failed
	shm      bool          // counted in Server.shmConns
	done     chan struct{} // closed when serve returns
	release  func()        // frees the transport (shared memory)
}

type parked struct {
	w *waiter
	o parker
}

func newSconn(s *Server, nc net.Conn) *sconn {
	return &sconn{
		s:       s,
		raw:     nc,
		nc:      nc,
		conn:    nc,
		kick:    make(chan struct{}, 1),
		waiters: map[uint64]parked{},
		held:    map[*lockObj]struct{}{},
		done:    make(chan struct{}),
	}
}

// serve runs the handshake and then the request loop.
func (c *sconn) serve(unix bool) {
	defer c.s.wg.Done()
	defer close(c.done)
	defer func() {
		c.s.omu.Lock()
		delete(c.s.conns, c)
		c.s.omu.Unlock()
	}()
	defer c.nc.Close()
	if err := c.handshake(unix); err != nil {
		if !errors.Is(err, io.EOF) {
			c.s.log.Info("manager: connection refused", "remote", c.nc.RemoteAddr(), "err", err)
		}
		return
	}
	if c.release != nil {
		defer c.release()
	}
	if c.shm {
		defer c.s.shmConns.Add(-1)
	}
	c.fr = newFrameReader(c.conn, c.s.opts.maxFrame())
	c.fr.budget = &c.s.buffered
	defer c.fr.release()
	c.run()
	c.conn.Close()
}

// run serves requests until the connection ends or drains, then ends the
// connection's parked requests, releases its locks and writes the last
// responses.
func (c *sconn) run() {
	flushed := make(chan struct{})
	go c.flusher(flushed)
	c.loop()
	c.cleanup()
	c.flush()
	c.qmu.Lock()
	c.dead = true
	c.qmu.Unlock()
	close(c.kick)
	<-flushed
}

func (c *sconn) handshake(unix bool) error {
	c.nc.SetDeadline(time.Now().Add(c.s.opts.handshakeTimeout()))
	if c.draining.Load() {
		// Shutdown's deadline, set before this one, was overwritten.
		return ErrClosed
	}
	refuse := false
	if unix {
		ok, err := c.s.peerAllowed(c.nc)
		if err != nil {
			return err
		}
		refuse = !ok
	}
	if tc := c.s.opts.TLSConfig; tc != nil && !unix {
		t := tls.Server(c.nc, tc)
		c.pmu.Lock()
		c.nc, c.conn = t, t
		c.pmu.Unlock()
	}
	offer := unix && !c.s.opts.NoSharedMemory && shmSupported
	// Connections with futex wake-ups (clients without bells) are
	// bounded; those with bells are not.
	counted := false
	futexes := func() bool {
		if c.s.shmConns.Add(1) > maxShmConns() {
			c.s.shmConns.Add(-1)
			return false
		}
		counted = true
		return true
	}
	var rings *localRings
	_, err := serverHandshake(c.nc, c.s.opts.AuthKey, offer, refuse, futexes, func(v []byte, transport byte) error {
		if transport == transportStream {
			_, err := c.nc.Write(v)
			return err
		}
		var err error
		rings, err = newLocalRings(c.nc, v, transport == transportBells)
		return err
	})
	if counted && rings == nil {
		c.s.shmConns.Add(-1)
	}
	if err != nil {
		return err
	}
	c.shm = counted && rings != nil
	c.nc.SetDeadline(time.Time{})
	if rings != nil {
		rings.start(nil)
		c.release = rings.close
		c.pmu.Lock()
		c.conn = rings.conn
		c.pmu.Unlock()
	}
	if c.draining.Load() {
		c.conn.SetReadDeadline(time.Now())
	}
	return nil
}

// loop reads and handles requests until the connection ends or drains.
func (c *sconn) loop() {
	for {
		body, err := c.fr.next()
		if err != nil {
			if errors.Is(err, errFrameTooLarge) || errors.Is(err, errFrameBudget) {
				c.protocolError(statusTooLarge, err)
			}
			return
		}
		r, err := parseRequest(body)
		switch {
		case err == nil:
			c.dispatch(r)
		case len(body) >= requestHeaderLen && body[0] == typeRequest:
			// The header is sound, so the stream's framing is too:
			// answer this request and carry on.
			c.resp.buf = c.resp.buf[:0]
			c.errorReply(r.id, failf(statusBadRequest, err.Error()))
			c.enqueue(c.resp.buf)
		default:
			c.protocolError(statusBadRequest, err)
			return
		}
		if !c.fr.buffered() || c.queued() > flushAt {
			c.fr.shrink()
			if c.flush() != nil {
				return
			}
		}
	}
}

// flushAt is how many bytes of responses the request loop lets pile up
// before writing them, even with more requests already read: pipelined
// requests for large values must not grow the server's memory without
// bound.
const flushAt = 1 << 20

// queued returns the bytes of responses waiting to be written.
func (c *sconn) queued() int {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	return len(c.out)
}

// tooLarge reports whether the response w is building already exceeds the
// frame limit, for handlers that append many results.
func (c *sconn) tooLarge(w *frameWriter) bool {
	return len(w.buf)-w.start-frameLenSize > c.s.opts.maxFrame()
}

// protocolError answers a frame that cannot be trusted, with request id 0,
// before the connection is closed.
func (c *sconn) protocolError(s status, err error) {
	c.resp.buf = c.resp.buf[:0]
	c.errorReply(0, failf(s, err.Error()))
	c.enqueue(c.resp.buf)
}

func (c *sconn) dispatch(r request) {
	w := &c.resp
	w.buf = w.buf[:0]
	w.beginResponse(r.id, statusOK)
	err := c.s.handle(c, r, w)
	switch {
	case err == nil:
		if n := w.end(); n > c.s.opts.maxFrame() {
			w.buf = w.buf[:0]
			c.errorReply(r.id, failf(statusTooLarge, fmt.Sprintf("response of %d bytes exceeds the frame limit of %d", n, c.s.opts.maxFrame())))
		}
	case err == errDeferred:
		w.discard()
		return
	default:
		w.discard()
		c.errorReply(r.id, err)
	}
	c.enqueue(w.buf)
	if cap(w.buf) > flushAt {
		w.buf = nil // one large response; do not keep its buffer
	}
}

func (c *sconn) errorReply(id uint64, err error) {
	se, ok := err.(*serverError)
	if !ok {
		se = failf(statusInternal, err.Error())
	}
	c.resp.beginResponse(id, se.status)
	c.resp.text(se.msg)
	c.resp.end()
}

// enqueue appends complete response frames to the output queue.
func (c *sconn) enqueue(frames []byte) {
	c.qmu.Lock()
	if !c.dead {
		c.out = append(c.out, frames...)
	}
	c.qmu.Unlock()
}

// replyLater queues a response to a parked request and has the flusher
// write it. Object handlers call it with their mutex held; it never waits
// for the network.
func (c *sconn) replyLater(id uint64, s status, fill func(*frameWriter)) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.dead {
		return
	}
	w := frameWriter{buf: c.out}
	w.beginResponse(id, s)
	if s != statusOK {
		w.text(statusText(s))
	} else if fill != nil {
		fill(&w)
	}
	w.end()
	c.out = w.buf
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// flush writes the queued responses.
func (c *sconn) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.qmu.Lock()
	buf := c.out
	c.out = c.spare[:0]
	c.qmu.Unlock()
	if len(buf) == 0 {
		c.spare = buf
		return nil
	}
	_, err := c.conn.Write(buf)
	if cap(buf) > 1<<20 {
		buf = nil
	}
	c.spare = buf[:0]
	if err != nil {
		c.broken.Store(true)
		c.conn.Close()
	}
	return err
}

func (c *sconn) flusher(done chan struct{}) {
	defer close(done)
	for range c.kick {
		c.flush()
	}
}

// drain makes the request loop stop once the requests already received
// are answered: it interrupts the read waiting for the next one.
func (c *sconn) drain() {
	c.draining.Store(true)
	c.pmu.Lock()
	nc, conn := c.nc, c.conn
	c.pmu.Unlock()
	// Only the connection requests arrive on: a shared-memory
	// connection's socket is watched for the peer's death, not read.
	conn.SetReadDeadline(time.Now())
	_ = nc
}

// kill closes the connection at once.
func (c *sconn) kill() {
	c.pmu.Lock()
	nc, conn := c.nc, c.conn
	c.pmu.Unlock()
	nc.Close()
	conn.Close()
}

// addWaiter records a parked request; it fails once the connection closes,
// and for an id already parked.
func (c *sconn) addWaiter(w *waiter, o parker) error {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if c.closing {
		return failf(statusClosed, "connection closing")
	}
	if _, dup := c.waiters[w.id]; dup {
		// A second parked request with one id could not be cancelled
		// or cleaned up: refuse it.
		return failf(statusBadRequest, fmt.Sprintf("request id %d is already parked", w.id))
	}
	c.waiters[w.id] = parked{w, o}
	return nil
}

func (c *sconn) removeWaiter(w *waiter) {
	c.pmu.Lock()
	if p, ok := c.waiters[w.id]; ok && p.w == w {
		delete(c.waiters, w.id)
	}
	c.pmu.Unlock()
}

// cancel abandons the parked request id, if it is still parked.
func (c *sconn) cancel(id uint64) {
	c.pmu.Lock()
	p, ok := c.waiters[id]
	c.pmu.Unlock()
	if ok {
		p.o.abandon(p.w, statusCanceled)
	}
}

// deliverable reports whether an answer to a parked request can still
// reach the client: the connection is not ending, no write to it has
// failed, and its socket is not closed at the other end. The last matters
// because a client process that dies leaves its socket closed at once but
// is noticed by the request loop only when its read fails (and over
// shared memory, when the socket's monitor has woken the loop): a parked
// Get answered in between would take an item nobody receives.
func (c *sconn) deliverable() bool {
	c.pmu.Lock()
	closing := c.closing
	c.pmu.Unlock()
	return !closing && !c.broken.Load() && !peerGone(c.raw)
}

func (c *sconn) addHeld(l *lockObj) {
	c.pmu.Lock()
	c.held[l] = struct{}{}
	c.pmu.Unlock()
}

func (c *sconn) removeHeld(l *lockObj) {
	c.pmu.Lock()
	delete(c.held, l)
	c.pmu.Unlock()
}

// cleanup ends the connection's parked requests and releases its locks,
// in that order: once no request of this connection is parked, no lock can
// be granted to it any more, so the set of held locks is final.
func (c *sconn) cleanup() {
	c.pmu.Lock()
	c.closing = true
	ws := make([]parked, 0, len(c.waiters))
	for _, p := range c.waiters {
		ws = append(ws, p)
	}
	c.pmu.Unlock()
	for _, p := range ws {
		p.o.abandon(p.w, statusClosed)
	}
	c.pmu.Lock()
	held := make([]*lockObj, 0, len(c.held))
	for l := range c.held {
		held = append(held, l)
	}
	clear(c.held)
	c.pmu.Unlock()
	for _, l := range held {
		l.holderGone(c)
	}
}
