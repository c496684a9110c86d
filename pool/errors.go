package pool

import (
	"errors"
	"fmt"
)

// Errors of pools, for errors.Is.
var (
	// ErrClosed reports a call on a pool that was closed (Close) or
	// terminated (Terminate), and the tasks Terminate ended.
	ErrClosed = errors.New("pool: closed")

	// ErrWorkerDied reports a task whose worker process died while it ran
	// (killed, crashed or exited). The error is a *WorkerDiedError.
	ErrWorkerDied = errors.New("pool: worker died")

	// ErrTooLarge reports a task whose arguments take more than the
	// pool's MaxMessage once encoded, even alone.
	ErrTooLarge = errors.New("pool: task too large")
)

// WorkerDiedError reports the worker that died running a task. It matches
// ErrWorkerDied.
type WorkerDiedError struct {
	Pid  int
	Code int // exit status, or -N when signal N killed it (as process.ExitError)
}

func (e *WorkerDiedError) Error() string {
	if e.Code < 0 {
		return fmt.Sprintf("pool: worker %d died running the task, killed by signal %d", e.Pid, -e.Code)
	}
	return fmt.Sprintf("pool: worker %d died running the task, exit status %d", e.Pid, e.Code)
}

// Is reports whether target is ErrWorkerDied.
func (e *WorkerDiedError) Is(target error) bool { return target == ErrWorkerDied }

// TaskError reports a task whose function returned an error or panicked in
// a worker. The error crossed a process boundary, so only its text is left.
type TaskError struct {
	Func  string // the registered function
	Index int    // which argument of the call (0 for Apply and Submit)
	Err   string // what the function returned, or the panic's value
	Stack string // the worker's stack where it panicked; empty for an error
}

func (e *TaskError) Error() string {
	if e.Stack != "" {
		return fmt.Sprintf("pool: %s(argument %d) panicked: %s\n%s", e.Func, e.Index, e.Err, e.Stack)
	}
	return fmt.Sprintf("pool: %s(argument %d): %s", e.Func, e.Index, e.Err)
}

// Panicked reports whether the function panicked rather than returned an
// error.
func (e *TaskError) Panicked() bool { return e.Stack != "" }
