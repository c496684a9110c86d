package atom

import (
	"math"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// slot returns 8-byte aligned scratch memory with guard bytes set around
// the value at its offset off, to catch writes that spill over.
func slot(off uintptr) ([]uint64, unsafe.Pointer) {
	mem := make([]uint64, 4)
	for i := range mem {
		mem[i] = 0xA5A5A5A5A5A5A5A5
	}
	p := unsafe.Add(unsafe.Pointer(&mem[0]), 8+off)
	return mem, p
}

func checkGuards(t *testing.T, mem []uint64, off, size uintptr) {
	t.Helper()
	b := unsafe.Slice((*byte)(unsafe.Pointer(&mem[0])), 32)
	for i := range b {
		if uintptr(i) >= 8+off && uintptr(i) < 8+off+size {
			continue
		}
		if b[i] != 0xA5 {
			t.Fatalf("byte %d outside the value changed to %#x", i, b[i])
		}
	}
}

func roundTrip[T comparable](t *testing.T, off uintptr, a, b T) {
	t.Helper()
	o := For[T]()
	mem, p := slot(off)
	o.Store(p, a)
	if got := o.Load(p); got != a {
		t.Fatalf("%T at +%d: Load after Store(%v) = %v", a, off, a, got)
	}
	if old := o.Swap(p, b); old != a {
		t.Fatalf("%T: Swap returned %v, want %v", a, old, a)
	}
	if o.CompareAndSwap(p, a, a) {
		t.Fatalf("%T: CompareAndSwap with a stale old value succeeded", a)
	}
	if !o.CompareAndSwap(p, b, a) || o.Load(p) != a {
		t.Fatalf("%T: CompareAndSwap(%v, %v) failed", a, b, a)
	}
	old, new := o.Update(p, func(T) T { return b })
	if old != a || new != b || o.Load(p) != b {
		t.Fatalf("%T: Update = %v, %v", a, old, new)
	}
	checkGuards(t, mem, off, o.Size())
}

type pair struct{ A, B int32 }
type trio struct {
	X int8
	Y uint8
	Z int16
}

func TestRoundTrips(t *testing.T) {
	for _, off := range []uintptr{0, 1, 2, 3} {
		roundTrip[int8](t, off, -5, 7)
		roundTrip[bool](t, off, true, false)
		roundTrip[[1]uint8](t, off, [1]uint8{200}, [1]uint8{3})
	}
	for _, off := range []uintptr{0, 2} {
		roundTrip[int16](t, off, -300, 12345)
		roundTrip[[2]byte](t, off, [2]byte{1, 2}, [2]byte{3, 4})
	}
	for _, off := range []uintptr{0, 4} {
		roundTrip[float32](t, off, 1.5, -2.25)
		roundTrip[trio](t, off, trio{-1, 2, -3}, trio{4, 5, 6})
	}
	roundTrip[int64](t, 0, math.MinInt64, 42)
	roundTrip[float64](t, 0, math.Pi, -0.5)
	roundTrip[pair](t, 0, pair{1, -2}, pair{3, 4})
	roundTrip[complex64](t, 0, complex(1, 2), complex(-3, 4))
}

func concurrentAdd[T comparable](t *testing.T, off uintptr, one T, want T) {
	t.Helper()
	o := For[T]()
	mem, p := slot(off)
	var zero T
	o.Store(p, zero)
	const goroutines, iters = 4, 2500
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range iters {
				o.Add(p, one)
			}
		})
	}
	wg.Wait()
	if got := o.Load(p); got != want {
		t.Errorf("%T: %d concurrent Adds of %v = %v, want %v", one, goroutines*iters, one, got, want)
	}
	checkGuards(t, mem, off, o.Size())
}

func TestConcurrentAddExact(t *testing.T) {
	concurrentAdd[int64](t, 0, 1, 10000)
	concurrentAdd[uint32](t, 4, 3, 30000)
	concurrentAdd[int16](t, 2, 1, 10000)
	concurrentAdd[int8](t, 1, 1, 16) // wraps: 10000 mod 256 = 16
	concurrentAdd[uint8](t, 3, 1, uint8(10000%256))
	concurrentAdd[float64](t, 0, 0.5, 5000)
	concurrentAdd[float32](t, 4, 1, 10000)
	concurrentAdd[pair](t, 0, pair{1, -2}, pair{10000, -20000})
	concurrentAdd[complex64](t, 0, complex(1, -1), complex(10000, -10000))
}

func TestAddOnNonNumericPanics(t *testing.T) {
	o := For[bool]()
	_, p := slot(0)
	defer func() {
		r := recover()
		if s, _ := r.(string); !strings.Contains(s, "Add on bool") {
			t.Errorf("panic = %v, want one naming bool", r)
		}
	}()
	o.Add(p, true)
}

func TestNumericAndLockFree(t *testing.T) {
	if For[struct{ A, B bool }]().Numeric() || !For[[3]float64]().Numeric() {
		t.Error("Numeric wrong")
	}
	if For[[3]byte]().LockFree() || !For[[2]int32]().LockFree() || For[[3]int64]().LockFree() {
		t.Error("LockFree wrong")
	}
}

func TestWordsRoundTrip(t *testing.T) {
	for size := uintptr(1); size <= 40; size++ {
		src := make([]byte, size+1)
		for i := range src {
			src[i] = byte(i + 1)
		}
		shared := make([]uint64, 6)
		StoreWords(unsafe.Pointer(&shared[0]), unsafe.Pointer(&src[1]), size) // unaligned source
		dst := make([]byte, size+2)
		LoadWords(unsafe.Pointer(&dst[1]), unsafe.Pointer(&shared[0]), size) // unaligned destination
		if string(dst[1:size+1]) != string(src[1:]) || dst[0] != 0 || dst[size+1] != 0 {
			t.Fatalf("size %d: copied %v from %v", size, dst, src[1:])
		}
		tail := unsafe.Slice((*byte)(unsafe.Pointer(&shared[0])), 48)[size:]
		for i, b := range tail[:(8-size%8)%8] {
			if b != 0 {
				t.Fatalf("size %d: padding byte %d = %d, want 0", size, i, b)
			}
		}
	}
}

// TestSumNested checks field-wise addition over arrays of structs of
// arrays, whose runs have several dimensions, against the same sum
// written out in Go.
func TestSumNested(t *testing.T) {
	type cell struct {
		A int8
		B [3]float32
		C [2][2]uint16
	}
	type grid [5][4]cell
	var a, b, want grid
	n := 0
	for i := range a {
		for j := range a[i] {
			n++
			a[i][j] = cell{A: int8(n), B: [3]float32{float32(n), 0.5, -1}, C: [2][2]uint16{{uint16(n), 1}, {2, 3}}}
			b[i][j] = cell{A: 100, B: [3]float32{1, 1, 1}, C: [2][2]uint16{{65535, 1}, {1, 1}}}
			w := &want[i][j]
			w.A = a[i][j].A + b[i][j].A // wraps
			for k := range w.B {
				w.B[k] = a[i][j].B[k] + b[i][j].B[k]
			}
			for k := range w.C {
				for l := range w.C[k] {
					w.C[k][l] = a[i][j].C[k][l] + b[i][j].C[k][l]
				}
			}
		}
	}
	if got := For[grid]().Sum(a, b); got != want {
		t.Errorf("Sum = %+v\nwant  %+v", got, want)
	}
}

// TestOpsOfLargeTypesAreCheap checks that For costs in proportion to T's
// fields, not its bytes: it once built an entry per scalar, 88 MB for a
// 1 MiB array.
func TestOpsOfLargeTypesAreCheap(t *testing.T) {
	allocs := testing.AllocsPerRun(10, func() { For[[1 << 20]byte]() })
	if allocs > 10 {
		t.Errorf("For[[1 << 20]byte] made %v allocations", allocs)
	}
	o := For[[1 << 20]byte]()
	var a, b [1 << 20]byte
	a[0], a[1<<20-1], b[0], b[1<<20-1] = 1, 2, 3, 4
	if s := o.Sum(a, b); s[0] != 4 || s[1<<20-1] != 6 {
		t.Errorf("Sum of large arrays: first %d, last %d; want 4, 6", s[0], s[1<<20-1])
	}
}
