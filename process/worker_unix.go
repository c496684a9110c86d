//go:build unix

package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// runWorker receives a job on the control socket, runs it and reports the
// outcome; its result is the exit status.
func runWorker() int {
	syscall.CloseOnExec(controlFD) // the worker's own children must not hold it
	f := os.NewFile(controlFD, "shmkit-control")
	fc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "process: worker control socket: %v\n", err)
		return 3
	}
	conn := fc.(*net.UnixConn)
	rehearse()
	writeFrame(conn, nil, nil) // ready: see Prestart
	payload, files, err := readFrame(conn, maxFiles+2)
	if err != nil {
		// A spare whose parent no longer needs it: the parent closed its
		// end, or exited, and the kernel reports a reset rather than end
		// of file when the spare's ready frame was still unread.
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "process: worker: read job: %v\n", err)
		return 3
	}
	var j job
	err = wire.Unmarshal(payload, &j)
	stdio := 0
	if j.Stdio {
		stdio = 2
	}
	if err != nil || j.NFiles+j.NSegments+stdio != len(files) {
		fmt.Fprintf(os.Stderr, "process: worker: bad job (%v)\n", err)
		return 3
	}
	if stdio > 0 {
		if err := takeStdio(files[len(files)-2:]); err != nil {
			fmt.Fprintf(os.Stderr, "process: worker: standard output and error: %v\n", err)
			return 3
		}
		files = files[:len(files)-2]
	}
	setEnv(j.Env)
	if err := os.Chdir(j.Dir); err != nil {
		fmt.Fprintf(os.Stderr, "process: worker: %v\n", err)
	}
	self.info = Info{Name: j.Name, Pid: os.Getpid(), ParentPid: os.Getppid(), Worker: true}
	self.files, self.segs = files[:j.NFiles], files[j.NFiles:]

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var finished atomic.Bool
	go watchParent(conn, j.Daemon, &finished, cancel)

	out := call(ctx, j.Func, j.Arg)
	for _, s := range self.segments {
		s.Close()
	}
	finished.Store(true)
	out.Err, out.Panic = clip(out.Err), clip(out.Panic)
	b, err := wire.EncMode().Marshal(out)
	if err == nil {
		err = writeFrame(conn, b, nil)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "process: worker %s: report result: %v\n", j.Name, err)
	}
	switch {
	case out.Panic != "":
		return 2
	case out.Err != "":
		return 1
	}
	return 0
}

// clip shortens an error or panic text to maxValue bytes, so that the
// outcome fits in a frame.
func clip(s string) string {
	if len(s) <= maxValue {
		return s
	}
	const cut = "\n... (cut)"
	n := maxValue - len(cut)
	for n > 0 && !utf8.RuneStart(s[n]) { // not inside a character
		n--
	}
	return s[:n] + cut
}

// watchParent waits for the parent's end of the control socket to close,
// which happens when the parent dies. A daemon then dies too; other
// workers have their context cancelled.
func watchParent(conn *net.UnixConn, daemon bool, finished *atomic.Bool, cancel context.CancelFunc) {
	var b [1]byte
	for {
		if _, err := conn.Read(b[:]); err != nil {
			break
		}
	}
	if finished.Load() {
		return
	}
	if daemon {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
	cancel()
}

// setEnv makes env the process environment, if it is not already.
func setEnv(env []string) {
	if slices.Equal(env, os.Environ()) {
		return
	}
	os.Clearenv()
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			os.Setenv(k, v)
		}
	}
}

// rehearse runs the path a job takes through a worker, on a private
// socket, before the real job arrives. A fresh process pays for every first
// time: codec caches built by reflection, heap pages touched, code paged
// in. On a spare that cost is paid while it waits, not after Start.
func rehearse() {
	a, b, err := socketPair()
	if err != nil {
		return
	}
	var conns [2]*net.UnixConn
	for i, f := range []*os.File{a, b} {
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			return
		}
		defer c.Close()
		conns[i] = c.(*net.UnixConn)
	}
	dir, _ := os.Getwd()
	msg, _ := wire.EncMode().Marshal(job{Func: "rehearsal", Env: os.Environ(), Dir: dir})
	go writeFrame(conns[0], msg, nil)
	if msg, _, err = readFrame(conns[1], maxFiles); err != nil {
		return
	}
	var j job
	wire.Unmarshal(msg, &j)
	setEnv(j.Env)
	registry.RLock()
	for _, warm := range registry.warmers {
		// A codec that panics on a zero value must not end the worker
		// before it is ready: that would read as a program without Main.
		// The job's own call reports the panic, if it recurs.
		func() {
			defer func() { recover() }()
			warm()
		}()
	}
	registry.RUnlock()
	msg, _ = wire.EncMode().Marshal(outcome{Value: msg})
	go writeFrame(conns[0], msg, nil)
	readFrame(conns[1], 0)
}

// takeStdio makes files[0] and files[1], sent with the job, the worker's
// standard output and error, and closes them.
func takeStdio(files []*os.File) error {
	var errs []error
	for i, f := range files {
		rc, err := f.SyscallConn()
		if err == nil {
			cerr := rc.Control(func(fd uintptr) { err = unix.Dup2(int(fd), 1+i) })
			err = errors.Join(err, cerr)
		}
		errs = append(errs, err, f.Close())
	}
	return errors.Join(errs...)
}
