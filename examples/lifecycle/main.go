// Lifecycle is the Go twin of the Process lifecycle walk-through in
// Python's multiprocessing documentation: start a process, watch it run,
// stop it, and read how it ended.
//
//	import multiprocessing, signal, time
//
//	if __name__ == "__main__":
//	    p = multiprocessing.Process(target=time.sleep, args=(60,))
//	    p.start()
//	    print("alive:", p.is_alive())     # True
//	    p.terminate()                     # SIGTERM
//	    p.join()
//	    print("alive:", p.is_alive())     # False
//	    print("exitcode:", p.exitcode)    # -15, that is -signal.SIGTERM
//
//	    q = multiprocessing.Process(target=time.sleep, args=(0,))
//	    q.start()
//	    q.join()
//	    print("exitcode:", q.exitcode)    # 0
//
//	    r = multiprocessing.Process(target=time.sleep, args=(60,))
//	    r.start()
//	    r.join(timeout=0.1)               # returns; r still runs
//	    print("join timed out:", r.is_alive())
//	    r.kill()                          # SIGKILL
//	    r.join()
//	    print("exitcode:", r.exitcode)    # -9
//
// The Go calls map one to one: Start, IsAlive, Terminate, Join, ExitCode,
// Kill. Two differences are worth knowing:
//
//   - Join takes a context instead of a timeout. When the context ends
//     first, Join returns ctx.Err() (context.DeadlineExceeded for a
//     timeout) and leaves the worker running, just as Python's join
//     returns quietly after its timeout.
//   - Join also reports how the worker ended: nil for a clean exit, and an
//     *process.ExitError otherwise. Being stopped by a signal is such an
//     ending, so after Terminate or Kill an ExitError is what we expect.
//     ExitCode follows Python's convention: the exit status, or -N when
//     signal N killed the worker.
//
// Run it from the repository root with:
//
//	go run ./examples/lifecycle
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/shmkit/shmkit/process"
)

// sleep runs in a worker: it waits for d, or until its context ends. The
// context ends when the parent dies, so a worker left behind by a parent
// that failed half-way does not linger for the full minute.
var sleep = process.Register("lifecycle.sleep", func(ctx context.Context, d time.Duration) (struct{}, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	return struct{}{}, nil
})

func main() {
	process.Main() // must come first: in a worker, it runs sleep and exits

	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "lifecycle:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx := context.Background()

	// 1. Terminate a running worker with SIGTERM.
	p, err := sleep.Start(time.Minute, process.Name("sleeper"))
	if err != nil {
		return err
	}
	fmt.Printf("started %s, pid %d\n", p.Name(), p.Pid())
	fmt.Println("alive:", p.IsAlive())
	if err := p.Terminate(); err != nil {
		return err
	}
	if err := expectSignal(p.Join(ctx), syscall.SIGTERM); err != nil {
		return err
	}
	fmt.Println("alive:", p.IsAlive())
	printExitCode(p)

	// 2. A worker whose function returns nil exits with status 0.
	q, err := sleep.Start(0, process.Name("quick"))
	if err != nil {
		return err
	}
	if err := q.Join(ctx); err != nil {
		return err
	}
	printExitCode(q)

	// 3. Join with a timeout: give up waiting, and the worker runs on.
	r, err := sleep.Start(time.Minute, process.Name("stubborn"))
	if err != nil {
		return err
	}
	timeout, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	err = r.Join(timeout)
	cancel()
	fmt.Println("join timed out:", errors.Is(err, context.DeadlineExceeded))
	fmt.Println("alive:", r.IsAlive())

	// Then stop it for good with SIGKILL, which it cannot catch.
	if err := r.Kill(); err != nil {
		return err
	}
	if err := expectSignal(r.Join(ctx), syscall.SIGKILL); err != nil {
		return err
	}
	printExitCode(r)
	return nil
}

// expectSignal checks that err, returned by Join, reports that signal sig
// killed the worker, which is what we asked for.
func expectSignal(err error, sig syscall.Signal) error {
	var ee *process.ExitError
	if errors.As(err, &ee) && ee.Code == -int(sig) {
		return nil
	}
	return fmt.Errorf("join: got %v, want the worker killed by signal %d (%v)", err, int(sig), sig)
}

// printExitCode prints a joined worker's exit code, as Python's p.exitcode.
func printExitCode(p *process.Process) {
	code, exited := p.ExitCode()
	if !exited {
		fmt.Printf("exitcode: none (%s still running)\n", p.Name())
		return
	}
	fmt.Println("exitcode:", code)
}
