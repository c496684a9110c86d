package shm

import (
	"fmt"
	"io/fs"
	"math"
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

// Alloc creates an object in the segment, zeroed apart from spec.Init. It fails with an error
// matching fs.ErrExist if the name is taken (Attach to it instead) and with
// ErrFull if the segment has no room. Concurrent Allocs of one name, in any
// processes, create it once.
func (s *Segment) Alloc(spec ObjectSpec) (Object, error) {
	if err := checkSpec(spec); err != nil {
		return Object{}, err
	}
	if s.closed.Load() {
		return Object{}, ErrClosed
	}
	if err := s.lockDir(); err != nil {
		return Object{}, err
	}
	defer s.dir.Unlock()

	ents, dataLow, err := s.entries()
	if err != nil {
		return Object{}, err
	}
	for _, e := range ents {
		if e.name == spec.Name {
			return Object{}, fmt.Errorf("shm: %s: object %q: %w", s, spec.Name, fs.ErrExist)
		}
	}
	meta := spec.Type + "\x00" + spec.Layout
	align := max(objectAlign, spec.Align)
	metaOff := (dataLow - int64(len(meta))) &^ 7
	objOff := (metaOff - spec.Size) &^ (align - 1)
	entOff := headerSize + int64(len(ents))*entrySize
	if spec.Size > s.hdr.size || objOff < entOff+entrySize || len(ents) >= math.MaxUint32 {
		return Object{}, fmt.Errorf("%w: %s has %d bytes free, object %q needs %d",
			ErrFull, s, max(0, metaOff-entOff-entrySize), spec.Name, spec.Size)
	}
	// An allocator that died holding the lock may have written metadata
	// below dataLow without publishing it; objects must start out zero.
	clear(s.mem[max(objOff, dataLow-maxMetaLen-8):dataLow])
	copy(s.mem[objOff:objOff+spec.Size], spec.Init)
	copy(s.mem[metaOff:], meta)
	e := entry{name: spec.Name, kind: spec.Kind, off: objOff, size: spec.Size,
		fp: layout.Fingerprint(spec.Layout), metaOff: metaOff, metaLen: int64(len(meta))}
	encodeEntry(s.mem[entOff:entOff+entrySize], e)
	// Publish: lower dataLow first, so that a crash between the stores
	// wastes space instead of handing it out twice; the count store makes
	// the entry visible to lock-free readers.
	atomic.StoreUint64(s.word64(offDataLow), uint64(objOff))
	atomic.StoreUint32(s.word32(offCount), uint32(len(ents)+1))
	return s.object(e), nil
}

// Attach returns the existing object named spec.Name after checking that it
// is of spec.Kind with an element type laid out as spec.Layout, and, when
// spec.Size is positive, of that size. A missing object gives an error
// matching fs.ErrNotExist; a different kind or type gives ErrTypeMismatch
// naming both.
func (s *Segment) Attach(spec ObjectSpec) (Object, error) {
	o, err := s.Lookup(spec.Name)
	if err != nil {
		return Object{}, err
	}
	if o.Kind != spec.Kind || o.fp != layout.Fingerprint(spec.Layout) {
		return Object{}, fmt.Errorf("%w: %s: object %q is %s of %s, not %s of %s",
			ErrTypeMismatch, s, o.Name, article(o.Kind), o.Type, article(spec.Kind), spec.Type)
	}
	if spec.Size > 0 && o.Size != spec.Size {
		return Object{}, fmt.Errorf("%w: %s: object %q has %d bytes, want %d", ErrTypeMismatch, s, o.Name, o.Size, spec.Size)
	}
	return o, nil
}

// Lookup returns the object named name, or an error matching fs.ErrNotExist.
func (s *Segment) Lookup(name string) (Object, error) {
	ents, _, err := s.entries()
	if err != nil {
		return Object{}, err
	}
	for _, e := range ents {
		if e.name == name {
			return s.object(e), nil
		}
	}
	return Object{}, fmt.Errorf("shm: %s: object %q: %w", s, name, fs.ErrNotExist)
}

// Objects lists the segment's objects in allocation order.
func (s *Segment) Objects() ([]Object, error) {
	ents, _, err := s.entries()
	if err != nil {
		return nil, err
	}
	objs := make([]Object, len(ents))
	for i, e := range ents {
		objs[i] = s.object(e)
	}
	return objs, nil
}

// Available returns how many bytes the segment has left for objects.
func (s *Segment) Available() int64 {
	ents, dataLow, err := s.entries()
	if err != nil {
		return 0
	}
	return max(0, dataLow-headerSize-int64(len(ents)+1)*entrySize)
}

// entries reads the published directory without locking. Entries are
// written before the count that publishes them, and dataLow is lowered
// before the count grows, so loading the count first and dataLow second
// gives a bound below every published object.
func (s *Segment) entries() ([]entry, int64, error) {
	if s.closed.Load() {
		return nil, 0, ErrClosed
	}
	count := int64(atomic.LoadUint32(s.word32(offCount)))
	dataLow := int64(atomic.LoadUint64(s.word64(offDataLow)))
	if end := headerSize + count*entrySize; end > dataLow || dataLow > s.hdr.size {
		return nil, 0, fmt.Errorf("%w: %s: directory of %d entries overlaps data at %d", ErrCorrupt, s, count, dataLow)
	}
	ents := make([]entry, count)
	for i := range ents {
		off := headerSize + int64(i)*entrySize
		e, err := decodeEntry(s.mem[off:off+entrySize], s.hdr.size, dataLow)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: entry %d: %w", s, i, err)
		}
		ents[i] = e
	}
	return ents, dataLow, nil
}

// article returns kind preceded by the indefinite article it takes in
// English: "a value", "an array", "an event".
func article(kind string) string {
	if kind != "" && strings.IndexByte("aeiouAEIOU", kind[0]) >= 0 {
		return "an " + kind
	}
	return "a " + kind
}

func (s *Segment) object(e entry) Object {
	meta := string(s.mem[e.metaOff : e.metaOff+e.metaLen])
	typ, lay, _ := strings.Cut(meta, "\x00")
	return Object{Name: e.name, Kind: e.kind, Type: typ, Layout: lay, Offset: e.off, Size: e.size,
		Bytes: s.mem[e.off : e.off+e.size : e.off+e.size], fp: e.fp}
}
