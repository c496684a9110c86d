package shm

import (
	"fmt"
	"io/fs"
	"math"
	"math/bits"
	"strings"
	"sync/atomic"

	"github.com/shmkit/shmkit/internal/layout"
)

// ObjectSpec describes an object to allocate or attach to.
type ObjectSpec struct {
	Name   string // unique within the segment; 1 to 64 bytes, no NUL
	Kind   string // what the object is ("value", "array", "mutex"); 1 to 8 bytes
	Type   string // the Go element type, for messages ("main.Point")
	Layout string // the element type's layout descriptor; objects match on it
	Size   int64  // bytes to reserve
	Align  int64  // alignment, a power of two; objects are at least cache-line aligned

	// Init, if set, is the object's initial content, written before the
	// object is published, so that no process sees it uninitialised. The
	// rest of the object is zero. Attach ignores it.
	Init []byte
}

// Object is a named object in a segment.
type Object struct {
	Name   string
	Kind   string
	Type   string
	Layout string
	Offset int64 // from the start of the segment
	Size   int64

	// Bytes is the object's memory, shared with every process that maps
	// the segment, and valid until the segment is closed.
	Bytes []byte

	fp uint64 // fingerprint of Layout, from the checksummed entry
}

func checkSpec(spec ObjectSpec) error {
	var why string
	switch {
	case spec.Name == "" || len(spec.Name) > maxNameLen || strings.IndexByte(spec.Name, 0) >= 0:
		why = fmt.Sprintf("object name %q: must be 1 to %d bytes without NUL", spec.Name, maxNameLen)
	case spec.Kind == "" || len(spec.Kind) > maxKindLen || strings.IndexByte(spec.Kind, 0) >= 0:
		why = fmt.Sprintf("object kind %q: must be 1 to %d bytes without NUL", spec.Kind, maxKindLen)
	case strings.IndexByte(spec.Type, 0) >= 0:
		why = "type name contains NUL"
	case len(spec.Type)+1+len(spec.Layout) > maxMetaLen:
		why = fmt.Sprintf("type description of %s longer than %d bytes", spec.Type, maxMetaLen)
	}
	if why != "" {
		return fmt.Errorf("%w: %s", ErrInvalidName, why)
	}
	if spec.Size < 0 || spec.Align < 0 || spec.Align > maxAlign || spec.Align&(spec.Align-1) != 0 || int64(len(spec.Init)) > spec.Size {
		return fmt.Errorf("shm: object %q: invalid size %d or alignment %d", spec.Name, spec.Size, spec.Align)
	}
	return nil
}

// Alloc creates an object in the segment, zeroed apart from spec.Init. It
// fails with an error matching fs.ErrExist if the name is taken (Attach to
// it instead) and with ErrFull if the segment has no room. Concurrent
// Allocs of one name, in any processes, create it once. Its cost does not
// grow with the number of objects in the segment (in a segment of layout
// version 1, written by an older shmkit, it does).
func (s *Segment) Alloc(spec ObjectSpec) (Object, error) {
	if err := checkSpec(spec); err != nil {
		return Object{}, err
	}
	if err := s.Pin(); err != nil {
		return Object{}, err
	}
	defer s.Unpin()
	return s.alloc(spec)
}

// Steps of alloc, after which the tests' allocHook runs.
const (
	stepWritten   = "written"   // the object, its blob and its entry are written
	stepDataLow   = "dataLow"   // dataLow is lowered
	stepPublished = "published" // the count includes the entry
	stepIndexed   = "indexed"   // the entry heads its bucket's chain
)

func (s *Segment) alloc(spec ObjectSpec) (Object, error) {
	if err := s.lockDir(); err != nil {
		return Object{}, err
	}
	defer s.dir.Unlock()

	// Holding the lock, nobody else changes the count, dataLow or the
	// buckets.
	n, dataLow, err := s.counters()
	if err != nil {
		return Object{}, err
	}
	if err := s.repairIndex(n, dataLow); err != nil {
		return Object{}, err
	}
	if _, found, err := s.find(spec.Name); err != nil || found {
		if err == nil {
			err = fmt.Errorf("shm: %s: object %q: %w", s, spec.Name, fs.ErrExist)
		}
		return Object{}, err
	}
	meta := spec.Type + "\x00" + spec.Layout
	align := max(objectAlign, spec.Align)
	metaOff := (dataLow - int64(len(meta))) &^ 7
	objOff := (metaOff - spec.Size) &^ (align - 1)
	entOff := s.entryOff(n)
	if spec.Size > s.hdr.size || objOff < entOff+entrySize || n >= math.MaxUint32 {
		return Object{}, fmt.Errorf("%w: %s has %d bytes free, object %q needs %d",
			ErrFull, s, max(0, metaOff-entOff-entrySize), spec.Name, spec.Size)
	}
	s.clearUnpublished(objOff, dataLow)
	copy(s.mem[objOff:objOff+spec.Size], spec.Init)
	copy(s.mem[metaOff:], meta)
	e := entry{name: spec.Name, kind: spec.Kind, off: objOff, size: spec.Size,
		fp: layout.Fingerprint(spec.Layout), metaOff: metaOff, metaLen: int64(len(meta))}
	var bucket *uint32
	if s.hdr.buckets > 0 {
		bucket = s.bucketWord(s.bucketOf(spec.Name))
		e.next = int64(atomic.LoadUint32(bucket))
	}
	encodeEntry(s.mem[entOff:entOff+entrySize], e)
	s.step(stepWritten)
	// Publish: lower dataLow first, so that a crash between the stores
	// wastes space instead of handing it out twice; the count store makes
	// the entry visible to lock-free readers, which also check the last
	// entry, and the bucket store then puts it on its chain.
	atomic.StoreUint64(s.word64(offDataLow), uint64(objOff))
	s.step(stepDataLow)
	atomic.StoreUint32(s.word32(offCount), uint32(n+1))
	s.step(stepPublished)
	if bucket != nil {
		atomic.StoreUint32(bucket, uint32(n+1))
		s.step(stepIndexed)
	}
	return s.object(e), nil
}

// clearUnpublished zeroes what allocators that died holding the lock may
// have written in [objOff, dataLow), the space of a new object, without
// publishing it: objects must start out zero. In version 2 the written-low
// word says how far down they wrote, and is lowered before anything is
// written below dataLow. Version 1 zeroes the lowest blob's reach
// (docs/layout.md, 6.5).
func (s *Segment) clearUnpublished(objOff, dataLow int64) {
	if s.hdr.buckets == 0 {
		clear(s.mem[max(objOff, dataLow-maxMetaLen-8):dataLow])
		return
	}
	w := s.word64(offWritten)
	written := min(int64(atomic.LoadUint64(w)), dataLow)
	clear(s.mem[max(objOff, written):dataLow])
	if objOff < written {
		atomic.StoreUint64(w, uint64(objOff))
	}
}

// step runs the tests' hook after a step of alloc.
func (s *Segment) step(name string) {
	if s.allocHook != nil {
		s.allocHook(name)
	}
}

// repairIndex, called with the directory lock held, makes sure that entry
// n-1, the last published one, is on its bucket's chain: its allocator may
// have died between publishing and indexing it. Every allocator does this
// first, so every earlier entry is indexed already (docs/layout.md, 6.5).
func (s *Segment) repairIndex(n, dataLow int64) error {
	if n == 0 || s.hdr.buckets == 0 {
		return nil
	}
	e, err := s.entryAt(n-1, dataLow)
	if err != nil {
		return err
	}
	b := s.bucketOf(e.name)
	w := s.bucketWord(b)
	switch head := int64(atomic.LoadUint32(w)); head {
	case n:
	case e.next: // what the bucket held when the entry was written
		atomic.StoreUint32(w, uint32(n))
	default:
		return fmt.Errorf("%w: %s: bucket %d holds %d, not newest entry %d nor the head it links to", ErrCorrupt, s, b, head, n-1)
	}
	return nil
}

// Attach returns the existing object named spec.Name after checking that it
// is of spec.Kind with an element type laid out as spec.Layout, and, when
// spec.Size is positive, of that size. A missing object gives an error
// matching fs.ErrNotExist; a different kind or type gives ErrTypeMismatch
// naming both. Like Lookup, it does not take the directory lock.
func (s *Segment) Attach(spec ObjectSpec) (Object, error) {
	if err := s.Pin(); err != nil {
		return Object{}, err
	}
	defer s.Unpin()
	return s.attach(spec)
}

func (s *Segment) attach(spec ObjectSpec) (Object, error) {
	o, err := s.lookup(spec.Name)
	if err != nil {
		return Object{}, err
	}
	if o.Kind != spec.Kind || o.fp != layout.Fingerprint(spec.Layout) {
		return Object{}, fmt.Errorf("%w: %s: object %q is %s of %s, not %s of %s",
			ErrTypeMismatch, s, o.Name, layout.Article(o.Kind), o.Type, layout.Article(spec.Kind), spec.Type)
	}
	if spec.Size > 0 && o.Size != spec.Size {
		return Object{}, fmt.Errorf("%w: %s: object %q has %d bytes, want %d", ErrTypeMismatch, s, o.Name, o.Size, spec.Size)
	}
	return o, nil
}

// Lookup returns the object named name, or an error matching
// fs.ErrNotExist. It does not take the directory lock, and it reads a few
// directory entries whatever the number of objects (all of them, in a
// segment of layout version 1).
func (s *Segment) Lookup(name string) (Object, error) {
	if err := s.Pin(); err != nil {
		return Object{}, err
	}
	defer s.Unpin()
	return s.lookup(name)
}

func (s *Segment) lookup(name string) (Object, error) {
	e, found, err := s.find(name)
	if err != nil {
		return Object{}, err
	}
	if !found {
		return Object{}, fmt.Errorf("shm: %s: object %q: %w", s, name, fs.ErrNotExist)
	}
	return s.object(e), nil
}

// Objects lists the segment's objects in allocation order.
func (s *Segment) Objects() ([]Object, error) {
	if err := s.Pin(); err != nil {
		return nil, err
	}
	defer s.Unpin()
	return s.objects()
}

func (s *Segment) objects() ([]Object, error) {
	n, dataLow, err := s.counters()
	if err != nil {
		return nil, err
	}
	objs := make([]Object, n)
	for i := range objs {
		e, err := s.entryAt(int64(i), dataLow)
		if err != nil {
			return nil, err
		}
		objs[i] = s.object(e)
	}
	return objs, nil
}

// Available returns how many bytes the segment has left for objects, or 0
// once it is closed.
func (s *Segment) Available() int64 {
	if s.Pin() != nil {
		return 0
	}
	defer s.Unpin()
	return s.available()
}

func (s *Segment) available() int64 {
	n, dataLow, err := s.counters()
	if err != nil {
		return 0
	}
	return max(0, dataLow-s.entryOff(n+1))
}

// counters loads the count and then dataLow, without locking. Entries are
// written before the count that publishes them, and dataLow is lowered
// before the count grows, so loading the count first and dataLow second
// gives a bound below every published object.
func (s *Segment) counters() (count, dataLow int64, err error) {
	count = int64(atomic.LoadUint32(s.word32(offCount)))
	dataLow = int64(atomic.LoadUint64(s.word64(offDataLow)))
	return count, dataLow, s.checkCounters(count, dataLow)
}

// checkCounters checks that count entries lie below dataLow, which lies in
// the segment.
func (s *Segment) checkCounters(count, dataLow int64) error {
	if s.entryOff(count) > dataLow || dataLow > s.hdr.size {
		return fmt.Errorf("%w: %s: directory of %d entries overlaps data at %d", ErrCorrupt, s, count, dataLow)
	}
	return nil
}

// find returns the published entry named name, reading without the lock
// (docs/layout.md, 6.4). In a segment of version 2 it follows the name's
// bucket chain and then looks at the last published entry, which may not
// be on the chain yet; in one of version 1 it reads the entries in order.
// found == false with a nil error means there is no such object.
func (s *Segment) find(name string) (e entry, found bool, err error) {
	if s.hdr.buckets == 0 {
		return s.scan(name)
	}
	count := int64(atomic.LoadUint32(s.word32(offCount)))
	b := s.bucketOf(name)
	head := int64(atomic.LoadUint32(s.bucketWord(b)))
	dataLow := int64(atomic.LoadUint64(s.word64(offDataLow)))
	// Entries are published (count) before they are indexed (head), and
	// dataLow lies below both, since it was loaded last.
	if err := s.checkCounters(max(count, head), dataLow); err != nil {
		return entry{}, false, err
	}
	// Each entry links only to older ones (entryAt checks), so the walk
	// ends after at most head steps, even over corrupt links.
	for i := head - 1; i >= 0; i = e.next - 1 {
		if e, err = s.entryAt(i, dataLow); err != nil {
			return entry{}, false, err
		}
		if e.name == name {
			return e, true, nil
		}
		if eb := s.bucketOf(e.name); eb != b {
			return entry{}, false, fmt.Errorf("%w: %s: entry %d, in bucket %d, is on the chain of bucket %d", ErrCorrupt, s, i, eb, b)
		}
	}
	if head < count {
		if e, err = s.entryAt(count-1, dataLow); err != nil {
			return entry{}, false, err
		}
		if e.name == name {
			return e, true, nil
		}
	}
	return entry{}, false, nil
}

// scan finds the entry named name in a segment of version 1, which has no
// index, by reading the entries in order.
func (s *Segment) scan(name string) (entry, bool, error) {
	n, dataLow, err := s.counters()
	if err != nil {
		return entry{}, false, err
	}
	for i := range n {
		e, err := s.entryAt(i, dataLow)
		if err != nil {
			return entry{}, false, err
		}
		if e.name == name {
			return e, true, nil
		}
	}
	return entry{}, false, nil
}

// entryOff returns the offset of directory entry i: the entries follow the
// bucket array, which version 1 does not have.
func (s *Segment) entryOff(i int64) int64 {
	return headerSize + 4*int64(s.hdr.buckets) + i*entrySize
}

// entryAt decodes and validates published entry i, whose object lies at or
// above dataLow. In version 2 its link must lead to an older entry.
func (s *Segment) entryAt(i, dataLow int64) (entry, error) {
	off := s.entryOff(i)
	e, err := decodeEntry(s.mem[off:off+entrySize], s.hdr.size, dataLow)
	if err != nil {
		return entry{}, fmt.Errorf("%s: entry %d: %w", s, i, err)
	}
	if s.hdr.buckets > 0 && e.next > i {
		return entry{}, fmt.Errorf("%w: %s: entry %d links to entry %d, not to an older one", ErrCorrupt, s, i, e.next-1)
	}
	return e, nil
}

// bucketOf returns the bucket of the named object: the high 64 bits of the
// 128-bit product of the name's hash and the bucket count, which is below
// the bucket count and uses every bit of the hash.
func (s *Segment) bucketOf(name string) int64 {
	b, _ := bits.Mul64(nameHash(name), uint64(s.hdr.buckets))
	return int64(b)
}

// bucketWord returns bucket b's word: 1 + the index of the newest entry on
// its chain, or 0 for an empty bucket.
func (s *Segment) bucketWord(b int64) *uint32 { return s.word32(headerSize + 4*int(b)) }

func (s *Segment) object(e entry) Object {
	meta := string(s.mem[e.metaOff : e.metaOff+e.metaLen])
	typ, lay, _ := strings.Cut(meta, "\x00")
	return Object{Name: e.name, Kind: e.kind, Type: typ, Layout: lay, Offset: e.off, Size: e.size,
		Bytes: s.mem[e.off : e.off+e.size : e.off+e.size], fp: e.fp}
}
