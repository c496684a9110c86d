// Package shmconn implements a net.Conn over two single-producer,
// single-consumer byte rings in shared memory, one per direction: a fast
// transport between two processes of one machine that share a segment.
//
// The creator of the segment formats each ring with InitRing before the
// peer attaches; each process then calls New with the ring it reads (rx)
// and the ring it writes (tx), the peer with the two swapped. A ring has
// exactly one producer and one consumer for its whole life: one Conn on
// each side, never two, and a closed ring is not reused.
//
// # Layout of a ring
//
// A ring is RingSize(capacity) bytes, starting 64-byte aligned (a mapped
// segment is page aligned and shm objects are cache-line aligned). Words
// are native-endian (the segment layout is little-endian) and accessed
// atomically. Offsets in bytes:
//
//	  0  uint32  magic 0x474e5253 ("SRNG")            written by InitRing
//	  4  uint32  layout version, 1                    written by InitRing
//	  8  uint64  capacity: a power of two, 4 KiB to 1 GiB
//	128  uint64  tail: bytes ever published           producer only
//	256  uint64  head: bytes ever consumed            consumer only
//	384  uint32  producer closed: no more data        producer only
//	388  uint32  consumer closed: no more reading     consumer only
//	392  uint32  data wait word                       see Wake-ups
//	396  uint32  space wait word                      see Wake-ups
//	512  capacity bytes of data; byte at position p is data[p % capacity]
//
// The positions never wrap (2^64 bytes take decades to send) and sit on
// separate pairs of cache lines, so the producer's and the consumer's
// stores do not invalidate each other's lines, nor does the adjacent-line
// prefetcher pair them. The rarely written words (closed flags, wait
// words) share a line of their own. The producer copies bytes into
// data[tail%capacity...] and publishes them with one atomic swap of the
// new tail per piece (see Wake-ups for why a swap); the consumer copies
// them out after loading the tail, and frees their room with one atomic
// swap of the new head. tail-head is the number of bytes in the ring, at
// most capacity.
//
// # Wake-ups
//
// A blocked consumer first polls the tail (see Spinning) and then sleeps
// on the data wait word with futex(2); a blocked producer likewise polls
// the head and sleeps on the space wait word. Bit 0 of a wait word says
// "the waiter is about to sleep or asleep"; the other bits count local
// wake-ups. The protocol, shown for the consumer (the producer's is the
// mirror image):
//
//   - Consumer: v = atomic OR of bit 0 into the data wait word (announce);
//     load the tail and the producer-closed flag again (re-check); if
//     nothing changed, futex-wait on the word for the value v|1.
//   - Producer, after each publishing swap of the tail: load the data wait
//     word; only if bit 0 is set, clear it with an atomic AND and, if the
//     AND found it set, futex-wake the word. The common case is one load
//     and no system call.
//
// No wake-up is lost. Each side writes its word and then reads the other's
// (the consumer the wait word, then the tail; the producer the tail, then
// the wait word), and both writes are read-modify-writes (the OR, and an
// atomic swap for the tail), which order everything before them against
// everything after, so either the consumer's re-check sees the new tail or
// the producer's load sees bit 0. In the second case the producer's AND
// changes the word from v|1, so a futex wait that has not started yet
// returns at once and one that has is woken. The word changes with every
// publish that the sleeper might have missed, not with every publish, which
// keeps the producer's fast path free of stores to a line the consumer
// polls. Close sets its closed flag (a swap), then clears bit 0 and
// futex-wakes the word whether or not the bit was set, so the same
// argument holds.
//
// The positions and flags are published with swaps, not plain atomic
// stores, on purpose: Go's memory model makes every sync/atomic operation
// sequentially consistent, and on amd64 a plain store compiles to XCHG,
// but the race detector's runtime implements it as a release store (a MOV
// on amd64), which the processor may order after a later load; with plain
// stores, tests under -race lost wake-ups and hung. A swap is a full
// barrier in both builds and costs the same as XCHG.
//
// Deadline changes and Close wake this process's own waiter by adding 2 to
// its wait word (changing the value whatever the peer does to bit 0) and
// futex-waking it. The waiter counts itself in (an atomic add) before it
// announces and re-reads the deadline and the closed flag after; the
// setter swaps in the deadline or the flag before it reads that count, so
// the same argument applies, and setting a deadline while no call sleeps
// makes no system call.
//
// # Bells
//
// A sleeping call on a futex holds an OS thread, which with hundreds of
// connections is hundreds of threads and a kernel context switch per
// wake-up. Conns given a Bell (Options.Bell and Options.Peer) sleep
// differently, with the same protocol on the wait words: the sleeper
// joins its process's Bell, announces itself in bit 0, re-checks, and
// parks its goroutine on a channel; a peer that finds bit 0 set clears it
// and writes 1 to the peer process's Bell, an eventfd(2) whose copy it
// received when the connection was set up. The Bell's one goroutine
// reads the eventfd through the Go runtime's netpoller, so no thread
// waits on it; each read it returns from, it wakes every sleeper of its
// process whose ring moved or closed, or whose bit 0 was cleared, so that
// one wake-up serves as many connections as became ready meanwhile. The
// last case is the futex protocol's "the word changed": a peer still on
// its way out of an older publish may clear the announcement of a sleep
// that began after the sleeper read that publish; the next publish then
// finds no announcement and rings nothing, so the sleeper must wake and
// announce again (TestBellClearedAnnouncement). Local wake-ups (Close, a deadline
// change) signal the sleeper's channel directly, and a deadline is a
// runtime timer. Joining the Bell before announcing orders the Bell's
// look after the sleeper's arrival: the peer rings only after it saw the
// announcement, and the Bell looks only after the ring.
//
// # Spinning
//
// A futex sleep and wake-up add tens of microseconds to a round trip on a
// virtual machine, so a blocked Read or Write first polls for Options.Spin
// (default DefaultSpin). Polling burns a CPU, so at most
// max(1, GOMAXPROCS-1) goroutines of a process poll at once, whatever the
// number of Conns (none on a machine with one CPU); the others go straight
// to sleep. A poller calls
// runtime.Gosched every microsecond, so that it does not hold up the
// process's other goroutines. (It does not call sched_yield: with the CPUs
// oversubscribed, that handed the CPU to the other load for whole time
// slices and made the mean round trip twelve times slower.)
//
// A Conn on a Bell polls its own ring in the same way, while a poller's
// slot is free, even when its Bell polls after a wake-up: a call that the
// Bell's goroutine finds ready is woken through a channel, a hand-off
// between goroutines that halved a lone connection's rate (about 1 M
// round trips a second polling itself, 0.5 M through the Bell). The Bell
// polls for the calls that found no slot, and stops polling after
// wake-ups whose poll found nothing (see Bell).
//
// # Closing and failures
//
// Close marks both rings closed for this side, wakes the peer and this
// process's blocked calls, and returns once no Read or Write of the Conn is
// running; from then on the Conn never touches the rings, so the segment
// may be unmapped. The peer's Read returns the bytes already published and
// then io.EOF; its Write fails with an error matching syscall.EPIPE.
//
// A peer that dies (even by SIGKILL) does not close the rings. Whoever
// notices the death (the manager watches a Unix socket) calls Close, which
// ends this side's blocked calls. Bytes a producer was copying when it died
// were not yet published, so the consumer never sees part of a piece.
//
// The peer may be buggy or hostile, so every position read from shared
// memory is checked: a tail or head that moves backwards, or that would put
// more than capacity bytes in the ring, makes Read or Write fail with an
// error matching ErrCorrupt, for good. The capacity is read once, in New,
// and all indexing uses that copy, so nothing the peer writes afterwards
// can make an index leave the ring. What the peer writes to the wait words
// can at worst cause spurious wake-ups or extra wake-up system calls.
//
// A goroutine asleep in Read or Write holds an OS thread (futex(2) is a
// blocking system call); a process with thousands of idle connections each
// blocked in Read would hold thousands of threads.
package shmconn
