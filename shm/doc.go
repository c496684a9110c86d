// Package shm creates, opens and removes shared-memory segments, and
// allocates named objects inside them.
//
// # Segments
//
// A named segment is the file /dev/shm/NAME mapped MAP_SHARED into every
// process that opens it: the same file Python's
// multiprocessing.shared_memory.SharedMemory(NAME) opens. An anonymous
// segment (CreateAnonymous) is a memfd with no name at all; it reaches other
// processes as an inherited or passed file descriptor (see File and
// FromFile) and disappears when the last process closes it.
//
// Create reserves the segment's whole backing store before it returns, so a
// full /dev/shm is an error from Create (wrapping syscall.ENOSPC) and never a
// SIGBUS when a page is first touched. Open and FromFile reserve whatever
// part of an existing segment file has none (a sparse copy made with cp,
// say), so a full /dev/shm is an error from them too. Create initialises the segment
// completely before it gives it its name: a concurrent Open either finds no
// segment (fs.ErrNotExist) or a complete one, and a creator killed half-way
// leaves nothing behind. (On a filesystem without O_TMPFILE it leaves a
// hidden temporary file, .shmkit-tmp-PID-..., which `shmkit gc` removes.)
// Segments use the little-endian layout; big-endian machines get
// ErrNotSupported.
//
// Open checks the header before trusting anything in the file. A file that
// is not a shmkit segment, one that was truncated, one written by a newer
// layout version and one whose header is corrupt give distinct errors
// (ErrNotSegment, ErrTruncated, ErrVersion, ErrCorrupt). docs/layout.md
// specifies the bytes.
//
// # Objects
//
// A segment holds any number of named objects (values, arrays, locks) until
// its space runs out. Alloc reserves zeroed, cache-line-aligned memory for a
// new object; Lookup finds an existing one by name. Each object records what
// it is (its kind and the layout of its element type), so a process that
// opens it as something else gets ErrTypeMismatch naming both types instead
// of misreading memory. Objects are never freed; remove the segment instead.
// Packages value, array and semaphore build typed objects on this.
//
// Lookup, Attach and Alloc cost the same however many objects the segment
// holds: the segment carries a hash index of the names, which Lookup and
// Attach follow without locking, checking only the directory entries they
// read. Objects lists every object, in allocation order. Segments written
// by older shmkit versions (layout version 1, without the index) are still
// opened and allocated in, by their own rules so that older programs can
// go on sharing them; their lookups read the whole directory.
//
// Allocation is serialised by a lock word in the header that survives its
// holder's death: a process killed while allocating delays the next
// allocation by at most a fraction of a second and leaves no half-made
// object visible. An object it had published stays visible, and the next
// allocation finishes indexing it; bytes it had written without publishing
// never show in a later object.
//
// # Lifetimes
//
// Close ends this process's use of a segment; other processes are not
// affected. It may be called while other goroutines use the segment and
// the objects built on it: each call either completes or fails with
// ErrClosed (by returning it or, for methods without an error result, by
// panicking with it), and none faults. Close waits for the segment's own
// methods and for the objects' critical sections in progress (see Pin),
// wakes the goroutines waiting on objects in the segment, and replaces the
// mapping with inert private memory that is freed once nothing can reach
// it. Segment.Close states the details.
//
// Memory handed out raw (Object.Bytes) is the segment's until Close, then
// inert while the Segment is reachable; do not use it after Close. Closing
// a segment does not remove it: a named segment stays in /dev/shm until
// Remove (or `shmkit rm`) unlinks it, even after every process has exited.
// Processes that have it open keep using it after Remove. A process that
// closes a segment while it holds a lock there leaves the lock held until
// it exits; the other processes then recover it as a dead holder's.
//
// All processes sharing a segment must run in the same pid namespace,
// because lock words record owners by pid; Open refuses a segment created in
// another namespace.
package shm
