// Package array provides fixed-length typed arrays in shared memory,
// updated element by element by any number of processes, and copied in
// bulk consistently.
//
// An Array[T] lives in a segment (package shm) under a name. One process
// creates it with New; others attach with Open, naming the same type:
//
//	counts, err := array.New[int64](seg, "histogram", 64)  // creator
//	counts, err := array.Open[int64](seg, "histogram")     // others
//	counts.Add(bucket, 1)
//
// T follows the rules of package value: a fixed-size, pointer-free type
// (numbers, booleans, arrays and structs of those). Other types are refused
// with an error naming the offending field (matching ErrUnshareable), and
// opening an array as a different element type fails with
// shm.ErrTypeMismatch naming both.
//
// # Element operations
//
// Load, Store, Swap, CompareAndSwap, Add and Update on one element are
// atomic with respect to each other in every process, as for a value.Cell:
// a write synchronizes before a Load that observes it, and Add loses no
// updates. For elements of 1, 2, 4 or 8 bytes they are lock-free (an
// element of 1 or 2 bytes is updated by compare-and-swap on the 4-byte word
// holding it, leaving its neighbours as they are); larger elements are
// read and written under the array's lock. An index out of range panics,
// as it does for a Go slice.
//
// # Bulk operations
//
// CopyTo, CopyFrom and Locked hold the array's lock, so each is atomic with
// respect to the others (a CopyTo never sees half of a CopyFrom) and to
// element operations on elements larger than 8 bytes. They are not atomic
// with respect to lock-free element operations, which do not take the
// lock: use Locked for both sides when that matters. The lock survives its
// holder's death: if a process dies while holding it (in the middle of a
// CopyFrom, say), the next process to take it does so within
// semaphore.CheckInterval, and the next bulk operation, after doing its work,
// returns an error matching ErrOwnerDead, since the elements may be partly
// written.
//
// # Lifetime
//
// An Array uses its segment's memory and keeps the Segment reachable.
// Once the segment is closed, bulk operations return an error matching
// shm.ErrClosed, and element operations, which have no error result,
// panic with one (a use after Close is a bug in the program). An element
// operation that races Close completes, on the segment or, if Close has
// replaced it already, on nothing (a write is then lost), and never
// faults; Load checks the segment after reading, so it never returns a
// value the element did not hold. Close waits for bulk operations in
// progress (and for Locked's function to return, so that function must
// not close the segment) and for operations on elements larger than 8
// bytes. The slice Locked passes to its function must not be kept after
// the function returns.
package array

import (
	"context"
	"errors"
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
// same error as value.ErrUnshareable.
var ErrUnshareable = layout.ErrUnshareable

// ErrOwnerDead reports that a process died while holding the array's lock,
// so that elements may be partly written. It is the same error as
// semaphore.ErrOwnerDead.
var ErrOwnerDead = lock.ErrOwnerDead

// Kind is the kind of object an Array is in its segment's directory.
const Kind = "array"

// Layout: a header cache line holding the lock word and a flag that a
// holder died, then the elements, packed as in a Go slice. The length is
// the object's size, less the header, divided by the element size.
const (
	offLock = 0
	offDied = 8 // uint32: 1 after a lock holder died, until a bulk operation reports it
)

// HeaderSize is the number of bytes an Array's object holds before its
// elements: its lock and bookkeeping, one cache line.
const HeaderSize = 64

// MaxBytes bounds an array's elements: 1 TiB.
const MaxBytes = 1 << 40

// Array is one process's handle on a typed array in shared memory. Its
// methods may be called from any goroutine.
type Array[T any] struct {
	elems unsafe.Pointer // element 0
	n     int
	size  uintptr
	add64 bool // T is an 8-byte integer: Add is one atomic add, inlined
	ops   *atom.Ops[T]
	mu    lock.Mutex
	died  *uint32
	seg   *shm.Segment // checked on every operation; keeps the elements mapped
	name  string
}

// New creates an array of n zero elements named name in seg. It fails with
// an error matching fs.ErrExist if the segment already has an object of
// that name (attach to it with Open), ErrUnshareable if T cannot live in
// shared memory, and shm.ErrFull if the segment has no room.
func New[T any](seg *shm.Segment, name string, n int) (*Array[T], error) {
	spec, err := specFor[T](name)
	if err != nil {
		return nil, err
	}
	size := reflect.TypeFor[T]().Size()
	if n < 0 || uint64(n) > MaxBytes/uint64(size) {
		return nil, fmt.Errorf("array: length %d of %s out of range", n, spec.Type)
	}
	spec.Size = HeaderSize + int64(n)*int64(size)
	obj, err := seg.Alloc(spec)
	if err != nil {
		return nil, fmt.Errorf("array: %w", err)
	}
	return newArray[T](seg, obj)
}

// Open attaches to the existing array named name in seg. It fails with an
// error matching fs.ErrNotExist if there is none, and shm.ErrTypeMismatch
// if it is not an array of T.
func Open[T any](seg *shm.Segment, name string) (*Array[T], error) {
	spec, err := specFor[T](name)
	if err != nil {
		return nil, err
	}
	obj, err := seg.Attach(spec)
	if err != nil {
		return nil, fmt.Errorf("array: %w", err)
	}
	return newArray[T](seg, obj)
}

func specFor[T any](name string) (shm.ObjectSpec, error) {
	t := reflect.TypeFor[T]()
	if err := layout.Check(t); err != nil {
		return shm.ObjectSpec{}, fmt.Errorf("array: %w", err)
	}
	return shm.ObjectSpec{Name: name, Kind: Kind, Type: t.String(), Layout: layout.Describe(t)}, nil
}

func newArray[T any](seg *shm.Segment, obj shm.Object) (*Array[T], error) {
	ops := atom.For[T]()
	body := obj.Size - HeaderSize
	if body < 0 || body%int64(ops.Size()) != 0 {
		return nil, fmt.Errorf("array: %w: object %q has %d bytes, not a header and whole %s elements",
			shm.ErrCorrupt, obj.Name, obj.Size, obj.Type)
	}
	p := unsafe.Pointer(unsafe.SliceData(obj.Bytes))
	a := &Array[T]{
		elems: unsafe.Add(p, HeaderSize),
		n:     int(body / int64(ops.Size())),
		size:  ops.Size(),
		add64: ops.AddIsWord64(),
		ops:   ops,
		died:  (*uint32)(unsafe.Add(p, offDied)),
		seg:   seg,
		name:  obj.Name,
	}
	var err error
	if a.mu, err = lock.New((*uint64)(unsafe.Add(p, offLock)), seg); err != nil {
		return nil, fmt.Errorf("array: %w", err)
	}
	return a, nil
}

// Name returns the array's name in its segment.
func (a *Array[T]) Name() string { return a.name }

// Len returns the number of elements.
func (a *Array[T]) Len() int { return a.n }

func (a *Array[T]) at(i int) unsafe.Pointer {
	if uint(i) >= uint(a.n) {
		panic(fmt.Sprintf("array: index out of range [%d] with length %d", i, a.n))
	}
	return unsafe.Add(a.elems, uintptr(i)*a.size)
}

// Load returns element i.
func (a *Array[T]) Load(i int) T {
	p := a.at(i)
	if a.ops.LockFree() {
		v := a.ops.Load(p)
		// Checked after reading: what was read came from the segment,
		// unless Close replaced it first, and then this sees it closed.
		a.check()
		return v
	}
	a.lockElem()
	defer a.unlockElem()
	return *(*T)(p)
}

// check panics if the array's segment has been closed; see the package
// documentation.
func (a *Array[T]) check() {
	if err := a.seg.Err(); err != nil {
		a.fail(err)
	}
}

// fail panics with err, which matches shm.ErrClosed: element operations
// have no error result, and a use after Close is the caller's bug.
func (a *Array[T]) fail(err error) {
	panic(fmt.Errorf("array %q: %w", a.name, err))
}

// Store sets element i to v.
func (a *Array[T]) Store(i int, v T) {
	p := a.at(i)
	if a.ops.LockFree() {
		a.check()
		a.ops.Store(p, v)
		return
	}
	a.lockElem()
	defer a.unlockElem()
	*(*T)(p) = v
}

// Swap sets element i to v and returns its previous value.
func (a *Array[T]) Swap(i int, v T) T {
	p := a.at(i)
	if a.ops.LockFree() {
		a.check()
		return a.ops.Swap(p, v)
	}
	a.lockElem()
	defer a.unlockElem()
	old := *(*T)(p)
	*(*T)(p) = v
	return old
}

// CompareAndSwap sets element i to new if it equals old (bit for bit) and
// reports whether it did.
func (a *Array[T]) CompareAndSwap(i int, old, new T) bool {
	p := a.at(i)
	if a.ops.LockFree() {
		a.check()
		return a.ops.CompareAndSwap(p, old, new)
	}
	a.lockElem()
	defer a.unlockElem()
	cur := unsafe.Slice((*byte)(p), a.size)
	if string(cur) != string(unsafe.Slice((*byte)(unsafe.Pointer(&old)), a.size)) {
		return false
	}
	*(*T)(p) = new
	return true
}

// Add adds delta to element i and returns the new value, as value.Cell's
// Add does: integers wrap, structs and arrays add field by field, and a
// non-numeric T panics.
func (a *Array[T]) Add(i int, delta T) T {
	if a.add64 && uint(i) < uint(a.n) && a.seg.Err() == nil {
		// The common counter, small enough for the compiler to inline: T
		// is an 8-byte integer, so its bits are a uint64.
		p := (*uint64)(unsafe.Add(a.elems, uintptr(i)*8))
		r := atomic.AddUint64(p, *(*uint64)(unsafe.Pointer(&delta)))
		return *(*T)(unsafe.Pointer(&r))
	}
	return a.add(i, delta)
}

func (a *Array[T]) add(i int, delta T) T {
	p := a.at(i)
	if a.ops.LockFree() {
		a.check()
		return a.ops.Add(p, delta)
	}
	a.ops.MustBeNumeric() // before taking the lock
	a.lockElem()
	defer a.unlockElem()
	v := a.ops.Sum(*(*T)(p), delta)
	*(*T)(p) = v
	return v
}

// Update replaces element i, v, with f(v) atomically and returns the new
// value. For elements of at most 8 bytes f may run more than once, so it
// must not have side effects; for larger ones it runs once under the
// array's lock and must be quick.
func (a *Array[T]) Update(i int, f func(T) T) T {
	p := a.at(i)
	if a.ops.LockFree() {
		a.check()
		_, v := a.ops.Update(p, f)
		return v
	}
	a.lockElem()
	defer a.unlockElem()
	v := f(*(*T)(p))
	*(*T)(p) = v
	return v
}

// Int64s returns the elements of a as atomic integers, for loops that
// need the hardware's speed: hits[i].Add(1) is one atomic instruction on
// the shared element, where a.Add(i, 1) also makes a call and checks that
// the segment is open. The operations are those of a.Add, a.Load and the
// rest, and interoperate with them in every process. The slice is the
// segment's memory: it is valid while the segment is open and a is
// reachable (a keeps the memory mapped; use runtime.KeepAlive(a) after a
// loop that uses only the slice), and must not be used after Close, when
// it is private memory that no other process sees.
func Int64s(a *Array[int64]) []atomic.Int64 { return atomics[atomic.Int64](a) }

// Uint64s is Int64s for arrays of uint64.
func Uint64s(a *Array[uint64]) []atomic.Uint64 { return atomics[atomic.Uint64](a) }

// Int32s is Int64s for arrays of int32.
func Int32s(a *Array[int32]) []atomic.Int32 { return atomics[atomic.Int32](a) }

// Uint32s is Int64s for arrays of uint32.
func Uint32s(a *Array[uint32]) []atomic.Uint32 { return atomics[atomic.Uint32](a) }

// atomics views the elements of a as A, a sync/atomic type of T's size
// and alignment; elements are aligned to their size (objects are
// cache-line aligned, the header is a cache line).
func atomics[A, T any](a *Array[T]) []A {
	a.check()
	return unsafe.Slice((*A)(a.elems), a.n)
}

// CopyTo copies the elements into dst, as many as fit, holding the array's
// lock, and returns how many it copied.
func (a *Array[T]) CopyTo(ctx context.Context, dst []T) (int, error) {
	var n int
	err := a.Locked(ctx, func(s []T) error {
		n = copy(dst, s)
		return nil
	})
	return n, err
}

// CopyFrom copies src into the elements, as many as fit, holding the
// array's lock, and returns how many it copied.
func (a *Array[T]) CopyFrom(ctx context.Context, src []T) (int, error) {
	var n int
	err := a.Locked(ctx, func(s []T) error {
		n = copy(s, src)
		return nil
	})
	return n, err
}

// Locked calls f with the elements as a slice while holding the array's
// lock, waiting for it as long as ctx allows, and returns f's error. The
// slice is the shared memory itself and must not be used after f returns.
// If a process died holding the lock since the last bulk operation, f
// still runs (it may be what repairs the elements), and Locked returns an
// error matching ErrOwnerDead, joined with f's.
func (a *Array[T]) Locked(ctx context.Context, f func(s []T) error) error {
	// Pinned, Close waits for f to return, so that the lock is never left
	// held in the segment and s stays the segment's memory.
	if err := a.seg.Pin(); err != nil {
		return fmt.Errorf("array %q: %w", a.name, err)
	}
	defer a.seg.Unpin()
	died, err := a.mu.Recover(ctx)
	if err != nil {
		return fmt.Errorf("array %q: %w", a.name, err)
	}
	defer a.mu.Unlock()
	// Clear the flag whatever Recover said, so one death is reported once.
	if flagged := atomic.SwapUint32(a.died, 0) != 0; died || flagged {
		err = fmt.Errorf("array %q: %w; elements may be partly written", a.name, ErrOwnerDead)
	}
	return errors.Join(err, f(unsafe.Slice((*T)(a.elems), a.n)))
}

// lockElem pins the segment and takes the lock for an operation on one
// element larger than a word; unlockElem undoes both. Such operations
// return no error, so a dead holder is recorded for the next bulk
// operation to report.
func (a *Array[T]) lockElem() {
	if err := a.seg.Pin(); err != nil {
		a.fail(err)
	}
	died, err := a.mu.Recover(context.Background())
	if err != nil {
		// Recover waits for ever; it fails only when the segment is
		// closed meanwhile.
		a.seg.Unpin()
		a.fail(err)
	}
	if died {
		atomic.StoreUint32(a.died, 1)
	}
}

func (a *Array[T]) unlockElem() {
	a.mu.Unlock()
	a.seg.Unpin()
}

// Peek returns the bytes of the first elements of an array object, at most
// maxElems of them, and the array's length, for tools that do not know its Go
// type (decode them with the object's layout). The copy is taken without
// the array's lock, so it is not atomic with respect to writers.
func Peek(obj shm.Object, maxElems int) (elems []byte, length int, err error) {
	t, err := layout.Parse(obj.Layout)
	if err != nil {
		return nil, 0, err
	}
	body := obj.Size - HeaderSize
	if obj.Kind != Kind || t.Size == 0 || body < 0 || body%int64(t.Size) != 0 {
		return nil, 0, fmt.Errorf("array: %w: object %q is a %s of %d bytes, not an array of %s",
			shm.ErrTypeMismatch, obj.Name, obj.Kind, obj.Size, obj.Type)
	}
	length = int(body / int64(t.Size))
	n := min(length, max(maxElems, 0)) * t.Size
	return append([]byte(nil), obj.Bytes[HeaderSize:HeaderSize+n]...), length, nil
}
