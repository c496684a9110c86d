package manager

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// A Batch queues operations, on any proxies of one Client, and sends them
// together: Do writes them in large chunks and waits for the answers, so a
// batch costs about one round trip per chunk instead of one per operation.
// The server runs the operations in the order they were queued, each one
// atomic, but a batch is not a transaction: other clients' operations may
// run between them.
//
// A Batch is not safe for concurrent use. Results are read from the
// Futures the queueing methods return, after Do.
type Batch struct {
	c     *Client
	w     frameWriter // the requests, encoded as they are queued
	ops   []batchOp
	calls []*call // Do's, kept for the next Do

	// doRedis's plans and commands, kept for the next Do.
	rops    []redisOp
	planned []error
	cmds    [][]string
}

type batchOp struct {
	r     *ref
	id    uint32 // the object's id, set by Do
	start int    // offset of the request's frame in w.buf
	fut   completer
}

// completer is a Future of any type.
type completer interface {
	// complete sets the result from a response's results (from a Redis
	// engine if native), or err.
	complete(res items, native bool, err error)
}

// A Future is the result of an operation queued in a Batch.
type Future[T any] struct {
	r       *ref
	v       T
	err     error
	done    bool
	version bool // the results start with a version to skip
	decode  bool // the results carry a T
}

// Result returns the operation's result, or its error. Before the batch
// has run it returns an error.
func (f *Future[T]) Result() (T, error) {
	if !f.done {
		var zero T
		return zero, errors.New("manager: batch not run")
	}
	return f.v, f.err
}

func (f *Future[T]) complete(res items, native bool, err error) {
	f.done = true
	if err != nil {
		f.err = f.r.wrap(err)
		return
	}
	r := results{it: res, native: native}
	if f.version {
		var ver uint64
		r.uint(&ver)
	}
	if f.decode {
		into(&r, &f.v)
	} else {
		r.it = nil
	}
	f.err = f.r.wrapErr(r.done())
}

// NewBatch returns an empty batch for proxies of c.
func (c *Client) NewBatch() *Batch { return &Batch{c: c} }

// Len returns the number of operations queued.
func (b *Batch) Len() int { return len(b.ops) }

// batchChunk is where Do cuts the requests into chunks, each written whole
// before its answers are read: a chunk ends with the first request that
// starts at or past batchChunk bytes. Chunks of small requests fit the
// transports' buffers (a socket's, a ring's), so the server is not kept
// waiting for the client to read while the client is still writing.
const batchChunk = 64 << 10

// queue encodes a request for o on r's object, with the arguments args
// appends, and returns its Future. The request id and object id are
// filled in by Do.
func queue[T any](b *Batch, r *ref, o op, f *Future[T], args func(*frameWriter) error) *Future[T] {
	f.r = r
	start := len(b.w.buf)
	b.w.beginRequest(0, o, 0)
	var err error
	if args != nil {
		err = args(&b.w)
	}
	if err == nil {
		if n := b.w.end(); n > b.c.opts.maxFrame() {
			err = fmt.Errorf("%w: request of %d bytes, limit %d", ErrTooLarge, n, b.c.opts.maxFrame())
		}
	} else {
		err = fmt.Errorf("%w: %w", ErrType, err)
	}
	if err != nil {
		b.w.buf = b.w.buf[:start]
		f.complete(nil, false, err)
		return f
	}
	b.ops = append(b.ops, batchOp{r: r, start: start, fut: f})
	return f
}

// Do sends the queued operations, waits for every result, and empties the
// batch. It returns the first error that stopped operations from running
// (a broken connection, ctx ending), which their Futures also report;
// errors of single operations are only in their Futures.
func (b *Batch) Do(ctx context.Context) error {
	ops, buf := b.ops, b.w.buf
	defer func() {
		// The requests' bytes are not needed once Do returns (results
		// come from the responses), so the next batch reuses them.
		clear(ops)
		b.ops, b.w.buf = ops[:0], buf[:0]
	}()
	fail := func(ops []batchOp, err error) error {
		for _, op := range ops {
			op.fut.complete(nil, false, err)
		}
		return err
	}
	if len(ops) == 0 {
		return nil
	}
	if b.c.redis != nil {
		return b.doRedis(ctx, ops, buf, fail)
	}
	s, err := b.c.session(ctx)
	if err != nil {
		return fail(ops, err)
	}
	// Object ids on this session, once per run of operations on one
	// proxy.
	var last *ref
	for i := range ops {
		if ops[i].r != last {
			last = ops[i].r
			rs, id, err := last.session(ctx)
			if err == nil && rs != s {
				err = fmt.Errorf("%w: connection replaced during the batch", ErrClosed)
			}
			if err != nil {
				return fail(ops, err)
			}
			ops[i].id = id
		} else {
			ops[i].id = ops[i-1].id
		}
	}
	calls := b.calls[:0]
	defer func() { clear(calls); b.calls = calls[:0] }()
	for i := 0; i < len(ops); {
		// A chunk: ops[i:j], contiguous in buf.
		j := i + 1
		for j < len(ops) && ops[j].start-ops[i].start < batchChunk {
			j++
		}
		end := len(buf)
		if j < len(ops) {
			end = ops[j].start
		}
		g := &group{done: make(chan struct{})}
		g.left.Store(int32(j - i))
		calls = calls[:0]
		for _, op := range ops[i:j] {
			cl := callPool.Get().(*call)
			cl.grp, cl.err = g, nil
			cl.id = s.nextID.Add(1)
			frame := buf[op.start+frameLenSize:]
			binary.BigEndian.PutUint64(frame[1:], cl.id)
			binary.BigEndian.PutUint32(frame[11:], op.id)
			calls = append(calls, cl)
		}
		if err := s.registerAll(calls); err != nil {
			for _, cl := range calls {
				cl.recycle()
			}
			return fail(ops[i:], err)
		}
		if err := s.write(ctx, buf[ops[i].start:end]); err != nil {
			// The session failed every registered call.
			<-g.done
		} else if err := s.wait(ctx, g.done); err != nil {
			for _, cl := range calls {
				s.abandon(cl)
			}
			return fail(ops[i:], err)
		}
		for k, cl := range calls {
			op := ops[i+k]
			if e := cl.error(); e != nil {
				op.fut.complete(nil, false, e)
			} else {
				op.fut.complete(cl.resp.results, false, nil)
			}
			cl.recycle()
		}
		if err := s.failure(); err != nil {
			return fail(ops[j:], err)
		}
		i = j
	}
	return nil
}

// doRedis runs the operations of a batch of a Redis engine's client, in
// order: runs of single commands in pipelines of at most batchChunk bytes
// of requests, and operations of more than one command (an Add of a
// narrow type) on their own.
func (b *Batch) doRedis(ctx context.Context, ops []batchOp, buf []byte, fail func([]batchOp, error) error) error {
	e, err := b.c.redisEngine()
	if err != nil {
		return fail(ops, err)
	}
	rops, planned := slices.Grow(b.rops[:0], len(ops))[:len(ops)], slices.Grow(b.planned[:0], len(ops))[:len(ops)]
	defer func() {
		clear(rops)
		clear(planned)
		b.rops, b.planned = rops[:0], planned[:0]
	}()
	for i, bo := range ops {
		frame := buf[bo.start:]
		n := int(binary.BigEndian.Uint32(frame))
		o := op(binary.BigEndian.Uint16(frame[frameLenSize+9:]))
		rops[i], planned[i] = e.plan(bo.r, o, items(frame[frameLenSize+requestHeaderLen:frameLenSize+n]))
	}
	complete := func(i int, cl *call, err error) {
		cl, err = e.settle(cl, err)
		switch {
		case err != nil:
			ops[i].fut.complete(nil, false, err)
		case cl.error() != nil:
			ops[i].fut.complete(nil, false, cl.error())
			cl.recycle()
		default:
			ops[i].fut.complete(cl.resp.results, true, nil)
			cl.recycle()
		}
	}
	for i := 0; i < len(ops); {
		if planned[i] == nil && rops[i].run != nil {
			cl := newLocalCall()
			err := rops[i].run(ctx, &cl.body)
			complete(i, cl, err)
			if err := redisErr(err); err != nil && !errors.As(err, new(*RemoteError)) {
				return fail(ops[i+1:], err)
			}
			i++
			continue
		}
		// A pipeline: ops[i:j], single commands (or failed plans).
		j := i
		cmds := b.cmds[:0]
		for ; j < len(ops) && (planned[j] != nil || rops[j].run == nil); j++ {
			if j > i && ops[j].start-ops[i].start >= batchChunk {
				break
			}
			if planned[j] == nil {
				cmds = append(cmds, rops[j].cmd)
			}
		}
		replies, errs, perr := e.conn.Pipeline(ctx, cmds)
		clear(cmds)
		b.cmds = cmds[:0]
		k := 0
		for ; i < j; i++ {
			err := planned[i]
			var v any
			if err == nil {
				v, err = replies[k], errs[k]
				k++
			}
			cl := newLocalCall()
			if err == nil {
				err = rops[i].reply(v, &cl.body)
			}
			complete(i, cl, err)
		}
		if perr != nil {
			return fail(ops[j:], redisErr(perr))
		}
	}
	return nil
}

// GetIn queues a Get of key in b. A missing key is an error matching
// fs.ErrNotExist.
func (d *Dict[K, V]) GetIn(b *Batch, key K) *Future[V] {
	return queue(b, d.r, opMapGet, &Future[V]{decode: true}, func(w *frameWriter) error { return appendItem(w, key) })
}

// SetIn queues a Set in b.
func (d *Dict[K, V]) SetIn(b *Batch, key K, val V) *Future[struct{}] {
	return queue(b, d.r, opMapSet, &Future[struct{}]{}, func(w *frameWriter) error { return put2(w, key, val) })
}

// AddIn queues an Add in b.
func (d *Dict[K, V]) AddIn(b *Batch, key K, delta V) *Future[V] {
	return queue(b, d.r, opMapAdd, &Future[V]{decode: true}, addArgs[V](func(w *frameWriter) error { return put2(w, key, delta) }))
}

// AppendIn queues an Append in b; the result is the new length.
func (l *List[T]) AppendIn(b *Batch, v T) *Future[int] {
	return queue(b, l.r, opListAppend, &Future[int]{decode: true}, func(w *frameWriter) error { return appendItem(w, v) })
}

// LoadIn queues a Load in b.
func (v *Value[T]) LoadIn(b *Batch) *Future[T] {
	return queue(b, v.r, opValueLoad, &Future[T]{version: true, decode: true}, nil)
}

// StoreIn queues a Store in b.
func (v *Value[T]) StoreIn(b *Batch, x T) *Future[struct{}] {
	return queue(b, v.r, opValueStore, &Future[struct{}]{}, func(w *frameWriter) error { return appendItem(w, x) })
}

// AddIn queues an Add in b.
func (v *Value[T]) AddIn(b *Batch, delta T) *Future[T] {
	return queue(b, v.r, opValueAdd, &Future[T]{decode: true}, addArgs[T](func(w *frameWriter) error { return appendItem(w, delta) }))
}
