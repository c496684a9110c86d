// Package futex waits and wakes on 32-bit words in memory shared between
// processes.
//
// The operations use the shared (not _PRIVATE) futex flavour, so a word in a
// MAP_SHARED mapping can be waited on in one process and woken from another,
// whatever address each process mapped it at. The kernel contract relied on:
//
//   - Wait returns when woken, when *addr != val at the time of the call, when
//     the deadline passes, or spuriously. Callers must re-check their condition
//     in a loop; a spurious return is allowed.
//   - A Wake of n wakes at most n waiters that are blocked on the same physical
//     word, in any process.
//
// Blocking calls go through the Go scheduler's system-call path, so a waiting
// goroutine holds its OS thread but releases its P.
package futex

import "errors"

// ErrTimeout reports that Wait returned because its deadline passed.
var ErrTimeout = errors.New("futex: timeout")

// ErrNotSupported reports that futexes are not available on this platform.
var ErrNotSupported = errors.New("futex: not supported on this platform")
