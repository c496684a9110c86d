// Package atom performs atomic operations on values of any shareable type
// stored in shared memory: the lock-free core of package value's cells and
// package array's elements.
//
// A value whose size is 1, 2, 4 or 8 bytes, stored at an address aligned to
// its size, is accessed with one atomic instruction (8 and 4 bytes) or a
// compare-and-swap on the aligned 4-byte word that contains it (1 and 2
// bytes; the other bytes of that word are compared and written back
// unchanged, so neighbours are not disturbed). Larger values are copied word
// by word with atomic loads and stores, for callers that make the copy
// consistent by other means (a sequence count, a lock).
//
// Layouts are little-endian (the segment layout is): a value's bytes are
// the low bytes of the word that holds it.
package atom

import (
	"fmt"
	"reflect"
	"sync/atomic"
	"unsafe"

	"github.com/shmkit/shmkit/internal/layout"
)

type addKind uint8

const (
	addNone   addKind = iota // not numeric: Add panics
	addWord64                // 8-byte integer: atomic add
	addWord32                // 4-byte integer: atomic add
	addByCAS                 // any other numeric type: compare-and-swap loop
)

// Ops holds what operations on values of type T need to know about T. The
// zero Ops is not usable; make one with For.
type Ops[T any] struct {
	size uintptr
	add  addKind
	runs []layout.Run // scalars of T, for field-wise addition
	name string
}

// For returns the operations for T, which must pass layout.Check.
func For[T any]() *Ops[T] {
	t := reflect.TypeFor[T]()
	runs, numeric := layout.Runs(t)
	o := &Ops[T]{size: t.Size(), runs: runs, name: t.String()}
	one := len(runs) == 1 && len(runs[0].Dims) == 0 && isInteger(runs[0].Kind) // a lone integer
	switch {
	case !numeric:
		o.add = addNone
	case one && t.Size() == 8:
		o.add = addWord64
	case one && t.Size() == 4:
		o.add = addWord32
	default:
		o.add = addByCAS
	}
	return o
}

func isInteger(k reflect.Kind) bool {
	return k >= reflect.Int && k <= reflect.Uintptr
}

// Size returns the size of T in bytes.
func (o *Ops[T]) Size() uintptr { return o.size }

// LockFree reports whether a single T is read and written with one atomic
// operation (its size is 1, 2, 4 or 8 bytes).
func (o *Ops[T]) LockFree() bool {
	return o.size == 1 || o.size == 2 || o.size == 4 || o.size == 8
}

// AddIsWord64 reports whether T is an 8-byte integer, whose Add is a
// single atomic add of its bits (callers may inline that themselves).
func (o *Ops[T]) AddIsWord64() bool { return o.add == addWord64 }

// Numeric reports whether Add is defined for T: every scalar in it is an
// integer, a float or a complex number.
func (o *Ops[T]) Numeric() bool { return o.add != addNone }

// The functions below take p, the address of a T in shared memory, aligned
// to T's size, which must be lock-free.

func toBits[T any](v T) uint64 {
	var b uint64
	*(*T)(unsafe.Pointer(&b)) = v
	return b
}

func fromBits[T any](b uint64) T { return *(*T)(unsafe.Pointer(&b)) }

// word returns the aligned 32-bit word holding a 1- or 2-byte value at p,
// and the value's bit offset and mask within it.
func word(p unsafe.Pointer, size uintptr) (*uint32, uint, uint32) {
	off := uintptr(p) & 3
	return (*uint32)(unsafe.Add(p, -int(off))), uint(off) * 8, uint32(1)<<(size*8) - 1
}

// Load atomically loads the T at p.
func (o *Ops[T]) Load(p unsafe.Pointer) T {
	switch o.size {
	case 8:
		return fromBits[T](atomic.LoadUint64((*uint64)(p)))
	case 4:
		return fromBits[T](uint64(atomic.LoadUint32((*uint32)(p))))
	default:
		w, shift, mask := word(p, o.size)
		return fromBits[T](uint64(atomic.LoadUint32(w) >> shift & mask))
	}
}

// Store atomically stores v at p.
func (o *Ops[T]) Store(p unsafe.Pointer, v T) {
	switch o.size {
	case 8:
		atomic.StoreUint64((*uint64)(p), toBits(v))
	case 4:
		atomic.StoreUint32((*uint32)(p), uint32(toBits(v)))
	default:
		o.cas(p, func(T) T { return v })
	}
}

// Swap atomically stores v at p and returns the previous value.
func (o *Ops[T]) Swap(p unsafe.Pointer, v T) T {
	switch o.size {
	case 8:
		return fromBits[T](atomic.SwapUint64((*uint64)(p), toBits(v)))
	case 4:
		return fromBits[T](uint64(atomic.SwapUint32((*uint32)(p), uint32(toBits(v)))))
	default:
		old, _ := o.cas(p, func(T) T { return v })
		return old
	}
}

// CompareAndSwap atomically replaces the T at p with new if its bits equal
// old's bits, and reports whether it did.
func (o *Ops[T]) CompareAndSwap(p unsafe.Pointer, old, new T) bool {
	switch o.size {
	case 8:
		return atomic.CompareAndSwapUint64((*uint64)(p), toBits(old), toBits(new))
	case 4:
		return atomic.CompareAndSwapUint32((*uint32)(p), uint32(toBits(old)), uint32(toBits(new)))
	default:
		w, shift, mask := word(p, o.size)
		for {
			cur := atomic.LoadUint32(w)
			if cur>>shift&mask != uint32(toBits(old)) {
				return false
			}
			next := cur&^(mask<<shift) | uint32(toBits(new))<<shift
			if atomic.CompareAndSwapUint32(w, cur, next) {
				return true
			}
		}
	}
}

// Update atomically replaces the T at p with f of it and returns the old
// and new values. f may run more than once when other processes change the
// value meanwhile, so it must not have side effects.
func (o *Ops[T]) Update(p unsafe.Pointer, f func(T) T) (old, new T) {
	return o.cas(p, f)
}

func (o *Ops[T]) cas(p unsafe.Pointer, f func(T) T) (T, T) {
	switch o.size {
	case 8, 4:
		for {
			old := o.Load(p)
			new := f(old)
			if o.CompareAndSwap(p, old, new) {
				return old, new
			}
		}
	default:
		w, shift, mask := word(p, o.size)
		for {
			cur := atomic.LoadUint32(w)
			old := fromBits[T](uint64(cur >> shift & mask))
			new := f(old)
			next := cur&^(mask<<shift) | uint32(toBits(new))&mask<<shift
			if atomic.CompareAndSwapUint32(w, cur, next) {
				return old, new
			}
		}
	}
}

// Add atomically adds delta to the T at p, field by field for structs and
// arrays, and returns the new value. Integers wrap around. Add panics if T
// is not numeric.
func (o *Ops[T]) Add(p unsafe.Pointer, delta T) T {
	switch o.add {
	case addWord64:
		return fromBits[T](atomic.AddUint64((*uint64)(p), toBits(delta)))
	case addWord32:
		return fromBits[T](uint64(atomic.AddUint32((*uint32)(p), uint32(toBits(delta)))))
	case addByCAS:
		_, new := o.cas(p, func(v T) T { return o.Sum(v, delta) })
		return new
	}
	panic(o.notNumeric())
}

func (o *Ops[T]) notNumeric() string {
	return fmt.Sprintf("shmkit: Add on %s, which is not a number or a struct or array of numbers", o.name)
}

// MustBeNumeric panics, naming T, unless Add is defined for T.
func (o *Ops[T]) MustBeNumeric() {
	if o.add == addNone {
		panic(o.notNumeric())
	}
}

// Sum returns a + b, adding field by field. It panics if T is not numeric.
func (o *Ops[T]) Sum(a, b T) T {
	o.MustBeNumeric()
	pa, pb := unsafe.Pointer(&a), unsafe.Pointer(&b)
	for _, r := range o.runs {
		addRun(r.Kind, unsafe.Add(pa, r.Off), unsafe.Add(pb, r.Off), r.Dims)
	}
	return a
}

// addRun adds the scalars of kind k at x + the offsets dims spans to those
// at y, looping over the outer dimensions and leaving the innermost to
// addScalars.
func addRun(k reflect.Kind, x, y unsafe.Pointer, dims []layout.Dim) {
	switch len(dims) {
	case 0:
		addScalars(k, x, y, 1, 0)
	case 1:
		addScalars(k, x, y, dims[0].Count, dims[0].Stride)
	default:
		for i := range dims[0].Count {
			off := i * dims[0].Stride
			addRun(k, unsafe.Add(x, off), unsafe.Add(y, off), dims[1:])
		}
	}
}

// addScalars adds n scalars of kind k, stride bytes apart, at y to those at
// x.
func addScalars(k reflect.Kind, x, y unsafe.Pointer, n, stride uintptr) {
	switch k {
	case reflect.Int8, reflect.Uint8:
		addN[uint8](x, y, n, stride)
	case reflect.Int16, reflect.Uint16:
		addN[uint16](x, y, n, stride)
	case reflect.Int32, reflect.Uint32:
		addN[uint32](x, y, n, stride)
	case reflect.Int, reflect.Uint, reflect.Uintptr:
		if unsafe.Sizeof(uintptr(0)) == 8 {
			addN[uint64](x, y, n, stride)
		} else {
			addN[uint32](x, y, n, stride)
		}
	case reflect.Int64, reflect.Uint64:
		addN[uint64](x, y, n, stride)
	case reflect.Float32:
		addN[float32](x, y, n, stride)
	case reflect.Float64:
		addN[float64](x, y, n, stride)
	case reflect.Complex64:
		addN[complex64](x, y, n, stride)
	case reflect.Complex128:
		addN[complex128](x, y, n, stride)
	}
}

func addN[N uint8 | uint16 | uint32 | uint64 | float32 | float64 | complex64 | complex128](x, y unsafe.Pointer, n, stride uintptr) {
	for i := range n {
		*(*N)(unsafe.Add(x, i*stride)) += *(*N)(unsafe.Add(y, i*stride))
	}
}

// LoadWords copies size bytes from src to dst, reading src with 8-byte
// atomic loads so that a concurrent writer is seen word by word, never
// byte-torn within a word. src must be 8-byte aligned and readable up to
// the next multiple of 8; dst need not be aligned.
func LoadWords(dst, src unsafe.Pointer, size uintptr) {
	n := size / 8
	for i := uintptr(0); i < n; i++ {
		v := atomic.LoadUint64((*uint64)(unsafe.Add(src, i*8)))
		*(*[8]byte)(unsafe.Add(dst, i*8)) = *(*[8]byte)(unsafe.Pointer(&v))
	}
	if rest := size % 8; rest != 0 {
		v := atomic.LoadUint64((*uint64)(unsafe.Add(src, n*8)))
		copy(unsafe.Slice((*byte)(unsafe.Add(dst, n*8)), rest), (*[8]byte)(unsafe.Pointer(&v))[:rest])
	}
}

// StoreWords copies size bytes from src to dst with 8-byte atomic stores,
// zero-filling dst up to the next multiple of 8. dst must be 8-byte
// aligned; src need not be.
func StoreWords(dst, src unsafe.Pointer, size uintptr) {
	n := size / 8
	for i := uintptr(0); i < n; i++ {
		var v uint64
		*(*[8]byte)(unsafe.Pointer(&v)) = *(*[8]byte)(unsafe.Add(src, i*8))
		atomic.StoreUint64((*uint64)(unsafe.Add(dst, i*8)), v)
	}
	if rest := size % 8; rest != 0 {
		var v uint64
		copy((*[8]byte)(unsafe.Pointer(&v))[:rest], unsafe.Slice((*byte)(unsafe.Add(src, n*8)), rest))
		atomic.StoreUint64((*uint64)(unsafe.Add(dst, n*8)), v)
	}
}
