//go:build linux

package process_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/internal/proc"
	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/shm"
)

func TestMain(m *testing.M) { shmtest.Main(m) }

type point struct {
	X, Y  int
	Label string
	Tags  []string
}

var (
	square = process.Register("test.square", func(ctx context.Context, n int) (int, error) {
		return n * n, nil
	})
	mirror = process.Register("test.mirror", func(ctx context.Context, p point) (point, error) {
		p.X, p.Y = p.Y, p.X
		p.Tags = append(p.Tags, "mirrored")
		return p, nil
	})
	fail = process.Register("test.fail", func(ctx context.Context, msg string) (int, error) {
		return 0, errors.New(msg)
	})
	panicky = process.Register("test.panic", func(ctx context.Context, msg string) (int, error) {
		panic(msg)
	})
	exit = process.Register("test.exit", func(ctx context.Context, code int) (int, error) {
		os.Exit(code)
		return 0, nil
	})
	sleeper = process.Register("test.sleep", func(ctx context.Context, d time.Duration) (int, error) {
		time.Sleep(d)
		return 0, nil
	})
	whoami = process.Register("test.whoami", func(ctx context.Context, env string) ([]string, error) {
		info := process.Current()
		dir, _ := os.Getwd()
		return []string{info.Name, strconv.Itoa(info.Pid), strconv.Itoa(info.ParentPid),
			strconv.FormatBool(info.Worker), os.Getenv(env), dir}, nil
	})
	// writeAndShare writes msg to the first inherited file and sets the
	// first byte of object "b" in the first inherited segment.
	writeAndShare = process.Register("test.files", func(ctx context.Context, msg string) (int, error) {
		files := process.InheritedFiles()
		if len(files) != 1 {
			return 0, fmt.Errorf("got %d files, want 1", len(files))
		}
		if _, err := files[0].WriteString(msg); err != nil {
			return 0, err
		}
		files[0].Close()
		segs, err := process.InheritedSegments()
		if err != nil || len(segs) != 1 {
			return 0, fmt.Errorf("segments %v, %v", segs, err)
		}
		o, err := segs[0].Lookup("b")
		if err != nil {
			return 0, err
		}
		o.Bytes[0] = 99
		return len(msg), nil
	})
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestStartJoinResult(t *testing.T) {
	p, err := square.Start(7)
	if err != nil {
		t.Fatal(err)
	}
	if p.Pid() == os.Getpid() || p.Pid() <= 0 || !strings.HasPrefix(p.Name(), "test.square-") {
		t.Errorf("Pid %d, Name %q", p.Pid(), p.Name())
	}
	if err := p.Join(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	var r int
	if err := p.Result(&r); err != nil || r != 49 {
		t.Errorf("Result = %d, %v; want 49", r, err)
	}
	if code, exited := p.ExitCode(); code != 0 || !exited {
		t.Errorf("ExitCode = %d, %v; want 0, true", code, exited)
	}
	if p.IsAlive() {
		t.Error("IsAlive after Join")
	}
}

func TestRunStructs(t *testing.T) {
	in := point{X: 1, Y: 2, Label: "p", Tags: []string{"a"}}
	got, err := mirror.Run(ctxT(t), in)
	if err != nil {
		t.Fatal(err)
	}
	want := point{X: 2, Y: 1, Label: "p", Tags: []string{"a", "mirrored"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Run = %+v, want %+v", got, want)
	}
}

func TestFailures(t *testing.T) {
	tests := []struct {
		name  string
		start func() (*process.Process, error)
		code  int
		check func(*process.ExitError) bool
	}{
		{"error", func() (*process.Process, error) { return fail.Start("it broke") }, 1,
			func(e *process.ExitError) bool { return e.Err == "it broke" }},
		{"panic", func() (*process.Process, error) { return panicky.Start("oh no") }, 2,
			func(e *process.ExitError) bool {
				return strings.HasPrefix(e.Panic, "oh no") && strings.Contains(e.Error(), "panicked: oh no")
			}},
		{"exit", func() (*process.Process, error) { return exit.Start(5) }, 5,
			func(e *process.ExitError) bool { return e.Err == "" && strings.Contains(e.Error(), "status 5") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.start()
			if err != nil {
				t.Fatal(err)
			}
			err = p.Join(ctxT(t))
			var ee *process.ExitError
			if !errors.As(err, &ee) || ee.Code != tt.code || ee.Pid != p.Pid() || !tt.check(ee) {
				t.Fatalf("Join = %#v, want ExitError with code %d", err, tt.code)
			}
			if code, _ := p.ExitCode(); code != tt.code {
				t.Errorf("ExitCode = %d, want %d", code, tt.code)
			}
			var r int
			if err := p.Result(&r); !errors.As(err, &ee) {
				t.Errorf("Result = %v, want the ExitError", err)
			}
		})
	}
}

func TestSignals(t *testing.T) {
	for _, tt := range []struct {
		name string
		send func(*process.Process) error
		sig  syscall.Signal
	}{
		{"kill", (*process.Process).Kill, syscall.SIGKILL},
		{"terminate", (*process.Process).Terminate, syscall.SIGTERM},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := sleeper.Start(time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.send(p); err != nil {
				t.Fatal(err)
			}
			err = p.Join(ctxT(t))
			var ee *process.ExitError
			if !errors.As(err, &ee) || ee.Code != -int(tt.sig) || !strings.Contains(err.Error(), "killed by signal") {
				t.Fatalf("Join = %v, want killed by signal %d", err, tt.sig)
			}
			if code, exited := p.ExitCode(); code != -int(tt.sig) || !exited {
				t.Errorf("ExitCode = %d, %v; want %d, true", code, exited, -int(tt.sig))
			}
			if err := tt.send(p); err != nil {
				t.Errorf("signal after exit = %v, want nil", err)
			}
		})
	}
}

func TestJoinTimeout(t *testing.T) {
	p, err := sleeper.Start(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { p.Kill(); p.Join(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.Join(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Join = %v, want DeadlineExceeded", err)
	}
	if !p.IsAlive() {
		t.Error("IsAlive = false for a sleeping worker")
	}
	if code, exited := p.ExitCode(); exited {
		t.Errorf("ExitCode = %d, true for a running worker", code)
	}
	var r int
	if err := p.Result(&r); !errors.Is(err, process.ErrRunning) {
		t.Errorf("Result = %v, want ErrRunning", err)
	}
}

func TestWorkerSeesNameEnvAndDir(t *testing.T) {
	// Start once so that a spare exists before the environment changes:
	// the worker must still see the environment as of its own Start.
	if _, err := square.Run(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SHMKIT_TEST_VAR", "hello")
	dir := t.TempDir()
	t.Chdir(dir)
	p, err := whoami.Start("SHMKIT_TEST_VAR", process.Name("worker-x"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Join(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := p.Result(&got); err != nil {
		t.Fatal(err)
	}
	want := []string{"worker-x", strconv.Itoa(p.Pid()), strconv.Itoa(os.Getpid()), "true", "hello", dir}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("worker saw %q, want %q", got, want)
	}
	if c := process.Current(); c.Worker || c.Name != "main" || c.Pid != os.Getpid() {
		t.Errorf("Current() in the parent = %+v", c)
	}
}

func TestFilesAndSegments(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	seg, err := shm.CreateAnonymous(4096)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	obj, err := seg.Alloc(shm.ObjectSpec{Name: "b", Kind: "bytes", Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	p, err := writeAndShare.Start("through the pipe", process.Files(w), process.Segments(seg))
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Join(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(r).ReadString('\n')
	if line != "through the pipe" {
		t.Errorf("pipe carried %q", line)
	}
	if obj.Bytes[0] != 99 {
		t.Errorf("segment byte = %d, want 99 written by the worker", obj.Bytes[0])
	}
}

var (
	// parentOfDaemon starts a daemon (or plain) grandchild running
	// reportAndWait, passes on the write end of the pipe it was given, and
	// waits to be killed.
	parentOfDaemon = process.Register("test.parentOfDaemon", func(ctx context.Context, daemon bool) (int, error) {
		opts := []process.Option{process.Files(process.InheritedFiles()...)}
		if daemon {
			opts = append(opts, process.Daemon())
		}
		if _, err := reportAndWait.Start(0, opts...); err != nil {
			return 0, err
		}
		select {}
	})
	// reportAndWait writes its pid to the inherited pipe and waits for its
	// context to end, then writes "cancelled".
	reportAndWait = process.Register("test.reportAndWait", func(ctx context.Context, _ int) (int, error) {
		f := process.InheritedFiles()[0]
		fmt.Fprintf(f, "%d\n", os.Getpid())
		<-ctx.Done()
		fmt.Fprintf(f, "cancelled\n")
		return 0, nil
	})
)

// pidfdWait waits until pid exits, via a pidfd, which cannot be confused
// by pid reuse.
func pidfdWait(t *testing.T, pid int, within time.Duration) {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, int(within.Milliseconds()))
	for errors.Is(err, unix.EINTR) {
		n, err = unix.Poll(fds, int(within.Milliseconds()))
	}
	if n != 1 {
		t.Fatalf("process %d still alive %v after its parent was killed (poll: %d, %v)", pid, within, n, err)
	}
}

func TestDaemonDiesWithParent(t *testing.T) {
	for _, daemon := range []bool{true, false} {
		t.Run(fmt.Sprintf("daemon=%v", daemon), func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			mid, err := parentOfDaemon.Start(daemon, process.Files(w))
			w.Close()
			if err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(r)
			line, err := br.ReadString('\n')
			if err != nil {
				mid.Kill()
				mid.Join(context.Background())
				t.Fatalf("reading grandchild pid: %v", err)
			}
			grandchild, _ := strconv.Atoi(strings.TrimSpace(line))
			if err := mid.Kill(); err != nil {
				t.Fatal(err)
			}
			mid.Join(ctxT(t))
			if daemon {
				pidfdWait(t, grandchild, 10*time.Second)
				return
			}
			// A plain worker survives its parent; its context is
			// cancelled, and this one then exits.
			line, err = br.ReadString('\n')
			if line != "cancelled\n" {
				t.Fatalf("orphaned worker wrote %q, %v; want cancelled", line, err)
			}
			pidfdWait(t, grandchild, 10*time.Second)
		})
	}
}

// TestWaitingDoesNotHoldThreads starts many long-running workers: the
// goroutines waiting for them must not each hold an OS thread.
func TestWaitingDoesNotHoldThreads(t *testing.T) {
	const n = 40
	before := threads(t)
	ps := make([]*process.Process, n)
	for i := range ps {
		p, err := sleeper.Start(time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		ps[i] = p
	}
	time.Sleep(100 * time.Millisecond) // let the waiters block
	during := threads(t)
	for _, p := range ps {
		p.Kill()
	}
	for _, p := range ps {
		p.Join(ctxT(t))
	}
	if during-before > n/4 {
		t.Errorf("threads went from %d to %d while waiting for %d workers", before, during, n)
	}
}

func threads(t *testing.T) int {
	n, err := proc.Threads(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestConcurrentStarts(t *testing.T) {
	const n = 9
	ps := make([]*process.Process, n)
	for i := range ps {
		p, err := square.Start(i)
		if err != nil {
			t.Fatal(err)
		}
		ps[i] = p
	}
	pids := map[int]bool{}
	for i, p := range ps {
		if err := p.Join(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		var r int
		if err := p.Result(&r); err != nil || r != i*i {
			t.Errorf("worker %d: %d, %v", i, r, err)
		}
		pids[p.Pid()] = true
	}
	if len(pids) != n {
		t.Errorf("%d distinct pids for %d workers", len(pids), n)
	}
}

func TestRunCancelKills(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := sleeper.Run(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run = %v, want DeadlineExceeded", err)
	}
}

// TestBadFileDoesNotHang passes a closed file to a ready spare: Start must
// fail, not wait for ever on a spare that is alive and well.
func TestBadFileDoesNotHang(t *testing.T) {
	if err := process.Prestart(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(t.TempDir(), "closed")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	done := make(chan error, 1)
	go func() {
		p, err := square.Start(2, process.Files(f))
		if err == nil {
			p.Join(context.Background())
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Start with a closed file succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Start with a closed file hung")
	}
}

// TestPassedFileKeepsDeadlines: passing a file must not change the
// caller's copy (File.Fd would switch it to blocking mode, where
// deadlines no longer work).
func TestPassedFileKeepsDeadlines(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if _, err := square.Run(ctxT(t), 3, process.Files(r, w)); err != nil {
		t.Fatal(err)
	}
	if err := r.SetReadDeadline(time.Now().Add(10 * time.Millisecond)); err != nil {
		t.Fatalf("SetReadDeadline on a passed file: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 1)) // nothing was written
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Read past the deadline = %v, want ErrDeadlineExceeded", err)
		}
	case <-time.After(5 * time.Second):
		w.Close() // ends the stuck read
		t.Error("Read ignored its deadline: passing the file made it blocking")
	}
}

var printer = process.Register("test.print", func(ctx context.Context, msg string) (int, error) {
	fmt.Println(msg)
	fmt.Fprintln(os.Stderr, msg)
	return 0, nil
})

// TestStdioAtStart checks that a worker writes to the standard output and
// error the parent has when Start is called, and that no worker (a spare
// booted meanwhile included) holds them afterwards: Go's example tests swap
// os.Stdout for a pipe and read it to the end.
func TestStdioAtStart(t *testing.T) {
	ctx := ctxT(t)
	// Boot a spare while the real stdout is in place.
	if err := process.Prestart(ctx); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		outR, outW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		errR, errW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, stderr := os.Stdout, os.Stderr
		os.Stdout, os.Stderr = outW, errW
		msg := fmt.Sprintf("round %d", round)
		_, err = printer.Run(ctx, msg)
		os.Stdout, os.Stderr = stdout, stderr
		outW.Close()
		errW.Close()
		if err != nil {
			t.Fatal(err)
		}
		for name, r := range map[string]*os.File{"stdout": outR, "stderr": errR} {
			r.SetReadDeadline(time.Now().Add(10 * time.Second))
			b, err := io.ReadAll(r)
			if err != nil {
				t.Errorf("round %d: reading the worker's %s to its end: %v (a worker still holds it)", round, name, err)
			}
			if got := string(b); got != msg+"\n" {
				t.Errorf("round %d: worker's %s = %q, want %q", round, name, got, msg+"\n")
			}
			r.Close()
		}
	}
}
