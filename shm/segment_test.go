//go:build linux

package shm_test

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/internal/shmtest"
	. "github.com/shmkit/shmkit/shm"
)

func TestMain(m *testing.M) { shmtest.Main(m) }

func TestCreateOpenRemove(t *testing.T) {
	name := shmtest.Name(t)
	s, err := Create(name, 10000)
	if err != nil {
		t.Fatal(err)
	}
	defer Remove(name)
	defer s.Close()
	if s.Name() != name || s.Size() != 12288 || s.Creator() != os.Getpid() {
		t.Errorf("Name, Size, Creator = %q, %d, %d; want %q, 12288, %d", s.Name(), s.Size(), s.Creator(), name, os.Getpid())
	}
	st, err := os.Stat(filepath.Join(DefaultDir, name))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 || st.Size() != 12288 {
		t.Errorf("file mode %v size %d, want 0600 and 12288", st.Mode().Perm(), st.Size())
	}
	o, err := Open("/" + name) // a leading slash is accepted, as by shm_open
	if err != nil {
		t.Fatal(err)
	}
	if o.Size() != s.Size() || !o.Created().Equal(s.Created()) {
		t.Errorf("opened segment size %d created %v, want %d %v", o.Size(), o.Created(), s.Size(), s.Created())
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
	if _, err := Create(name, 4096); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Create of existing = %v, want fs.ErrExist", err)
	}
	if err := Remove(name); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(name); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open after Remove = %v, want fs.ErrNotExist", err)
	}
	if err := Remove(name); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("second Remove = %v, want fs.ErrNotExist", err)
	}
}

func TestInvalidNames(t *testing.T) {
	for _, name := range []string{"", "/", "a/b", "a\x00b", ".", "..", strings.Repeat("x", 256)} {
		if _, err := Create(name, 4096); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Create(%q) = %v, want ErrInvalidName", name, err)
		}
		if _, err := Open(name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Open(%q) = %v, want ErrInvalidName", name, err)
		}
		if err := Remove(name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Remove(%q) = %v, want ErrInvalidName", name, err)
		}
	}
	if _, err := Create(shmtest.Name(t), -1); err == nil {
		t.Error("Create with negative size succeeded")
	}
}

func TestCreateLargerThanFilesystem(t *testing.T) {
	var st unix.Statfs_t
	if err := unix.Statfs(DefaultDir, &st); err != nil {
		t.Fatal(err)
	}
	total := int64(st.Blocks) * st.Bsize
	name := shmtest.Name(t)
	_, err := Create(name, 2*total)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Create(%d bytes on a %d-byte filesystem) = %v, want ENOSPC", 2*total, total, err)
	}
	if _, err := os.Stat(filepath.Join(DefaultDir, name)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("failed Create left a file: %v", err)
	}
}

func TestWithMode(t *testing.T) {
	old := unix.Umask(0o022)
	defer unix.Umask(old)
	name := shmtest.Name(t)
	s, err := Create(name, 4096, WithMode(0o644))
	if err != nil {
		t.Fatal(err)
	}
	defer Remove(name)
	defer s.Close()
	st, err := os.Stat(filepath.Join(DefaultDir, name))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
}

// writeFile puts a file named name in /dev/shm, removed at cleanup.
func writeFile(t *testing.T, name string, b []byte) {
	t.Helper()
	p := filepath.Join(DefaultDir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(p) })
}

// validHeader returns the bytes of a real, empty segment of size bytes.
func validHeader(t *testing.T, size int64) []byte {
	t.Helper()
	s := createTemp(t, size)
	return append([]byte(nil), Mem(s)...)
}

func createTemp(t *testing.T, size int64) *Segment {
	t.Helper()
	name := shmtest.Name(t)
	s, err := Create(name, size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); Remove(name) })
	return s
}

func TestOpenValidatesHeader(t *testing.T) {
	good := validHeader(t, 8192)
	tests := []struct {
		name   string
		mangle func([]byte) []byte
		want   error
	}{
		{"empty", func(b []byte) []byte { return nil }, ErrNotSegment},
		{"foreign", func(b []byte) []byte { return []byte(strings.Repeat("hello world\n", 1000)) }, ErrNotSegment},
		{"short header", func(b []byte) []byte { return b[:40] }, ErrTruncated},
		{"truncated data", func(b []byte) []byte { return b[:4096] }, ErrTruncated},
		{"newer version", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[OffVersion:], LayoutVersion+1)
			Resum(b)
			return b
		}, ErrVersion},
		{"bad checksum", func(b []byte) []byte { b[OffCreated]++; return b }, ErrCorrupt},
		{"bad entry size", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[OffEntrySize:], 64)
			Resum(b)
			return b
		}, ErrCorrupt},
		{"grown file", func(b []byte) []byte { return append(b, make([]byte, 4096)...) }, ErrCorrupt},
		{"no index buckets", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[OffBuckets:], 0)
			Resum(b)
			return b
		}, ErrCorrupt},
		{"index larger than the segment", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[OffBuckets:], 8192/4)
			Resum(b)
			return b
		}, ErrCorrupt},
		{"version 1, which ignores the bucket count", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[OffVersion:], 1)
			binary.LittleEndian.PutUint32(b[OffBuckets:], 1<<31)
			Resum(b)
			return b
		}, nil},
		{"not ready", func(b []byte) []byte { b[OffState] = 0; return b }, ErrNotReady},
		{"other pid namespace", func(b []byte) []byte {
			b[OffPidNS]++
			Resum(b)
			return b
		}, ErrNamespace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := shmtest.Name(t)
			writeFile(t, name, tt.mangle(append([]byte(nil), good...)))
			s, err := Open(name)
			if err == nil {
				s.Close()
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open = %v, want %v", err, tt.want)
			}
			if err == nil {
				return
			}
			var pe *fs.PathError
			if !errors.As(err, &pe) || !strings.HasSuffix(pe.Path, name) {
				t.Errorf("Open error %v does not name the file", err)
			}
		})
	}
}

func TestOpenRefusesNonFiles(t *testing.T) {
	dir := t.TempDir()
	link := shmtest.Name(t)
	if err := os.Symlink(filepath.Join(dir, "target"), filepath.Join(DefaultDir, link)); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(filepath.Join(DefaultDir, link))
	if _, err := Open(link); !errors.Is(err, ErrNotSegment) {
		t.Errorf("Open(symlink) = %v, want ErrNotSegment", err)
	}
	sub := shmtest.Name(t)
	if err := os.Mkdir(filepath.Join(DefaultDir, sub), 0o700); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(filepath.Join(DefaultDir, sub))
	if _, err := Open(sub); err == nil {
		t.Error("Open(directory) succeeded")
	}
}

func TestRemoveRefusesForeignFile(t *testing.T) {
	name := shmtest.Name(t)
	writeFile(t, name, []byte("python's data"))
	if err := Remove(name); !errors.Is(err, ErrNotSegment) {
		t.Fatalf("Remove(foreign) = %v, want ErrNotSegment", err)
	}
	if _, err := os.Stat(filepath.Join(DefaultDir, name)); err != nil {
		t.Errorf("foreign file gone after refused Remove: %v", err)
	}
}

func TestCreateWithoutTmpfile(t *testing.T) {
	name := shmtest.Name(t)
	var during []string
	noTmp := WithTestHooks(true, func() error {
		during, _ = filepath.Glob(filepath.Join(DefaultDir, TempPrefix+"*"))
		return nil
	})
	s, err := Create(name, 4096, noTmp)
	if err != nil {
		t.Fatal(err)
	}
	defer Remove(name)
	defer s.Close()
	if len(during) == 0 {
		t.Error("fallback path made no temporary file")
	}
	left, _ := filepath.Glob(filepath.Join(DefaultDir, TempPrefix+"*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	o, err := Open(name)
	if err != nil {
		t.Fatal(err)
	}
	o.Close()
}

// TestNotVisibleBeforeComplete opens the name while Create is between
// initialising the segment and naming it.
func TestNotVisibleBeforeComplete(t *testing.T) {
	for _, noTmp := range []bool{false, true} {
		name := shmtest.Name(t)
		var openErr error
		hook := WithTestHooks(noTmp, func() error {
			var s *Segment
			s, openErr = Open(name)
			if s != nil {
				s.Close()
			}
			return nil
		})
		s, err := Create(name, 4096, hook)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		Remove(name)
		if !errors.Is(openErr, fs.ErrNotExist) {
			t.Errorf("noTmpfile=%v: Open during Create = %v, want fs.ErrNotExist", noTmp, openErr)
		}
	}
}

func TestFailedCreateLeavesNothing(t *testing.T) {
	name := shmtest.Name(t)
	boom := errors.New("boom")
	for _, noTmp := range []bool{false, true} {
		_, err := Create(name, 4096, WithTestHooks(noTmp, func() error { return boom }))
		if !errors.Is(err, boom) {
			t.Fatalf("Create = %v, want boom", err)
		}
	}
	left, _ := filepath.Glob(filepath.Join(DefaultDir, "*"+name+"*"))
	tmp, _ := filepath.Glob(filepath.Join(DefaultDir, TempPrefix+"*"))
	if len(left)+len(tmp) != 0 {
		t.Errorf("failed Create left %v %v", left, tmp)
	}
}

func TestAnonymous(t *testing.T) {
	a, err := CreateAnonymous(4096)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Name() != "" {
		t.Errorf("Name = %q, want empty", a.Name())
	}
	obj, err := a.Alloc(ObjectSpec{Name: "x", Kind: "bytes", Size: 8})
	if err != nil {
		t.Fatal(err)
	}
	f, err := a.File()
	if err != nil {
		t.Fatal(err)
	}
	b, err := FromFile(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	obj.Bytes[3] = 42
	got, err := b.Lookup("x")
	if err != nil {
		t.Fatal(err)
	}
	if got.Bytes[3] != 42 {
		t.Errorf("second mapping sees %d, want 42", got.Bytes[3])
	}
	if err := unix.Ftruncate(FD(b), 0); err == nil {
		t.Error("anonymous segment could be truncated; it should be sealed")
	}
}

func TestFromFileRejectsForeignFile(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("not a segment")
	if _, err := FromFile(f); !errors.Is(err, ErrNotSegment) {
		t.Errorf("FromFile(foreign) = %v, want ErrNotSegment", err)
	}
}

func TestUseAfterClose(t *testing.T) {
	s := createTemp(t, 4096)
	s.Close()
	if _, err := s.Alloc(ObjectSpec{Name: "x", Kind: "k", Size: 8}); !errors.Is(err, ErrClosed) {
		t.Errorf("Alloc after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Lookup("x"); !errors.Is(err, ErrClosed) {
		t.Errorf("Lookup after Close = %v, want ErrClosed", err)
	}
	if _, err := s.File(); !errors.Is(err, ErrClosed) {
		t.Errorf("File after Close = %v, want ErrClosed", err)
	}
}

func TestRemoveRefusesNonFiles(t *testing.T) {
	// A symbolic link, even to a segment, is refused as Open refuses it,
	// and neither it nor its target is removed.
	target := filepath.Join(DefaultDir, createTemp(t, 4096).Name())
	link := shmtest.Name(t)
	if err := os.Symlink(target, filepath.Join(DefaultDir, link)); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(filepath.Join(DefaultDir, link))
	if err := Remove(link); !errors.Is(err, ErrNotSegment) {
		t.Errorf("Remove(symlink) = %v, want ErrNotSegment", err)
	}
	if _, err := os.Lstat(filepath.Join(DefaultDir, link)); err != nil {
		t.Errorf("refused Remove(symlink) removed the link: %v", err)
	}
	if _, err := os.Stat(target); err != nil {
		t.Errorf("refused Remove(symlink) removed its target: %v", err)
	}

	dir := shmtest.Name(t)
	if err := os.Mkdir(filepath.Join(DefaultDir, dir), 0o700); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(filepath.Join(DefaultDir, dir))
	if err := Remove(dir); !errors.Is(err, ErrNotSegment) {
		t.Errorf("Remove(directory) = %v, want ErrNotSegment", err)
	}
	if _, err := Open(dir); !errors.Is(err, ErrNotSegment) {
		t.Errorf("Open(directory) = %v, want ErrNotSegment", err)
	}
}

// sparseCopy copies the segment file src to dst, writing only the pages
// that hold something, as cp does: the copy's other pages are holes.
func sparseCopy(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	page := os.Getpagesize()
	for off := 0; off < len(b); off += page {
		if p := b[off : off+page]; slices.ContainsFunc(p, func(c byte) bool { return c != 0 }) {
			if _, err := f.WriteAt(p, int64(off)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.Truncate(int64(len(b))); err != nil {
		t.Fatal(err)
	}
	if got := allocated(t, dst); got >= int64(len(b)) {
		t.Fatalf("copy has %d of %d bytes allocated, want holes", got, len(b))
	}
}

// allocated returns how many bytes of backing store the file has.
func allocated(t *testing.T, path string) int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// TestOpenReservesHoles opens a sparse copy of a segment: Open must
// reserve its holes, so that a full filesystem is an error from Open, not
// a SIGBUS on a later write.
func TestOpenReservesHoles(t *testing.T) {
	name := shmtest.Name(t)
	seg := createTemp(t, 64<<10)
	if _, err := seg.Alloc(ObjectSpec{Name: "x", Kind: "k", Size: 8}); err != nil {
		t.Fatal(err)
	}
	sparseCopy(t, filepath.Join(DefaultDir, seg.Name()), filepath.Join(DefaultDir, name))
	t.Cleanup(func() { Remove(name) })
	cp, err := Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if got := allocated(t, filepath.Join(DefaultDir, name)); got < cp.Size() {
		t.Errorf("after Open, the copy has %d of %d bytes reserved", got, cp.Size())
	}
	if _, err := cp.Lookup("x"); err != nil {
		t.Errorf("the copy lost its object: %v", err)
	}
}

// TestOpenSparseOnFullFilesystem fills a small private tmpfs and then
// opens a sparse copy of a segment on it.
func TestOpenSparseOnFullFilesystem(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Error(err)
		}
	})
	seg, err := Create("orig", 256<<10, WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	_, err = seg.Alloc(ObjectSpec{Name: "x", Kind: "k", Size: 8})
	if cerr := seg.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "copy")
	sparseCopy(t, filepath.Join(dir, "orig"), path)
	before := allocated(t, path)

	// Take every free block.
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	err = unix.Fallocate(int(filler.Fd()), 0, 0, int64(st.Bavail)*st.Bsize)
	if cerr := filler.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}

	s, err := Open("copy", WithDir(dir))
	if err == nil {
		s.Close()
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Open of a sparse segment on a full filesystem = %v, want ENOSPC", err)
	}
	if got := allocated(t, path); got != before {
		t.Errorf("failed Open changed the copy's allocation from %d to %d bytes", before, got)
	}

	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	s, err = Open("copy", WithDir(dir))
	if err != nil {
		t.Fatalf("Open with room = %v", err)
	}
	if got := allocated(t, path); got < s.Size() {
		t.Errorf("after Open, the copy has %d of %d bytes reserved", got, s.Size())
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
}
