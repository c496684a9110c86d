// Package shmtest holds the helpers every shmkit test binary uses: unique
// segment names, segments removed at cleanup, and a TestMain that fails the
// run when it leaves segments, goroutines or file descriptors behind.
package shmtest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/shmkit/shmkit/internal/proc"
	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/shm"
)

var seq atomic.Int64

// Prefix starts the name of every segment this test binary creates; other
// test binaries running in parallel use other prefixes.
func Prefix() string { return fmt.Sprintf("shmkit-test-%d-", os.Getpid()) }

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// Name returns a segment name unique to this test and this call.
func Name(t testing.TB) string {
	n := fmt.Sprintf("%s%d-%s", Prefix(), seq.Add(1), unsafeChars.ReplaceAllString(t.Name(), "_"))
	return n[:min(len(n), shm.MaxNameLen)]
}

// Segment creates a named segment of size bytes that is closed and removed
// when the test ends.
func Segment(t testing.TB, size int64) *shm.Segment {
	t.Helper()
	name := Name(t)
	s, err := shm.Create(name, size)
	if err != nil {
		t.Fatalf("shm.Create(%q, %d): %v", name, size, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := shm.Remove(name); err != nil {
			t.Errorf("Remove: %v", err)
		}
	})
	return s
}

// Main runs worker processes (process.Main) and otherwise the tests, and
// then fails the run if they left behind segments named with Prefix, child
// processes, goroutines, or open file descriptors. Call it from TestMain:
// func TestMain(m *testing.M) { shmtest.Main(m) }.
func Main(m *testing.M, opts ...goleak.Option) {
	process.Main()
	// os/exec and os.Pipe start the runtime's poller, which keeps its
	// descriptors for the life of the process; start it before counting.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	fdsBefore := openFDs()
	code := m.Run()
	process.StopSpares()
	if code == 0 {
		code = check(fdsBefore, opts)
	}
	os.Exit(code)
}

func check(fdsBefore int, opts []goleak.Option) int {
	code := 0
	left, _ := filepath.Glob(filepath.Join(shm.DefaultDir, Prefix()+"*"))
	tmp, _ := filepath.Glob(filepath.Join(shm.DefaultDir, fmt.Sprintf(".shmkit-tmp-%d-*", os.Getpid())))
	for _, p := range append(left, tmp...) {
		fmt.Fprintf(os.Stderr, "shmtest: test left segment %s\n", p)
		os.Remove(p)
		code = 1
	}
	if kids := children(); len(kids) > 0 {
		fmt.Fprintf(os.Stderr, "shmtest: tests left child processes running: %v\n", kids)
		code = 1
	}
	if err := goleak.Find(opts...); err != nil {
		fmt.Fprintf(os.Stderr, "shmtest: goroutines leaked: %v\n", err)
		code = 1
	}
	if after := openFDs(); after > fdsBefore {
		fmt.Fprintf(os.Stderr, "shmtest: %d file descriptors leaked (%d before the tests, %d after): %s\n",
			after-fdsBefore, fdsBefore, after, describeFDs())
		code = 1
	}
	return code
}

func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents) - 1 // the directory's own descriptor
}

func describeFDs() string {
	ents, _ := os.ReadDir("/proc/self/fd")
	var b strings.Builder
	for _, e := range ents {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		fmt.Fprintf(&b, "%s->%s ", e.Name(), target)
	}
	return b.String()
}

// children returns the pids of this process's children.
func children() []int {
	ents, _ := os.ReadDir("/proc")
	var kids []int
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		if ppid, err := proc.Parent(pid); err == nil && ppid == os.Getpid() {
			kids = append(kids, pid)
		}
	}
	return kids
}
