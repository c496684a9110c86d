package manager

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// A Client is a connection to a Server, shared by the proxies made from it.
// Its methods and its proxies are safe for concurrent use by goroutines;
// their requests share the connection and are pipelined on it, so
// concurrent calls are not limited to one round trip at a time.
//
// When the connection breaks (the server shut down or died), calls in
// flight fail with an error matching ErrClosed, and the next call dials
// again. Proxies re-attach to their objects by name on the new
// connection; a restarted server has lost the old objects' contents, and
// Locks held over the old connection were released by the server.
type Client struct {
	network, address string
	opts             Options

	mu      sync.Mutex
	sess    *session      // nil when not connected; guarded by mu
	gen     uint64        // sessions dialled so far; guarded by mu
	closed  bool          // guarded by mu
	dialing chan struct{} // closed when the dial in progress ends; guarded by mu

	redis *redisEngine // set when the client talks to Redis instead of a server
}

// Dial connects to the server at address on network ("unix" or "tcp"),
// runs the handshake and returns the client. opts must carry the server's
// auth key if it has one, and a TLS configuration if it uses TLS.
//
// On network "redis" (or "rediss", for TLS) the client's proxies run
// against Redis, or Valkey, instead (see docs/redis.md), once the program
// imports package github.com/shmkit/shmkit/manager/redis: address is a
// URL (redis://user:password@host:6379/0, rediss://..., unix:///path),
// host:port, or the path of a Unix socket. opts.KeyPrefix, opts.Lease and
// opts.RedisCluster apply there, and opts.TLSConfig if set.
func Dial(ctx context.Context, network, address string, opts *Options) (*Client, error) {
	c := &Client{network: network, address: address}
	if opts != nil {
		c.opts = *opts
	}
	if isRedis(network) {
		e, err := dialRedis(ctx, network, address, &c.opts)
		if err != nil {
			return nil, fmt.Errorf("manager: dial %s: %w", network, err)
		}
		c.redis = e
		return c, nil
	}
	if _, err := c.session(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Close closes the connection. Calls in flight and later calls fail with
// ErrClosed. Close is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	s := c.sess
	c.sess = nil
	c.mu.Unlock()
	if s != nil {
		s.fail(ErrClosed)
	}
	if c.redis != nil {
		return c.redis.close()
	}
	return nil
}

// redisEngine returns the client's Redis engine, or ErrClosed once the
// client is closed.
func (c *Client) redisEngine() (*redisEngine, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	return c.redis, nil
}

// Ping makes a round trip to the server.
func (c *Client) Ping(ctx context.Context) error {
	if c.redis != nil {
		e, err := c.redisEngine()
		if err != nil {
			return err
		}
		return redisErr(ignore(e.conn.Do(ctx, "PING")))
	}
	s, err := c.session(ctx)
	if err != nil {
		return err
	}
	cl, err := s.call(ctx, opPing, 0, nil)
	if err != nil {
		return err
	}
	return cl.finish()
}

// session returns the current session, dialling one if there is none.
func (c *Client) session(ctx context.Context) (*session, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		if s := c.sess; s != nil && !s.broken() {
			c.mu.Unlock()
			return s, nil
		}
		if ch := c.dialing; ch != nil {
			// Another goroutine is dialling: wait for it, within ctx,
			// rather than dial twice.
			c.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		old := c.sess
		c.sess = nil
		ch := make(chan struct{})
		c.dialing = ch
		c.mu.Unlock()
		if old != nil {
			old.fail(ErrClosed)
		}
		s, err := c.dial(ctx)
		c.mu.Lock()
		c.dialing = nil
		close(ch)
		closed := c.closed
		if err == nil && !closed {
			c.gen++
			s.gen = c.gen
			c.sess = s
		}
		c.mu.Unlock()
		switch {
		case err != nil:
			return nil, fmt.Errorf("%w: dial %s %s: %w", ErrClosed, c.network, c.address, err)
		case closed:
			s.fail(ErrClosed)
			return nil, ErrClosed
		}
		return s, nil
	}
}

func (c *Client) dial(ctx context.Context) (*session, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, c.network, c.address)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(c.opts.handshakeTimeout())
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	s, err := c.handshake(nc)
	if err != nil {
		nc.Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, err
	}
	return s, nil
}

func (c *Client) handshake(nc net.Conn) (*session, error) {
	uc, unix := nc.(*net.UnixConn)
	if c.opts.TLSConfig != nil && !unix {
		t := tls.Client(nc, c.opts.TLSConfig)
		if err := t.Handshake(); err != nil {
			return nil, err
		}
		nc = t
	}
	var files []*os.File
	transport, err := clientHandshake(nc, c.opts.AuthKey, unix && !c.opts.NoSharedMemory && shmSupported, !c.opts.noBells,
		func(v []byte) error {
			if unix {
				var err error
				files, err = recvWithFiles(uc, v, 2)
				return err
			}
			_, err := io.ReadFull(nc, v)
			return err
		})
	defer func() { closeFiles(files) }()
	if err != nil {
		return nil, err
	}
	s := newSession(nc, c.opts.maxFrame())
	if transport != transportStream {
		// The memfd, and with bells the server's bell.
		want := map[byte]int{transportShm: 1, transportBells: 2}[transport]
		if len(files) != want {
			return nil, fmt.Errorf("%w: %d descriptors came with the verdict, want %d", ErrProtocol, len(files), want)
		}
		var bell *os.File
		if transport == transportBells {
			bell, files = files[1], files[:1] // attachLocalRings takes it
		}
		r, err := attachLocalRings(uc, files[0], bell)
		if err != nil {
			return nil, err
		}
		s.rings = r
		s.conn = r.conn
		s.fr = newFrameReader(r.conn, c.opts.maxFrame())
		r.start(func() { s.markDown(errors.New("server closed the connection")) })
	}
	nc.SetDeadline(time.Time{})
	return s, nil
}

// session is one connection of a Client.
type session struct {
	gen   uint64
	nc    net.Conn // the socket
	conn  net.Conn // where requests go: nc, or rings
	rings *localRings
	fr    *frameReader // read only by the goroutine holding token
	max   int

	token  chan struct{} // held (full) by the goroutine reading responses
	rwatch ctxWatch      // interrupts the reader when its context ends
	wwatch ctxWatch      // interrupts the writer when its context ends

	wtoken chan struct{} // held (full) by the goroutine writing to conn

	nextID atomic.Uint64

	pmu      sync.Mutex
	pending  map[uint64]*call    // guarded by pmu
	orphans  map[uint64]struct{} // abandoned calls still to be answered; guarded by pmu
	draining bool                // a drain goroutine runs; guarded by pmu
	err      error               // why the session ended; guarded by pmu
	down     atomic.Bool         // err != nil
}

func newSession(nc net.Conn, max int) *session {
	s := &session{
		nc:      nc,
		conn:    nc,
		fr:      newFrameReader(nc, max),
		max:     max,
		token:   make(chan struct{}, 1),
		wtoken:  make(chan struct{}, 1),
		pending: map[uint64]*call{},
		orphans: map[uint64]struct{}{},
	}
	s.rwatch.interrupt = func() { s.conn.SetReadDeadline(aLongTimeAgo) }
	s.wwatch.interrupt = func() { s.conn.SetWriteDeadline(aLongTimeAgo) }
	return s
}

func (s *session) broken() bool { return s.down.Load() }

// A call is one request in flight.
type call struct {
	id   uint64
	req  frameWriter
	done chan struct{} // closed when resp or err is set, unless grp is set
	grp  *group        // the batch chunk the call belongs to, if any
	body frameWriter   // the response body: copied out of the reader, or a Redis engine's results
	resp response
	res  results // the reader of resp.results, for decodeResults
	err  error
	// native marks the results of a Redis engine, whose stored values
	// are in their Redis form (see fromRedis).
	native bool
}

// A group is the calls of a batch chunk, completed together: done is
// closed when the last one has its response or error.
type group struct {
	left atomic.Int32
	done chan struct{}
}

// complete signals that cl's resp or err is set.
func (cl *call) complete() {
	if g := cl.grp; g != nil {
		if g.left.Add(-1) == 0 {
			close(g.done)
		}
		return
	}
	close(cl.done)
}

var callPool = sync.Pool{New: func() any { return &call{} }}

func newCall() *call {
	cl := newLocalCall()
	cl.done = make(chan struct{})
	return cl
}

// newLocalCall returns a call that is completed where it is made, never
// waited for (the Redis engine's): it has no done channel.
func newLocalCall() *call {
	cl := callPool.Get().(*call)
	cl.grp = nil
	cl.req.buf = cl.req.buf[:0]
	cl.body.buf = cl.body.buf[:0]
	cl.err = nil
	return cl
}

// recycle returns a finished call to the pool. Only calls that completed
// (so no reader holds them) may be recycled.
func (cl *call) recycle() {
	if cap(cl.body.buf) > 64<<10 || cap(cl.req.buf) > 64<<10 {
		return
	}
	cl.resp, cl.res, cl.grp, cl.done, cl.native = response{}, results{}, nil, nil, false
	callPool.Put(cl)
}

// finish returns the call's error, if any, and recycles it when it carries
// no results the caller still needs.
func (cl *call) finish() error {
	err := cl.error()
	cl.recycle()
	return err
}

// error converts a response's status into an error.
func (cl *call) error() error {
	if cl.err != nil {
		return cl.err
	}
	if cl.resp.status == statusOK {
		return nil
	}
	msg := statusErr(cl.resp.status).Error()
	if len(cl.resp.results) > 0 {
		if b, _ := cl.resp.results.next(); b != nil {
			if m, err := decodeText(b); err == nil {
				msg = m
			}
		}
	}
	return &RemoteError{status: cl.resp.status, Message: msg}
}

// call sends one request and waits for its response. build appends the
// arguments.
func (s *session) call(ctx context.Context, o op, obj uint32, build func(*frameWriter) error) (*call, error) {
	cl, err := s.send(ctx, o, obj, build)
	if err != nil {
		return nil, err
	}
	if err := s.wait(ctx, cl.done); err != nil {
		s.abandon(cl)
		return nil, err
	}
	return cl, nil
}

// send encodes a request, registers it and writes it.
func (s *session) send(ctx context.Context, o op, obj uint32, build func(*frameWriter) error) (*call, error) {
	cl := newCall()
	if err := s.encode(cl, o, obj, build); err != nil {
		cl.recycle()
		return nil, err
	}
	if err := s.register(cl); err != nil {
		cl.recycle()
		return nil, err
	}
	if err := s.write(ctx, cl.req.buf); err != nil {
		return nil, err
	}
	return cl, nil
}

func (s *session) encode(cl *call, o op, obj uint32, build func(*frameWriter) error) error {
	cl.id = s.nextID.Add(1)
	cl.req.beginRequest(cl.id, o, obj)
	if build != nil {
		if err := build(&cl.req); err != nil {
			return fmt.Errorf("%w: %w", ErrType, err)
		}
	}
	if n := cl.req.end(); n > s.max {
		return fmt.Errorf("%w: request of %d bytes, limit %d", ErrTooLarge, n, s.max)
	}
	return nil
}

func (s *session) register(cl *call) error {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.pending[cl.id] = cl
	return nil
}

// registerAll registers the calls of a batch chunk at once.
func (s *session) registerAll(cls []*call) error {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	if s.err != nil {
		return s.err
	}
	for _, cl := range cls {
		s.pending[cl.id] = cl
	}
	return nil
}

// write writes whole frames. A write that ctx interrupts, like any write
// error, ends the session: a partly written frame would corrupt the
// stream. Writes block while the server does not read, which it does not
// while its responses are not read: so a caller that stops waiting for a
// large response can stall the connection, and its next writer's context
// ends the stall by ending the session.
func (s *session) write(ctx context.Context, b []byte) error {
	select {
	case s.wtoken <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.wwatch.begin(ctx)
	_, err := s.conn.Write(b)
	if s.wwatch.end() {
		// ctx ended during the write: clear the deadline for the
		// next writer.
		s.conn.SetWriteDeadline(time.Time{})
		if err != nil {
			err = ctx.Err()
		}
	}
	<-s.wtoken
	if err != nil {
		s.fail(err)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return s.failure()
	}
	return nil
}

func (s *session) failure() error {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	return s.err
}

// wait waits until done is closed: a call's response, or a group's
// responses, arrived. The waiting goroutines take turns reading the
// connection (the one holding token reads and hands out the responses of
// the others), so a lone caller reads its own response with no goroutine
// switch.
func (s *session) wait(ctx context.Context, done <-chan struct{}) error {
	for {
		select {
		case <-done:
			return nil
		case s.token <- struct{}{}:
			s.read(ctx, done)
			<-s.token
			select {
			case <-done:
				return nil
			default:
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// aLongTimeAgo is a deadline in the past, to interrupt a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// read reads responses until done is closed, ctx ends, or the session
// fails.
func (s *session) read(ctx context.Context, done <-chan struct{}) {
	s.rwatch.begin(ctx)
	defer func() {
		if s.rwatch.end() {
			s.conn.SetReadDeadline(time.Time{})
		}
	}()
	for {
		select {
		case <-done:
			return
		default:
		}
		body, err := s.fr.next()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if ctx.Err() != nil {
					return
				}
				// A deadline left by an earlier reader's context, set
				// after it had stopped reading: clear it and go on.
				s.conn.SetReadDeadline(time.Time{})
				continue
			}
			s.fail(err)
			return
		}
		if err := s.deliver(body); err != nil {
			s.fail(err)
			return
		}
	}
}

// deliver hands a response to its call. Responses to abandoned calls are
// dropped.
func (s *session) deliver(body []byte) error {
	if len(body) < responseHeaderLen || body[0] != typeResponse {
		return fmt.Errorf("%w: malformed response frame", ErrProtocol)
	}
	id := binary.BigEndian.Uint64(body[1:])
	if id == 0 {
		r, err := parseResponse(body)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrProtocol, err)
		}
		cl := &call{resp: r}
		return fmt.Errorf("%w: server ended the connection: %w", ErrProtocol, cl.error())
	}
	s.pmu.Lock()
	cl := s.pending[id]
	delete(s.pending, id)
	if cl == nil {
		delete(s.orphans, id)
	}
	s.pmu.Unlock()
	if cl == nil {
		return nil
	}
	cl.body.buf = append(cl.body.buf[:0], body...)
	r, err := parseResponse(cl.body.buf)
	if err != nil {
		err = fmt.Errorf("%w: %v", ErrProtocol, err)
		cl.err = err
		cl.complete() // cl may be recycled from here on
		return err
	}
	cl.resp = r
	cl.complete()
	return nil
}

// abandon forgets a call whose caller stopped waiting. Its answer is still
// to come, and must be read even if no other caller waits: unread, a large
// one would fill the transport, the server would stop reading while it
// waits to write, and the next request would wait for ever. So a drain
// goroutine reads until every abandoned call has been answered.
func (s *session) abandon(cl *call) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	if _, ok := s.pending[cl.id]; !ok || s.err != nil {
		return
	}
	delete(s.pending, cl.id)
	s.orphans[cl.id] = struct{}{}
	if !s.draining {
		s.draining = true
		go s.drain()
	}
}

// drain reads responses, taking turns with waiting callers, until no
// abandoned call awaits its answer or the session ends.
func (s *session) drain() {
	for {
		s.pmu.Lock()
		if len(s.orphans) == 0 || s.err != nil {
			s.draining = false
			s.pmu.Unlock()
			return
		}
		s.pmu.Unlock()
		s.token <- struct{}{}
		s.pmu.Lock()
		more := len(s.orphans) > 0 && s.err == nil
		s.pmu.Unlock()
		var err error
		if more {
			var body []byte
			if body, err = s.fr.next(); errors.Is(err, os.ErrDeadlineExceeded) {
				// A deadline left by a reader's context: clear it.
				s.conn.SetReadDeadline(time.Time{})
				err = nil
			} else if err == nil {
				err = s.deliver(body)
			}
		}
		<-s.token
		if err != nil {
			s.fail(err)
		}
	}
}

// markDown records why the session ended and fails the pending calls with
// an error matching ErrClosed. It reports whether it was the first to.
func (s *session) markDown(cause error) bool {
	s.pmu.Lock()
	if s.err != nil {
		s.pmu.Unlock()
		return false
	}
	if errors.Is(cause, ErrClosed) {
		s.err = cause
	} else {
		s.err = fmt.Errorf("%w: connection lost: %w", ErrClosed, cause)
	}
	s.down.Store(true)
	pending := s.pending
	s.pending = nil
	clear(s.orphans)
	s.pmu.Unlock()
	for _, cl := range pending {
		cl.err = s.err
		cl.complete()
	}
	return true
}

// fail ends the session and releases its connection and shared memory.
// Calls in flight and later calls get an error matching ErrClosed. It is
// idempotent and may be called concurrently.
func (s *session) fail(cause error) {
	s.markDown(cause)
	s.rwatch.release()
	s.wwatch.release()
	s.nc.Close()
	if s.rings != nil {
		s.rings.close()
	}
}

// cancelGrace bounds the wait for the final answer to a request whose
// caller's context ended. Tests shorten it.
var cancelGrace = 5 * time.Second

// blocking sends a request that the server may park (Lock.Acquire,
// Queue.Put and Get, Event.Wait). The request carries ctx's deadline as a
// timeout, or 0 (do not park) when try is set. If ctx ends first, the
// client asks the server to cancel, and settles the request as keep does.
func (s *session) blocking(ctx context.Context, o op, obj uint32, try bool, build func(*frameWriter, time.Duration) error) (*call, error) {
	timeout := blockingTimeout(ctx, try)
	cl, err := s.send(ctx, o, obj, func(w *frameWriter) error { return build(w, timeout) })
	if err != nil {
		return nil, err
	}
	return s.settle(ctx, cl, !try)
}

// blockingTimeout is the timeout a blocking request carries: ctx's
// deadline, -1 (for ever) without one, or 0 (do not wait) with try or
// once ctx has ended.
func blockingTimeout(ctx context.Context, try bool) time.Duration {
	timeout := time.Duration(-1)
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), 0)
	}
	if try || ctx.Err() != nil {
		timeout = 0
	}
	return timeout
}

// keep runs a request whose result must not be lost once sent: a Pop's
// value, a TryGet's item, a TryAcquire's lock. If ctx ends before the
// answer, it still waits for it, as settle does.
func (s *session) keep(ctx context.Context, o op, obj uint32, build func(*frameWriter) error) (*call, error) {
	cl, err := s.send(ctx, o, obj, build)
	if err != nil {
		return nil, err
	}
	return s.settle(ctx, cl, false)
}

// settle waits for cl's answer. If ctx ends first it sends a Cancel (when
// cancel is set: the request may be parked) and waits up to cancelGrace
// more for the final answer: if the operation completed anyway its result
// is returned, so a lock granted or an item taken at that moment is not
// lost; a Canceled or Timeout answer gives ctx.Err(). A server that does
// not answer in time has the connection closed on it, which makes it
// release whatever it granted to the connection, and ctx.Err() is
// returned.
func (s *session) settle(ctx context.Context, cl *call, cancel bool) (*call, error) {
	if err := s.wait(ctx, cl.done); err == nil {
		return cl, nil
	}
	grace, stop := context.WithTimeout(context.Background(), cancelGrace)
	defer stop()
	if cancel {
		c := newCall()
		c.id = s.nextID.Add(1)
		c.req.beginRequest(c.id, opCancel, 0)
		c.req.uint(cl.id)
		c.req.end()
		werr := s.write(grace, c.req.buf) // a cancel has no answer
		c.recycle()
		if werr != nil {
			return nil, ctx.Err()
		}
	}
	if err := s.wait(grace, cl.done); err != nil {
		s.abandon(cl)
		s.fail(fmt.Errorf("%w: no answer within %v after the caller gave up", ErrClosed, cancelGrace))
		return nil, ctx.Err()
	}
	if cl.err != nil {
		return nil, cl.err
	}
	if cl.resp.status == statusCanceled || cl.resp.status == statusTimeout {
		cl.recycle()
		return nil, ctx.Err()
	}
	return cl, nil
}
