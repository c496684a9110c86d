// Package value provides typed cells in shared memory: one value of a
// fixed-size, pointer-free type, updated atomically by any number of
// processes.
//
// A Cell[T] lives in a segment (package shm) under a name. One process
// creates it with New; others, which may be other programs, attach with
// Open, naming the same type:
//
//	hits, err := value.New[int64](seg, "hits")   // creator
//	hits, err := value.Open[int64](seg, "hits")  // every other process
//	hits.Add(1)
//
// T may be a boolean, an integer, a float, a complex number, or an array or
// struct of those. A type that holds a pointer, slice, map, string,
// interface, channel or function is refused with an error naming the
// offending field (matching ErrUnshareable): the garbage collector does not
// see shared memory, and an address means nothing in another process.
// Opening a cell as a different type than it was created with fails with
// shm.ErrTypeMismatch naming both types.
//
// # Atomicity across processes
//
// Every method is atomic with respect to every other method called on the
// same cell from any process: Load sees the value as of some completed
// write, never a torn mixture. A write (Store, Swap, a successful
// CompareAndSwap, Add, Update) in one process synchronizes before a Load in
// any process that observes it, in the sense of the Go memory model. In
// particular Add and Update are read-modify-write operations that lose no
// updates: nine processes each calling Add(1) fifty times leave exactly
// 450, which Python's v.value += 1 does not.
//
// Cells of 1, 2, 4 or 8 bytes are lock-free: Load, Store, Swap,
// CompareAndSwap and Add are single atomic instructions (or a
// compare-and-swap loop, for Add on floats and structs), and Update is a
// compare-and-swap loop. Larger cells serialise writers with a lock that
// survives its holder's death, and write into a second copy that is
// published atomically; readers never wait for writers. If a process dies
// in the middle of a write, the cell keeps the value it had before that
// write, and the next writer takes the lock over within
// semaphore.CheckInterval (25 ms).
//
// CompareAndSwap compares the bits of values, as sync/atomic does: a NaN
// equals a NaN with the same bits, and 0.0 differs from -0.0.
//
// # Lifetime
//
// A Cell uses its segment's memory and keeps the Segment reachable. Once
// the segment is closed, every method panics with an error matching
// shm.ErrClosed (a use after Close is a bug in the program); a call that
// races Close completes, on the segment or, if Close has replaced it
// already, on nothing (a write is then lost), and never faults; Load
// checks the segment after reading, so it never returns a value the cell
// did not hold. Close waits for the writes of cells larger than 8 bytes in
// progress. Cells are never freed: remove the segment instead.
package value

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"sync/atomic"
	"unsafe"

	"github.com/shmkit/shmkit/internal/atom"
	"github.com/shmkit/shmkit/internal/layout"
	"github.com/shmkit/shmkit/internal/lock"
	"github.com/shmkit/shmkit/shm"
)

// ErrUnshareable reports a type that cannot live in shared memory. It is the
// same error as array.ErrUnshareable.
var ErrUnshareable = layout.ErrUnshareable

// Kind is the kind of object a Cell is in its segment's directory.
const Kind = "value"

// Layout of a cell larger than 8 bytes: a lock word and a sequence count on
// the first cache line, then two copies of the value. The count's low bit
// says which copy is current; writers fill the other and then increment it.
const (
	offLock  = 0
	offSeq   = 8
	offSlots = 64
)

// Cell is one process's handle on a typed value in shared memory. Its
// methods may be called from any goroutine.
type Cell[T any] struct {
	p     unsafe.Pointer // start of the object
	add64 bool           // T is an 8-byte integer: Add is one atomic add, inlined
	ops   *atom.Ops[T]
	seg   *shm.Segment // checked on every operation; keeps the memory at p mapped
	name  string

	// Cells larger than 8 bytes only.
	mu       lock.Mutex
	slotSize uintptr // size of T rounded up to 8
}

// New creates a cell named name in seg, holding T's zero value. It fails
// with an error matching fs.ErrExist if the segment already has an object
// of that name (attach to it with Open), ErrUnshareable if T cannot live in
// shared memory, and shm.ErrFull if the segment has no room.
func New[T any](seg *shm.Segment, name string) (*Cell[T], error) {
	spec, err := specFor[T](name)
	if err != nil {
		return nil, err
	}
	obj, err := seg.Alloc(spec)
	if err != nil {
		return nil, fmt.Errorf("value: %w", err)
	}
	return newCell[T](seg, obj)
}

// Open attaches to the existing cell named name in seg. It fails with an
// error matching fs.ErrNotExist if there is none, and shm.ErrTypeMismatch
// if it is not a cell of T.
func Open[T any](seg *shm.Segment, name string) (*Cell[T], error) {
	spec, err := specFor[T](name)
	if err != nil {
		return nil, err
	}
	obj, err := seg.Attach(spec)
	if err != nil {
		return nil, fmt.Errorf("value: %w", err)
	}
	return newCell[T](seg, obj)
}

func specFor[T any](name string) (shm.ObjectSpec, error) {
	t := reflect.TypeFor[T]()
	if err := layout.Check(t); err != nil {
		return shm.ObjectSpec{}, fmt.Errorf("value: %w", err)
	}
	return shm.ObjectSpec{Name: name, Kind: Kind, Type: t.String(), Layout: layout.Describe(t), Size: ObjectSize(t.Size())}, nil
}

// ObjectSize returns the bytes a cell of a type of the given size occupies.
func ObjectSize(size uintptr) int64 {
	if lockFree(size) {
		return int64(size)
	}
	return offSlots + 2*int64(roundUp8(size))
}

func lockFree(size uintptr) bool { return size == 1 || size == 2 || size == 4 || size == 8 }

func roundUp8(n uintptr) uintptr { return (n + 7) &^ 7 }

func newCell[T any](seg *shm.Segment, obj shm.Object) (*Cell[T], error) {
	c := &Cell[T]{name: obj.Name, ops: atom.For[T](), seg: seg, p: unsafe.Pointer(unsafe.SliceData(obj.Bytes))}
	c.add64 = c.ops.AddIsWord64()
	if !c.ops.LockFree() {
		var err error
		if c.mu, err = lock.New((*uint64)(unsafe.Add(c.p, offLock)), seg); err != nil {
			return nil, fmt.Errorf("value: %w", err)
		}
		c.slotSize = roundUp8(c.ops.Size())
	}
	return c, nil
}

// Int64 returns the cell as an *atomic.Int64, for loops that need the
// hardware's speed: hits.Add(1) on it is one atomic instruction on the
// shared word, where c.Add(1) also makes a call and checks that the
// segment is open. Its operations are those of c's methods, and
// interoperate with them in every process. The pointer is to the
// segment's memory: it is valid while the segment is open and c is
// reachable (c keeps the memory mapped; use runtime.KeepAlive(c) after a
// loop that uses only the pointer), and must not be used after Close, when
// it points to private memory that no other process sees.
func Int64(c *Cell[int64]) *atomic.Int64 { return word[atomic.Int64](c) }

// Uint64 is Int64 for cells of uint64.
func Uint64(c *Cell[uint64]) *atomic.Uint64 { return word[atomic.Uint64](c) }

// Int32 is Int64 for cells of int32.
func Int32(c *Cell[int32]) *atomic.Int32 { return word[atomic.Int32](c) }

// Uint32 is Int64 for cells of uint32.
func Uint32(c *Cell[uint32]) *atomic.Uint32 { return word[atomic.Uint32](c) }

// word views c's value as A, a sync/atomic type of T's size and
// alignment; lock-free cells are aligned to their size (objects are
// cache-line aligned).
func word[A, T any](c *Cell[T]) *A {
	c.check()
	return (*A)(c.p)
}

// Name returns the cell's name in its segment.
func (c *Cell[T]) Name() string { return c.name }

// Load returns the value. It never waits for writers.
func (c *Cell[T]) Load() T {
	var v T
	if c.ops.LockFree() {
		v = c.ops.Load(c.p)
	} else {
		seq := (*uint64)(unsafe.Add(c.p, offSeq))
		for {
			s := atomic.LoadUint64(seq)
			atom.LoadWords(unsafe.Pointer(&v), c.slot(s), c.ops.Size())
			// Writers fill the other copy; this one can only have changed
			// if the count moved on (twice) meanwhile.
			if atomic.LoadUint64(seq) == s {
				break
			}
		}
	}
	// Checked after reading: what was read came from the segment, unless
	// Close replaced it first, and then this sees it closed.
	c.check()
	return v
}

// check panics if the cell's segment has been closed; see the package
// documentation.
func (c *Cell[T]) check() {
	if err := c.seg.Err(); err != nil {
		c.fail(err)
	}
}

// fail panics with err, which matches shm.ErrClosed: the methods of a cell
// have no error result, and a use after Close is the caller's bug.
func (c *Cell[T]) fail(err error) {
	panic(fmt.Errorf("value: cell %q: %w", c.name, err))
}

// Store sets the value.
func (c *Cell[T]) Store(v T) {
	if c.ops.LockFree() {
		c.check()
		c.ops.Store(c.p, v)
		return
	}
	c.write(func(T) (T, bool) { return v, true })
}

// Swap sets the value and returns the previous one.
func (c *Cell[T]) Swap(v T) T {
	if c.ops.LockFree() {
		c.check()
		return c.ops.Swap(c.p, v)
	}
	old, _, _ := c.write(func(T) (T, bool) { return v, true })
	return old
}

// CompareAndSwap sets the value to new if it equals old (bit for bit), and
// reports whether it did.
func (c *Cell[T]) CompareAndSwap(old, new T) bool {
	if c.ops.LockFree() {
		c.check()
		return c.ops.CompareAndSwap(c.p, old, new)
	}
	_, _, swapped := c.write(func(cur T) (T, bool) {
		return new, bytes.Equal(asBytes(&cur), asBytes(&old))
	})
	return swapped
}

// Add adds delta to the value and returns the new value. Integers wrap
// around; structs and arrays are added field by field. Add panics if T is
// not a number or an array or struct of numbers (a bool, say).
func (c *Cell[T]) Add(delta T) T {
	if c.add64 && c.seg.Err() == nil {
		// The common counter, kept small enough for the compiler to
		// inline: T is an 8-byte integer, so its bits are a uint64.
		r := atomic.AddUint64((*uint64)(c.p), *(*uint64)(unsafe.Pointer(&delta)))
		return *(*T)(unsafe.Pointer(&r))
	}
	return c.add(delta)
}

func (c *Cell[T]) add(delta T) T {
	if c.ops.LockFree() {
		c.check()
		return c.ops.Add(c.p, delta)
	}
	c.ops.MustBeNumeric() // before taking the lock
	_, new, _ := c.write(func(cur T) (T, bool) { return c.ops.Sum(cur, delta), true })
	return new
}

// Update replaces the value v with f(v), atomically with respect to every
// other operation on the cell in any process, and returns the new value.
// For cells of at most 8 bytes f may run more than once, when another
// process changes the value meanwhile, so it must not have side effects;
// for larger cells it runs once, under the cell's lock, and must be quick.
// If f panics, the value is unchanged.
func (c *Cell[T]) Update(f func(T) T) T {
	if c.ops.LockFree() {
		c.check()
		_, new := c.ops.Update(c.p, f)
		return new
	}
	_, new, _ := c.write(func(cur T) (T, bool) { return f(cur), true })
	return new
}

// write runs f on the current value under the cell's lock and, when f says
// so, publishes its result: into the copy readers are not using, then by
// advancing the sequence count. It returns the value before, the value
// after, and whether f's result was written.
func (c *Cell[T]) write(f func(T) (T, bool)) (old, new T, wrote bool) {
	// Pinned, Close waits for the write to end, so that the lock is never
	// left held in the segment.
	if err := c.seg.Pin(); err != nil {
		c.fail(err)
	}
	defer c.seg.Unpin()
	// A writer that died left the current copy intact, so the lock needs
	// no repair.
	if _, err := c.mu.Recover(context.Background()); err != nil {
		// Recover waits for ever; it fails only when the segment is
		// closed meanwhile.
		c.fail(err)
	}
	defer c.mu.Unlock()
	seq := (*uint64)(unsafe.Add(c.p, offSeq))
	s := atomic.LoadUint64(seq)
	atom.LoadWords(unsafe.Pointer(&old), c.slot(s), c.ops.Size())
	new, wrote = f(old)
	if !wrote {
		return old, old, false
	}
	atom.StoreWords(c.slot(s+1), unsafe.Pointer(&new), c.ops.Size())
	atomic.StoreUint64(seq, s+1)
	return old, new, true
}

// slot returns the copy that sequence count s designates as current.
func (c *Cell[T]) slot(s uint64) unsafe.Pointer {
	return unsafe.Add(c.p, offSlots+uintptr(s&1)*c.slotSize)
}

func asBytes[T any](v *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))
}

// Peek returns the bytes of the value a cell object holds, read as
// consistently as Load reads it, for tools that do not know the cell's Go
// type (the shmkit command decodes them with the object's layout).
func Peek(obj shm.Object) ([]byte, error) {
	t, err := layout.Parse(obj.Layout)
	if err != nil {
		return nil, err
	}
	size := uintptr(t.Size)
	if obj.Kind != Kind || size == 0 || obj.Size != ObjectSize(size) {
		return nil, fmt.Errorf("value: %w: object %q is a %s of %d bytes, not a value of %s",
			shm.ErrTypeMismatch, obj.Name, obj.Kind, obj.Size, obj.Type)
	}
	out := make([]byte, size)
	p := unsafe.Pointer(unsafe.SliceData(obj.Bytes))
	if lockFree(size) {
		// Lock-free cells are aligned to their size; read the whole word.
		var w uint64
		switch size {
		case 8:
			w = atomic.LoadUint64((*uint64)(p))
		default:
			w = uint64(atomic.LoadUint32((*uint32)(p)))
		}
		copy(out, unsafe.Slice((*byte)(unsafe.Pointer(&w)), size))
		return out, nil
	}
	seq := (*uint64)(unsafe.Add(p, offSeq))
	for {
		s := atomic.LoadUint64(seq)
		atom.LoadWords(unsafe.Pointer(&out[0]), unsafe.Add(p, offSlots+uintptr(s&1)*roundUp8(size)), size)
		if atomic.LoadUint64(seq) == s {
			return out, nil
		}
	}
}
