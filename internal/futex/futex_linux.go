//go:build linux

package futex

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	opWaitBitset = 9 // FUTEX_WAIT_BITSET: absolute CLOCK_MONOTONIC timeout
	opWake       = 1 // FUTEX_WAKE
	matchAny     = 0xffffffff
)

// Now returns CLOCK_MONOTONIC in nanoseconds, the clock Wait deadlines use.
func Now() int64 {
	var ts unix.Timespec
	// CLOCK_MONOTONIC cannot fail with a valid pointer.
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// Wait blocks while *addr == val until woken or until the absolute
// CLOCK_MONOTONIC deadline in nanoseconds (0 means no deadline). It returns
// nil when woken, when the word no longer held val, or spuriously, and
// ErrTimeout once the deadline has passed. Interruptions by signals (Go's
// preemption uses them) are retried against the same absolute deadline.
func Wait(addr *uint32, val uint32, deadline int64) error {
	var tsp unsafe.Pointer
	var ts unix.Timespec
	if deadline != 0 {
		if deadline <= Now() {
			return ErrTimeout
		}
		ts = unix.NsecToTimespec(deadline)
		tsp = unsafe.Pointer(&ts)
	}
	for {
		_, _, errno := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)),
			opWaitBitset, uintptr(val), uintptr(tsp), 0, matchAny)
		switch errno {
		case 0, unix.EAGAIN:
			return nil
		case unix.EINTR:
			continue
		case unix.ETIMEDOUT:
			return ErrTimeout
		default:
			return errno
		}
	}
}

// Wake wakes at most n waiters blocked on addr and returns how many it woke.
func Wake(addr *uint32, n int) int {
	r, _, errno := unix.Syscall(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), opWake, uintptr(n))
	if errno != 0 {
		// FUTEX_WAKE fails only for a bad address or operation, both
		// programming errors that the caller cannot act on.
		return 0
	}
	return int(r)
}
