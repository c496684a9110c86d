package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/shmkit/shmkit/shm"
)

// envWorker marks a process started as a worker; its value is the
// descriptor of the control socket.
const envWorker = "SHMKIT_WORKER"

// controlFD is where a worker finds its control socket (the first of
// exec.Cmd.ExtraFiles).
const controlFD = 3

var mainCalled atomic.Bool

func isWorker() bool {
	_, ok := os.LookupEnv(envWorker)
	return ok
}

// Main runs the registered function when this process is a worker, and
// then exits; otherwise it returns at once. Call it first in main, and in
// TestMain for tests that start workers.
func Main() {
	mainCalled.Store(true)
	if !isWorker() {
		return
	}
	os.Unsetenv(envWorker)
	os.Exit(runWorker())
}

// Info describes the current process.
type Info struct {
	Name      string // the worker's name, or "main" outside workers
	Pid       int
	ParentPid int
	Worker    bool
}

// The worker's own state, set by runWorker before the function runs and
// not changed afterwards.
var self struct {
	info  Info
	files []*os.File
	segs  []*os.File

	segsOnce   sync.Once
	segments   []*shm.Segment
	segmentErr error
}

// Current describes the calling process: in a worker, its name, pid and
// parent's pid.
func Current() Info {
	if self.info.Worker {
		return self.info
	}
	return Info{Name: "main", Pid: os.Getpid(), ParentPid: os.Getppid()}
}

// InheritedFiles returns, in a worker, the files the parent passed with the
// Files option. The worker owns them.
func InheritedFiles() []*os.File { return self.files }

// InheritedSegments maps, in a worker, the segments the parent passed with
// the Segments option, in order. The segments are mapped once, shared by
// every call, and closed when the worker's function returns.
func InheritedSegments() ([]*shm.Segment, error) {
	self.segsOnce.Do(func() {
		for _, f := range self.segs {
			s, err := shm.FromFile(f)
			if err != nil {
				self.segmentErr = errors.Join(self.segmentErr, err)
				continue
			}
			self.segments = append(self.segments, s)
		}
	})
	return self.segments, self.segmentErr
}

// call runs the function, turning a panic into an outcome.
func call(ctx context.Context, name string, arg []byte) (out outcome) {
	f := lookup(name)
	if f == nil {
		return outcome{Err: fmt.Sprintf("process: function %q is not registered in this program", name)}
	}
	defer func() {
		if r := recover(); r != nil {
			out = outcome{Panic: fmt.Sprintf("%v\n\n%s", r, debug.Stack())}
		}
	}()
	v, err := f(ctx, arg)
	if err != nil {
		return outcome{Err: err.Error()}
	}
	return outcome{Value: v}
}
