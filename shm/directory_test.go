//go:build linux

package shm_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/shmkit/shmkit/internal/lock"
	"github.com/shmkit/shmkit/internal/proc"
	"github.com/shmkit/shmkit/internal/shmtest"
	. "github.com/shmkit/shmkit/shm"
)

func TestAllocLookupAttach(t *testing.T) {
	s := createTemp(t, 1<<16)
	spec := ObjectSpec{Name: "counter", Kind: "value", Type: "int64", Layout: "int64", Size: 24}
	o, err := s.Alloc(spec)
	if err != nil {
		t.Fatal(err)
	}
	if o.Offset%ObjectAlign != 0 || len(o.Bytes) != 24 || cap(o.Bytes) != 24 {
		t.Errorf("object at %d with %d/%d bytes, want cache-line aligned with 24", o.Offset, len(o.Bytes), cap(o.Bytes))
	}
	for i, b := range o.Bytes {
		if b != 0 {
			t.Fatalf("byte %d of new object = %d, want 0", i, b)
		}
	}
	o.Bytes[0] = 7

	// A second mapping of the segment sees the object and its contents.
	s2, err := Open(s.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err := s2.Attach(spec)
	if err != nil {
		t.Fatal(err)
	}
	if got.Offset != o.Offset || got.Bytes[0] != 7 || got.Type != "int64" || got.Kind != "value" {
		t.Errorf("Attach = %+v", got)
	}

	if _, err := s2.Alloc(spec); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Alloc of existing name = %v, want fs.ErrExist", err)
	}
	if _, err := s2.Lookup("missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Lookup(missing) = %v, want fs.ErrNotExist", err)
	}
	other := ObjectSpec{Name: "counter", Kind: "value", Type: "main.Celsius", Layout: "float64"}
	_, err = s2.Attach(other)
	if !errors.Is(err, ErrTypeMismatch) || !strings.Contains(err.Error(), "int64") || !strings.Contains(err.Error(), "main.Celsius") {
		t.Errorf("Attach with another type = %v, want ErrTypeMismatch naming int64 and main.Celsius", err)
	}
	other = ObjectSpec{Name: "counter", Kind: "array", Type: "int64", Layout: "int64"}
	_, err = s2.Attach(other)
	if !errors.Is(err, ErrTypeMismatch) || !strings.Contains(err.Error(), "is a value of int64, not an array of int64") {
		t.Errorf("Attach with another kind = %v, want ErrTypeMismatch saying it is a value of int64, not an array", err)
	}
	objs, err := s.Objects()
	if err != nil || len(objs) != 1 || objs[0].Name != "counter" {
		t.Errorf("Objects = %v, %v", objs, err)
	}
}

func TestAllocBadSpecs(t *testing.T) {
	s := createTemp(t, 4096)
	for _, spec := range []ObjectSpec{
		{Name: "", Kind: "k"},
		{Name: strings.Repeat("n", 65), Kind: "k"},
		{Name: "a\x00", Kind: "k"},
		{Name: "n", Kind: ""},
		{Name: "n", Kind: "toolongkind"},
		{Name: "n", Kind: "k", Layout: strings.Repeat("x", MaxMetaLen)},
	} {
		if _, err := s.Alloc(spec); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Alloc(%+v) = %v, want ErrInvalidName", spec, err)
		}
	}
	for _, spec := range []ObjectSpec{
		{Name: "n", Kind: "k", Size: -1},
		{Name: "n", Kind: "k", Align: 3},
		{Name: "n", Kind: "k", Align: 1 << 20},
	} {
		if _, err := s.Alloc(spec); err == nil {
			t.Errorf("Alloc(%+v) succeeded", spec)
		}
	}
}

func TestAllocUntilFull(t *testing.T) {
	s := createTemp(t, 4096)
	n := 0
	for ; ; n++ {
		avail := s.Available()
		_, err := s.Alloc(ObjectSpec{Name: "o" + string(rune('a'+n%26)) + strings.Repeat("x", n/26), Kind: "k", Size: 100})
		if errors.Is(err, ErrFull) {
			if avail >= 100+ObjectAlign+MaxMetaLen/64 {
				t.Errorf("ErrFull with %d bytes available", avail)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if after := s.Available(); after >= avail {
			t.Fatalf("Available went from %d to %d after Alloc", avail, after)
		}
	}
	if n < 10 {
		t.Errorf("only %d 100-byte objects fit in 4 KiB", n)
	}
	if _, err := s.Alloc(ObjectSpec{Name: "huge", Kind: "k", Size: 1 << 40}); !errors.Is(err, ErrFull) {
		t.Errorf("Alloc(1 TiB) = %v, want ErrFull", err)
	}
}

func TestConcurrentAllocOneWinner(t *testing.T) {
	s := createTemp(t, 1<<16)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			_, err := s.Alloc(ObjectSpec{Name: "shared", Kind: "k", Size: 8})
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, fs.ErrExist):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("%d Allocs of one name succeeded, want 1", wins.Load())
	}
}

// TestAllocAfterAllocatorDied leaves the directory lock held by a dead
// process that wrote below dataLow without publishing, as an allocator
// killed after writing a large object's initial content would: it lowered
// the written-low word first, as allocators do (docs/layout.md, 6.2).
func TestAllocAfterAllocatorDied(t *testing.T) {
	s := createTemp(t, 1<<20)
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	id, err := proc.Lookup(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	atomic.StoreUint64(Word64(s, OffDirLock), lock.OwnerWord(id))
	const size = 64 << 10
	dataLow := int64(atomic.LoadUint64(Word64(s, OffDataLow)))
	atomic.StoreUint64(Word64(s, OffWritten), uint64(dataLow-size-4096))
	for i := dataLow - size - 4096; i < dataLow; i++ {
		Mem(s)[i] = 0xAA
	}
	o, err := s.Alloc(ObjectSpec{Name: "after", Kind: "k", Size: size})
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(o.Bytes, func(b byte) bool { return b != 0 }); i >= 0 {
		t.Fatalf("byte %d of object = %#x after a dead allocator's scribble, want 0", i, o.Bytes[i])
	}
	// Below the object the scribble is still there, and the next object
	// that takes the space must not see it either.
	o, err = s.Alloc(ObjectSpec{Name: "next", Kind: "k", Size: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(o.Bytes, func(b byte) bool { return b != 0 }); i >= 0 {
		t.Fatalf("byte %d of the next object = %#x, want 0", i, o.Bytes[i])
	}
}

func TestCorruptDirectory(t *testing.T) {
	s := createTemp(t, 1<<16)
	if _, err := s.Alloc(ObjectSpec{Name: "a", Kind: "k", Size: 8}); err != nil {
		t.Fatal(err)
	}
	Mem(s)[EntryOff(s, 0)+5] ^= 0xff // a byte of the entry's name
	if _, err := s.Lookup("a"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Lookup with corrupt entry = %v, want ErrCorrupt", err)
	}
	Mem(s)[EntryOff(s, 0)+5] ^= 0xff
	binary.LittleEndian.PutUint32(Mem(s)[OffCount:], 1<<30)
	if _, err := s.Objects(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Objects with huge count = %v, want ErrCorrupt", err)
	}
	if _, err := s.Alloc(ObjectSpec{Name: "b", Kind: "k", Size: 8}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Alloc with huge count = %v, want ErrCorrupt", err)
	}
	binary.LittleEndian.PutUint32(Mem(s)[OffCount:], 1)
}

// TestVersion1Segment opens a segment written by layout version 1 (by the
// shmkit of before the index), reads its objects and allocates more in it,
// by version 1's rules, so that older processes can go on sharing it.
func TestVersion1Segment(t *testing.T) {
	b, err := os.ReadFile("testdata/v1-segment")
	if err != nil {
		t.Fatal(err)
	}
	// It was made in another pid namespace; adopt it into this one.
	ns, err := proc.Namespace()
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint64(b[OffPidNS:], ns)
	Resum(b)
	name := shmtest.Name(t)
	if err := os.WriteFile(filepath.Join(DefaultDir, name), b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Remove(name) })

	s, err := Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := []struct {
		name, kind, typ string
		size            int64
		first           byte
	}{
		{"hits", "value", "int64", 8, 42},
		{"hist", "array", "float64", 96, 0},
		{"raw", "bytes", "", 16, 'v'},
	}
	check := func(s *Segment, extra ...string) {
		t.Helper()
		objs, err := s.Objects()
		if err != nil {
			t.Fatal(err)
		}
		if len(objs) != len(want)+len(extra) {
			t.Fatalf("version 1 segment lists %d objects, want %d", len(objs), len(want)+len(extra))
		}
		for i, w := range want {
			o := objs[i]
			if o.Name != w.name || o.Kind != w.kind || o.Type != w.typ || o.Size != w.size || o.Bytes[0] != w.first {
				t.Errorf("object %d = %s %s %s, %d bytes starting %d; want %+v", i, o.Name, o.Kind, o.Type, o.Size, o.Bytes[0], w)
			}
		}
		for i, n := range extra {
			if objs[len(want)+i].Name != n {
				t.Errorf("object %d is %q, want %q", len(want)+i, objs[len(want)+i].Name, n)
			}
		}
		if _, err := s.Attach(ObjectSpec{Name: "hits", Kind: "value", Type: "int64", Layout: "int64", Size: 8}); err != nil {
			t.Errorf("Attach(hits) = %v", err)
		}
		if _, err := s.Lookup("missing"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Lookup(missing) = %v, want fs.ErrNotExist", err)
		}
	}
	check(s)
	avail := s.Available()
	o, err := s.Alloc(ObjectSpec{Name: "new", Kind: "value", Type: "int64", Layout: "int64", Size: 8})
	if err != nil {
		t.Fatal(err)
	}
	if o.Bytes[0] != 0 || s.Available() >= avail {
		t.Errorf("new object starts with %d and Available went from %d to %d", o.Bytes[0], avail, s.Available())
	}
	if _, err := s.Alloc(ObjectSpec{Name: "raw", Kind: "bytes", Size: 16}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Alloc(raw) = %v, want fs.ErrExist", err)
	}
	check(s, "new")

	// The file is still version 1, laid out as version 1 lays out a fourth
	// entry, and reads back whole in a fresh mapping.
	if v := binary.LittleEndian.Uint32(Mem(s)[OffVersion:]); v != 1 {
		t.Errorf("version %d after allocating, want 1", v)
	}
	if got := string(Mem(s)[HeaderSize+3*128 : HeaderSize+3*128+3]); got != "new" {
		t.Errorf("fourth entry starts %q, want the name new", got)
	}
	s2, err := Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	check(s2, "new")
}

// sameBucket returns n names, prefix0, prefix1 and so on, skipping those
// whose bucket in s is not b.
func sameBucket(s *Segment, b int, prefix string, n int) []string {
	var names []string
	for i := 0; len(names) < n; i++ {
		if name := fmt.Sprintf("%s%d", prefix, i); BucketOf(s, name) == b {
			names = append(names, name)
		}
	}
	return names
}

// intSpec describes an object like value.New[int64]'s.
func intSpec(name string) ObjectSpec {
	return ObjectSpec{Name: name, Kind: "value", Type: "int64", Layout: "int64", Size: 8}
}

// TestLookupReadsItsChain damages one entry of a large directory: Lookups
// that do not pass it still work, because they check only the entries they
// read, while Objects, which reads every entry, reports the damage.
func TestLookupReadsItsChain(t *testing.T) {
	s := createTemp(t, 1<<20)
	const n = 1000
	for i := range n {
		if _, err := s.Alloc(intSpec(fmt.Sprintf("obj-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	Mem(s)[EntryOff(s, 0)+20] ^= 1 // in the padding of obj-0's name
	if _, err := s.Lookup("obj-0"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Lookup of the damaged entry = %v, want ErrCorrupt", err)
	}
	if _, err := s.Objects(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Objects = %v, want ErrCorrupt", err)
	}
	found := 0
	for i := 1; i < n; i++ {
		name := fmt.Sprintf("obj-%d", i)
		if BucketOf(s, name) == BucketOf(s, "obj-0") {
			continue
		}
		if _, err := s.Lookup(name); err != nil {
			t.Fatalf("Lookup(%s), whose chain does not pass the damaged entry = %v", name, err)
		}
		found++
	}
	fresh := "new"
	for BucketOf(s, fresh) == BucketOf(s, "obj-0") {
		fresh += "+"
	}
	if _, err := s.Alloc(intSpec(fresh)); err != nil {
		t.Errorf("Alloc(%s), off the damaged chain = %v", fresh, err)
	}
	if found < n/2 {
		t.Errorf("only %d of %d objects are off the damaged chain", found, n)
	}
}

// TestCorruptIndex damages the index: bucket words and links between
// entries, with and without valid checksums. Every reader must report
// ErrCorrupt, never panic, loop or read out of bounds.
func TestCorruptIndex(t *testing.T) {
	s := createTemp(t, 1<<16)
	b := BucketOf(s, "x0")
	chain := sameBucket(s, b, "x", 3) // x0 and two more in its bucket
	other := sameBucket(s, (b+1)%int(binary.LittleEndian.Uint32(Mem(s)[OffBuckets:])), "y", 1)[0]
	// Entries: 0 = chain[0], 1 = other, 2 = chain[1], 3 = chain[2]; the
	// chain of b is 3 -> 2 -> 0.
	for _, name := range []string{chain[0], other, chain[1], chain[2]} {
		if _, err := s.Alloc(intSpec(name)); err != nil {
			t.Fatal(err)
		}
	}
	mem := Mem(s)
	good := append([]byte(nil), mem...)
	bucket := func(b int) []byte { return mem[BucketOff(b):] }
	entry := func(i int) []byte { return mem[EntryOff(s, i) : EntryOff(s, i)+128] }
	link := func(i int, next uint32, resum bool) {
		binary.LittleEndian.PutUint32(entry(i)[EntNext:], next)
		if resum {
			ResumEntry(entry(i))
		}
	}
	ob := BucketOf(s, other)
	missB, missOB := sameBucket(s, b, "miss", 1)[0], sameBucket(s, ob, "miss", 1)[0]
	// Each case lists names whose lookups pass the damage, and so must
	// report it; Alloc of the last must too, since it looks the name up.
	for _, tt := range []struct {
		name   string
		damage func()
		names  []string
	}{
		{"bucket beyond the segment", func() { binary.LittleEndian.PutUint32(bucket(b), 1<<31) }, []string{chain[2], missB}},
		{"bucket beyond the directory", func() { binary.LittleEndian.PutUint32(bucket(b), 6) }, []string{chain[2], missB}},
		{"bucket names another bucket's entry", func() { binary.LittleEndian.PutUint32(bucket(b), 2) }, []string{chain[0], missB}},
		{"link without checksum", func() { link(3, 1, false) }, []string{chain[2], chain[0], missB}},
		{"link to itself", func() { link(3, 4, true) }, []string{chain[1], missB}},
		{"link forward", func() { link(2, 4, true) }, []string{chain[0], missB}},
		{"link into another chain", func() { link(2, 2, true) }, []string{chain[0], missB}},
		{"other chain links into this one", func() { link(1, 3, true) }, []string{missOB}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			copy(mem, good)
			defer copy(mem, good)
			tt.damage()
			for _, name := range tt.names {
				if o, err := s.Lookup(name); !errors.Is(err, ErrCorrupt) {
					t.Errorf("Lookup(%s) = %q, %v; want ErrCorrupt", name, o.Name, err)
				}
			}
			if _, err := s.Alloc(intSpec(tt.names[len(tt.names)-1])); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Alloc(%s) = %v, want ErrCorrupt", tt.names[len(tt.names)-1], err)
			}
		})
	}
	// The undamaged directory still works.
	for _, name := range []string{chain[0], chain[1], chain[2], other} {
		if _, err := s.Lookup(name); err != nil {
			t.Errorf("Lookup(%s) after repair = %v", name, err)
		}
	}
}
