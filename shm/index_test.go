//go:build linux

package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"testing"

	"github.com/shmkit/shmkit/internal/lock"
)

// memSegment returns a segment of the current layout over ordinary memory,
// holding the objects names, for tests of the directory code that need no
// file. It must not be closed.
func memSegment(t testing.TB, size int64, names ...string) *Segment {
	t.Helper()
	mem := make([]byte, size)
	hdr := header{version: layoutVersion, size: size, buckets: bucketCount(size)}
	format(mem, hdr)
	s := &Segment{mem: mem, hdr: hdr, fd: -1}
	var err error
	if s.dir, err = lock.New(s.word64(offDirLock), nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if _, err := s.Alloc(ObjectSpec{Name: name, Kind: "k", Size: 8}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// TestNameHash checks the examples of docs/layout.md, section 5.2.
func TestNameHash(t *testing.T) {
	for _, tt := range []struct {
		name     string
		hash     uint64
		b16, b2k int64
	}{
		{"hits", 0xDF9B9FE53B0F5BD6, 13, 1788},
		{"counter", 0xE62A6D7C89BCC0B9, 14, 1841},
	} {
		if h := nameHash(tt.name); h != tt.hash {
			t.Errorf("nameHash(%q) = %#X, want %#X", tt.name, h, tt.hash)
		}
		for _, c := range []struct {
			buckets uint32
			want    int64
		}{{16, tt.b16}, {2048, tt.b2k}} {
			s := &Segment{hdr: header{buckets: c.buckets}}
			if b := s.bucketOf(tt.name); b != c.want {
				t.Errorf("bucket of %q among %d = %d, want %d", tt.name, c.buckets, b, c.want)
			}
		}
	}
	for _, tt := range []struct {
		size int64
		want uint32
	}{{4096, 16}, {8192, 16}, {12288, 16}, {16384, 32}, {1 << 20, 2048}, {1 << 40, 1 << 31}} {
		if got := bucketCount(tt.size); got != tt.want {
			t.Errorf("bucketCount(%d) = %d, want %d", tt.size, got, tt.want)
		}
	}
}

// FuzzDirectory damages the directory of a segment, writing bytes into the
// count, dataLow, the bucket words and the entries, then optionally making
// the entries' checksums valid again so that the damage reaches the links.
// Every operation must then answer or fail with a directory error, without
// a panic, a hang or a read out of bounds.
func FuzzDirectory(f *testing.F) {
	f.Add([]byte{}, false)
	f.Add([]byte{0x00, 0x01, 0xff}, false)                     // a bucket word
	f.Add([]byte{0x10, 0x00, 0x05, 0x10, 0x01, 0x00}, true)    // links in the entries
	f.Add([]byte{0x00, 0x00, 0x40, 0x01, 0x10, 0x7f}, true)    // count and a link
	f.Add([]byte{0x08, 0x00, 0x01, 0x6c, 0x01, 0x02}, true)    // dataLow and a link
	f.Add([]byte{0x00, 0x02, 0x00, 0x04, 0x02, 0x0f}, false)   // buckets
	f.Add([]byte{0x6c, 0x02, 0x03, 0xec, 0x02, 0x04}, true)    // two links
	f.Add([]byte{0x6c, 0x00, 0x01, 0x6c, 0x01, 0x01}, true)    // links to themselves
	f.Add([]byte{0x6c, 0x03, 0x09, 0x00, 0x00, 0x0e, 0}, true) // forward
	const size = 16 << 10
	names := make([]string, 12)
	for i := range names {
		names[i] = fmt.Sprintf("n%d", i)
	}
	f.Fuzz(func(t *testing.T, patch []byte, resum bool) {
		s := memSegment(t, size, names...)
		// Patches are (offset, value) triples: a 16-bit offset into the
		// directory words and then the directory area, and a byte.
		words := []int{offCount, offCount + 1, offCount + 2, offCount + 3,
			offDataLow, offDataLow + 1, offDataLow + 2, offDataLow + 3}
		area := int(s.entryOff(int64(len(names)+2))) - headerSize
		for ; len(patch) >= 3; patch = patch[3:] {
			off := int(binary.LittleEndian.Uint16(patch)) % (len(words) + area)
			if off < len(words) {
				off = words[off]
			} else {
				off = headerSize + off - len(words)
			}
			s.mem[off] = patch[2]
		}
		if resum {
			for i := range len(names) + 2 {
				b := s.mem[s.entryOff(int64(i)):]
				binary.LittleEndian.PutUint32(b[entChecksum:], crc32.Checksum(b[:entChecksum], castagnoli))
			}
		}
		ok := func(err error, also ...error) bool {
			for _, want := range append(also, ErrCorrupt) {
				if errors.Is(err, want) {
					return true
				}
			}
			return err == nil
		}
		for _, name := range append(names, "missing") {
			o, err := s.Lookup(name)
			if !ok(err, fs.ErrNotExist) {
				t.Fatalf("Lookup(%s) = %v", name, err)
			}
			if err == nil && (o.Name != name || o.Offset < s.entryOff(1)) {
				t.Fatalf("Lookup(%s) = %q at %d", name, o.Name, o.Offset)
			}
		}
		if _, err := s.Objects(); !ok(err) {
			t.Fatalf("Objects = %v", err)
		}
		if a := s.Available(); a < 0 || a > size {
			t.Fatalf("Available = %d", a)
		}
		if _, err := s.Alloc(ObjectSpec{Name: "fresh", Kind: "k", Size: 8}); !ok(err, ErrFull, fs.ErrExist) {
			t.Fatalf("Alloc = %v", err)
		}
		if _, err := s.Alloc(ObjectSpec{Name: names[0], Kind: "k", Size: 8}); !ok(err, ErrFull, fs.ErrExist) {
			t.Fatalf("Alloc(%s) = %v", names[0], err)
		}
	})
}
