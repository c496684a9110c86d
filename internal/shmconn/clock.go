package shmconn

import (
	"time"

	"github.com/shmkit/shmkit/internal/futex"
)

// The clock of deadlines is futex's, CLOCK_MONOTONIC in nanoseconds, but
// futex.Now makes a clock_gettime system call (hundreds of nanoseconds on
// a virtual machine), too slow for a polling loop. The Go runtime reads
// the same clock through the vDSO for time.Now's monotonic reading, so
// now offsets that reading by the difference measured once.
var (
	monoBase  = time.Now()
	futexBase = futex.Now()
)

// now returns CLOCK_MONOTONIC in nanoseconds, as futex.Now does, give or
// take the microsecond between the two readings above.
func now() int64 { return futexBase + int64(time.Since(monoBase)) }
