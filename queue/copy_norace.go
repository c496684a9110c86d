//go:build !race

package queue

import "unsafe"

// Messages are copied into and out of slots with plain loads and stores.
// A consumer copies a message out before it takes it (see Queue.Get), so
// a consumer that lost the race for the message may still be copying
// while the slot's next producer writes: the copy is then discarded
// (take fails), so what it read does not matter, as with a sequence lock.
// Under the race detector, which would report those overlaps within one
// process, copy_race.go copies word by word with atomic operations.

// storeRaw copies *v into the slot data at dst.
func storeRaw[T any](dst unsafe.Pointer, v *T) { *(*T)(dst) = *v }

// loadRaw copies the slot data at src into *v.
func loadRaw[T any](v *T, src unsafe.Pointer) { *v = *(*T)(src) }

// copyIn copies b into the slot data at dst.
func copyIn(dst unsafe.Pointer, b []byte) { copy(unsafe.Slice((*byte)(dst), len(b)), b) }

// copyOut fills b from the slot data at src.
func copyOut(b []byte, src unsafe.Pointer) { copy(b, unsafe.Slice((*byte)(src), len(b))) }

// cloneOut returns a new slice holding the n bytes of slot data at src.
// Appending to nil does not clear the memory it then overwrites, as make
// followed by copy does.
func cloneOut(src unsafe.Pointer, n int) []byte {
	return append([]byte(nil), unsafe.Slice((*byte)(src), n)...)
}
