//go:build race

package queue

import (
	"unsafe"

	"github.com/shmkit/shmkit/internal/atom"
)

// See copy_norace.go. Slot data is 8-byte aligned and padded to a multiple
// of 8, so whole words may be read and written.

func storeRaw[T any](dst unsafe.Pointer, v *T) {
	atom.StoreWords(dst, unsafe.Pointer(v), unsafe.Sizeof(*v))
}

func loadRaw[T any](v *T, src unsafe.Pointer) {
	atom.LoadWords(unsafe.Pointer(v), src, unsafe.Sizeof(*v))
}

func copyIn(dst unsafe.Pointer, b []byte) {
	atom.StoreWords(dst, unsafe.Pointer(unsafe.SliceData(b)), uintptr(len(b)))
}

func copyOut(b []byte, src unsafe.Pointer) {
	atom.LoadWords(unsafe.Pointer(unsafe.SliceData(b)), src, uintptr(len(b)))
}

func cloneOut(src unsafe.Pointer, n int) []byte {
	b := make([]byte, n)
	copyOut(b, src)
	return b
}
