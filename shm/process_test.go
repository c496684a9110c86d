//go:build linux

package shm_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/process"
	. "github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/value"
)

type raceJob struct {
	Control string // segment holding the gate
	Name    string // segment every worker creates or opens
}

// createOrOpen is what a program that does not know whether it runs first
// does: Create, and Open when the segment exists. It must always end with
// a complete segment, whoever won.
var createOrOpen = process.Register("shm_test.createOrOpen", func(ctx context.Context, j raceJob) (bool, error) {
	ctl, err := Open(j.Control)
	if err != nil {
		return false, err
	}
	defer ctl.Close()
	if err := shmtest.Await(ctl); err != nil {
		return false, err
	}
	created := true
	seg, err := Create(j.Name, 1<<16)
	if errors.Is(err, fs.ErrExist) {
		created = false
		seg, err = Open(j.Name)
	}
	if err != nil {
		return false, fmt.Errorf("created=%v: %w", created, err)
	}
	defer seg.Close()
	c, err := value.New[int64](seg, "joined")
	if errors.Is(err, fs.ErrExist) {
		c, err = value.Open[int64](seg, "joined")
	}
	if err != nil {
		return false, err
	}
	c.Add(1)
	return created, nil
})

// TestCreateOpenRace releases processes to create-or-open one name at the
// same moment, over several rounds: exactly one creates it, every other
// one opens a complete segment, and all of them find one shared cell.
func TestCreateOpenRace(t *testing.T) {
	const procs = 6
	ctl := shmtest.Segment(t, 1<<16)
	for round := range 8 {
		name := shmtest.Name(t)
		t.Cleanup(func() { Remove(name) })
		gate := fmt.Sprintf("%s-gate-%d", ctl.Name(), round)
		g, err := Create(gate, 1<<16)
		if err != nil {
			t.Fatal(err)
		}
		shmtest.NewGate(t, g)
		ps := shmtest.Start(t, procs, func(int) (*process.Process, error) {
			return createOrOpen.Start(raceJob{Control: gate, Name: name})
		})
		shmtest.Release(t, g, ps)
		shmtest.JoinAll(t, ps)
		g.Close()
		Remove(gate)
		creators := 0
		for _, p := range ps {
			var created bool
			if err := p.Result(&created); err != nil {
				t.Fatal(err)
			}
			if created {
				creators++
			}
		}
		if creators != 1 {
			t.Fatalf("round %d: %d processes created the segment, want 1", round, creators)
		}
		seg, err := Open(name)
		if err != nil {
			t.Fatal(err)
		}
		c, err := value.Open[int64](seg, "joined")
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Load(); got != procs {
			t.Errorf("round %d: %d processes joined the shared cell, want %d", round, got, procs)
		}
		seg.Close()
	}
}

type churnJob struct {
	Prefix    string
	NoTmpfile bool
}

// churn creates, fills and removes segments as fast as it can, until it is
// killed.
var churn = process.Register("shm_test.churn", func(ctx context.Context, j churnJob) (int, error) {
	for i := 0; ; i++ {
		name := fmt.Sprintf("%s%d", j.Prefix, i)
		seg, err := Create(name, 1<<20, WithTestHooks(j.NoTmpfile, nil))
		if err != nil {
			return i, err
		}
		if _, err := value.New[[8]int64](seg, "v"); err != nil {
			return i, err
		}
		seg.Close()
		if err := Remove(name); err != nil {
			return i, err
		}
	}
})

// TestCreatorKilled kills processes that create segments at random moments:
// whatever they leave under a segment name must open as a complete
// segment. Only the fallback path for filesystems without O_TMPFILE may
// leave a hidden temporary file, for `shmkit gc`.
func TestCreatorKilled(t *testing.T) {
	for _, noTmp := range []bool{false, true} {
		t.Run(fmt.Sprintf("noTmpfile=%v", noTmp), func(t *testing.T) {
			prefix := shmtest.Name(t) + "-"
			t.Cleanup(func() {
				left, _ := filepath.Glob(filepath.Join(DefaultDir, prefix+"*"))
				for _, p := range left {
					os.Remove(p)
				}
			})
			for trial := range 10 {
				p, err := churn.Start(churnJob{Prefix: fmt.Sprintf("%s%d-", prefix, trial), NoTmpfile: noTmp})
				if err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Duration(5+rand.IntN(20)) * time.Millisecond)
				p.Kill()
				if err := p.Join(context.Background()); err == nil || !strings.Contains(err.Error(), "killed") {
					t.Fatalf("trial %d: churn ended with %v before it was killed", trial, err)
				}
			}
			left, _ := filepath.Glob(filepath.Join(DefaultDir, prefix+"*"))
			for _, path := range left {
				seg, err := Open(filepath.Base(path))
				if err != nil {
					t.Errorf("killed creator left %s, which does not open: %v", path, err)
					continue
				}
				seg.Close()
			}
			temps, _ := filepath.Glob(filepath.Join(DefaultDir, TempPrefix+"*"))
			if !noTmp && len(temps) > 0 {
				t.Errorf("O_TMPFILE creation left temporary files: %v", temps)
			}
			for _, tmp := range temps {
				os.Remove(tmp)
			}
		})
	}
}

type dieJob struct {
	Control string // segment holding the gate
	Segment string // segment to allocate in
	Name    string // object to allocate
	Step    string // step of Alloc after which the worker kills itself
}

// allocAndDie allocates an object and kills itself with SIGKILL, holding
// the directory lock, after the given step of publishing it.
var allocAndDie = process.Register("shm_test.allocAndDie", func(ctx context.Context, j dieJob) (struct{}, error) {
	ctl, err := Open(j.Control)
	if err != nil {
		return struct{}{}, err
	}
	defer ctl.Close()
	seg, err := Open(j.Segment)
	if err != nil {
		return struct{}{}, err
	}
	defer seg.Close()
	// Wait until Start has returned in the parent: a worker that dies while
	// the parent still hands it the job may be given the job again.
	if err := shmtest.Await(ctl); err != nil {
		return struct{}{}, err
	}
	SetAllocHook(seg, func(step string) {
		if step == j.Step {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			for {
				time.Sleep(time.Hour) // until the signal lands
			}
		}
	})
	spec := victimSpec(j.Name)
	spec.Init = bytes.Repeat([]byte{0xAA}, int(spec.Size))
	_, err = seg.Alloc(spec)
	return struct{}{}, fmt.Errorf("Alloc returned (%v) without reaching step %q", err, j.Step)
})

// victimSpec describes the object that allocAndDie allocates: large, so
// that its initial content reaches far below the blob.
func victimSpec(name string) ObjectSpec { return ObjectSpec{Name: name, Kind: "bytes", Size: 16 << 10} }

// TestAllocatorKilled kills an allocator after each step of publishing an
// object, holding the directory lock. The object must be visible exactly
// when the count included it, before and after other processes take the
// lock over and allocate on the same chain, and the directory must stay
// whole: nothing lost, nothing twice.
func TestAllocatorKilled(t *testing.T) {
	for _, tt := range []struct {
		step      string
		published bool
	}{
		{"written", false},
		{"dataLow", false},
		{"published", true},
		{"indexed", true},
	} {
		t.Run(tt.step, func(t *testing.T) {
			seg := shmtest.Segment(t, 1<<16)
			const victim = "victim"
			before := sameBucket(seg, BucketOf(seg, victim), "before", 1)[0]
			after := sameBucket(seg, BucketOf(seg, victim), "after", 2)
			if _, err := seg.Alloc(intSpec(before)); err != nil {
				t.Fatal(err)
			}
			ctl := shmtest.Segment(t, 1<<16)
			shmtest.NewGate(t, ctl)
			ps := shmtest.Start(t, 1, func(int) (*process.Process, error) {
				return allocAndDie.Start(dieJob{Control: ctl.Name(), Segment: seg.Name(), Name: victim, Step: tt.step})
			})
			shmtest.Release(t, ctl, ps)
			if err := ps[0].Join(t.Context()); err == nil || !strings.Contains(err.Error(), "killed") {
				t.Fatalf("allocator ended with %v, want killed", err)
			}

			// expect checks what a process finds, in seg and in a fresh
			// mapping.
			expect := func(when string, names ...string) {
				t.Helper()
				fresh, err := Open(seg.Name())
				if err != nil {
					t.Fatal(err)
				}
				defer fresh.Close()
				for _, s := range []*Segment{seg, fresh} {
					_, err := s.Lookup(victim)
					if tt.published && err != nil || !tt.published && !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("%s: Lookup(%s) = %v, published %v", when, victim, err, tt.published)
					}
					objs, err := s.Objects()
					if err != nil {
						t.Fatal(err)
					}
					var got []string
					for _, o := range objs {
						got = append(got, o.Name)
						if _, err := s.Lookup(o.Name); err != nil {
							t.Errorf("%s: Lookup(%s) = %v", when, o.Name, err)
						}
					}
					if !slices.Equal(got, names) {
						t.Errorf("%s: objects %q, want %q", when, got, names)
					}
				}
			}
			want := []string{before}
			if tt.published {
				want = append(want, victim)
			}
			expect("after the allocator died", want...)

			// The next allocations take the dead allocator's lock over and
			// go on the same chain.
			for _, name := range after {
				if _, err := seg.Alloc(intSpec(name)); err != nil {
					t.Fatal(err)
				}
				want = append(want, name)
			}
			expect("after more allocations", want...)
			o, err := seg.Alloc(victimSpec(victim))
			switch {
			case tt.published && !errors.Is(err, fs.ErrExist):
				t.Errorf("Alloc(%s) again = %v, want fs.ErrExist", victim, err)
			case !tt.published && err != nil:
				t.Errorf("Alloc(%s) again = %v", victim, err)
			case !tt.published:
				if i := bytes.IndexByte(o.Bytes, 0xAA); i >= 0 {
					t.Errorf("Alloc(%s) again: byte %d is the dead allocator's, not zero", victim, i)
				}
			}
		})
	}
}

type dirJob struct {
	Segment string
	Worker  int // this worker's number
	Workers int
	Objects int // to allocate
}

// progressName names the cell in which worker w counts the objects it has
// allocated.
func progressName(w int) string { return fmt.Sprintf("progress-%d", w) }

func objectName(w, k int) string { return fmt.Sprintf("w%d-%d", w, k) }

// allocMany allocates j.Objects objects, announcing each in its progress
// cell, and after each one opens the newest object another worker has
// announced, which must be there. It returns how many it opened.
var allocMany = process.Register("shm_test.allocMany", func(ctx context.Context, j dirJob) (int, error) {
	seg, err := Open(j.Segment)
	if err != nil {
		return 0, err
	}
	defer seg.Close()
	progress := make([]*value.Cell[int64], j.Workers)
	for w := range progress {
		if progress[w], err = value.Open[int64](seg, progressName(w)); err != nil {
			return 0, err
		}
	}
	if err := shmtest.Await(seg); err != nil {
		return 0, err
	}
	opened := 0
	for k := range j.Objects {
		if _, err := seg.Alloc(intSpec(objectName(j.Worker, k))); err != nil {
			return opened, err
		}
		progress[j.Worker].Store(int64(k + 1))
		other := (j.Worker + 1 + k%(j.Workers-1)) % j.Workers
		if m := int(progress[other].Load()); m > 0 {
			if _, err := seg.Attach(intSpec(objectName(other, m-1))); err != nil {
				return opened, fmt.Errorf("announced object: %w", err)
			}
			opened++
		}
	}
	return opened, nil
})

// TestAllocAcrossProcesses has processes allocate into one segment at the
// same time, each opening the objects the others announce as they go.
func TestAllocAcrossProcesses(t *testing.T) {
	const workers, objects = 3, 2000
	seg := shmtest.Segment(t, 4<<20)
	shmtest.NewGate(t, seg)
	for w := range workers {
		if _, err := value.New[int64](seg, progressName(w)); err != nil {
			t.Fatal(err)
		}
	}
	ps := shmtest.Start(t, workers, func(w int) (*process.Process, error) {
		return allocMany.Start(dirJob{Segment: seg.Name(), Worker: w, Workers: workers, Objects: objects})
	})
	shmtest.Release(t, seg, ps)
	shmtest.JoinAll(t, ps)
	opened := 0
	for _, p := range ps {
		var n int
		if err := p.Result(&n); err != nil {
			t.Fatal(err)
		}
		opened += n
	}
	if opened == 0 {
		t.Error("no worker opened another's object while they allocated")
	}

	objs, err := seg.Objects()
	if err != nil {
		t.Fatal(err)
	}
	next := make([]int, workers) // each worker's objects appear in its order
	for _, o := range objs {
		var w, k int
		if _, err := fmt.Sscanf(o.Name, "w%d-%d", &w, &k); err != nil {
			continue
		}
		if k != next[w] {
			t.Fatalf("object %s out of order: want w%d-%d next", o.Name, w, next[w])
		}
		next[w]++
		if got, err := seg.Lookup(o.Name); err != nil || got.Offset != o.Offset {
			t.Errorf("Lookup(%s) = %v at %d, want it at %d", o.Name, err, got.Offset, o.Offset)
		}
	}
	if !slices.Equal(next, []int{objects, objects, objects}) {
		t.Errorf("workers' objects listed: %v, want %d each", next, objects)
	}
}
