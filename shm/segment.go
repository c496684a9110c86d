package shm

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/internal/lock"
	"github.com/shmkit/shmkit/internal/park"
	"github.com/shmkit/shmkit/internal/proc"
)

// DefaultDir is where named segments live, as for POSIX shm_open and
// Python's SharedMemory.
const DefaultDir = "/dev/shm"

// MaxNameLen is the longest segment name, in bytes.
const MaxNameLen = 255

// Segment is one process's mapping of a shared-memory segment. Its methods
// may be called from several goroutines at once, Close included.
//
// Close makes the segment unusable in this process (other processes are
// not affected). Each method of the segment, and of the objects built on
// it (package value's cells, package array's arrays, package semaphore's
// locks), either completes or reports ErrClosed; none faults, however it
// races Close. See Close for what it waits for.
type Segment struct {
	name string // "" for an anonymous segment
	path string // file path; "" for an anonymous segment
	fd   int
	mem  []byte
	hdr  header
	dir  lock.Mutex // serialises Alloc across processes

	// pins counts the calls in progress that Close waits for (Pin); once
	// closed is set, new ones fail, and the last to end signals drained.
	pins    atomic.Int64
	closed  atomic.Bool
	drained chan struct{} // capacity 1

	allocHook func(step string) // tests: runs after each step of an allocation

	closeOnce sync.Once
	closeErr  error
}

// Option configures Create, Open and Remove.
type Option func(*options)

type options struct {
	dir        string
	mode       fs.FileMode
	noTmpfile  bool         // tests: take the fallback path for filesystems without O_TMPFILE
	beforeLink func() error // tests: runs between initialisation and naming
}

// WithDir places named segments in dir instead of DefaultDir. The directory
// should be on a memory filesystem (tmpfs); on a disk filesystem the
// segment is still shared, but its pages are written back to disk.
func WithDir(dir string) Option { return func(o *options) { o.dir = dir } }

// WithMode sets the permission bits of a new segment file (default 0600),
// subject to the process umask.
func WithMode(mode fs.FileMode) Option { return func(o *options) { o.mode = mode.Perm() } }

func getOptions(opts []Option) options {
	o := options{dir: DefaultDir, mode: 0o600}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// checkName validates a segment name, accepting one leading '/' as POSIX
// shm_open does, and returns it without that slash.
func checkName(name string) (string, error) {
	n := strings.TrimPrefix(name, "/")
	why := ""
	switch {
	case n == "":
		why = "empty"
	case len(n) > MaxNameLen:
		why = fmt.Sprintf("longer than %d bytes", MaxNameLen)
	case n == "." || n == "..":
		why = "not a file name"
	case strings.ContainsAny(n, "/\x00"):
		why = "contains '/' or NUL"
	}
	if why != "" {
		return "", fmt.Errorf("%w %q: %s", ErrInvalidName, name, why)
	}
	return n, nil
}

// Create creates the named segment with size bytes (rounded up to a whole
// page; at least 4096 bytes, at most 1 TiB), reserves its backing store and maps it. It fails
// with an error matching fs.ErrExist if the name is taken, and one matching
// syscall.ENOSPC if the filesystem cannot hold it.
func Create(name string, size int64, opts ...Option) (*Segment, error) {
	n, err := checkName(name)
	if err != nil {
		return nil, err
	}
	o := getOptions(opts)
	size, err = roundSize(size)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(o.dir, n)
	fd, mem, hdr, err := sysCreate(path, size, o)
	if err != nil {
		return nil, err
	}
	return newSegment(n, path, fd, mem, hdr)
}

// CreateAnonymous creates a segment with no name: a memfd that other
// processes receive as a file descriptor (see File, FromFile and package
// process). It disappears when the last process closes it.
func CreateAnonymous(size int64) (*Segment, error) {
	size, err := roundSize(size)
	if err != nil {
		return nil, err
	}
	fd, mem, hdr, err := sysCreateAnonymous(size)
	if err != nil {
		return nil, err
	}
	return newSegment("", "", fd, mem, hdr)
}

func roundSize(size int64) (int64, error) {
	if !littleEndian {
		return 0, ErrNotSupported
	}
	page := int64(os.Getpagesize())
	if size < 0 || size > 1<<40 {
		return 0, fmt.Errorf("shm: invalid size %d", size)
	}
	return max(minSize, (size+page-1)&^(page-1)), nil
}

// Open maps the existing named segment after validating its header. A
// missing segment gives an error matching fs.ErrNotExist; a file that fails
// validation gives one matching ErrNotSegment, ErrTruncated, ErrVersion,
// ErrCorrupt, ErrNotReady or ErrNamespace. Open reserves backing store for
// any part of the file that has none, and fails with an error matching
// syscall.ENOSPC if the filesystem cannot hold it.
func Open(name string, opts ...Option) (*Segment, error) {
	n, err := checkName(name)
	if err != nil {
		return nil, err
	}
	if !littleEndian {
		return nil, ErrNotSupported
	}
	path := filepath.Join(getOptions(opts).dir, n)
	fd, mem, hdr, err := sysOpen(path)
	if err != nil {
		return nil, err
	}
	return newSegment(n, path, fd, mem, hdr)
}

// FromFile maps the segment behind f, typically an anonymous segment
// inherited from or passed by another process, after validating it as Open
// does. The Segment uses its own duplicate of the descriptor; the caller
// still owns f.
func FromFile(f *os.File) (*Segment, error) {
	if !littleEndian {
		return nil, ErrNotSupported
	}
	fd, mem, hdr, err := sysFromFile(f)
	if err != nil {
		return nil, err
	}
	return newSegment("", "", fd, mem, hdr)
}

func newSegment(name, path string, fd int, mem []byte, hdr header) (*Segment, error) {
	s := &Segment{name: name, path: path, fd: fd, mem: mem, hdr: hdr, drained: make(chan struct{}, 1)}
	dir, err := lock.New(s.word64(offDirLock), nil)
	if err != nil {
		return nil, errors.Join(err, s.Close())
	}
	s.dir = dir
	return s, nil
}

// Remove unlinks the named segment. Processes that have it open keep their
// mapping; later Opens fail. Remove refuses (with ErrNotSegment, as Open
// does) to remove a file that is not a shmkit segment, a directory, or a
// symbolic link, even one to a segment.
func Remove(name string, opts ...Option) error {
	n, err := checkName(name)
	if err != nil {
		return err
	}
	return sysRemove(filepath.Join(getOptions(opts).dir, n))
}

// Name returns the segment's name, or "" for an anonymous segment.
func (s *Segment) Name() string { return s.name }

// Size returns the segment's size in bytes, header included.
func (s *Segment) Size() int64 { return s.hdr.size }

// Creator returns the pid of the process that created the segment.
func (s *Segment) Creator() int { return s.hdr.creatorPid }

// CreatorRunning reports whether the process that created the segment is
// still running. It compares start times, so a later process that reused
// the pid does not count.
func (s *Segment) CreatorRunning() bool {
	return proc.Alive(s.hdr.creatorPid, s.hdr.creatorStart, ^uint64(0))
}

// Created returns when the segment was created.
func (s *Segment) Created() time.Time { return s.hdr.created }

func (s *Segment) String() string {
	if s.name == "" {
		return "anonymous segment"
	}
	return "segment " + s.name
}

// File returns a new descriptor for the segment, for handing it to another
// process (which maps it with FromFile). The caller must close it.
func (s *Segment) File() (*os.File, error) {
	if err := s.Pin(); err != nil {
		return nil, err
	}
	defer s.Unpin()
	return sysDup(s.fd, s.name)
}

// Err returns ErrClosed once Close has been called, and nil before. The
// objects built on the segment check it on every operation; it costs one
// load.
func (s *Segment) Err() error {
	if s.closed.Load() {
		return ErrClosed
	}
	return nil
}

// Pin marks the start of a use of the segment's memory that Close must
// wait for, and Unpin its end. Pin returns ErrClosed, pinning nothing, once
// Close has been called; Close, for its part, waits until every successful
// Pin has been matched by Unpin before it unmaps the memory. The segment's
// own methods pin themselves, as do the objects built on it for their
// critical sections; a program pins the segment while it uses memory
// handed out raw (Object.Bytes) from goroutines that may race Close.
//
// Pins are cheap (two atomic additions) and may nest, but a pinned
// goroutine must not wait for something that needs Close to return, and
// must not call Close itself: Close would wait for it for ever.
func (s *Segment) Pin() error {
	s.pins.Add(1)
	if s.closed.Load() {
		s.Unpin()
		return ErrClosed
	}
	return nil
}

// Unpin ends a use of the memory that Pin started.
func (s *Segment) Unpin() {
	if s.pins.Add(-1) == 0 && s.closed.Load() {
		select {
		case s.drained <- struct{}{}:
		default: // Close has a signal waiting already
		}
	}
}

// Close ends this process's use of the segment: it unmaps the shared
// memory and closes the descriptor. It does not remove a named segment
// (see Remove), and other processes are not affected. Close is idempotent;
// it returns the first call's result.
//
// Close may be called while other goroutines use the segment. It waits
// for the calls in progress that have pinned the segment (see Pin): the
// segment's own methods (Alloc, Attach, Lookup, Objects, Available, File)
// and the critical sections of the objects built on it (the write of a
// value.Cell larger than 8 bytes, an array.Array's bulk operations). It
// wakes the goroutines of this process waiting on objects in the segment
// (a lock, an event), whose waits then fail. It does not wait for other
// operations on the objects: a lock-free one that races Close completes,
// on the segment or, if Close has replaced the mapping already, on inert
// memory, where a write is lost; a read or an acquisition checks the
// segment again afterwards, so that it never reports what it read there.
// Nothing faults: Close replaces the shared mapping, in one step, with
// private memory of the same size that reads as zero and is freed once
// the Segment, and so every object built on it, is unreachable.
//
// After Close, the segment's methods, and those of its objects, fail with
// ErrClosed: by returning it or, for methods without an error result (an
// Add, a Load), by panicking with an error matching it, since such a use
// after Close is a bug in the program, as a send on a closed channel is.
// Memory handed out raw (Object.Bytes) reads as zero after Close, as long
// as the Segment is reachable; it must not be used.
func (s *Segment) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		if len(s.mem) > 0 {
			lo, hi := span(s.mem)
			park.Close(lo, hi)
		}
		// A pin that began before closed was set may still be running;
		// each signal means the count has been seen at zero since.
		for s.pins.Load() != 0 {
			<-s.drained
		}
		s.closeErr = sysClose(s.fd, s.mem)
		if len(s.mem) > 0 {
			// Nothing can reach the inert memory once s is unreachable:
			// every object built on s keeps s.
			runtime.AddCleanup(s, release, s.mem)
		}
	})
	return s.closeErr
}

// release frees the inert memory Close left, once nothing can use it.
func release(mem []byte) {
	lo, hi := span(mem)
	park.Reopen(lo, hi)
	sysRelease(mem)
}

// span returns the addresses of mem, [lo, hi).
func span(mem []byte) (lo, hi uintptr) {
	lo = uintptr(unsafe.Pointer(unsafe.SliceData(mem)))
	return lo, lo + uintptr(len(mem))
}

func (s *Segment) word64(off int) *uint64 { return word64(s.mem, off) }

func (s *Segment) word32(off int) *uint32 { return word32(s.mem, off) }

// lockDir takes the directory lock. A previous holder that died did so
// before publishing (nothing it wrote is visible, and Alloc zeroes what it
// may have scribbled), after publishing but before indexing (which Alloc
// repairs first of all), or after (its object is complete), so the
// directory is consistent or repaired in every case (docs/layout.md, 6.5).
func (s *Segment) lockDir() error {
	err := s.dir.Lock(context.Background())
	if errors.Is(err, lock.ErrOwnerDead) {
		err = s.dir.MarkConsistent()
	}
	if err != nil {
		return fmt.Errorf("shm: %s: directory lock: %w", s, err)
	}
	return nil
}

// processIdentity returns what a new segment header records of its creator.
func processIdentity() (pid int, start, pidNS uint64, err error) {
	id, err := proc.Self()
	if err != nil {
		return 0, 0, 0, err
	}
	ns, err := proc.Namespace()
	if err != nil {
		return 0, 0, 0, err
	}
	return id.Pid, id.Start, ns, nil
}
