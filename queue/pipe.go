package queue

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/shmkit/shmkit/internal/lock"
	"github.com/shmkit/shmkit/shm"
)

// PipeKind is the kind of pipe objects in a segment's directory.
const PipeKind = "pipe"

// DefaultPipeCapacity is how many messages a pipe buffers in each
// direction unless Capacity says otherwise.
const DefaultPipeCapacity = 16

// Errors of pipes, beside those of queues.
var (
	// ErrEndInUse reports an OpenPipe of an end that a live process (this
	// one, or another) has open.
	ErrEndInUse = errors.New("queue: pipe end in use")

	// ErrOneWay reports a Send on the receiving end, or a Recv on the
	// sending end, of a one-way pipe.
	ErrOneWay = errors.New("queue: one-way pipe")
)

// The layout of a pipe object; docs/layout.md has the same table.
const (
	pipeMagic   = 0x50495053 // "SPIP" in little-endian byte order
	pipeVersion = 1

	pipeOffMagic    = 0   // uint32
	pipeOffVersion  = 4   // uint32
	pipeOffFlags    = 8   // uint32: bit 0 one-way
	pipeOffRings    = 12  // uint32: 1 (one-way) or 2
	pipeOffRingSize = 16  // uint64: bytes of each ring
	pipeOffEnd0     = 64  // uint64: end word of end 0
	pipeOffEnd1     = 128 // uint64: end word of end 1
	pipeHeaderSize  = 256 // ring e, carrying messages to end e, follows at pipeHeaderSize + e*ring size

	// An end word is 0 before the end is opened, the owner word of the
	// process that has it open, or endClosed once it is closed.
	endClosed = ^uint64(0)
)

// Pipe is one end of a pipe: a pair of single-producer, single-consumer
// queues in shared memory, one per direction, between two ends that two
// processes (or two parts of one) hold. It is Python's multiprocessing
// Pipe, with messages of type T encoded as a Queue's are.
//
// An end belongs to one process at a time, but its methods may be called
// from any of that process's goroutines: messages that one goroutine sends
// in turn arrive in that order. Send synchronizes before the Recv that
// returns its message.
type Pipe[T any] struct {
	rx, tx   *Queue[T] // nil for the direction a one-way end lacks
	seg      *shm.Segment
	name     string
	end      int
	self     *uint64 // this end's word
	peerWord *uint64
	mu       sync.Mutex // serializes Close
	closed   atomic.Bool
}

// NewPipe creates a pipe named name in seg and returns its first end (end
// 0), held by this process; the second end (end 1) is opened with
// OpenPipe, typically by a worker process the segment is handed to. It
// fails as New does. Capacity sets how many messages each direction
// buffers (default DefaultPipeCapacity) and MaxMessage their size; with
// OneWay, messages go only from end 1 to end 0.
func NewPipe[T any](seg *shm.Segment, name string, opts ...Option) (*Pipe[T], error) {
	g, c, oneWay, err := pipeGeometry[T](opts)
	if err != nil {
		return nil, err
	}
	ringSize, size, err := pipeSizes(g, oneWay)
	if err != nil {
		return nil, err
	}
	me, err := selfOwner()
	if err != nil {
		return nil, err
	}
	// The header, the first ring's header and end 0's word are written
	// before the object is published; the second ring's header is
	// written, atomically, before the peer can open its end.
	init := make([]byte, pipeHeaderSize+headerSize)
	le := binary.LittleEndian
	le.PutUint32(init[pipeOffMagic:], pipeMagic)
	le.PutUint32(init[pipeOffVersion:], pipeVersion)
	rings := uint32(2)
	if oneWay {
		le.PutUint32(init[pipeOffFlags:], 1)
		rings = 1
	}
	le.PutUint32(init[pipeOffRings:], rings)
	le.PutUint64(init[pipeOffRingSize:], uint64(ringSize))
	le.PutUint64(init[pipeOffEnd0:], me)
	rh := g.header()
	copy(init[pipeHeaderSize:], rh)
	obj, err := seg.Alloc(shm.ObjectSpec{
		Name: name, Kind: PipeKind, Type: c.typ.String(), Layout: c.layoutOf(),
		Size: size, Align: 64, Init: init,
	})
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	if !oneWay {
		// Nobody reads the second ring before end 1 is opened, which
		// the compare-and-swap in OpenPipe orders after these stores.
		dst := obj.Bytes[pipeHeaderSize+ringSize:]
		for off := 0; off < len(rh); off += 4 {
			atomic.StoreUint32((*uint32)(unsafe.Pointer(&dst[off])), le.Uint32(rh[off:]))
		}
	}
	p, err := newPipe(seg, obj, g, c, 0, ringSize, oneWay)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// OpenPipe opens the second end (end 1) of the pipe named name in seg,
// created by NewPipe with the same T in this or another process. It fails
// with an error matching fs.ErrNotExist if there is none, with
// shm.ErrTypeMismatch if it is a pipe of another type or not a pipe, with
// ErrEndInUse if a live process has the end open, with ErrClosed if the
// end was closed (or its process died: an end is opened once), and with
// ErrCorrupt if the pipe's header is damaged.
func OpenPipe[T any](seg *shm.Segment, name string) (*Pipe[T], error) {
	_, c, _, err := pipeGeometry[T](nil)
	if err != nil {
		return nil, err
	}
	obj, err := seg.Attach(shm.ObjectSpec{Name: name, Kind: PipeKind, Type: c.typ.String(), Layout: c.layoutOf()})
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	g, ringSize, oneWay, err := readPipe(obj)
	if err != nil {
		return nil, err
	}
	base := unsafe.Pointer(unsafe.SliceData(obj.Bytes))
	if g.format != c.format || (g.format == formatRaw && g.maxMsg != c.size) {
		return nil, corrupt(obj, "ring of format %d (%d-byte messages) does not match its pipe of %s",
			g.format, g.maxMsg, obj.Type)
	}
	if c.format != formatRaw {
		if c, err = newCoder[T](g.maxMsg); err != nil {
			return nil, err
		}
	}
	me, err := selfOwner()
	if err != nil {
		return nil, err
	}
	w := word64(base, pipeOffEnd1)
	if !atomic.CompareAndSwapUint64(w, 0, me) {
		switch old := atomic.LoadUint64(w); {
		case old == endClosed:
			return nil, fmt.Errorf("queue: pipe %q: end 1: %w", name, ErrClosed)
		case old != 0 && !lock.OwnerAlive(old):
			return nil, fmt.Errorf("queue: pipe %q: end 1: %w: its process %d died", name, ErrClosed, lock.OwnerPid(old))
		default:
			return nil, fmt.Errorf("queue: pipe %q: end 1: %w", name, ErrEndInUse)
		}
	}
	p, err := newPipe(seg, obj, g, c, 1, ringSize, oneWay)
	if err != nil {
		// Hand the end back: nothing was sent or received through it.
		atomic.CompareAndSwapUint64(w, me, 0)
		return nil, err
	}
	return p, nil
}

// readPipe validates the header of the pipe object obj and its first
// ring's, and returns the rings' geometry, the size of each ring and
// whether the pipe is one-way.
func readPipe(obj shm.Object) (geometry, int, bool, error) {
	var g geometry
	if len(obj.Bytes) < pipeHeaderSize {
		return g, 0, false, corrupt(obj, "%d bytes, less than the %d-byte pipe header", len(obj.Bytes), pipeHeaderSize)
	}
	base := unsafe.Pointer(unsafe.SliceData(obj.Bytes))
	magic := atomic.LoadUint32(word32(base, pipeOffMagic))
	version := atomic.LoadUint32(word32(base, pipeOffVersion))
	flags := atomic.LoadUint32(word32(base, pipeOffFlags))
	rings := atomic.LoadUint32(word32(base, pipeOffRings))
	ringSize := atomic.LoadUint64(word64(base, pipeOffRingSize))
	switch {
	case magic != pipeMagic:
		return g, 0, false, corrupt(obj, "bad pipe magic %#x", magic)
	case version != pipeVersion:
		return g, 0, false, corrupt(obj, "pipe layout version %d, want %d", version, pipeVersion)
	case flags&^1 != 0 || rings != 2-flags:
		return g, 0, false, corrupt(obj, "pipe flags %#x with %d rings", flags, rings)
	case ringSize < slotsOff || ringSize > uint64(len(obj.Bytes)-pipeHeaderSize)/uint64(rings) ||
		pipeHeaderSize+uint64(rings)*ringSize != uint64(len(obj.Bytes)):
		return g, 0, false, corrupt(obj, "%d bytes for %d rings of %d", len(obj.Bytes), rings, ringSize)
	}
	g, err := readGeometry(ringObject(obj, 0, int(ringSize)))
	if err != nil {
		return g, 0, false, err
	}
	if g.joinable {
		return g, 0, false, corrupt(obj, "joinable ring in a pipe")
	}
	return g, int(ringSize), flags&1 != 0, nil
}

// PipeSize returns the bytes a pipe of T with the given options takes in a
// segment.
func PipeSize[T any](opts ...Option) (int64, error) {
	g, _, oneWay, err := pipeGeometry[T](opts)
	if err != nil {
		return 0, err
	}
	_, size, err := pipeSizes(g, oneWay)
	return size, err
}

func pipeGeometry[T any](opts []Option) (geometry, *coder[T], bool, error) {
	o, err := getOptions(opts, DefaultPipeCapacity)
	if err != nil {
		return geometry{}, nil, false, err
	}
	c, err := newCoder[T](o.maxMessage)
	if err != nil {
		return geometry{}, nil, false, err
	}
	return geometry{format: c.format, capacity: uint64(o.capacity), maxMsg: c.size}, c, o.oneWay, nil
}

// pipeSizes returns the bytes of each ring and of the whole pipe.
func pipeSizes(g geometry, oneWay bool) (int, int64, error) {
	ring, err := g.size()
	if err != nil {
		return 0, 0, err
	}
	rings := int64(2)
	if oneWay {
		rings = 1
	}
	if ring > (1<<62)/rings {
		return 0, 0, fmt.Errorf("queue: a pipe of %d-byte rings does not fit in memory", ring)
	}
	return int(ring), pipeHeaderSize + rings*ring, nil
}

// ringObject returns ring e of the pipe object obj as an object of its
// own, for the queue code.
func ringObject(obj shm.Object, e, ringSize int) shm.Object {
	off := pipeHeaderSize + e*ringSize
	return shm.Object{Name: obj.Name, Kind: obj.Kind, Type: obj.Type, Bytes: obj.Bytes[off : off+ringSize : off+ringSize]}
}

func newPipe[T any](seg *shm.Segment, obj shm.Object, g geometry, c *coder[T], end, ringSize int, oneWay bool) (*Pipe[T], error) {
	base := unsafe.Pointer(unsafe.SliceData(obj.Bytes))
	p := &Pipe[T]{seg: seg, name: obj.Name, end: end}
	ends := [2]*uint64{word64(base, pipeOffEnd0), word64(base, pipeOffEnd1)}
	p.self, p.peerWord = ends[end], ends[1-end]
	// Ring e carries messages to end e.
	rxRing, txRing := end, 1-end
	if oneWay {
		rxRing, txRing = 0, 0
	}
	var err error
	if !oneWay || end == 0 {
		if p.rx, err = newQueue(seg, ringObject(obj, rxRing, ringSize), g, c); err != nil {
			return nil, err
		}
		p.rx.r.peer = p.peerWord
	}
	if !oneWay || end == 1 {
		if p.tx, err = newQueue(seg, ringObject(obj, txRing, ringSize), g, c); err != nil {
			return nil, err
		}
		p.tx.r.peer = p.peerWord
	}
	return p, nil
}

// Name returns the pipe's name in its segment.
func (p *Pipe[T]) Name() string { return p.name }

// End returns which end this is: 0 (NewPipe's) or 1 (OpenPipe's).
func (p *Pipe[T]) End() int { return p.end }

// Send sends v to the other end, waiting while the pipe is full (the peer
// has not received Capacity earlier messages) until there is room or ctx
// ends. It fails, having sent nothing, with ctx.Err(); ErrClosed once this
// end is closed; an error matching io.ErrClosedPipe once the peer has
// closed its end, also matching ErrPeerDied if the peer died instead;
// ErrOneWay on the receiving end of a one-way pipe; ErrTooLarge or an
// encoding error for v. A nil error means the message is in the pipe, not
// that the peer got it: a peer that dies before receiving it loses it.
func (p *Pipe[T]) Send(ctx context.Context, v T) error {
	if p.tx == nil {
		return fmt.Errorf("queue: pipe %q: send on end %d: %w", p.name, p.end, ErrOneWay)
	}
	if p.closed.Load() {
		return ErrClosed
	}
	err := p.tx.put(ctx, &v, true, true)
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrClosed) {
		return p.endError("send", io.ErrClosedPipe)
	}
	return p.opError("send", err)
}

// Recv receives the next message from the other end, waiting until one
// comes or ctx ends. Once the peer has closed its end, it returns what the
// peer sent before and then io.EOF; if the peer died instead, an error
// matching both io.EOF and ErrPeerDied, within semaphore.CheckInterval of the
// death. It fails with ctx.Err(), ErrClosed once this end is closed,
// ErrOneWay on the sending end of a one-way pipe, and an error matching
// ErrCorrupt for a message that does not decode (which is consumed).
func (p *Pipe[T]) Recv(ctx context.Context) (T, error) {
	var v T
	return v, p.recv(ctx, &v, nil, true)
}

// RecvAppend is Recv for programs that move bytes, as Queue.GetAppend is
// Get: it appends the message's bytes (for a pipe of []byte, the message;
// else its encoding) to dst and returns the extended slice, reusing dst's
// memory where it can. It fails as Recv does, returning dst unchanged.
func (p *Pipe[T]) RecvAppend(ctx context.Context, dst []byte) ([]byte, error) {
	err := p.recv(ctx, nil, &dst, true)
	return dst, err
}

// TryRecvAppend is RecvAppend without waiting: it fails with ErrEmpty if
// no message is ready. It does not look whether the peer lives (a look at
// /proc costs microseconds): once the peer has closed its end it returns
// io.EOF, but a peer that died without closing it leaves TryRecvAppend
// failing with ErrEmpty, so a caller that polls with it learns of the
// death otherwise (from Poll, Recv, or the peer's process).
func (p *Pipe[T]) TryRecvAppend(dst []byte) ([]byte, error) {
	err := p.recv(context.Background(), nil, &dst, false)
	return dst, err
}

func (p *Pipe[T]) recv(ctx context.Context, v *T, app *[]byte, block bool) error {
	if p.rx == nil {
		return fmt.Errorf("queue: pipe %q: receive on end %d: %w", p.name, p.end, ErrOneWay)
	}
	if p.closed.Load() {
		return ErrClosed
	}
	err := p.rx.get(ctx, v, block, true, app)
	if err == nil {
		return nil
	}
	if err == io.EOF {
		return p.endError("receive", io.EOF)
	}
	return p.opError("receive", err)
}

// Poll reports whether a Recv would return at once, with a message or with
// the end of the stream, waiting until it would or ctx ends: it returns
// false and a nil error when ctx ends first, as Python's poll(timeout)
// returns False. Poll(ctx) with an expired ctx looks without waiting.
// It fails as Recv does.
func (p *Pipe[T]) Poll(ctx context.Context) (bool, error) {
	if p.rx == nil {
		return false, fmt.Errorf("queue: pipe %q: poll on end %d: %w", p.name, p.end, ErrOneWay)
	}
	if p.closed.Load() {
		return false, ErrClosed
	}
	if err := p.seg.Err(); err != nil {
		return false, p.opError("poll", err)
	}
	block := ctx.Err() == nil
	_, _, _, err := p.rx.r.next(ctx, block)
	if err == ErrEmpty && p.rx.r.peerGone() {
		// A look without waiting checks the peer every time: nothing
		// more will come from a peer that is gone.
		p.rx.r.close()
		_, _, _, err = p.rx.r.next(ctx, false)
	}
	if err == nil {
		err = p.seg.Err()
	}
	switch {
	case err == nil:
		return true, nil
	case err == io.EOF:
		if p.closed.Load() {
			return false, ErrClosed
		}
		return true, nil
	case err == ErrEmpty, errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false, nil
	}
	return false, p.opError("poll", err)
}

// All returns an iterator over the messages received, as Recv returns
// them, that ends when the peer has closed its end. An error, including
// the peer's death, is yielded and ends the iteration.
func (p *Pipe[T]) All(ctx context.Context) iter.Seq2[T, error] { return all(ctx, p.Recv) }

// Close closes this end, for good: the peer receives what this end sent
// and then io.EOF, and its Sends fail with io.ErrClosedPipe; calls on this
// end in progress or made later fail with ErrClosed, and messages the
// peer sent that were not received are dropped. Close is idempotent; it
// fails only if the segment is closed (close the pipe first: a peer sees
// an end whose segment was closed under it as open until this process
// exits).
func (p *Pipe[T]) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return nil
	}
	if err := p.seg.Pin(); err != nil {
		return fmt.Errorf("queue: pipe %q: close: %w", p.name, err)
	}
	defer p.seg.Unpin()
	p.closed.Store(true)
	// The end word first: a peer that finds its ring closed then finds
	// this end closed, not alive, and reports io.EOF rather than a death.
	atomic.SwapUint64(p.self, endClosed)
	for _, q := range []*Queue[T]{p.rx, p.tx} {
		if q != nil {
			q.r.close()
		}
	}
	return nil
}

// endError classifies a ring found closed: by this end (ErrClosed), by the
// peer (base: io.EOF or io.ErrClosedPipe), or on the peer's death.
func (p *Pipe[T]) endError(op string, base error) error {
	if p.closed.Load() {
		return p.opError(op, ErrClosed)
	}
	if err := p.seg.Err(); err != nil {
		return p.opError(op, err)
	}
	w := atomic.LoadUint64(p.peerWord)
	if w == endClosed || w == 0 || lock.OwnerAlive(w) {
		if base == io.EOF {
			return io.EOF // as it is, for err == io.EOF
		}
		return p.opError(op, base)
	}
	return &peerDiedError{pipe: p.name, op: op, pid: lock.OwnerPid(w), base: base}
}

func (p *Pipe[T]) opError(op string, err error) error {
	switch err {
	case ErrClosed, ErrEmpty, context.Canceled, context.DeadlineExceeded:
		return err
	}
	if errors.Is(err, ErrClosed) {
		return ErrClosed
	}
	return fmt.Errorf("queue: pipe %q: %s: %w", p.name, op, err)
}

// peerDiedError reports a pipe's peer that died without closing its end.
// It matches ErrPeerDied and base (io.EOF for Recv, io.ErrClosedPipe for
// Send).
type peerDiedError struct {
	pipe, op string
	pid      int
	base     error
}

func (e *peerDiedError) Error() string {
	return fmt.Sprintf("queue: pipe %q: %s: the process at the other end (pid %d) died", e.pipe, e.op, e.pid)
}

func (e *peerDiedError) Is(target error) bool { return target == ErrPeerDied || target == e.base }
