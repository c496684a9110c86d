//go:build linux

package shm_test

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/shmkit/shmkit/internal/lock"
	"github.com/shmkit/shmkit/internal/proc"
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
// process that scribbled below dataLow, as an allocator killed between
// writing its metadata and publishing would.
func TestAllocAfterAllocatorDied(t *testing.T) {
	s := createTemp(t, 1<<16)
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
	dataLow := int64(atomic.LoadUint64(Word64(s, OffDataLow)))
	for i := dataLow - 300; i < dataLow; i++ {
		Mem(s)[i] = 0xAA
	}
	o, err := s.Alloc(ObjectSpec{Name: "after", Kind: "k", Size: 256})
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range o.Bytes {
		if b != 0 {
			t.Fatalf("byte %d of object = %#x after a dead allocator's scribble, want 0", i, b)
		}
	}
}

func TestCorruptDirectory(t *testing.T) {
	s := createTemp(t, 1<<16)
	if _, err := s.Alloc(ObjectSpec{Name: "a", Kind: "k", Size: 8}); err != nil {
		t.Fatal(err)
	}
	Mem(s)[HeaderSize+5] ^= 0xff // a byte of the entry's name
	if _, err := s.Lookup("a"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Lookup with corrupt entry = %v, want ErrCorrupt", err)
	}
	Mem(s)[HeaderSize+5] ^= 0xff
	binary.LittleEndian.PutUint32(Mem(s)[OffCount:], 1<<30)
	if _, err := s.Objects(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Objects with huge count = %v, want ErrCorrupt", err)
	}
	if _, err := s.Alloc(ObjectSpec{Name: "b", Kind: "k", Size: 8}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Alloc with huge count = %v, want ErrCorrupt", err)
	}
	binary.LittleEndian.PutUint32(Mem(s)[OffCount:], 1)
}
