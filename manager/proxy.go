package manager

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// ref is a proxy's handle on a named server object: the object's id on the
// client's current session, found again by name after a reconnect.
type ref struct {
	c        *Client
	k        kind
	name     string
	capacity int64
	rkey     string // the object's Redis key, on a Redis engine

	mu  sync.Mutex
	gen uint64 // session the id belongs to; guarded by mu
	id  uint32 // guarded by mu
}

// open attaches to (mode attachOpen), creates (attachCreate) or either
// (attachOpenOrCreate) the object named name.
func (c *Client) open(ctx context.Context, k kind, name string, mode uint64, capacity int64) (*ref, error) {
	r := &ref{c: c, k: k, name: name, capacity: capacity}
	if c.redis != nil {
		r.rkey = c.redis.key(name, "")
		if err := r.attachRedis(ctx, mode); err != nil {
			return nil, r.wrap(err)
		}
		return r, nil
	}
	s, err := c.session(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.attach(ctx, s, mode); err != nil {
		return nil, err
	}
	return r, nil
}

// openProxy finds, or creates, the object named name of kind k on c's
// server and wraps its handle in a proxy.
func openProxy[P any](ctx context.Context, c *Client, k kind, name string, capacity int64, wrap func(*ref) P) (P, error) {
	r, err := c.open(ctx, k, name, attachOpenOrCreate, capacity)
	if err != nil {
		var zero P
		return zero, err
	}
	return wrap(r), nil
}

func (r *ref) attach(ctx context.Context, s *session, mode uint64) error {
	cl, err := s.call(ctx, opAttach, 0, func(w *frameWriter) error {
		w.uint(uint64(r.k))
		w.text(r.name)
		w.uint(mode)
		w.int(r.capacity)
		return nil
	})
	if err != nil {
		return r.wrap(err)
	}
	defer cl.recycle()
	if err := cl.error(); err != nil {
		return r.wrap(err)
	}
	var id uint64
	res := results{it: cl.resp.results}
	res.uint(&id)
	if err := res.done(); err != nil || id == 0 || id > 1<<32-1 {
		return r.wrap(fmt.Errorf("%w: bad object id", ErrProtocol))
	}
	r.mu.Lock()
	r.gen, r.id = s.gen, uint32(id)
	r.mu.Unlock()
	return nil
}

// session returns the client's session and the object's id on it,
// attaching again (creating the object if need be) after a reconnect.
func (r *ref) session(ctx context.Context) (*session, uint32, error) {
	s, err := r.c.session(ctx)
	if err != nil {
		return nil, 0, r.wrap(err)
	}
	r.mu.Lock()
	gen, id := r.gen, r.id
	r.mu.Unlock()
	if gen == s.gen {
		return s, id, nil
	}
	if err := r.attach(ctx, s, attachOpenOrCreate); err != nil {
		return nil, 0, err
	}
	r.mu.Lock()
	id = r.id
	r.mu.Unlock()
	return s, id, nil
}

// call runs one operation on the object. On success the caller reads the
// call's results and recycles it.
func (r *ref) call(ctx context.Context, o op, build func(*frameWriter) error) (*call, error) {
	if r.c.redis != nil {
		return r.check(r.redisDo(ctx, o, build))
	}
	s, id, err := r.session(ctx)
	if err != nil {
		return nil, err
	}
	cl, err := s.call(ctx, o, id, build)
	return r.check(cl, err)
}

// keep runs an operation whose result must not be lost once sent (see
// session.keep).
func (r *ref) keep(ctx context.Context, o op, build func(*frameWriter) error) (*call, error) {
	if r.c.redis != nil {
		// A command sent is not abandoned when ctx ends (see redisDo).
		return r.check(r.redisDo(ctx, o, build))
	}
	s, id, err := r.session(ctx)
	if err != nil {
		return nil, err
	}
	cl, err := s.keep(ctx, o, id, build)
	return r.check(cl, err)
}

// blocking runs an operation the server may park (see session.blocking);
// with try, the server is told not to park it.
func (r *ref) blocking(ctx context.Context, o op, try bool, build func(*frameWriter, time.Duration) error) (*call, error) {
	if r.c.redis != nil {
		timeout := blockingTimeout(ctx, try)
		return r.check(r.redisDo(ctx, o, func(w *frameWriter) error { return build(w, timeout) }))
	}
	s, id, err := r.session(ctx)
	if err != nil {
		return nil, err
	}
	cl, err := s.blocking(ctx, o, id, try, build)
	return r.check(cl, err)
}

func (r *ref) check(cl *call, err error) (*call, error) {
	if err != nil {
		return nil, r.wrap(err)
	}
	if err := cl.error(); err != nil {
		cl.recycle()
		return nil, r.wrap(err)
	}
	return cl, nil
}

func (r *ref) wrap(err error) error {
	return fmt.Errorf("%s %q: %w", r.k, r.name, err)
}

// Remove deletes the object named name from the server, whatever its kind,
// and reports whether there was one. Proxies of it get fs.ErrNotExist from
// then on, until their client reconnects: a proxy re-attaches by name on a
// new connection, creating the object if it is missing (as it is after the
// server restarted), which cannot be told from one that was removed.
func (c *Client) Remove(ctx context.Context, name string) (bool, error) {
	if c.redis != nil {
		e, err := c.redisEngine()
		if err != nil {
			return false, err
		}
		return e.remove(ctx, name)
	}
	s, err := c.session(ctx)
	if err != nil {
		return false, err
	}
	cl, err := s.call(ctx, opRemove, 0, func(w *frameWriter) error {
		w.uint(0)
		w.text(name)
		return nil
	})
	if err != nil {
		return false, err
	}
	defer cl.recycle()
	if err := cl.error(); err != nil {
		return false, err
	}
	var ok bool
	res := results{it: cl.resp.results}
	res.bool(&ok)
	return ok, res.done()
}

// results decodes a response's results, remembering the first error.
type results struct {
	it     items
	native bool // the results of a Redis engine: stored values in their Redis form
	err    error
}

func (r *results) next() []byte {
	if r.err != nil {
		return nil
	}
	if len(r.it) == 0 {
		r.err = fmt.Errorf("%w: missing result", ErrProtocol)
		return nil
	}
	var b []byte
	b, r.it = r.it.next()
	return b
}

func (r *results) more() bool { return r.err == nil && len(r.it) > 0 }

func (r *results) uint(v *uint64) { intResult(r, v, decodeUint) }
func (r *results) int(v *int64)   { intResult(r, v, decodeInt) }

// intResult decodes the next result, a number the server built (a count,
// a version, an index), into *v; a malformed one is ErrProtocol.
func intResult[T int64 | uint64](r *results, v *T, decode func([]byte) (T, error)) {
	if b := r.next(); b != nil {
		var err error
		if *v, err = decode(b); err != nil {
			r.err = fmt.Errorf("%w: %v", ErrProtocol, err)
		}
	}
}

func (r *results) bool(v *bool) {
	if b := r.next(); b != nil {
		var err error
		if *v, err = decodeBool(b); err != nil {
			r.err = fmt.Errorf("%w: %v", ErrProtocol, err)
		}
	}
}

// value decodes a stored value into v; a value that does not decode into
// the proxy's type is ErrType.
func (r *results) value(v any) {
	if b := r.next(); b != nil {
		var err error
		if s, ok := nativeItem(b); ok && r.native {
			err = fromRedis(s, v)
		} else {
			err = decMode.Unmarshal(b, v)
		}
		if err != nil {
			r.err = fmt.Errorf("%w: stored value does not decode into %T: %v", ErrType, v, err)
		}
	}
}

// into decodes the next result, a stored value, into *v, as value does,
// with the codec's fast paths for common types.
func into[T any](r *results, v *T) {
	if b := r.next(); b != nil {
		var err error
		if s, ok := nativeItem(b); ok && r.native {
			err = fromRedis(s, v)
		} else {
			err = decodeItem(b, v)
		}
		if err != nil {
			r.err = fmt.Errorf("%w: stored value does not decode into %T: %v", ErrType, v, err)
		}
	}
}

func (r *results) done() error {
	if r.err == nil && len(r.it) > 0 {
		r.err = fmt.Errorf("%w: unexpected results", ErrProtocol)
	}
	return r.err
}

// decodeResults runs read over cl's results, recycles cl, and returns the
// first error.
func decodeResults(cl *call, read func(r *results)) error {
	r := &cl.res
	*r = results{it: cl.resp.results, native: cl.native}
	read(r)
	err := r.done()
	cl.recycle()
	return err
}
