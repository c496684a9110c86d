package shm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync/atomic"
	"time"
	"unsafe"
)

// Layout version 2, which Create writes; segments of version 1 are read
// and allocated in too. docs/layout.md is the specification. All integers
// are little-endian, the fields other processes update atomically
// included, which is why segments are refused on big-endian machines
// (littleEndian).
const (
	magic         = "SHMKIT\x00\x00"
	layoutVersion = 2

	headerSize  = 256 // the bucket array (version 2) or the directory entries (1) start here
	entrySize   = 128
	minSize     = 4096
	objectAlign = 64 // a cache line: objects never share one
	maxAlign    = 4096
	maxNameLen  = 64
	maxKindLen  = 8
	maxMetaLen  = 4096

	// Immutable header fields, covered by the checksum.
	offMagic        = 0
	offVersion      = 8
	offHeaderSize   = 12
	offSize         = 16
	offEntrySize    = 24
	offFlags        = 28
	offCreatorPid   = 32
	offBuckets      = 36 // version 2: number of index buckets; reserved (0) in version 1
	offCreatorStart = 40
	offCreated      = 48
	offPidNS        = 56
	offChecksum     = 64 // CRC-32C of bytes [0, 64)
	offState        = 68 // stateReady once initialised

	// Mutable directory state, on its own cache line.
	offDirLock = 128 // robust lock word (internal/lock) serialising Alloc
	offCount   = 136 // number of published directory entries
	offDataLow = 144 // lowest offset used by object data and metadata
	offWritten = 152 // version 2: lowest offset an allocation has written data or metadata at

	stateReady = 1

	// Index of version 2: the bucket array of bucket words, u32 each, at
	// [headerSize, headerSize+4*buckets). Create sizes it by the segment
	// size, bucketBytes bytes of segment per bucket, in multiples of
	// bucketAlign buckets (see bucketCount).
	bucketBytes = 512
	bucketAlign = 16
)

// bucketCount returns the number of index buckets Create gives a segment of
// size bytes: one per 512 bytes, rounded down to a multiple of 16 (whole
// cache lines of bucket words), and at least 16. The array takes 4/512 of
// the segment, under 0.8% from 8 KiB on. The smallest object costs 192
// bytes (a directory entry and a cache line), so a segment full of them has
// under 2.7 entries per bucket on average.
func bucketCount(size int64) uint32 {
	return uint32(max(bucketAlign, size/(bucketBytes*bucketAlign)*bucketAlign))
}

// Directory entry fields, relative to the entry.
const (
	entName     = 0   // [64]byte, NUL-padded
	entKind     = 64  // [8]byte, NUL-padded
	entOffset   = 72  // uint64
	entSize     = 80  // uint64
	entFP       = 88  // uint64 layout fingerprint
	entMetaOff  = 96  // uint64
	entMetaLen  = 104 // uint32
	entNext     = 108 // uint32, version 2: 1 + index of the next entry on this one's chain; 0 ends it
	entChecksum = 124 // CRC-32C of bytes [0, 124)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// littleEndian reports whether this machine stores integers the way the
// layout does; atomic header words are accessed in native order.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// header is the immutable part of a segment header.
type header struct {
	version      uint32
	size         int64
	buckets      uint32 // 0 in version 1, which has no index
	creatorPid   int
	creatorStart uint64
	created      time.Time
	pidNS        uint64
}

// format writes a ready header for h, of the current layout version, with
// an empty directory, into mem, a zeroed segment of h.size bytes.
func format(mem []byte, h header) {
	encodeHeader(mem, h)
	atomic.StoreUint64(word64(mem, offDataLow), uint64(h.size))
	atomic.StoreUint64(word64(mem, offWritten), uint64(h.size))
	atomic.StoreUint32(word32(mem, offState), stateReady)
}

// encodeHeader writes h's fields and checksum into b (at least headerSize
// bytes, zero), with the current layout version. It does not set the ready
// state.
func encodeHeader(b []byte, h header) {
	le := binary.LittleEndian
	copy(b[offMagic:], magic)
	le.PutUint32(b[offVersion:], layoutVersion)
	le.PutUint32(b[offHeaderSize:], headerSize)
	le.PutUint64(b[offSize:], uint64(h.size))
	le.PutUint32(b[offEntrySize:], entrySize)
	le.PutUint32(b[offCreatorPid:], uint32(h.creatorPid))
	le.PutUint32(b[offBuckets:], h.buckets)
	le.PutUint64(b[offCreatorStart:], h.creatorStart)
	le.PutUint64(b[offCreated:], uint64(h.created.UnixNano()))
	le.PutUint64(b[offPidNS:], h.pidNS)
	encodeChecksum(b)
}

func encodeChecksum(b []byte) {
	binary.LittleEndian.PutUint32(b[offChecksum:], crc32.Checksum(b[:offChecksum], castagnoli))
}

// decodeHeader validates the first bytes of a segment file, b, read from a
// file of fileSize bytes, and returns its header. Checks run from the most
// basic (is this ours at all?) to the most specific, and each failure has
// its own error.
func decodeHeader(b []byte, fileSize int64) (header, error) {
	le := binary.LittleEndian
	if len(b) < len(magic) || !bytes.Equal(b[:len(magic)], []byte(magic)) {
		return header{}, ErrNotSegment
	}
	if len(b) < offState+4 {
		return header{}, fmt.Errorf("%w: %d bytes, header needs %d", ErrTruncated, len(b), offState+4)
	}
	h := header{
		version:      le.Uint32(b[offVersion:]),
		size:         int64(le.Uint64(b[offSize:])),
		creatorPid:   int(le.Uint32(b[offCreatorPid:])),
		creatorStart: le.Uint64(b[offCreatorStart:]),
		created:      time.Unix(0, int64(le.Uint64(b[offCreated:]))),
		pidNS:        le.Uint64(b[offPidNS:]),
	}
	if h.version > layoutVersion {
		return header{}, fmt.Errorf("%w: version %d, this build reads up to %d", ErrVersion, h.version, layoutVersion)
	}
	if sum := crc32.Checksum(b[:offChecksum], castagnoli); sum != le.Uint32(b[offChecksum:]) {
		return header{}, fmt.Errorf("%w: header checksum %#x, want %#x", ErrCorrupt, le.Uint32(b[offChecksum:]), sum)
	}
	if h.version == 0 || le.Uint32(b[offHeaderSize:]) != headerSize || le.Uint32(b[offEntrySize:]) != entrySize {
		return header{}, fmt.Errorf("%w: bad version, header or entry size", ErrCorrupt)
	}
	if le.Uint32(b[offState:]) != stateReady {
		return header{}, ErrNotReady
	}
	if h.size > fileSize || len(b) < headerSize {
		return header{}, fmt.Errorf("%w: file has %d bytes, header says %d", ErrTruncated, fileSize, h.size)
	}
	if h.size < fileSize || h.size < minSize {
		return header{}, fmt.Errorf("%w: file has %d bytes, header says %d", ErrCorrupt, fileSize, h.size)
	}
	if h.version >= 2 {
		h.buckets = le.Uint32(b[offBuckets:])
		if h.buckets == 0 || headerSize+4*int64(h.buckets) > h.size {
			return header{}, fmt.Errorf("%w: %d index buckets in %d bytes", ErrCorrupt, h.buckets, h.size)
		}
	}
	return h, nil
}

// entry is one decoded directory entry.
type entry struct {
	name    string
	kind    string
	off     int64
	size    int64
	fp      uint64
	metaOff int64
	metaLen int64
	next    int64 // version 2: 1 + index of the next entry on the chain, or 0
}

func encodeEntry(b []byte, e entry) {
	le := binary.LittleEndian
	clear(b[:entrySize])
	copy(b[entName:entName+maxNameLen], e.name)
	copy(b[entKind:entKind+maxKindLen], e.kind)
	le.PutUint64(b[entOffset:], uint64(e.off))
	le.PutUint64(b[entSize:], uint64(e.size))
	le.PutUint64(b[entFP:], e.fp)
	le.PutUint64(b[entMetaOff:], uint64(e.metaOff))
	le.PutUint32(b[entMetaLen:], uint32(e.metaLen))
	le.PutUint32(b[entNext:], uint32(e.next))
	le.PutUint32(b[entChecksum:], crc32.Checksum(b[:entChecksum], castagnoli))
}

// decodeEntry decodes and validates an entry of a segment of segSize bytes
// whose object data starts at or above dataLow. It decodes the next field
// whatever the version; version 1 writes it as zero and never reads it.
func decodeEntry(b []byte, segSize, dataLow int64) (entry, error) {
	le := binary.LittleEndian
	if sum := crc32.Checksum(b[:entChecksum], castagnoli); sum != le.Uint32(b[entChecksum:]) {
		return entry{}, fmt.Errorf("%w: directory entry checksum", ErrCorrupt)
	}
	e := entry{
		name:    cString(b[entName : entName+maxNameLen]),
		kind:    cString(b[entKind : entKind+maxKindLen]),
		off:     int64(le.Uint64(b[entOffset:])),
		size:    int64(le.Uint64(b[entSize:])),
		fp:      le.Uint64(b[entFP:]),
		metaOff: int64(le.Uint64(b[entMetaOff:])),
		metaLen: int64(le.Uint32(b[entMetaLen:])),
		next:    int64(le.Uint32(b[entNext:])),
	}
	inData := func(off, n int64) bool {
		return off >= dataLow && n >= 0 && off <= segSize && n <= segSize-off
	}
	if e.name == "" || !inData(e.off, e.size) || e.off%objectAlign != 0 || !inData(e.metaOff, e.metaLen) || e.metaLen > maxMetaLen {
		return entry{}, fmt.Errorf("%w: directory entry %q out of bounds", ErrCorrupt, e.name)
	}
	return e, nil
}

// nameHash returns the hash of an object name that picks its bucket (see
// Segment.bucketOf): FNV-1a 64 of the name's bytes, then the finaliser of
// MurmurHash3 (fmix64). FNV-1a alone leaves the high bits, which pick the
// bucket, nearly the same for names that differ in their last byte.
func nameHash(name string) uint64 {
	h := uint64(0xCBF29CE484222325)
	for i := range len(name) {
		h = (h ^ uint64(name[i])) * 0x100000001B3
	}
	h ^= h >> 33
	h *= 0xFF51AFD7ED558CCD
	h ^= h >> 33
	h *= 0xC4CEB9FE1A85EC53
	h ^= h >> 33
	return h
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// word64 and word32 return the word at off, a header word or a bucket
// word, for atomic access. A mapping is page-aligned and every such word
// sits at a multiple of its size, so the pointers are aligned; bounds are
// checked by the indexing.
func word64(mem []byte, off int) *uint64 { return (*uint64)(unsafe.Pointer(&mem[off : off+8][0])) }

func word32(mem []byte, off int) *uint32 { return (*uint32)(unsafe.Pointer(&mem[off : off+4][0])) }
