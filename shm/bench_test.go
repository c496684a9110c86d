//go:build linux

package shm_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/shmtest"
	. "github.com/shmkit/shmkit/shm"
)

// BenchmarkDirectory measures creating and opening named objects, as
// value.New[int64] and value.Open[int64] do, in segments that hold 100 to
// 100 000 objects. Each sub-benchmark also measures the same operation on a
// 100-object segment in the same run, alternately, and reports it as
// base-ns/op, with the quotient as x-base: a directory whose cost does not
// grow with the count keeps x-base near 1, but for the memory it touches,
// which falls out of the caches as segments grow. touch, which reads one
// byte of each object opened in the same order, shows that part alone; and
// allocs/op, which counts two allocations per directory entry read, stays
// the same.
func BenchmarkDirectory(b *testing.B) {
	ops := []struct {
		name string
		op   func(f *dirFixture, k int)
	}{
		{"create", (*dirFixture).create},
		{"open", (*dirFixture).open},
		{"touch", (*dirFixture).touch},
	}
	for _, o := range ops {
		b.Run(o.name, func(b *testing.B) {
			for _, n := range []int{100, 1000, 10000, 100000} {
				b.Run(fmt.Sprintf("objects=%d", n), func(b *testing.B) {
					compareDirectories(b, n, o.op)
				})
			}
		})
	}
}

// baseObjects is how many objects the baseline segment holds.
const baseObjects = 100

// compareDirectories times op on a segment of n objects and on one of
// baseObjects, in alternating slices of b.N operations each, and reports
// ns/op, base-ns/op and x-base as benchtest.Ratio does. Creating objects
// fills the segments, which are then replaced by fresh ones of n objects
// (and baseObjects); the refilling is not timed.
func compareDirectories(b *testing.B, n int, op func(f *dirFixture, k int)) {
	b.ReportAllocs()
	base, target := newDirFixture(b, baseObjects), newDirFixture(b, n)
	var tBase, tTarget time.Duration
	chunk := max(1, b.N/10)
	b.ResetTimer()
	for done := 0; done < b.N; {
		k := min(chunk, b.N-done, base.room(), target.room())
		t0 := time.Now()
		op(base, k)
		t1 := time.Now()
		op(target, k)
		tBase += t1.Sub(t0)
		tTarget += time.Since(t1)
		done += k
		b.StopTimer()
		base.refill()
		target.refill()
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(tTarget.Nanoseconds())/float64(b.N), "ns/op")
	b.ReportMetric(float64(tBase.Nanoseconds())/float64(b.N), "base-ns/op")
	b.ReportMetric(float64(tTarget)/float64(tBase), "x-base")
}

// dirFixture is a segment holding n or more objects like value.New[int64]'s,
// named obj-0, obj-1, and so on.
type dirFixture struct {
	b     *testing.B
	n     int // objects in a fresh segment
	seg   *Segment
	specs []ObjectSpec // of every object made or to be made before refill
	objs  []Object     // the objects made
	count int          // objects in seg
	next  int          // the object open opens next
}

// dirGrowth is how many objects create may add to a fixture of n objects
// before it is refilled: the object count stays within 10% of n.
func dirGrowth(n int) int { return max(1, n/10) }

func newDirFixture(b *testing.B, n int) *dirFixture {
	f := &dirFixture{b: b, n: n}
	for i := range n + dirGrowth(n) {
		f.specs = append(f.specs, ObjectSpec{Name: "obj-" + strconv.Itoa(i), Kind: "value",
			Type: "int64", Layout: "int64", Size: 8})
	}
	f.fill()
	b.Cleanup(f.close)
	return f
}

// fill makes a fresh segment of f.n objects. An object takes a 128-byte
// directory entry and a 64-byte line, and the index takes 4 bytes per 512
// of segment: the segment has room for every object create may add, and
// little more, so that segments of every count are equally full.
func (f *dirFixture) fill() {
	name := shmtest.Name(f.b)
	seg, err := Create(name, int64(len(f.specs))*200+8192)
	if err != nil {
		f.b.Fatal(err)
	}
	f.seg, f.objs, f.count = seg, f.objs[:0], 0
	for range f.n {
		f.create(1)
	}
}

func (f *dirFixture) close() {
	if err := f.seg.Close(); err != nil {
		f.b.Error(err)
	}
	if err := Remove(f.seg.Name()); err != nil {
		f.b.Error(err)
	}
}

// room returns how many more objects create may add.
func (f *dirFixture) room() int { return len(f.specs) - f.count }

// refill replaces a segment that create has filled.
func (f *dirFixture) refill() {
	if f.room() == 0 {
		f.close()
		f.fill()
	}
}

// create allocates the next k objects.
func (f *dirFixture) create(k int) {
	for range k {
		o, err := f.seg.Alloc(f.specs[f.count])
		if err != nil {
			f.b.Fatal(err)
		}
		f.objs = append(f.objs, o)
		f.count++
	}
}

// open attaches to k objects spread over the segment.
func (f *dirFixture) open(k int) {
	for range k {
		if _, err := f.seg.Attach(f.specs[f.step()]); err != nil {
			f.b.Fatal(err)
		}
	}
}

// touchSink keeps touch's reads from being optimised away.
var touchSink byte

// touch reads the first byte of k objects, in the order open opens them.
func (f *dirFixture) touch(k int) {
	for range k {
		touchSink += f.objs[f.step()].Bytes[0]
	}
}

// step returns the next object for open and touch. 7919 is prime, and so
// coprime with every count but its multiples: the sequence visits every
// object.
func (f *dirFixture) step() int {
	f.next = (f.next + 7919) % f.count
	return f.next
}
