// Package queue provides bounded queues and pipes of typed messages in
// shared memory, between processes of one machine: the message-passing
// half of Python's multiprocessing (Queue, JoinableQueue, SimpleQueue,
// Pipe), which survives a process killed on either side.
//
// A Queue[T] lives in a segment (package shm) under a name. One process
// creates it with New, choosing its capacity in messages and, for
// variable-size messages, the largest message; others, which may be other
// programs, attach with Open, naming the same T:
//
//	jobs, err := queue.New[Job](seg, "jobs", queue.Capacity(4096)) // creator
//	jobs, err := queue.Open[Job](seg, "jobs")                      // every other process
//	err = jobs.Put(ctx, job)
//	job, err := jobs.Get(ctx)
//
// A queue of another T is refused with shm.ErrTypeMismatch. A queue in an
// anonymous segment reaches workers with the segment (process.Segments).
// Python's SimpleQueue is a Queue; its JoinableQueue is JoinableQueue.
//
// # Messages
//
// A T of a fixed size without pointers (numbers, arrays and structs of
// them) is copied as its bytes, with no encoding: Queue[int64] moves
// messages at the speed of the memory. A []byte is copied as it is, up to
// the maximum message size (MaxMessage, default DefaultMaxMessage). Any
// other T (strings, slices, maps, structs holding them) is CBOR-encoded,
// with limits on its size and nesting that both sides apply: a value
// beyond them fails Put with an error, before anything is queued (a too
// large one with ErrTooLarge), and a message that does not decode is an
// error matching ErrCorrupt, never a panic. Memory: a queue takes a 16.5 KiB
// header and one slot per message of capacity, each the largest message
// plus 16 bytes, rounded up to 64 (Size computes it).
//
// # Order and synchronization
//
// Put in one process synchronizes before the Get, in any process, that
// returns its message. The messages of one producer (one goroutine calling
// Put in turn) are received in the order it put them: by a single
// consumer in that order, and by each of several consumers in an order
// consistent with it. Every message whose Put returned nil is returned by
// exactly one Get, unless its consumer dies (see below). Get and Put wait,
// parking the goroutine (1000 goroutines waiting in Get hold no thread
// each), until there is a message or room or ctx ends; TryGet and TryPut
// fail with ErrEmpty and ErrFull instead. PutMany and GetMany move a batch
// with one wake-up of the other side.
//
// Close ends the stream, for everyone: Put fails with ErrClosed, and Get
// returns the messages left and then io.EOF. All iterates until then:
//
//	for job, err := range jobs.All(ctx) { ... }
//
// # Processes that die
//
// Each slot of the ring carries a state word: free, being written by the
// process of record i, or full, with its position. A producer claims a
// slot by an atomic compare-and-swap to "being written by me", copies the
// message in and publishes it with one atomic store; a consumer copies a
// message out and then takes it by a compare-and-swap back to free. Each
// process attached to a queue has a record in it (at most MaxProcesses
// at a time) naming it by pid and start time, so that a reused pid is
// never mistaken for it. So:
//
//   - A producer killed at any point inside Put leaves either nothing or a
//     claimed slot. A process that waits behind that slot checks, within
//     semaphore.CheckInterval, that the claimer lives, and if it is dead
//     releases the slot, which consumers then skip (Abandoned counts
//     them). Nobody waits for ever, and no consumer sees part of a
//     message: a message is visible only once whole. The message is lost
//     with its Put, which never returned.
//   - A consumer killed at any point inside Get has either taken the
//     message (the compare-and-swap succeeded: the message is gone with
//     the consumer, which may have died just before Get returned it) or
//     has not (the message stays for the others). It never holds a slot
//     that others wait for. A queue therefore loses no message to a dead
//     consumer except one it was being handed at its death, and counts
//     that one: each process's record counts its Gets between taking a
//     message and returning it, and Lost adds up the counts of dead
//     processes. A message a Get returned belongs to the caller; if the
//     consumer dies with it after that, only a JoinableQueue knows.
//   - A JoinableQueue counts, per process, the messages got and not yet
//     marked done (TaskDone). Join waits for the queue to drain and for
//     every live process to be done; the tasks of dead processes count as
//     lost, and Join reports them with a *LostError matching ErrTasksLost
//     instead of waiting for ever. A consumer killed in the instant
//     between counting a message and taking it (a few instructions) is
//     counted as holding one message more than it did, in either kind of
//     queue.
//
// A record of a dead process is reused by the next process that attaches
// when no record is free; its claims are released and its held tasks
// retired as lost first.
//
// # Pipes
//
// A Pipe[T] is Python's multiprocessing Pipe: two ends, each held by one
// process, with a single-producer, single-consumer ring per direction
// (one direction with OneWay). The creator gets end 0 from NewPipe; the
// other process, typically a worker given the segment, opens end 1 with
// OpenPipe:
//
//	parent, err := queue.NewPipe[Result](seg, "result")     // end 0
//	w, err := work.Start(arg, process.Segments(seg))
//	...
//	child, err := queue.OpenPipe[Result](seg, "result")     // end 1, in the worker
//	err = child.Send(ctx, r)
//	child.Close()
//	...
//	r, err := parent.Recv(ctx)
//
// Send waits while the peer has not received Capacity messages
// (DefaultPipeCapacity); Recv waits for a message; Poll waits until Recv
// would not. Messages of one end arrive in the order it sent them, and
// Send synchronizes before the Recv that returns its message.
//
// When one end closes, the other receives what was sent before and then
// io.EOF, and its Sends fail with io.ErrClosedPipe. When the process
// holding an end dies without closing it, the other end notices within
// semaphore.CheckInterval of the death, whether it is waiting in Recv, in
// Send (the pipe full) or in Poll: Recv drains what the dead peer sent
// and then returns an error matching both io.EOF and ErrPeerDied, and
// Send fails with one matching io.ErrClosedPipe and ErrPeerDied. A
// producer killed in the middle of a Send leaves at most a claimed slot,
// released as a queue's is, so the survivor never sees part of a
// message. A Send that returned nil has put the message in the pipe; if
// the peer dies before receiving it, it is lost with the peer. An end
// whose process has not yet opened it (OpenPipe) is not dead: waiting for
// a peer that never starts is bounded only by the context.
//
// # Lifetime
//
// A Queue uses its segment's memory and keeps the Segment reachable. Once
// the segment is closed, the methods with an error result fail with an
// error matching shm.ErrClosed (waiting calls wake up to do so) and the
// others panic with it. A Put in progress holds the segment open until it
// has published or given up its slot, so that Close never leaves a claim
// behind in the shared memory while this process lives. Queues are never
// freed: remove the segment instead. Close a Pipe before its segment: an
// end whose segment was closed under it looks open to its peer until its
// process exits.
//
// The byte layout is specified in docs/layout.md, so that other languages
// can use a queue.
package queue
