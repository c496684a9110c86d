//go:build linux

package shm_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
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
