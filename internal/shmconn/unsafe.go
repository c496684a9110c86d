package shmconn

import "unsafe"

// This file holds the package's only uses of unsafe: views of a ring's
// header words as *uint32 and *uint64, for sync/atomic and futex(2).
//
// They are valid because:
//
//   - attach and InitRing check len(mem) >= headerSize before taking any
//     view, and every offset is below headerSize, so the slice expression
//     mem[off:off+n] is in bounds (and would panic rather than read past
//     the slice if a future change broke that);
//   - they also check that mem starts Alignment-aligned (aligned), and
//     every offset is a multiple of the word's size, so each word is
//     naturally aligned, as atomic instructions on all of Go's 64-bit
//     targets, the 64-bit atomics on 32-bit ones, and futex(2) require;
//   - the pointers point into mem's backing array, so they keep it alive
//     when it is Go memory (tests) and need nothing when it is a mapping,
//     which the caller keeps mapped until Close returns.

// word64 returns an atomic view of the 8 bytes at mem[off:].
func word64(mem []byte, off int) *uint64 {
	return (*uint64)(unsafe.Pointer(&mem[off : off+8][0]))
}

// word32 returns an atomic view of the 4 bytes at mem[off:].
func word32(mem []byte, off int) *uint32 {
	return (*uint32)(unsafe.Pointer(&mem[off : off+4][0]))
}

// aligned reports whether mem starts Alignment-aligned.
func aligned(mem []byte) bool {
	return uintptr(unsafe.Pointer(unsafe.SliceData(mem)))%Alignment == 0
}

// overlap reports whether a and b share any byte.
func overlap(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	pa, pb := uintptr(unsafe.Pointer(unsafe.SliceData(a))), uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return pa < pb+uintptr(len(b)) && pb < pa+uintptr(len(a))
}
