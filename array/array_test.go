//go:build linux

package array_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
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

// triple is larger than a word: its element operations take the lock.
type triple struct{ A, B, C int64 }

type job struct {
	Segment string
	Worker  int
	Iters   int
}

func attach[T any](seg *shm.Segment, name string) *array.Array[T] {
	a, err := array.Open[T](seg, name)
	if err != nil {
		panic(err)
	}
	return a
}

func mustNew[T any](t *testing.T, seg *shm.Segment, name string, n int) *array.Array[T] {
	t.Helper()
	a, err := array.New[T](seg, name, n)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func openJob(j job) (*shm.Segment, error) { return shm.Open(j.Segment) }

var adder = process.Register("array_test.adder", func(ctx context.Context, j job) (int, error) {
	seg, err := openJob(j)
	if err != nil {
		return 0, err
	}
	defer seg.Close()
	wide := attach[int64](seg, "wide")
	bytes := attach[int8](seg, "bytes")
	shorts := attach[uint16](seg, "shorts")
	trips := attach[triple](seg, "triples")
	hits := array.Int64s(wide) // odd workers add through it, the others with Add
	if err := shmtest.Await(seg); err != nil {
		return 0, err
	}
	for i := range j.Iters {
		if j.Worker%2 == 1 {
			hits[i%len(hits)].Add(1)
		} else {
			wide.Add(i%wide.Len(), 1)
		}
		// Neighbouring 1- and 2-byte elements share 4-byte words: every
		// process hits all of them, so a lost or misplaced update shows.
		bytes.Add(i%bytes.Len(), 1)
		shorts.Add(i%shorts.Len(), 1)
		trips.Add(i%trips.Len(), triple{1, 2, 3})
	}
	return 0, nil
})

// TestProcessesAddExact has N processes add into every element of arrays
// of several element sizes: each element must end at its exact count.
func TestProcessesAddExact(t *testing.T) {
	for _, tc := range []struct{ procs, iters int }{{2, 100000}, {8, 20000}} {
		t.Run(fmt.Sprintf("%dx%d", tc.procs, tc.iters), func(t *testing.T) {
			seg := shmtest.Segment(t, 1<<16)
			shmtest.NewGate(t, seg)
			wide := mustNew[int64](t, seg, "wide", 16)
			bytes := mustNew[int8](t, seg, "bytes", 7) // odd length: the last word is partly outside
			shorts := mustNew[uint16](t, seg, "shorts", 5)
			trips := mustNew[triple](t, seg, "triples", 4)
			ps := shmtest.Start(t, tc.procs, func(i int) (*process.Process, error) {
				return adder.Start(job{Segment: seg.Name(), Worker: i, Iters: tc.iters})
			})
			shmtest.Release(t, seg, ps)
			shmtest.JoinAll(t, ps)
			check := func(name string, n int, got func(i int) int64) {
				for i := range n {
					per := tc.iters / n
					if i < tc.iters%n {
						per++
					}
					if g, want := got(i), int64(tc.procs*per); g != want {
						t.Errorf("%s[%d] = %d, want %d", name, i, g, want)
					}
				}
			}
			check("wide", wide.Len(), func(i int) int64 { return wide.Load(i) })
			// int8 elements wrap: compare modulo 256.
			check8 := func(i int) int64 { return int64(uint8(bytes.Load(i))) }
			for i := range bytes.Len() {
				per := tc.iters / bytes.Len()
				if i < tc.iters%bytes.Len() {
					per++
				}
				if g, want := check8(i), int64(tc.procs*per)%256; g != want {
					t.Errorf("bytes[%d] = %d, want %d (mod 256)", i, g, want)
				}
			}
			check("shorts", shorts.Len(), func(i int) int64 { return int64(shorts.Load(i)) })
			check("triples", trips.Len(), func(i int) int64 {
				v := trips.Load(i)
				if v.B != 2*v.A || v.C != 3*v.A {
					t.Errorf("triples[%d] = %+v: fields out of step", i, v)
				}
				return v.A
			})
		})
	}
}

var (
	bulkWriter = process.Register("array_test.bulkWriter", func(ctx context.Context, j job) (int, error) {
		seg, a, err := attachBulk(j)
		if err != nil {
			return 0, err
		}
		defer seg.Close()
		src := make([]int64, a.Len())
		for i := range j.Iters {
			for k := range src {
				src[k] = int64(j.Worker*1_000_000 + i)
			}
			if _, err := a.CopyFrom(ctx, src); err != nil {
				return 0, err
			}
		}
		done, err := value.Open[int64](seg, "writers done")
		if err != nil {
			return 0, err
		}
		done.Add(1)
		return 0, nil
	})
	bulkReader = process.Register("array_test.bulkReader", func(ctx context.Context, j job) (int, error) {
		seg, a, err := attachBulk(j)
		if err != nil {
			return 0, err
		}
		defer seg.Close()
		done, err := value.Open[int64](seg, "writers done")
		if err != nil {
			return 0, err
		}
		dst := make([]int64, a.Len())
		distinct, last := 0, int64(-1)
		// Read until both writers have finished, however the scheduler
		// interleaves the four processes on the machine's cores.
		for i := 0; i < j.Iters || done.Load() < 2; i++ {
			if _, err := a.CopyTo(ctx, dst); err != nil {
				return 0, err
			}
			for k, v := range dst {
				if v != dst[0] {
					return 0, fmt.Errorf("CopyTo saw a mixture: element 0 = %d, element %d = %d", dst[0], k, v)
				}
			}
			if dst[0] != last {
				distinct++
				last = dst[0]
			}
		}
		return distinct, nil
	})
)

// attachBulk opens the job's segment and its "bulk" array, and waits at
// the gate.
func attachBulk(j job) (*shm.Segment, *array.Array[int64], error) {
	seg, err := openJob(j)
	if err != nil {
		return nil, nil, err
	}
	a := attach[int64](seg, "bulk")
	if err := shmtest.Await(seg); err != nil {
		seg.Close()
		return nil, nil, err
	}
	return seg, a, nil
}

// TestBulkCopiesConsistent has two processes CopyFrom whole arrays of one
// repeated number while two others CopyTo: no copy may see a mixture.
func TestBulkCopiesConsistent(t *testing.T) {
	seg := shmtest.Segment(t, 1<<20)
	shmtest.NewGate(t, seg)
	mustNew[int64](t, seg, "bulk", 8192)
	if _, err := value.New[int64](seg, "writers done"); err != nil {
		t.Fatal(err)
	}
	ps := shmtest.Start(t, 4, func(i int) (*process.Process, error) {
		j := job{Segment: seg.Name(), Worker: i + 1, Iters: 2000}
		if i < 2 {
			return bulkWriter.Start(j)
		}
		return bulkReader.Start(j)
	})
	shmtest.Release(t, seg, ps)
	shmtest.JoinAll(t, ps)
	for _, r := range ps[2:] {
		var distinct int
		if err := r.Result(&distinct); err != nil {
			t.Fatal(err)
		}
		if distinct < 2 {
			t.Errorf("reader saw %d distinct contents: reads and writes did not overlap", distinct)
		}
	}
}

var stuckCopier = process.Register("array_test.stuck", func(ctx context.Context, j job) (int, error) {
	seg, err := openJob(j)
	if err != nil {
		return 0, err
	}
	a := attach[int64](seg, "bulk")
	inside, err := value.Open[bool](seg, "inside")
	if err != nil {
		return 0, err
	}
	return 0, a.Locked(ctx, func(s []int64) error {
		for i := range s[:len(s)/2] {
			s[i] = -1 // half-way through a rewrite
		}
		inside.Store(true)
		select {} // killed here, holding the lock
	})
})

// TestHolderKilledMidCopy kills a process half-way through rewriting the
// array under its lock: the next bulk operation gets the lock promptly and
// reports ErrOwnerDead once.
func TestHolderKilledMidCopy(t *testing.T) {
	seg := shmtest.Segment(t, 1<<20)
	a := mustNew[int64](t, seg, "bulk", 1000)
	inside, err := value.New[bool](seg, "inside")
	if err != nil {
		t.Fatal(err)
	}
	p, err := stuckCopier.Start(job{Segment: seg.Name()})
	if err != nil {
		t.Fatal(err)
	}
	shmtest.WaitUntil(t, "the worker holding the lock", inside.Load, p)
	p.Kill()
	p.Join(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dst := make([]int64, a.Len())
	t0 := time.Now()
	n, err := a.CopyTo(ctx, dst)
	if !errors.Is(err, array.ErrOwnerDead) {
		t.Fatalf("CopyTo after the holder died = %v, want ErrOwnerDead", err)
	}
	if d := time.Since(t0); d > 200*time.Millisecond {
		t.Errorf("CopyTo took %v to recover the lock", d)
	}
	if n != a.Len() || dst[0] != -1 || dst[a.Len()-1] != 0 {
		t.Errorf("CopyTo copied %d elements, first %d last %d; want all, with the dead writer's half", n, dst[0], dst[a.Len()-1])
	}
	if _, err := a.CopyTo(ctx, dst); err != nil {
		t.Errorf("second CopyTo = %v, want nil: owner death is reported once", err)
	}
}

func TestOperations(t *testing.T) {
	seg := shmtest.Segment(t, 1<<20)
	a := mustNew[int32](t, seg, "a", 10)
	if a.Len() != 10 || a.Name() != "a" {
		t.Fatalf("Len, Name = %d, %q", a.Len(), a.Name())
	}
	a.Store(3, 7)
	if a.Swap(3, 8) != 7 || a.Load(3) != 8 {
		t.Error("Swap")
	}
	if a.CompareAndSwap(3, 7, 1) || !a.CompareAndSwap(3, 8, 1) || a.Load(3) != 1 {
		t.Error("CompareAndSwap")
	}
	if a.Update(3, func(v int32) int32 { return v + 41 }) != 42 || a.Add(3, -2) != 40 {
		t.Error("Update or Add")
	}
	src := []int32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	if n, err := a.CopyFrom(context.Background(), src); n != 10 || err != nil {
		t.Errorf("CopyFrom = %d, %v; want 10, nil", n, err)
	}
	dst := make([]int32, 4)
	if n, err := a.CopyTo(context.Background(), dst); n != 4 || err != nil || dst[3] != 4 {
		t.Errorf("CopyTo = %d, %v, %v", n, err, dst)
	}
	err := a.Locked(context.Background(), func(s []int32) error {
		if len(s) != 10 {
			return fmt.Errorf("len %d", len(s))
		}
		for i := range s {
			s[i] *= 2
		}
		return nil
	})
	if err != nil || a.Load(9) != 20 {
		t.Errorf("Locked = %v, element 9 = %d", err, a.Load(9))
	}
	boom := errors.New("boom")
	if err := a.Locked(context.Background(), func([]int32) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("Locked returned %v, want f's error", err)
	}

	// Multi-word elements through a second mapping of the segment.
	tr := mustNew[triple](t, seg, "t", 3)
	tr.Store(2, triple{1, 2, 3})
	seg2, err := shm.Open(seg.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer seg2.Close()
	tr2, err := array.Open[triple](seg2, "t")
	if err != nil {
		t.Fatal(err)
	}
	if tr2.Len() != 3 || tr2.Load(2) != (triple{1, 2, 3}) {
		t.Errorf("second mapping: len %d, element %+v", tr2.Len(), tr2.Load(2))
	}
	if !tr2.CompareAndSwap(2, triple{1, 2, 3}, triple{4, 5, 6}) || tr.Swap(2, triple{}) != (triple{4, 5, 6}) {
		t.Error("multi-word CompareAndSwap or Swap")
	}
	if got := tr.Update(2, func(v triple) triple { v.C = 9; return v }); got != (triple{C: 9}) {
		t.Errorf("multi-word Update = %+v", got)
	}

	empty := mustNew[float64](t, seg, "empty", 0)
	if empty.Len() != 0 {
		t.Errorf("empty array Len = %d", empty.Len())
	}
	if n, err := empty.CopyTo(context.Background(), make([]float64, 3)); n != 0 || err != nil {
		t.Errorf("CopyTo from empty = %d, %v", n, err)
	}
}

func TestOutOfRangePanics(t *testing.T) {
	seg := shmtest.Segment(t, 1<<16)
	a := mustNew[int64](t, seg, "a", 3)
	for _, i := range []int{-1, 3, 1 << 40} {
		func() {
			defer func() {
				r := recover()
				if !strings.Contains(fmt.Sprint(r), "index out of range") {
					t.Errorf("Load(%d): panic %v, want index out of range", i, r)
				}
			}()
			a.Load(i)
		}()
	}
}

type withMap struct {
	N int
	M map[string]int
}

func TestErrors(t *testing.T) {
	seg := shmtest.Segment(t, 1<<16)
	if _, err := array.New[withMap](seg, "bad", 4); !errors.Is(err, array.ErrUnshareable) || !strings.Contains(err.Error(), "field M is a map") {
		t.Errorf("New[withMap] = %v, want ErrUnshareable naming field M", err)
	}
	if _, err := array.New[int64](seg, "neg", -1); err == nil {
		t.Error("New with length -1 succeeded")
	}
	if _, err := array.New[int64](seg, "huge", 1<<60); err == nil {
		t.Error("New with length 2^60 succeeded")
	}
	if _, err := array.New[int64](seg, "toobig", 1<<20); !errors.Is(err, shm.ErrFull) {
		t.Errorf("New larger than the segment = %v, want shm.ErrFull", err)
	}
	mustNew[int64](t, seg, "a", 4)
	if _, err := array.New[int64](seg, "a", 4); !errors.Is(err, fs.ErrExist) {
		t.Errorf("New of existing = %v, want fs.ErrExist", err)
	}
	_, err := array.Open[uint64](seg, "a")
	if !errors.Is(err, shm.ErrTypeMismatch) || !strings.Contains(err.Error(), "int64") || !strings.Contains(err.Error(), "uint64") {
		t.Errorf("Open as uint64 = %v, want ErrTypeMismatch naming both types", err)
	}
	if _, err := value.Open[int64](seg, "a"); !errors.Is(err, shm.ErrTypeMismatch) {
		t.Errorf("value.Open of an array = %v, want ErrTypeMismatch", err)
	}
	if _, err := array.Open[int64](seg, "missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want fs.ErrNotExist", err)
	}
}
