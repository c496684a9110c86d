package shmconn

// Internals for the external tests in package shmconn_test.

const (
	OffMagic      = offMagic
	OffVersion    = offVersion
	OffCapacity   = offCapacity
	OffTail       = offTail
	OffHead       = offHead
	OffProdClosed = offProdClosed
	OffConsClosed = offConsClosed
	OffDataWait   = offDataWait
	OffSpaceWait  = offSpaceWait
	HeaderSize    = headerSize
)

// Asleep returns how many calls of c are in futex.Wait.
func Asleep(c *Conn) int32 { return c.asleep.Load() }

// Spinners returns how many goroutines of the process poll a ring.
func Spinners() int32 { return spinners.Load() }

// SpinLimit returns how many goroutines may poll at once.
func SpinLimit() int32 { return spinLimit() }

// Word64 and Word32 view header words of a ring, for tests that corrupt it.
func Word64(mem []byte, off int) *uint64 { return word64(mem, off) }
func Word32(mem []byte, off int) *uint32 { return word32(mem, off) }

// SkipPolls returns how many of c's next waits sleep without polling.
func SkipPolls(c *Conn) int32 { return c.skipPolls.Load() }
