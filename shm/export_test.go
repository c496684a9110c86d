package shm

// Internals for the external tests in package shm_test.

const (
	OffVersion    = offVersion
	OffCreated    = offCreated
	OffPidNS      = offPidNS
	OffEntrySize  = offEntrySize
	OffState      = offState
	OffDirLock    = offDirLock
	OffCount      = offCount
	OffDataLow    = offDataLow
	HeaderSize    = headerSize
	ObjectAlign   = objectAlign
	MaxMetaLen    = maxMetaLen
	TempPrefix    = tempPrefix
	LayoutVersion = layoutVersion
)

// WithTestHooks makes Create take the fallback path for filesystems without
// O_TMPFILE, and run beforeLink between initialising and naming the segment.
func WithTestHooks(noTmpfile bool, beforeLink func() error) Option {
	return func(o *options) {
		o.noTmpfile = noTmpfile
		o.beforeLink = beforeLink
	}
}

func Mem(s *Segment) []byte { return s.mem }

func FD(s *Segment) int { return s.fd }

func Word64(s *Segment, off int) *uint64 { return s.word64(off) }

// Resum recomputes the header checksum of b after a test changed a field.
func Resum(b []byte) { encodeChecksum(b) }
