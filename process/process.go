package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	// ErrNoMain reports a program that did not call Main first in main
	// (or in TestMain). Start and Prestart return it in a worker of such a
	// program, which runs the program's main instead of its job: without
	// this check it could start workers without end. In the parent, the
	// *ExitError of a worker that exited before it was ready for its job
	// (it never reached Main) matches it with errors.Is.
	ErrNoMain = errors.New("process: this program is a worker but did not call process.Main at the top of main")

	// ErrRunning reports a Result requested before the worker ended.
	ErrRunning = errors.New("process: worker still running")

	// ErrNotSupported reports a platform without worker processes.
	ErrNotSupported = errors.New("process: not supported on this platform")
)

// ExitError reports a worker that did not end well: its function returned
// an error or panicked, its result could not be sent, it exited with a
// non-zero status or without reporting a result, or a signal killed it.
type ExitError struct {
	Name  string
	Pid   int
	Code  int    // exit status, or -N when signal N killed it (as Python's exitcode)
	Err   string // the error the function returned, or why its result could not be sent
	Panic string // the panic value and stack, if the function panicked

	early bool // it exited, not killed, before it was ready for a job
}

func (e *ExitError) Error() string {
	who := fmt.Sprintf("process %s (pid %d)", e.Name, e.Pid)
	switch {
	case e.Panic != "":
		first, _, _ := strings.Cut(e.Panic, "\n")
		return who + " panicked: " + first
	case e.Err != "":
		return who + ": " + e.Err
	case e.Code < 0:
		return fmt.Sprintf("%s killed by signal %d (%v)", who, -e.Code, syscall.Signal(-e.Code))
	case e.early:
		return fmt.Sprintf("%s exited with status %d before it was ready for a job: "+
			"its program did not reach process.Main, which must be called first in main (and in TestMain)", who, e.Code)
	default:
		return fmt.Sprintf("%s exited with status %d without reporting a result", who, e.Code)
	}
}

// Unwrap returns ErrNoMain for a worker that exited before it was ready for
// a job, and nil otherwise.
func (e *ExitError) Unwrap() error {
	if e.early {
		return ErrNoMain
	}
	return nil
}

// Process is a started worker. Its methods may be called from any goroutine.
type Process struct {
	name string
	pid  int
	w    *worker
	done chan struct{}

	// Set before done is closed.
	code   int
	err    error // nil or *ExitError
	result []byte
}

var workerSeq atomic.Int64

func start(fn string, arg []byte, opts []Option) (*Process, error) {
	var c config
	for _, opt := range opts {
		opt(&c)
	}
	if c.name == "" {
		c.name = fmt.Sprintf("%s-%d", fn, workerSeq.Add(1))
	}
	files := append([]*os.File(nil), c.files...)
	for _, s := range c.segs {
		f, err := s.File()
		if err != nil {
			return nil, fmt.Errorf("process: pass %s: %w", s, err)
		}
		defer f.Close()
		files = append(files, f)
	}
	dir, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("process: %w", err)
	}
	// Standard output and error travel with the job rather than being
	// inherited when the worker boots: a spare booted earlier would
	// otherwise write to (and hold open) whatever they were then.
	files = append(files, os.Stdout, os.Stderr)
	payload, err := wire.EncMode().Marshal(job{Func: fn, Name: c.name, Arg: arg, Env: os.Environ(), Dir: dir,
		Daemon: c.daemon, NFiles: len(c.files), NSegments: len(c.segs), Stdio: true})
	if err != nil {
		return nil, fmt.Errorf("process: encode job: %w", err)
	}
	if len(payload) > maxFrame {
		return nil, fmt.Errorf("process: job for %s too large: %d bytes with the environment, at most %d", fn, len(payload), maxFrame)
	}
	if len(files) > maxFiles+2 {
		return nil, fmt.Errorf("process: %d files and segments passed, at most %d", len(files)-2, maxFiles)
	}
	w, err := spawner.handOff(c.name, c.daemon, payload, files)
	if err != nil {
		return nil, err
	}
	p := &Process{name: c.name, pid: w.pid(), w: w, done: make(chan struct{})}
	go p.wait()
	return p, nil
}

// maxFiles bounds the descriptors one Start passes.
const maxFiles = 64

// wait collects the worker's outcome and exit status. The outcome is read
// as it arrives, so that a large one cannot block the worker's write, but
// the worker is reaped as soon as it exits: the parent wakes once, at the
// exit, on the common path.
func (p *Process) wait() {
	var out outcome
	reported := make(chan bool, 1)
	go func() {
		payload, err := p.w.readOutcome()
		reported <- err == nil && wire.Unmarshal(payload, &out) == nil
	}()
	if p.w.awaitExit() {
		// The worker has exited, so its outcome, if it sent one, is in
		// the socket already; only a descendant holding a copy of the
		// worker's end could keep the read from ending.
		p.w.conn.SetReadDeadline(time.Now().Add(time.Second))
	}
	// Without a pidfd the read itself waits for the worker's exit.
	ok := <-reported
	p.code = spawner.finished(p.w)
	switch {
	case ok && out.Err == "" && out.Panic == "" && p.code == 0:
		p.result = out.Value
	case ok:
		p.err = &ExitError{Name: p.name, Pid: p.pid, Code: p.code, Err: out.Err, Panic: out.Panic}
	default:
		// A worker that exits before its ready frame never reached Main.
		p.err = &ExitError{Name: p.name, Pid: p.pid, Code: p.code, early: !p.w.ready && p.code >= 0}
	}
	close(p.done)
}

// Pid returns the worker's process id.
func (p *Process) Pid() int { return p.pid }

// Name returns the worker's name.
func (p *Process) Name() string { return p.name }

// Done returns a channel that is closed once the worker has exited and been
// reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Join waits for the worker to exit, or for ctx to end, in which case it
// returns ctx.Err() and the worker runs on. It returns nil when the worker's
// function returned nil and the worker exited normally, and an *ExitError
// otherwise.
func (p *Process) Join(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// IsAlive reports whether the worker has not yet been seen to exit.
func (p *Process) IsAlive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// ExitCode returns the worker's exit status, or -N when signal N killed it,
// and whether it has exited; it returns (0, false) while it runs.
func (p *Process) ExitCode() (code int, exited bool) {
	select {
	case <-p.done:
		return p.code, true
	default:
		return 0, false
	}
}

// Result decodes the worker's result into v, which must be a pointer to the
// function's result type. It returns ErrRunning while the worker runs, and
// the *ExitError when it failed.
func (p *Process) Result(v any) error {
	select {
	case <-p.done:
	default:
		return ErrRunning
	}
	if p.err != nil {
		return p.err
	}
	if err := wire.Unmarshal(p.result, v); err != nil {
		return fmt.Errorf("process: decode result of %s: %w", p.name, err)
	}
	return nil
}

// Terminate sends the worker SIGTERM, which ends it unless it handles the
// signal. It does nothing if the worker has already exited.
func (p *Process) Terminate() error { return p.Signal(syscall.SIGTERM) }

// Kill sends the worker SIGKILL. It does nothing if the worker has already
// exited.
func (p *Process) Kill() error { return p.Signal(syscall.SIGKILL) }

// Signal sends sig to the worker. It does nothing if the worker has already
// exited. The signal cannot reach another process that reused the pid.
func (p *Process) Signal(sig os.Signal) error {
	err := p.w.signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}
