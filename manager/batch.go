package manager

import (
	"context"
	"errors"
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
	c   *Client
	ops []batchOp
}

type batchOp struct {
	r      *ref
	o      op
	build  func(*frameWriter) error
	finish func(cl *call, err error)
}

// A Future is the result of an operation queued in a Batch.
type Future[T any] struct {
	v    T
	err  error
	done bool
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

// NewBatch returns an empty batch for proxies of c.
func (c *Client) NewBatch() *Batch { return &Batch{c: c} }

// Len returns the number of operations queued.
func (b *Batch) Len() int { return len(b.ops) }

// batchChunk bounds the bytes of requests written before waiting for their
// answers, well under the transports' buffers (a socket's and a ring's),
// so that the server never waits for the client to read while the client
// waits for the server to read.
const batchChunk = 64 << 10

// Do sends the queued operations, waits for every result, and empties the
// batch. It returns the first error that prevented operations from running
// (a broken connection, ctx ending); errors of single operations are in
// their Futures.
func (b *Batch) Do(ctx context.Context) error {
	ops := b.ops
	b.ops = nil
	var first error
	fail := func(rest []batchOp, err error) {
		for _, op := range rest {
			op.finish(nil, op.r.wrap(err))
		}
		if first == nil {
			first = err
		}
	}
	for len(ops) > 0 {
		s, err := b.c.session(ctx)
		if err != nil {
			fail(ops, err)
			return first
		}
		var w frameWriter
		var calls []*call
		n := 0
		for n < len(ops) && len(w.buf) < batchChunk {
			op := ops[n]
			_, id, err := op.r.session(ctx)
			if err != nil {
				break
			}
			cl := newCall()
			start := len(w.buf)
			w.buf, cl.req.buf = cl.req.buf[:0], w.buf
			err = s.encode(cl, op.o, id, op.build)
			w.buf, cl.req.buf = cl.req.buf, w.buf
			if err == nil {
				err = s.register(cl)
			}
			if err != nil {
				w.buf = w.buf[:start]
				cl.recycle()
				op.finish(nil, op.r.wrap(err))
				ops = append(ops[:n:n], ops[n+1:]...)
				continue
			}
			calls = append(calls, cl)
			n++
		}
		if n == 0 {
			fail(ops, ErrClosed)
			return first
		}
		if len(w.buf) > 0 {
			if err := s.write(w.buf); err != nil {
				// The session failed every registered call.
			}
		}
		for i, cl := range calls {
			if err := s.wait(ctx, cl); err != nil {
				for _, c := range calls[i:] {
					s.abandon(c)
				}
				fail(ops[i:n], err)
				fail(ops[n:], err)
				return first
			}
			ops[i].finish(ops[i].r.check(cl, nil))
		}
		ops = ops[n:]
	}
	return first
}

// queue adds an operation whose single result decodes into a T (or none,
// when T is struct{}).
func queue[T any](b *Batch, r *ref, o op, build func(*frameWriter) error, decode bool) *Future[T] {
	f := &Future[T]{}
	b.ops = append(b.ops, batchOp{r: r, o: o, build: build, finish: func(cl *call, err error) {
		f.done = true
		if err != nil {
			f.err = err
			return
		}
		f.err = r.wrapErr(decodeResults(cl, func(res *results) {
			if decode {
				res.value(&f.v)
			} else {
				res.it = nil
			}
		}))
	}})
	return f
}

// GetIn queues a Get of key in b. A missing key is an error matching
// fs.ErrNotExist.
func (d *Dict[K, V]) GetIn(b *Batch, key K) *Future[V] {
	return queue[V](b, d.r, opMapGet, encode(key), true)
}

// SetIn queues a Set in b.
func (d *Dict[K, V]) SetIn(b *Batch, key K, val V) *Future[struct{}] {
	return queue[struct{}](b, d.r, opMapSet, encode(key, val), false)
}

// AddIn queues an Add in b.
func (d *Dict[K, V]) AddIn(b *Batch, key K, delta V) *Future[V] {
	return queue[V](b, d.r, opMapAdd, encode(key, delta), true)
}

// AppendIn queues an Append in b; the result is the new length.
func (l *List[T]) AppendIn(b *Batch, v T) *Future[int] {
	return queue[int](b, l.r, opListAppend, encode(v), true)
}

// LoadIn queues a Load in b.
func (v *Value[T]) LoadIn(b *Batch) *Future[T] {
	f := &Future[T]{}
	b.ops = append(b.ops, batchOp{r: v.r, o: opValueLoad, finish: func(cl *call, err error) {
		f.done = true
		if err != nil {
			f.err = err
			return
		}
		var ver uint64
		f.err = v.r.wrapErr(decodeResults(cl, func(r *results) { r.uint(&ver); r.value(&f.v) }))
	}})
	return f
}

// StoreIn queues a Store in b.
func (v *Value[T]) StoreIn(b *Batch, x T) *Future[struct{}] {
	return queue[struct{}](b, v.r, opValueStore, encode(x), false)
}

// AddIn queues an Add in b.
func (v *Value[T]) AddIn(b *Batch, delta T) *Future[T] {
	return queue[T](b, v.r, opValueAdd, encode(delta), true)
}
