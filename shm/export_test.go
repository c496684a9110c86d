package shm

import (
	"encoding/binary"
	"hash/crc32"
)

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
	OffWritten    = offWritten
	OffBuckets    = offBuckets
	EntNext       = entNext
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

// EntryOff returns the offset of directory entry i.
func EntryOff(s *Segment, i int) int { return int(s.entryOff(int64(i))) }

// BucketOf returns the index bucket of the object name, and BucketOff the
// offset of bucket b's word.
func BucketOf(s *Segment, name string) int { return int(s.bucketOf(name)) }

func BucketOff(b int) int { return headerSize + 4*b }

// SetAllocHook makes Alloc call hook after each step of publishing an
// object: "written", "dataLow", "published", "indexed".
func SetAllocHook(s *Segment, hook func(step string)) { s.allocHook = hook }

// Resum recomputes the header checksum of b after a test changed a field.
func Resum(b []byte) { encodeChecksum(b) }

// ResumEntry recomputes the checksum of the directory entry b.
func ResumEntry(b []byte) {
	binary.LittleEndian.PutUint32(b[entChecksum:], crc32.Checksum(b[:entChecksum], castagnoli))
}
