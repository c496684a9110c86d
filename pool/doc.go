// Package pool runs registered functions on many arguments in a pool of
// worker processes: Python's multiprocessing.Pool and
// concurrent.futures.ProcessPoolExecutor, typed, and still working when a
// worker is killed.
//
// The functions are those registered with process.Register; a pool's
// workers are copies of the program, so the program calls process.Main
// first in main:
//
//	var square = process.Register("square", func(ctx context.Context, n int) (int, error) {
//		return n * n, nil
//	})
//
//	func main() {
//		process.Main()
//		p, err := pool.New(ctx, pool.Workers(4))
//		...
//		defer p.Terminate()
//		squares, err := pool.Map(ctx, p, square, []int{0, 1, 2, 3})
//		n, err := pool.Apply(ctx, p, square, 7)
//		f := pool.Submit(ctx, p, square, 8) // a Future
//		for v, err := range pool.IMap(ctx, p, square, slices.Values(xs)) { ... }
//	}
//
// The calls are functions rather than methods because Go methods cannot
// have type parameters: pool.Map(ctx, p, fn, args) reads as Python's
// p.map(fn, args). Python's starmap is Map over a slice of structs.
//
// # Tasks, workers and transport
//
// A task is a batch of arguments for one function: a call of Apply or
// Submit is one task, Map splits its arguments into chunks (Python's
// rule, len/(4·workers), unless ChunkSize says otherwise) and IMap sends
// one argument per task by default. Arguments and results of a
// fixed-size type without pointers travel as their memory (the same
// program runs on both sides); others are CBOR encoded, within the limits
// of package process. A task's arguments must fit in MaxMessage bytes (a
// Map chunk that does not is split), and a worker splits its results into
// messages of that size.
//
// Each worker has a segment of its own holding a pipe (package queue) to
// the parent, a cell naming the task it runs, a cell counting the tasks
// it may still start, and the word of its doorbell. Messages cross the
// pipe in frames of 4 KiB, 64 of them each way, so that a worker answers a
// bundle of quick tasks without waiting for the parent to read; the parent
// waits for them on an eventfd in Go's poller, which the worker rings only
// when the parent waits, so that a parent waiting for results holds no
// thread and does not take a CPU from the workers. Tasks wait in the pool
// (at most InFlight of them: a call that submits more waits) until a
// worker is free. A worker whose tasks are quick (under 200 µs) is sent
// them in bundles (up to 64 in one message, a fair share of those
// waiting), two messages ahead, so that one wake-up carries many tasks
// and it never waits between them. A worker whose tasks are slow is sent
// one at a time, and a second to start right after the one it runs only
// while every worker is busy. A worker answers its tasks in order.
//
// A worker starts a task only by taking it from its count, so the parent
// can take back tasks sent and not started by lowering the count: a
// worker that runs out of tasks while none waits takes half of those not
// started from the worker with most of them. No task waits behind a long
// one while a worker is idle, whatever the dispatch guessed, and each
// runs exactly once.
// IMap reads its input only a few chunks ahead of the workers, so an
// endless input is fine.
//
// # Failures
//
//   - A function that returns an error or panics fails its task with a
//     *TaskError carrying the text (and, for a panic, the worker's stack);
//     the worker goes on.
//   - A worker that dies while it runs a task (killed, crashed, exited)
//     fails exactly that task, with a *WorkerDiedError (matching
//     ErrWorkerDied) giving its pid and exit status. The tasks sent to it
//     that it had not started go to the other workers; the parent tells
//     them apart by the cell the worker sets before it starts each task.
//     The pool starts a replacement, and every other task completes. The
//     death is noticed within 25 ms.
//   - The context of a call cancels its tasks: those no worker has taken
//     are dropped; a task that a worker runs is ended by killing that
//     worker (which is replaced), and fails with the context's error, so
//     a deadline on the context is a per-task timeout.
//   - Workers are daemons: a parent killed with SIGKILL leaves none.
//
// # Per-worker state
//
// Initializer runs a registered function once in each worker before its
// first task, as Python's initializer does: what it keeps in package-level
// variables (a segment it opened, a connection) is that worker's, and the
// tasks the worker runs use it. Workers never share memory unless they
// map a segment.
//
// # Lifecycle
//
// Close stops new calls; Join closes the pool, waits for its tasks and
// then for its workers to exit; Terminate kills the workers at once and
// fails the tasks left with ErrClosed. All are idempotent.
package pool
