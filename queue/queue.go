package queue

import (
	"context"
	"fmt"
	"io"
	"iter"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/shmkit/shmkit/shm"
)

// Kinds of queue objects in a segment's directory.
const (
	Kind         = "queue"
	JoinableKind = "jqueue"
)

// Queue is one process's handle on a bounded, multi-producer,
// multi-consumer queue of T in shared memory. Its methods may be called
// from any goroutine; see the package documentation for what crosses
// processes and what a death leaves.
type Queue[T any] struct {
	r    *ring
	c    *coder[T]
	name string
	bufs sync.Pool // *[]byte scratch for encoded messages
}

// New creates a queue named name in seg. It fails with an error matching
// fs.ErrExist if the segment already has an object of that name (attach
// with Open), and with shm.ErrFull if the segment has no room: a queue
// takes Size(capacity, message size) bytes.
func New[T any](seg *shm.Segment, name string, opts ...Option) (*Queue[T], error) {
	return create[T](seg, name, false, opts)
}

// Open attaches to the queue named name in seg, created by New with the
// same T in this or another process. It fails with an error matching
// fs.ErrNotExist if there is none, with shm.ErrTypeMismatch if it is a
// queue of another type (or a JoinableQueue), and with ErrCorrupt if its
// header is damaged.
func Open[T any](seg *shm.Segment, name string) (*Queue[T], error) {
	return open[T](seg, name, false)
}

// Size returns the bytes a queue of T with the given options takes in a
// segment, so that callers can size the segment (shm.Create also needs
// room for its header and directory).
func Size[T any](opts ...Option) (int64, error) {
	g, _, err := geometryFor[T](false, opts)
	if err != nil {
		return 0, err
	}
	return g.size()
}

func geometryFor[T any](joinable bool, opts []Option) (geometry, *coder[T], error) {
	o, err := getOptions(opts, DefaultCapacity)
	if err != nil {
		return geometry{}, nil, err
	}
	c, err := newCoder[T](o.maxMessage)
	if err != nil {
		return geometry{}, nil, err
	}
	return geometry{format: c.format, joinable: joinable, capacity: uint64(o.capacity), maxMsg: c.size}, c, nil
}

func kindOf(joinable bool) string {
	if joinable {
		return JoinableKind
	}
	return Kind
}

func create[T any](seg *shm.Segment, name string, joinable bool, opts []Option) (*Queue[T], error) {
	g, c, err := geometryFor[T](joinable, opts)
	if err != nil {
		return nil, err
	}
	size, err := g.size()
	if err != nil {
		return nil, err
	}
	obj, err := seg.Alloc(shm.ObjectSpec{
		Name: name, Kind: kindOf(joinable), Type: c.typ.String(), Layout: c.layoutOf(),
		Size: size, Align: 64, Init: g.header(),
	})
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	return newQueue(seg, obj, g, c)
}

func open[T any](seg *shm.Segment, name string, joinable bool) (*Queue[T], error) {
	_, c, err := geometryFor[T](joinable, nil)
	if err != nil {
		return nil, err
	}
	obj, err := seg.Attach(shm.ObjectSpec{Name: name, Kind: kindOf(joinable), Type: c.typ.String(), Layout: c.layoutOf()})
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	g, err := readGeometry(obj)
	if err != nil {
		return nil, err
	}
	if g.format != c.format || g.joinable != joinable || (g.format == formatRaw && g.maxMsg != c.size) {
		return nil, corrupt(obj, "header of format %d (joinable %v, %d-byte messages) does not match its %s of %s",
			g.format, g.joinable, g.maxMsg, obj.Kind, obj.Type)
	}
	if c.format != formatRaw {
		// The creator chose the maximum message; encode and decode
		// with its limit.
		if c, err = newCoder[T](g.maxMsg); err != nil {
			return nil, err
		}
	}
	return newQueue(seg, obj, g, c)
}

func newQueue[T any](seg *shm.Segment, obj shm.Object, g geometry, c *coder[T]) (*Queue[T], error) {
	r, err := attach(seg, obj, g)
	if err != nil {
		return nil, fmt.Errorf("queue %q: %w", obj.Name, err)
	}
	return &Queue[T]{r: r, c: c, name: obj.Name}, nil
}

// Name returns the queue's name in its segment.
func (q *Queue[T]) Name() string { return q.name }

// Cap returns how many messages the queue holds.
func (q *Queue[T]) Cap() int { return int(q.r.capacity) }

// MaxMessage returns the largest message the queue carries, in bytes of
// its encoding (for a fixed-size T, the size of T).
func (q *Queue[T]) MaxMessage() int { return q.r.maxMsg }

// Len returns how many messages the queue holds (counting those being put
// or taken), as of some moment during the call.
func (q *Queue[T]) Len() int {
	n := q.r.length()
	q.check()
	return n
}

// Closed reports whether the queue has been closed for writing.
func (q *Queue[T]) Closed() bool {
	c := atomic.LoadUint32(q.r.closed) != 0
	q.check()
	return c
}

// Lost returns how many messages consumers took and lost by dying, over
// the queue's life: in a Queue, those whose consumer died inside Get,
// after taking the message and before returning it; in a JoinableQueue,
// also those got and not yet marked done (TaskDone). A consumer killed in
// the few instructions before its taking compare-and-swap is counted as
// having taken one message, which stays in the queue. A death counts once
// it is visible, within semaphore.CheckInterval of it.
func (q *Queue[T]) Lost() int64 {
	n := q.r.lost()
	q.check()
	return n
}

// Abandoned returns how many claims of producers that died inside Put the
// queue has released: messages whose Put never returned, which nobody
// receives.
func (q *Queue[T]) Abandoned() int64 {
	n := int64(atomic.LoadUint64(q.r.abandoned))
	q.check()
	return n
}

// check panics, for the methods without an error result, once the
// segment is closed: what they read may come from the inert memory Close
// left, and a use after Close is a bug in the program (see shm.Segment's
// Close).
func (q *Queue[T]) check() {
	if err := q.r.seg.Err(); err != nil {
		panic(fmt.Errorf("queue %q: %w", q.name, err))
	}
}

// Close closes the queue for writing, for every process: later Puts fail
// with ErrClosed, and Gets return the messages left and then io.EOF. Puts
// in progress either complete before the consumers' io.EOF or fail. Close
// is idempotent; it fails only if the segment is closed.
func (q *Queue[T]) Close() error {
	if err := q.r.seg.Pin(); err != nil {
		return fmt.Errorf("queue %q: close: %w", q.name, err)
	}
	defer q.r.seg.Unpin()
	q.r.close()
	return nil
}

// Put appends v to the queue, waiting while the queue is full until there
// is room or ctx ends. It fails, having put nothing, with ctx.Err(),
// ErrClosed, ErrTooLarge (v's encoding is larger than MaxMessage), an
// encoding error, or shm.ErrClosed once the segment is closed.
func (q *Queue[T]) Put(ctx context.Context, v T) error { return q.put(ctx, &v, true, true) }

// TryPut is Put without waiting: it fails with ErrFull if the queue has no
// room.
func (q *Queue[T]) TryPut(v T) error { return q.put(context.Background(), &v, false, true) }

// PutMany puts the values of vs in order, as Put would one by one, waking
// consumers once for the batch rather than once per message (and before
// it waits for room). It returns how many it put: on error, vs[:n] are in
// the queue and the rest are not.
func (q *Queue[T]) PutMany(ctx context.Context, vs []T) (int, error) {
	defer wake(q.r.dataWait)
	for k := range vs {
		err := q.put(ctx, &vs[k], false, false)
		if err == ErrFull {
			wake(q.r.dataWait)
			err = q.put(ctx, &vs[k], true, false)
		}
		if err != nil {
			return k, err
		}
	}
	return len(vs), nil
}

func (q *Queue[T]) put(ctx context.Context, v *T, block, wakeNow bool) error {
	var msg []byte
	if q.c.format != formatRaw {
		var err error
		if msg, err = q.c.encode(v); err != nil {
			return fmt.Errorf("queue %q: put: %w", q.name, err)
		}
	}
	// Pinned, the segment stays mapped from the claim to the publish, so
	// that Close never leaves a claimed slot behind while this process
	// lives.
	if err := q.r.seg.Pin(); err != nil {
		return fmt.Errorf("queue %q: put: %w", q.name, err)
	}
	defer q.r.seg.Unpin()
	t, i, err := q.r.claim(ctx, block)
	if err != nil {
		return q.opError("put", err)
	}
	if q.c.format == formatRaw {
		storeRaw(q.r.data(i), v)
	} else {
		q.r.setLen(i, len(msg))
		copyIn(q.r.data(i), msg)
	}
	q.r.publish(t, i)
	if wakeNow {
		wake(q.r.dataWait)
	}
	return nil
}

// opError returns err for a failed op: sentinels and context errors as
// they are (so that err == io.EOF and friends work and cost nothing), the
// rest wrapped with the queue's name.
func (q *Queue[T]) opError(op string, err error) error {
	switch err {
	case io.EOF, ErrFull, ErrEmpty, ErrClosed, context.Canceled, context.DeadlineExceeded:
		return err
	}
	return fmt.Errorf("queue %q: %s: %w", q.name, op, err)
}

// Get removes and returns the message at the head of the queue, waiting
// while the queue is empty until a message comes or ctx ends. Once the
// queue is closed and drained it returns io.EOF. It fails, having taken
// nothing, with ctx.Err() or shm.ErrClosed once the segment is closed; a
// message that does not decode is taken and reported with an error
// matching ErrCorrupt.
func (q *Queue[T]) Get(ctx context.Context) (T, error) {
	var v T
	err := q.get(ctx, &v, true, true, nil)
	return v, err
}

// TryGet is Get without waiting: it fails with ErrEmpty if the queue has
// no message ready.
func (q *Queue[T]) TryGet() (T, error) {
	var v T
	err := q.get(context.Background(), &v, false, true, nil)
	return v, err
}

// GetMany fills buf with messages: it waits, as Get does, for the first,
// then takes as many more as are ready, up to len(buf), and wakes
// producers once for the batch. It returns how many it got; io.EOF only
// when it got none.
func (q *Queue[T]) GetMany(ctx context.Context, buf []T) (int, error) {
	if len(buf) == 0 {
		return 0, nil
	}
	if err := q.get(ctx, &buf[0], true, true, nil); err != nil {
		return 0, err
	}
	n := 1
	for ; n < len(buf); n++ {
		if err := q.get(ctx, &buf[n], false, false, nil); err != nil {
			if err == ErrEmpty || err == io.EOF {
				break
			}
			wake(q.r.spaceWait)
			return n, err
		}
	}
	wake(q.r.spaceWait)
	return n, nil
}

// All returns an iterator over the queue's messages, as Get returns them,
// that ends after the last message of a closed queue. An error other than
// io.EOF is yielded, and ends the iteration.
func (q *Queue[T]) All(ctx context.Context) iter.Seq2[T, error] { return all(ctx, q.Get) }

// all iterates over what get returns until io.EOF, yielding another error
// and ending there: the loop of Queue.All and Pipe.All.
func all[T any](ctx context.Context, get func(context.Context) (T, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for {
			v, err := get(ctx)
			if err == io.EOF {
				return
			}
			if !yield(v, err) || err != nil {
				return
			}
		}
	}
}

// GetAppend is Get for programs that move bytes: it appends the message's
// bytes to dst and returns the extended slice, reusing dst's memory
// where it can, instead of decoding the message into a new T. For a
// queue of []byte the bytes are the message; for other types they are its
// encoding (a fixed-size T's memory, or CBOR), as another process put it.
// Reusing one buffer spares the garbage collector a fresh slice per
// message, which in a tight loop of 1 KiB messages costs more than the
// queue does.
func (q *Queue[T]) GetAppend(ctx context.Context, dst []byte) ([]byte, error) {
	err := q.get(ctx, nil, true, true, &dst)
	return dst, err
}

// get takes the next message into *v or, if app is not nil, appends its
// bytes to *app.
func (q *Queue[T]) get(ctx context.Context, v *T, block, wakeNow bool, app *[]byte) error {
	if err := q.r.seg.Err(); err != nil {
		return fmt.Errorf("queue %q: get: %w", q.name, err)
	}
	var bp *[]byte
	dst, keep := app, 0
	if dst != nil {
		keep = len(*dst)
	}
	for {
		h, i, s, err := q.r.next(ctx, block)
		if err != nil {
			q.putBuf(bp)
			return q.opError("get", err)
		}
		n, ok := q.c.size, true
		var msg []byte
		switch {
		case dst != nil:
			if q.c.format != formatRaw {
				if n, ok = q.r.messageLen(i); !ok {
					n = 0 // taken and reported below
				}
			}
			*dst = slices.Grow((*dst)[:keep], n)[:keep+n]
			copyOut((*dst)[keep:], q.r.data(i))
		case q.c.format == formatRaw:
			loadRaw(v, q.r.data(i))
		default:
			if n, ok = q.r.messageLen(i); !ok {
				n = 0 // taken and reported below
			}
			if q.c.format == formatBytes {
				msg = cloneOut(q.r.data(i), n)
			} else {
				if bp == nil {
					bp = q.getBuf()
				}
				if cap(*bp) < n {
					*bp = make([]byte, n)
				}
				msg = (*bp)[:n]
				copyOut(msg, q.r.data(i))
			}
		}
		// Counted before the take: a process that dies once the take
		// is done holds the message, and Join (or Lost) must never see
		// it gone and not held (see JoinableQueue).
		atomic.AddInt64(q.r.held, 1)
		if !q.r.take(h, i, s) {
			atomic.AddInt64(q.r.held, -1)
			continue
		}
		if wakeNow {
			wake(q.r.spaceWait)
		}
		err = q.r.seg.Err() // what was read may come from the inert memory Close left
		if err == nil && !ok {
			err = fmt.Errorf("%w: slot %d records a %d-byte message, maximum %d", ErrCorrupt, i, n, q.r.maxMsg)
		}
		if err == nil && dst == nil && q.c.format != formatRaw {
			err = q.c.decode(msg, v)
		}
		q.putBuf(bp)
		if err != nil {
			atomic.AddInt64(q.r.held, -1) // no task was handed out
			if dst != nil {
				*dst = (*dst)[:keep]
			}
			return fmt.Errorf("queue %q: get: %w", q.name, err)
		}
		if !q.r.joinable {
			// Handed over: the caller holds the message now.
			atomic.AddInt64(q.r.held, -1)
		}
		return nil
	}
}

func (q *Queue[T]) getBuf() *[]byte {
	if b, ok := q.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 256)
	return &b
}

func (q *Queue[T]) putBuf(b *[]byte) {
	if b != nil && cap(*b) <= 64<<10 {
		q.bufs.Put(b)
	}
}
