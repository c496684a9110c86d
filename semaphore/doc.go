// Package semaphore provides synchronisation primitives shared by processes
// through a segment (package shm): Mutex, ReentrantMutex, Semaphore,
// BoundedSemaphore, Event, Condition and Barrier, with the semantics of
// their namesakes in Python's multiprocessing, and robust: a process killed
// while holding or waiting on one never wedges the others.
//
// Every primitive is created in a segment by name and opened by name from
// other processes:
//
//	mu, err := semaphore.NewMutex(seg, "accounts")   // creator
//	mu, err := semaphore.OpenMutex(seg, "accounts")  // every other process
//	mu.Lock()
//	defer mu.Unlock()
//
// # Names
//
// The mutexes take Go's names, as sync.Mutex has them: Lock, Unlock,
// TryLock, and LockContext for a wait that a context bounds. The
// semaphores take Acquire and Release, as Python's and
// golang.org/x/sync/semaphore's do, since a permit is not an owner.
// Python's RLock is ReentrantMutex here, because Go readers take RLock
// for sync.RWMutex's reader lock. (The manager's Lock, a lock held
// through a connection to a server, uses Acquire and Release with a
// context on every call, as its other proxies do.)
//
// # Memory ordering
//
// The guarantees of package sync hold across processes for all memory the
// processes share (segments, in particular): an Unlock of a Mutex or
// ReentrantMutex synchronizes before the Lock that next acquires it, in any process; a
// Release of a semaphore synchronizes before the Acquire it lets through;
// a Set of an Event synchronizes before every Wait it ends; Notify
// synchronizes before the Waits it wakes; and every party's arrival at a
// Barrier synchronizes before any party's Wait returns.
//
// # Owners that die
//
// A Mutex or ReentrantMutex knows which process holds it. If that process
// dies holding it (SIGKILL, a crash, an os.Exit), the next process to lock it,
// one already waiting or one arriving later, takes it over within
// CheckInterval (25 ms) and is told: LockContext returns an error matching
// ErrOwnerDead while the caller holds the lock. The caller repairs what the
// lock protects and calls MarkConsistent. If it unlocks without doing so,
// the lock becomes unrecoverable, and every later LockContext returns
// ErrNotRecoverable: the POSIX robust-mutex contract. Python's Lock, and
// most other libraries' process-shared mutexes, deadlock instead.
//
// Owners are recognised by process id and process start time, so a new
// process that happens to receive a dead owner's pid is not mistaken for
// it. All processes sharing a primitive must run in one pid namespace
// (shm.Open checks).
//
// Semaphores have no owners, as in Python and POSIX: a permit held by a
// process that dies is not returned. A Barrier notices a party that dies
// while waiting at it and breaks, so the other parties get ErrBroken
// instead of waiting for ever.
//
// # Waiting
//
// Everything that waits takes a context.Context (or has a variant that
// does), and a cancelled wait leaves the primitive as it found it, except
// Barrier, which breaks when one of its parties gives up (as in Python).
// Waits survive signals: Go's runtime interrupts system calls to preempt
// goroutines, and waits resume against their original deadline.
//
// A wait is ended by the process that changes the primitive, with a futex
// wake-up, not by polling; only waiters for a Mutex or ReentrantMutex, and parties at
// a Barrier, also wake every CheckInterval to check that the holder, or the
// other parties, still live. Goroutines of one process that wait on the same
// primitive share one OS thread (package internal/park), so thousands of
// goroutines can wait on an Event without making the process hold thousands
// of threads; each distinct primitive waited on holds one.
// Uncontended Lock, Unlock, Acquire and Release are single atomic
// instructions on shared memory and make no system call; a release or
// unlock issues FUTEX_WAKE only when some process waits.
//
// # Closing the segment
//
// A primitive keeps its Segment reachable. Once the segment is closed,
// methods with an error result return one matching shm.ErrClosed, and the
// others panic with one (a use after Close is a bug in the program).
// Close wakes this process's goroutines that wait on the segment's
// primitives: their waits return such an error, at once for goroutines
// parked on an Event, Semaphore, Condition or Barrier, within
// CheckInterval for a lock waiter asleep in the kernel. A call that races
// Close never faults, and an acquisition never reports a lock or permit
// it did not get; a release racing Close may be lost. Closing a segment
// while this process holds one of its locks leaves the lock held, for the
// other processes, until this process exits (they then recover it as a
// dead holder's).
package semaphore
