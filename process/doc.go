// Package process runs Go functions in worker processes: copies of the
// running binary, with the vocabulary of Python's multiprocessing.Process
// (start, join with a timeout, is-alive, exit code, terminate, kill, daemon).
//
// # Workers
//
// Go cannot fork a running program (the runtime's threads would not follow),
// so a worker is the program's own executable started again. Functions that
// workers run are registered by name during package initialisation, the same
// in every process because they run the same binary:
//
//	var square = process.Register("square", func(ctx context.Context, n int) (int, error) {
//		return n * n, nil
//	})
//
//	func main() {
//		process.Main() // in a worker, runs the function and exits; otherwise returns
//		p, err := square.Start(7)
//		...
//		err = p.Join(ctx)
//		var r int
//		err = p.Result(&r)
//	}
//
// Main must be the first statement of main (and of TestMain in tests that
// start workers). A worker never returns from Main: it runs its function and
// exits, with status 0 when the function returned nil, 1 when it returned an
// error, and 2 when it panicked. A worker whose program forgot to call Main
// runs the program's main instead, side effects included, and never takes
// its job: Join reports it by an *ExitError that matches ErrNoMain (and
// Prestart, for a spare), and Start in such a worker returns ErrNoMain
// instead of starting workers recursively.
//
// # Arguments and results
//
// The argument and the result travel CBOR-encoded over a socket private to
// the parent and the worker, so they may be any values that
// github.com/fxamacker/cbor/v2 encodes (numbers, strings, slices, maps and
// structs of those, pointers followed), within these limits:
//
//   - an argument's or a result's encoding takes at most 256 MiB; within
//     that, slices and maps may have any number of elements;
//   - a value nests at most 10000 levels of slices, arrays, maps and
//     structs (a cbor.Tag counts as one), as encoding/json decodes at most,
//     with at most 16 pointers and interfaces in a row, so a cyclic value,
//     whose encoding would never end, is refused.
//
// The limits are checked where the value is encoded, before it is sent, and
// the receiving side decodes whatever passed: Start fails for an argument
// beyond them, and a result beyond them makes the worker report an error
// instead of it (Join returns an *ExitError whose Err names the limit),
// never a success whose result Result cannot decode. The output of a
// cbor.Marshaler is checked too. Strings travel as the bytes they hold,
// valid UTF-8 or not.
//
// Open files and shared-memory segments travel as file descriptors (the
// Files and Segments options; a worker gets them from InheritedFiles and
// InheritedSegments). A worker inherits the parent's
// standard output and error, environment and working directory as they are
// when Start is called; its standard input is /dev/null, as for Python's
// workers.
//
// # Daemons and parent death
//
// A daemon worker (the Daemon option) dies with its parent however the
// parent ends, SIGKILL included: the kernel sends it SIGKILL when the
// thread that started it exits (the parent-death signal; this package
// starts daemons from a goroutine locked to its OS thread, which lives
// while any daemon does), and the worker also exits when the socket it
// shares with its parent reports end of file. A worker that is not a daemon
// outlives its parent, as an orphan, and the context its function receives
// is cancelled so that it can stop.
//
// # Spares
//
// Starting a Go binary costs several milliseconds, most of it the new
// runtime faulting in its pages. To make Start cheap, the package keeps one
// idle, fully started worker ready for each kind (daemon or not) once the
// first worker of that kind has been started, and hands it the next
// function to run. A replacement is started in the background when a worker
// has been reaped, not when one starts, so that its start-up does not take
// the CPU from the worker just started. Prestart makes sure a spare is
// ready, for programs that want the next Start to run at once. What a spare
// cannot take from the job, it has from the parent as it was when the spare
// started: its standard output and error, and the environment variables
// the Go runtime reads only at start-up (GOMAXPROCS, GOGC, GOMEMLIMIT,
// GODEBUG and the like). Programs that change those between Starts should
// call StopSpares after changing them. A spare that
// is never used exits when its parent does. Set the environment variable
// SHMKIT_SPARES=0 to start every worker from scratch, and call StopSpares to
// end the idle ones (tests that check for leaked processes do).
package process
