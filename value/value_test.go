//go:build linux

package value_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/value"
)

func TestMain(m *testing.M) { shmtest.Main(m) }

// stats is larger than a word: it takes the locked, double-buffered path.
type stats struct {
	N     int64
	Sum   float64
	Check [6]int64 // every element equals N, or a read was torn
}

type small struct{ A, B int32 }

type job struct {
	Segment string
	Iters   int
}

func open[T any](seg *shm.Segment, name string) *value.Cell[T] {
	c, err := value.Open[T](seg, name)
	if err != nil {
		panic(err)
	}
	return c
}

// waitFor opens the segment's gate; see shmtest.NewGate.
func waitFor(seg *shm.Segment) {
	if err := shmtest.Await(seg); err != nil {
		panic(err)
	}
}

// newSegment returns a segment with a gate for the workers.
func newSegment(t *testing.T) *shm.Segment {
	seg := shmtest.Segment(t, 1<<16)
	shmtest.NewGate(t, seg)
	return seg
}

var adder = process.Register("value_test.adder", func(ctx context.Context, j job) (int, error) {
	seg, err := shm.Open(j.Segment)
	if err != nil {
		return 0, err
	}
	defer seg.Close()
	counter := open[int64](seg, "counter")
	f := open[float64](seg, "float")
	b := open[int8](seg, "byte")
	sm := open[small](seg, "small")
	st := open[stats](seg, "stats")
	hits := value.Int64(counter) // every other add goes through it
	waitFor(seg)
	for i := range j.Iters {
		if i%2 == 1 {
			hits.Add(1)
		} else {
			counter.Add(1)
		}
		f.Add(0.5)
		b.Add(1)
		sm.Add(small{1, -1})
		st.Update(func(s stats) stats {
			s.N++
			s.Sum += 2
			for i := range s.Check {
				s.Check[i] = s.N
			}
			return s
		})
	}
	return 0, nil
})

func mustNew[T any](t *testing.T, seg *shm.Segment, name string) *value.Cell[T] {
	t.Helper()
	c, err := value.New[T](seg, name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestProcessesAddExact is Python's lost-update tutorial done right: N
// processes × M increments, released together, end exactly at N×M, for
// every kind of cell.
func TestProcessesAddExact(t *testing.T) {
	for _, tc := range []struct{ procs, iters int }{{9, 50}, {2, 100000}, {4, 50000}, {8, 25000}} {
		t.Run(fmt.Sprintf("%dx%d", tc.procs, tc.iters), func(t *testing.T) {
			seg := newSegment(t)
			counter := mustNew[int64](t, seg, "counter")
			f := mustNew[float64](t, seg, "float")
			b := mustNew[int8](t, seg, "byte")
			sm := mustNew[small](t, seg, "small")
			st := mustNew[stats](t, seg, "stats")
			ps := shmtest.Start(t, tc.procs, func(int) (*process.Process, error) {
				return adder.Start(job{Segment: seg.Name(), Iters: tc.iters})
			})
			shmtest.Release(t, seg, ps)
			shmtest.JoinAll(t, ps)
			total := int64(tc.procs * tc.iters)
			if got := counter.Load(); got != total {
				t.Errorf("int64 counter = %d, want %d", got, total)
			}
			if got := f.Load(); got != float64(total)/2 {
				t.Errorf("float64 = %v, want %v", got, float64(total)/2)
			}
			if got := b.Load(); got != int8(total) {
				t.Errorf("int8 = %d, want %d (wrapped)", got, int8(total))
			}
			if got := sm.Load(); got != (small{int32(total), -int32(total)}) {
				t.Errorf("small = %+v, want {%d %d}", got, total, -total)
			}
			s := st.Load()
			if s.N != total || s.Sum != 2*float64(total) || s.Check != [6]int64{total, total, total, total, total, total} {
				t.Errorf("stats = %+v, want N=%d", s, total)
			}
		})
	}
}

var (
	storer = process.Register("value_test.storer", func(ctx context.Context, j job) (int, error) {
		seg, st, err := attachStats(j)
		if err != nil {
			return 0, err
		}
		defer seg.Close()
		for i := range j.Iters {
			v := int64(i)
			st.Store(stats{N: v, Sum: float64(v), Check: [6]int64{v, v, v, v, v, v}})
		}
		open[int64](seg, "writers done").Add(1)
		return 0, nil
	})
	reader = process.Register("value_test.reader", func(ctx context.Context, j job) (int, error) {
		seg, st, err := attachStats(j)
		if err != nil {
			return 0, err
		}
		defer seg.Close()
		// Read until both writers have finished, however the scheduler
		// interleaves the four processes on the machine's cores.
		done := open[int64](seg, "writers done")
		distinct := 0
		last := int64(-1)
		for i := 0; i < j.Iters || done.Load() < 2; i++ {
			s := st.Load()
			for _, c := range s.Check {
				if c != s.N || s.Sum != float64(s.N) {
					return 0, fmt.Errorf("torn read: %+v", s)
				}
			}
			if s.N != last {
				distinct++
				last = s.N
			}
		}
		return distinct, nil
	})
)

// attachStats opens the job's segment and its "stats" cell, and waits for
// the release.
func attachStats(j job) (*shm.Segment, *value.Cell[stats], error) {
	seg, err := shm.Open(j.Segment)
	if err != nil {
		return nil, nil, err
	}
	st := open[stats](seg, "stats")
	waitFor(seg)
	return seg, st, nil
}

// TestNoTornReads has two processes store multi-word values while two
// others read: every value read must be one some process stored.
func TestNoTornReads(t *testing.T) {
	seg := newSegment(t)
	mustNew[stats](t, seg, "stats")
	mustNew[int64](t, seg, "writers done")
	j := job{Segment: seg.Name(), Iters: 200000}
	writers := shmtest.Start(t, 2, func(int) (*process.Process, error) { return storer.Start(j) })
	readers := shmtest.Start(t, 2, func(int) (*process.Process, error) { return reader.Start(j) })
	shmtest.Release(t, seg, append(writers, readers...))
	shmtest.JoinAll(t, append(writers, readers...))
	for _, r := range readers {
		var distinct int
		if err := r.Result(&distinct); err != nil {
			t.Fatal(err)
		}
		if distinct < 2 {
			t.Errorf("reader saw %d distinct values: the test did not overlap reads and writes", distinct)
		}
	}
}

var stuckWriter = process.Register("value_test.stuckWriter", func(ctx context.Context, j job) (int, error) {
	seg, err := shm.Open(j.Segment)
	if err != nil {
		return 0, err
	}
	st := open[stats](seg, "stats")
	inside := open[bool](seg, "inside")
	st.Update(func(s stats) stats {
		inside.Store(true)
		select {} // killed here, holding the cell's lock
	})
	return 0, nil
})

// TestWriterKilledMidUpdate kills a process inside Update: the value stays
// as it was, and the next writer gets the lock within a few check
// intervals.
func TestWriterKilledMidUpdate(t *testing.T) {
	seg := shmtest.Segment(t, 1<<16)
	st := mustNew[stats](t, seg, "stats")
	inside := mustNew[bool](t, seg, "inside")
	before := stats{N: 7, Sum: 7, Check: [6]int64{7, 7, 7, 7, 7, 7}}
	for trial := range 5 {
		st.Store(before)
		inside.Store(false)
		p, err := stuckWriter.Start(job{Segment: seg.Name()})
		if err != nil {
			t.Fatal(err)
		}
		shmtest.WaitUntil(t, "the worker inside Update", inside.Load, p)
		p.Kill()
		p.Join(context.Background())
		if got := st.Load(); got != before {
			t.Fatalf("trial %d: value after the writer died = %+v, want %+v", trial, got, before)
		}
		t0 := time.Now()
		got := st.Update(func(s stats) stats { s.N++; return s })
		if d := time.Since(t0); d > 200*time.Millisecond {
			t.Errorf("trial %d: Update after the writer died took %v", trial, d)
		}
		if got.N != 8 {
			t.Fatalf("trial %d: Update returned N=%d, want 8", trial, got.N)
		}
	}
}

func TestOperations(t *testing.T) {
	seg := shmtest.Segment(t, 1<<16)
	i := mustNew[int32](t, seg, "i")
	if i.Load() != 0 || i.Name() != "i" {
		t.Fatal("new cell not zero")
	}
	i.Store(5)
	if old := i.Swap(9); old != 5 {
		t.Errorf("Swap returned %d, want 5", old)
	}
	if i.CompareAndSwap(5, 1) || !i.CompareAndSwap(9, 1) || i.Load() != 1 {
		t.Error("CompareAndSwap wrong")
	}
	if got := i.Update(func(v int32) int32 { return v * 10 }); got != 10 {
		t.Errorf("Update = %d, want 10", got)
	}
	if got := i.Add(-15); got != -5 {
		t.Errorf("Add = %d, want -5", got)
	}

	s := mustNew[stats](t, seg, "s")
	a := stats{N: 1, Sum: 1.5}
	b := stats{N: 2, Sum: 2.5}
	s.Store(a)
	if old := s.Swap(b); old != a {
		t.Errorf("Swap returned %+v, want %+v", old, a)
	}
	if s.CompareAndSwap(a, a) || !s.CompareAndSwap(b, a) || s.Load() != a {
		t.Error("multi-word CompareAndSwap wrong")
	}
	if got := s.Add(b); got.N != 3 || got.Sum != 4 {
		t.Errorf("multi-word Add = %+v", got)
	}

	// The same cell seen through a second mapping of the segment.
	seg2, err := shm.Open(seg.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer seg2.Close()
	s2, err := value.Open[stats](seg2, "s")
	if err != nil {
		t.Fatal(err)
	}
	if got := s2.Load(); got.N != 3 {
		t.Errorf("second mapping sees %+v", got)
	}

	nan := mustNew[float64](t, seg, "nan")
	nan.Store(math.NaN())
	if !nan.CompareAndSwap(math.NaN(), 1) {
		t.Error("CompareAndSwap(NaN, 1) failed on a NaN with the same bits")
	}
}

func TestUpdatePanicLeavesValue(t *testing.T) {
	seg := shmtest.Segment(t, 1<<16)
	s := mustNew[stats](t, seg, "s")
	s.Store(stats{N: 3})
	func() {
		defer func() { recover() }()
		s.Update(func(stats) stats { panic("boom") })
	}()
	if got := s.Load(); got.N != 3 {
		t.Errorf("value after panicking Update = %+v", got)
	}
	s.Store(stats{N: 4}) // the lock was released
	if got := s.Load(); got.N != 4 {
		t.Errorf("Store after panicking Update: %+v", got)
	}
}

type withString struct {
	N    int
	Name string
}

func TestErrors(t *testing.T) {
	seg := shmtest.Segment(t, 1<<16)
	if _, err := value.New[withString](seg, "bad"); !errors.Is(err, value.ErrUnshareable) || !strings.Contains(err.Error(), "field Name is a string") {
		t.Errorf("New[withString] = %v, want ErrUnshareable naming field Name", err)
	}
	if _, err := value.New[[]int](seg, "bad"); !errors.Is(err, value.ErrUnshareable) {
		t.Errorf("New[[]int] = %v, want ErrUnshareable", err)
	}
	mustNew[int64](t, seg, "n")
	if _, err := value.New[int64](seg, "n"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("New of existing = %v, want fs.ErrExist", err)
	}
	_, err := value.Open[float64](seg, "n")
	if !errors.Is(err, shm.ErrTypeMismatch) || !strings.Contains(err.Error(), "int64") || !strings.Contains(err.Error(), "float64") {
		t.Errorf("Open as float64 = %v, want ErrTypeMismatch naming int64 and float64", err)
	}
	if _, err := value.Open[int64](seg, "missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want fs.ErrNotExist", err)
	}
	if _, err := value.New[int64](seg, strings.Repeat("x", 100)); !errors.Is(err, shm.ErrInvalidName) {
		t.Errorf("New with a long name = %v, want ErrInvalidName", err)
	}
	flag := mustNew[bool](t, seg, "flag")
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "bool") {
				t.Errorf("Add on a bool cell: panic %v, want one naming bool", r)
			}
		}()
		flag.Add(true)
	}()
}

// TestOpenLargeTypeIsCheap checks that opening a cell of a large type
// costs in proportion to the type's fields, not its bytes: opening a
// [1<<20]byte cell once allocated 88 MB.
func TestOpenLargeTypeIsCheap(t *testing.T) {
	seg := shmtest.Segment(t, 4<<20)
	if _, err := value.New[[1 << 20]byte](seg, "big"); err != nil {
		t.Fatal(err)
	}
	if _, err := array.New[[1 << 16]int16](seg, "rows", 4); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := value.Open[[1 << 20]byte](seg, "big"); err != nil {
		t.Fatal(err)
	}
	if _, err := array.Open[[1 << 16]int16](seg, "rows"); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
		t.Errorf("opening a 1 MiB cell and an array of 128 KiB elements allocated %d bytes", n)
	}
}
