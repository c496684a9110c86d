//go:build linux

package shm

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sysCreate makes a fully initialised segment file and only then gives it
// its name, so that no process can open a half-made segment. The file starts
// unnamed (O_TMPFILE) and is linked into place; if the creator dies first,
// the kernel frees it. Filesystems without O_TMPFILE get a hidden temporary
// name instead, renamed by link(2), which fails rather than replace.
func sysCreate(path string, size int64, o options) (int, []byte, header, error) {
	fd, tmpPath, err := createUnnamed(filepath.Dir(path), o)
	if err != nil {
		return -1, nil, header{}, &fs.PathError{Op: "create", Path: path, Err: err}
	}
	mem, hdr, err := initialise(fd, size)
	if err == nil && o.beforeLink != nil {
		err = o.beforeLink()
	}
	if err == nil {
		if tmpPath == "" {
			err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
		} else {
			err = unix.Link(tmpPath, path)
		}
	}
	if tmpPath != "" {
		unix.Unlink(tmpPath)
	}
	if err != nil {
		if mem != nil {
			unix.Munmap(mem)
		}
		unix.Close(fd)
		return -1, nil, header{}, &fs.PathError{Op: "create", Path: path, Err: err}
	}
	return fd, mem, hdr, nil
}

// createUnnamed opens a new, empty file in dir that has no name
// (O_TMPFILE), or, where the filesystem lacks O_TMPFILE, a hidden temporary
// name that the caller must unlink.
func createUnnamed(dir string, o options) (fd int, tmpPath string, err error) {
	if !o.noTmpfile {
		fd, err = unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, uint32(o.mode))
		if err == nil || !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EINVAL) {
			return fd, "", err
		}
	}
	var suffix [8]byte
	rand.Read(suffix[:])
	tmpPath = filepath.Join(dir, fmt.Sprintf("%s%d-%s", tempPrefix, os.Getpid(), hex.EncodeToString(suffix[:])))
	fd, err = unix.Open(tmpPath, unix.O_CREAT|unix.O_EXCL|unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, uint32(o.mode))
	if err != nil {
		return -1, "", err
	}
	return fd, tmpPath, nil
}

// tempPrefix starts the names of segments being created on filesystems
// without O_TMPFILE; the pid that follows it lets `shmkit gc` remove the
// ones whose creator died.
const tempPrefix = ".shmkit-tmp-"

// initialise reserves size bytes of backing store for fd, maps them and
// writes a ready header with an empty directory.
func initialise(fd int, size int64) ([]byte, header, error) {
	if err := unix.Fallocate(fd, 0, 0, size); err != nil {
		if !errors.Is(err, unix.EOPNOTSUPP) {
			return nil, header{}, err
		}
		// No reservation possible on this filesystem; at least size it.
		if err := unix.Ftruncate(fd, size); err != nil {
			return nil, header{}, err
		}
	}
	mem, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, header{}, fmt.Errorf("mmap: %w", err)
	}
	pid, start, ns, err := processIdentity()
	if err != nil {
		unix.Munmap(mem)
		return nil, header{}, err
	}
	hdr := header{version: layoutVersion, size: size, buckets: bucketCount(size),
		creatorPid: pid, creatorStart: start, created: time.Now(), pidNS: ns}
	format(mem, hdr)
	return mem, hdr, nil
}

func sysCreateAnonymous(size int64) (int, []byte, header, error) {
	fd, err := unix.MemfdCreate("shmkit", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return -1, nil, header{}, fmt.Errorf("shm: memfd_create: %w", err)
	}
	mem, hdr, err := initialise(fd, size)
	if err == nil {
		// Nobody may resize it now: a shrink would turn accesses in every
		// process into SIGBUS.
		_, err = unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL)
		if err != nil {
			unix.Munmap(mem)
		}
	}
	if err != nil {
		unix.Close(fd)
		return -1, nil, header{}, fmt.Errorf("shm: create anonymous segment: %w", err)
	}
	return fd, mem, hdr, nil
}

func sysOpen(path string) (int, []byte, header, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return -1, nil, header{}, &fs.PathError{Op: "open", Path: path, Err: openError(err)}
	}
	mem, hdr, err := mapValidated(fd)
	if err != nil {
		unix.Close(fd)
		return -1, nil, header{}, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return fd, mem, hdr, nil
}

// openError explains why opening a segment's name with O_NOFOLLOW failed:
// a symbolic link or a directory in its place is not a segment.
func openError(err error) error {
	switch {
	case errors.Is(err, unix.ELOOP):
		return fmt.Errorf("%w: a symbolic link", ErrNotSegment)
	case errors.Is(err, unix.EISDIR):
		return fmt.Errorf("%w: a directory", ErrNotSegment)
	}
	return err
}

func sysFromFile(f *os.File) (int, []byte, header, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, nil, header{}, fmt.Errorf("shm: from file %s: %w", f.Name(), err)
	}
	fd := -1
	var dupErr error
	if err := rc.Control(func(orig uintptr) { fd, dupErr = unix.FcntlInt(orig, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		dupErr = err
	}
	if dupErr != nil {
		return -1, nil, header{}, &fs.PathError{Op: "open", Path: f.Name(), Err: dupErr}
	}
	mem, hdr, err := mapValidated(fd)
	if err != nil {
		unix.Close(fd)
		return -1, nil, header{}, &fs.PathError{Op: "open", Path: f.Name(), Err: err}
	}
	return fd, mem, hdr, nil
}

// mapValidated reads the header with pread, not through a mapping, so that
// a file shorter than it claims is an error rather than a SIGBUS, and maps
// the segment only once the header has passed every check.
func mapValidated(fd int) ([]byte, header, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, header{}, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, header{}, fmt.Errorf("%w: not a regular file", ErrNotSegment)
	}
	buf := make([]byte, min(st.Size, headerSize))
	n, err := unix.Pread(fd, buf, 0)
	if err != nil {
		return nil, header{}, err
	}
	hdr, err := decodeHeader(buf[:n], st.Size)
	if err != nil {
		return nil, header{}, err
	}
	_, _, ns, err := processIdentity()
	if err != nil {
		return nil, header{}, err
	}
	if hdr.pidNS != ns {
		return nil, header{}, ErrNamespace
	}
	mem, err := unix.Mmap(fd, 0, int(hdr.size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, header{}, fmt.Errorf("mmap: %w", err)
	}
	// After mmap, which fails first (EACCES) on a read-only descriptor.
	if err := reserve(fd, &st); err != nil {
		unix.Munmap(mem)
		return nil, header{}, err
	}
	return mem, hdr, nil
}

// reserve gives backing store to the pages of the file st describes that
// have none, so that a full filesystem is an error now instead of a SIGBUS
// in whichever process first writes such a page. Create reserves every
// page, but a copy made by cp, or a file extended with truncate, has holes.
// The allocated block count tells them apart in one fstat; SEEK_HOLE cannot,
// because tmpfs reports pages that were reserved but never written as holes.
// fallocate with FALLOC_FL_KEEP_SIZE leaves the data and the size alone, and
// on failure tmpfs releases what it allocated.
func reserve(fd int, st *unix.Stat_t) error {
	if st.Blocks*512 >= st.Size {
		return nil
	}
	err := unix.Fallocate(fd, unix.FALLOC_FL_KEEP_SIZE, 0, st.Size)
	if err != nil && !errors.Is(err, unix.EOPNOTSUPP) { // no reservation possible there, as in Create
		return fmt.Errorf("reserve backing store: %w", err)
	}
	return nil
}

func sysRemove(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return &fs.PathError{Op: "remove", Path: path, Err: openError(err)}
	}
	var opened unix.Stat_t
	buf := make([]byte, len(magic))
	n, err := unix.Pread(fd, buf, 0)
	if err == nil {
		err = unix.Fstat(fd, &opened)
	}
	unix.Close(fd)
	if err != nil || string(buf[:n]) != magic {
		return &fs.PathError{Op: "remove", Path: path, Err: ErrNotSegment}
	}
	// Unlink by name only if the name still refers to the file checked.
	var named unix.Stat_t
	if err := unix.Lstat(path, &named); err != nil {
		return &fs.PathError{Op: "remove", Path: path, Err: err}
	}
	if named.Dev != opened.Dev || named.Ino != opened.Ino {
		return &fs.PathError{Op: "remove", Path: path, Err: fmt.Errorf("%w: replaced while being removed", ErrNotSegment)}
	}
	if err := unix.Unlink(path); err != nil {
		return &fs.PathError{Op: "remove", Path: path, Err: err}
	}
	return nil
}

func sysDup(fd int, name string) (*os.File, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("shm: dup: %w", err)
	}
	if name == "" {
		name = "shmkit-anonymous"
	}
	return os.NewFile(uintptr(nfd), name), nil
}

// sysClose closes fd and replaces the shared mapping mem with private,
// inert memory over the same addresses, in one mmap(MAP_FIXED) call: a
// thread touching mem meanwhile sees either the segment or the inert
// memory, never a hole, so it cannot fault. The inert memory is
// anonymous and MAP_NORESERVE: it reads as zero, costs nothing until
// written, and is freed by sysRelease. If it cannot be mapped, the shared
// mapping stays until sysRelease, so that still nothing faults.
func sysClose(fd int, mem []byte) error {
	var errs []error
	if len(mem) > 0 {
		_, err := unix.MmapPtr(-1, 0, unsafe.Pointer(unsafe.SliceData(mem)), uintptr(len(mem)),
			unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED|unix.MAP_NORESERVE)
		if err != nil {
			errs = append(errs, fmt.Errorf("shm: unmap: %w", err))
		}
	}
	if err := unix.Close(fd); err != nil {
		errs = append(errs, fmt.Errorf("shm: close: %w", err))
	}
	return errors.Join(errs...)
}

// sysRelease unmaps what sysClose left at mem's addresses.
func sysRelease(mem []byte) { unix.Munmap(mem) }
