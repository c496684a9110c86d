//go:build linux

package queue_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/queue"
)

func TestBadOptions(t *testing.T) {
	seg := shmtest.Segment(t, 1<<20)
	for _, tc := range []struct {
		name string
		opts []queue.Option
	}{
		{"capacity 0", []queue.Option{queue.Capacity(0)}},
		{"negative capacity", []queue.Option{queue.Capacity(-1)}},
		{"absurd capacity", []queue.Option{queue.Capacity(1 << 40)}},
		{"message size 0", []queue.Option{queue.MaxMessage(0)}},
		{"absurd message size", []queue.Option{queue.MaxMessage(1 << 40)}},
	} {
		if _, err := queue.New[[]byte](seg, "q", tc.opts...); err == nil {
			t.Errorf("New with %s succeeded", tc.name)
		}
	}
	// Too big for the segment: shm's error.
	if _, err := queue.New[[]byte](seg, "big", queue.Capacity(1<<20), queue.MaxMessage(1<<20)); err == nil {
		t.Error("New of a 1 TiB queue in a 1 MiB segment succeeded")
	}
	if _, err := queue.New[chan int](seg, "chan"); err == nil {
		t.Error("New of a queue of channels succeeded")
	}
}

func TestCorruptHeader(t *testing.T) {
	seg := shmtest.Segment(t, 1<<20)
	for _, tc := range []struct {
		name string
		off  int
		val  uint32
	}{
		{"magic", 0, 0xdeadbeef},
		{"version", 4, 99},
		{"format", 8, 9},
		{"capacity", 16, 0},
		{"stride", 32, 7},
	} {
		name := "q-" + tc.name
		if _, err := queue.New[int64](seg, name, queue.Capacity(4)); err != nil {
			t.Fatal(err)
		}
		obj, err := seg.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		atomic.StoreUint32((*uint32)(unsafe.Pointer(&obj.Bytes[tc.off])), tc.val)
		if _, err := queue.Open[int64](seg, name); !errors.Is(err, queue.ErrCorrupt) {
			t.Errorf("Open with a bad %s = %v, want ErrCorrupt", tc.name, err)
		}
		if _, err := queue.Stat(obj); !errors.Is(err, queue.ErrCorrupt) {
			t.Errorf("Stat with a bad %s = %v, want ErrCorrupt", tc.name, err)
		}
	}
}

// The header is 512 bytes, then 256 records of 64 bytes, then the slots
// (docs/layout.md).
const slotsOff = 512 + 256*64

func TestCorruptSlot(t *testing.T) {
	ctx := context.Background()
	seg := shmtest.Segment(t, 1<<20)
	q, err := queue.New[[]byte](seg, "q", queue.Capacity(4), queue.MaxMessage(100))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := seg.Lookup("q")
	if err != nil {
		t.Fatal(err)
	}
	length := (*uint32)(unsafe.Pointer(&obj.Bytes[slotsOff+8]))

	// A length beyond the maximum: taken and reported.
	if err := q.Put(ctx, []byte("x")); err != nil {
		t.Fatal(err)
	}
	atomic.StoreUint32(length, 1<<30)
	if _, err := q.Get(ctx); !errors.Is(err, queue.ErrCorrupt) {
		t.Fatalf("Get of a message with a bad length = %v, want ErrCorrupt", err)
	}

	// A state no step writes: an error, at once, every time. (Slots are
	// 128 bytes apart: 16 of header and 100 of message, rounded up.)
	setStates := func(v uint64) {
		for i := range 4 {
			atomic.StoreUint64((*uint64)(unsafe.Pointer(&obj.Bytes[slotsOff+128*i])), v)
		}
	}
	setStates(3)
	for range 2 {
		if _, err := q.TryGet(); !errors.Is(err, queue.ErrCorrupt) {
			t.Fatalf("TryGet of a slot in a bad state = %v, want ErrCorrupt", err)
		}
	}
	setStates(1 << 40)
	if _, err := q.Get(ctx); !errors.Is(err, queue.ErrCorrupt) {
		t.Fatalf("Get of a slot at a far position = %v, want ErrCorrupt", err)
	}
	if err := q.TryPut([]byte("y")); err != nil && !errors.Is(err, queue.ErrCorrupt) {
		t.Fatalf("TryPut = %v", err)
	}
}

func TestCorruptCBOR(t *testing.T) {
	ctx := context.Background()
	seg := shmtest.Segment(t, 1<<20)
	q, err := queue.New[record](seg, "q", queue.Capacity(4), queue.MaxMessage(64))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := seg.Lookup("q")
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Put(ctx, record{"a", 1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	// Scribble over the encoding: a map header claiming many pairs.
	data := obj.Bytes[slotsOff+16:]
	data[0] = 0xbb
	if _, err := q.Get(ctx); !errors.Is(err, queue.ErrCorrupt) || !strings.Contains(err.Error(), "decode") {
		t.Fatalf("Get of a bad encoding = %v, want ErrCorrupt", err)
	}
	// The queue goes on.
	if err := q.Put(ctx, record{"b", 1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if v, err := q.Get(ctx); err != nil || v.Name != "b" {
		t.Fatalf("Get = %v, %v", v, err)
	}
}
