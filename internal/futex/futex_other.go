//go:build !linux

package futex

import "time"

// Now returns a monotonic clock reading in nanoseconds.
func Now() int64 { return time.Now().UnixNano() }

// Wait is not supported on this platform.
func Wait(addr *uint32, val uint32, deadline int64) error { return ErrNotSupported }

// Wake is not supported on this platform.
func Wake(addr *uint32, n int) int { return 0 }
