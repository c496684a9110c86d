package queue

import (
	"runtime"
	"sync/atomic"
	"time"
)

// spinners counts the goroutines of this process polling a queue. It is
// process-wide by nature: the limit protects the process's CPUs, whatever
// queues the pollers wait on.
var spinners atomic.Int32

const (
	// spinTime is how long a blocked call polls before it sleeps. A
	// sleep and wake-up through the kernel cost tens of microseconds on
	// the project's virtual machines, and a producer or consumer that
	// keeps up with its peer answers within a few.
	spinTime = 20 * time.Microsecond
	// spinPolls is how many loads a poller makes between looks at the
	// clock.
	spinPolls = 256
	// yieldEvery is how often a poller lets the Go scheduler run other
	// goroutines.
	yieldEvery = time.Microsecond
)

// spinLimit is how many goroutines of the process may poll at once: all
// processors but one, at least one, and none on a machine with one CPU,
// where the process polled for could not run meanwhile.
func spinLimit() int32 {
	if runtime.NumCPU() < 2 {
		return 0
	}
	return int32(max(1, runtime.GOMAXPROCS(0)-1))
}

// spin polls the word at w for up to spinTime and reports whether it
// stopped holding s or the flag at closed was set.
func spin(w *uint64, s uint64, closed *uint32) bool {
	if spinners.Add(1) > spinLimit() {
		spinners.Add(-1)
		return false
	}
	defer spinners.Add(-1)
	start := time.Now()
	nextYield := yieldEvery
	for {
		for range spinPolls {
			if atomic.LoadUint64(w) != s {
				return true
			}
		}
		if atomic.LoadUint32(closed) != 0 {
			return true
		}
		d := time.Since(start)
		if d >= spinTime {
			return false
		}
		if d >= nextYield {
			runtime.Gosched()
			nextYield = d + yieldEvery
		}
	}
}
