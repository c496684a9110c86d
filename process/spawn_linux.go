//go:build linux

package process

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// worker is a started worker process and the parent's end of its control
// socket.
type worker struct {
	cmd    *exec.Cmd
	conn   *net.UnixConn
	daemon bool
	ready  bool // its ready frame has been read
}

// awaitReady reads the worker's ready frame, if that has not been done.
func (w *worker) awaitReady() error {
	if w.ready {
		return nil
	}
	b, _, err := readFrame(w.conn, 0)
	if err == nil && len(b) != 0 {
		err = errors.New("process: worker sent a result before it was ready")
	}
	w.ready = err == nil
	return err
}

// readOutcome reads the frame in which the worker reports its outcome.
func (w *worker) readOutcome() ([]byte, error) {
	if err := w.awaitReady(); err != nil {
		return nil, err
	}
	b, _, err := readFrame(w.conn, 0)
	return b, err
}

// awaitExit returns once the worker has exited, leaving it to be reaped,
// and reports true; it waits on a pidfd through the runtime's poller, so a
// goroutine waiting for a long-running worker does not hold an OS thread.
// Where pidfds are not available (kernels before 5.3, some seccomp
// profiles) it returns false at once without waiting.
func (w *worker) awaitExit() bool {
	fd, err := unix.PidfdOpen(w.pid(), unix.PIDFD_NONBLOCK)
	if err != nil {
		return false
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	rc.Read(func(fd uintptr) bool {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		return err != nil || info.Signo != 0 // exited (or cannot tell): stop waiting
	})
	return true
}

func (w *worker) pid() int { return w.cmd.Process.Pid }

func (w *worker) signal(sig os.Signal) error { return w.cmd.Process.Signal(sig) }

// spawner starts workers and keeps spares. It is process-wide state, like
// the runtime's own thread pool: the spares and the thread that daemons are
// started from belong to the process, not to any caller.
var spawner = newSpawner()

type spawnerState struct {
	mu       sync.Mutex
	started  sync.Cond    // signalled, with mu, when a background start ends
	idle     [2][]*worker // by kind: [0] plain, [1] daemon
	starting [2]int       // spares being started in the background
	daemons  int          // daemon workers alive, spares included
	thread   chan func()  // work for the locked thread; nil when it is not running
}

func newSpawner() *spawnerState {
	s := &spawnerState{}
	s.started.L = &s.mu
	return s
}

// spares is how many idle workers of each kind to keep; SHMKIT_SPARES
// overrides the default of one.
var spares = sync.OnceValue(func() int {
	if n, err := strconv.Atoi(os.Getenv("SHMKIT_SPARES")); err == nil && n >= 0 {
		return min(n, 16)
	}
	return 1
})

func kind(daemon bool) int {
	if daemon {
		return 1
	}
	return 0
}

// handOff gives the job to an idle spare, or to a new worker named name.
// A spare that turns out to have died while idle is replaced; any other
// failure to hand the job over (a file that cannot be passed, say) is the
// caller's, and the worker that could not take the job is killed. Giving
// the job to the replacement cannot run it twice: writeFrame fails only
// when the spare did not get the whole job.
func (s *spawnerState) handOff(name string, daemon bool, payload []byte, files []*os.File) (*worker, error) {
	if w := s.takeIdle(daemon); w != nil {
		err := writeFrame(w.conn, payload, files)
		if err == nil {
			return w, nil
		}
		s.discard(w)
		if !peerGone(err) {
			return nil, fmt.Errorf("process: hand job to worker: %w", err)
		}
	}
	w, err := s.start(daemon)
	if err != nil {
		return nil, err
	}
	if err := writeFrame(w.conn, payload, files); err != nil {
		if ee := s.discardEarly(w, name); ee != nil && peerGone(err) {
			return nil, ee
		}
		return nil, fmt.Errorf("process: hand job to worker: %w", err)
	}
	return w, nil
}

// peerGone reports whether err is a write's to a socket whose peer has
// closed its end.
func peerGone(err error) bool {
	return errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET)
}

// discard kills a worker that will not run a job, reaps it and returns
// its exit status, which is its own if it had exited already.
func (s *spawnerState) discard(w *worker) int {
	w.cmd.Process.Kill()
	return s.reap(w)
}

// discardEarly discards w, which has not taken a job, and returns the
// *ExitError that reports it if it had exited by itself: then it did not
// reach Main, which would have waited for the job. It returns nil if w was
// still running.
func (s *spawnerState) discardEarly(w *worker, name string) *ExitError {
	pid := w.pid()
	if code := s.discard(w); code >= 0 {
		return &ExitError{Name: name, Pid: pid, Code: code, early: true}
	}
	return nil
}

// replenish starts a spare in the background if the kind has none. It runs
// when a worker has been reaped, not when one is handed a job: a spare's
// start-up takes several milliseconds of CPU, which would otherwise be taken
// from the worker that was just started.
func (s *spawnerState) replenish(daemon bool) {
	k := kind(daemon)
	s.mu.Lock()
	if len(s.idle[k])+s.starting[k] >= spares() {
		s.mu.Unlock()
		return
	}
	s.starting[k]++
	s.mu.Unlock()
	go func() {
		w, err := s.start(daemon)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.starting[k]--
		if err == nil {
			s.idle[k] = append(s.idle[k], w)
		}
		s.started.Broadcast()
	}()
}

// start starts a worker process that waits for its job on the control
// socket. In a worker whose program did not call Main, and so runs the
// program's main, it returns ErrNoMain instead of starting workers
// without end.
func (s *spawnerState) start(daemon bool) (*worker, error) {
	if isWorker() && !mainCalled.Load() {
		return nil, ErrNoMain
	}
	parentEnd, childEnd, err := socketPair()
	if err != nil {
		return nil, err
	}
	defer parentEnd.Close()
	defer childEnd.Close()

	// /proc/self/exe names the running binary even if its file has been
	// replaced or removed since it started.
	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{os.Args[0]},
		Env:        append(os.Environ(), envWorker+"="+strconv.Itoa(controlFD)),
		ExtraFiles: []*os.File{childEnd}, // standard output and error come with the job

	}
	if daemon {
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		err = s.onLockedThread(cmd.Start)
	} else {
		err = cmd.Start()
	}
	if err != nil {
		return nil, fmt.Errorf("process: start worker: %w", err)
	}
	fc, err := net.FileConn(parentEnd)
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		if daemon {
			s.daemonGone()
		}
		return nil, fmt.Errorf("process: control socket: %w", err)
	}
	return &worker{cmd: cmd, conn: fc.(*net.UnixConn), daemon: daemon}, nil
}

// socketPair returns the two ends of a new Unix stream socket, both
// close-on-exec.
func socketPair() (*os.File, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("process: socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "shmkit-control"), os.NewFile(uintptr(fds[1]), "shmkit-control"), nil
}

// onLockedThread runs start, which starts a daemon, on the thread that
// daemons are started from. The parent-death signal fires when the thread
// that started a child exits, not when the process does, and the Go runtime
// ends threads that locked goroutines leave; so daemons are started by one
// goroutine locked to its thread for as long as any daemon lives.
func (s *spawnerState) onLockedThread(start func() error) error {
	s.mu.Lock()
	if s.thread == nil {
		s.thread = make(chan func())
		go lockedThread(s.thread)
	}
	s.daemons++
	ch := s.thread
	s.mu.Unlock()
	done := make(chan error, 1)
	ch <- func() { done <- start() }
	err := <-done
	if err != nil {
		s.daemonGone()
	}
	return err
}

func lockedThread(work chan func()) {
	runtime.LockOSThread()
	for f := range work {
		f()
	}
	// No daemon is left to be signalled when this thread ends.
	runtime.UnlockOSThread()
}

func (s *spawnerState) daemonGone() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.daemons--
	if s.daemons == 0 && s.thread != nil {
		close(s.thread)
		s.thread = nil
	}
}

// reap waits for w to exit, closes its control socket and returns its exit
// status, or -N when signal N killed it.
func (s *spawnerState) reap(w *worker) int {
	code := 0
	if err := w.cmd.Wait(); err != nil {
		code = -1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				code = -int(ws.Signal())
			} else {
				code = ee.ExitCode()
			}
		}
	}
	w.conn.Close()
	if w.daemon {
		s.daemonGone()
	}
	return code
}

// finished reaps a worker that ran a job and replaces it with a spare.
func (s *spawnerState) finished(w *worker) int {
	code := s.reap(w)
	s.replenish(w.daemon)
	return code
}

// Prestart makes sure that a spare worker of the kind the options select
// (Daemon or not) is idle and ready, starting one if needed and waiting
// for it as long as ctx allows, so that the next Start of that kind runs
// its function at once. It does nothing when spares are disabled. A spare
// that exits before it is ready, because the program does not call Main
// first, is reported by an *ExitError that matches ErrNoMain.
func Prestart(ctx context.Context, opts ...Option) error {
	var c config
	for _, opt := range opts {
		opt(&c)
	}
	return spawner.prestart(ctx, c.daemon)
}

func (s *spawnerState) prestart(ctx context.Context, daemon bool) error {
	if spares() == 0 {
		return nil
	}
	w := s.takeIdle(daemon)
	if w == nil {
		var err error
		if w, err = s.start(daemon); err != nil {
			return err
		}
	}
	stop := context.AfterFunc(ctx, func() { w.conn.SetReadDeadline(time.Unix(1, 0)) })
	err := w.awaitReady()
	if !stop() {
		err = ctx.Err()
	}
	if err != nil {
		if ee := s.discardEarly(w, "spare"); ee != nil && ctx.Err() == nil {
			return ee
		}
		return err
	}
	s.mu.Lock()
	s.idle[kind(daemon)] = append(s.idle[kind(daemon)], w)
	s.mu.Unlock()
	return nil
}

// takeIdle removes an idle spare of the kind from the pool and returns it,
// or nil when there is none.
func (s *spawnerState) takeIdle(daemon bool) *worker {
	k := kind(daemon)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.idle[k])
	if n == 0 {
		return nil
	}
	w := s.idle[k][n-1]
	s.idle[k] = s.idle[k][:n-1]
	return w
}

// StopSpares ends the idle spare workers and waits for them to exit. Later
// Starts start new ones.
func StopSpares() {
	spawner.mu.Lock()
	for spawner.starting[0]+spawner.starting[1] > 0 {
		spawner.started.Wait()
	}
	idle := append(spawner.idle[0], spawner.idle[1]...)
	spawner.idle = [2][]*worker{}
	spawner.mu.Unlock()
	for _, w := range idle {
		w.conn.Close() // the spare reads end of file instead of a job, and exits
		spawner.reap(w)
	}
}
