//go:build linux

package manager

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/internal/shmconn"
	"github.com/shmkit/shmkit/shm"
)

const shmSupported = true

// ringCapacity is the data capacity of each direction's ring: room for a
// batch's chunk of small requests (see batchChunk) or its responses, so
// that pipelining rarely waits for space.
const ringCapacity = 1 << 20

const (
	ringC2S = "c2s" // client to server
	ringS2C = "s2c" // server to client
)

// localRings is one connection's shared-memory transport: an anonymous
// (memfd) segment holding a ring per direction, and the Conn over them. The
// Unix socket it was set up on stays open, only so that each side learns
// when the other has gone: the kernel closes a dead process's socket, but
// nothing tells a ring its peer died.
type localRings struct {
	seg  *shm.Segment
	conn *shmconn.Conn
	nc   net.Conn      // the socket the rings were set up on
	done chan struct{} // closed when the monitor has ended

	// With bells (transportBells): the peer's bell; closing it also lets
	// go of this process's (see dropBells).
	peer      *shmconn.Ringer
	closeOnce sync.Once
}

// The process's bell, which every connection with bells of every Client
// and Server of the process sleeps on: created by the first, closed by
// the last.
var procBell struct {
	mu   sync.Mutex
	bell *shmconn.Bell
	refs int
}

func acquireBell() (*shmconn.Bell, error) {
	procBell.mu.Lock()
	defer procBell.mu.Unlock()
	if procBell.refs == 0 {
		b, err := shmconn.NewBell()
		if err != nil {
			return nil, err
		}
		procBell.bell = b
	}
	procBell.refs++
	return procBell.bell, nil
}

func releaseBell() {
	procBell.mu.Lock()
	defer procBell.mu.Unlock()
	if procBell.refs--; procBell.refs == 0 {
		procBell.bell.Close()
		procBell.bell = nil
	}
}

// bellOptions returns the Conn options of rings with bells: bell, this
// process's, and a Ringer of the peer's, f, which it takes. On failure it
// releases bell.
func bellOptions(uc *net.UnixConn, bell *shmconn.Bell, f *os.File) (*shmconn.Options, error) {
	peer, err := shmconn.NewRinger(f)
	if err != nil {
		f.Close()
		releaseBell()
		return nil, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	return &shmconn.Options{LocalAddr: uc.LocalAddr(), RemoteAddr: uc.RemoteAddr(), Bell: bell, Peer: peer}, nil
}

// dropBells lets go of what bellOptions returned: the Ringer peer, if
// any, and this process's bell.
func dropBells(peer *shmconn.Ringer) {
	if peer != nil {
		peer.Close()
		releaseBell()
	}
}

// newLocalRings creates the rings for the server's side of nc and sends
// the verdict v with the segment's descriptor; with bells, also this
// process's bell, and it then receives the client's.
func newLocalRings(nc net.Conn, v []byte, bells bool) (*localRings, error) {
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		return nil, errors.New("manager: shared memory needs a Unix socket")
	}
	size := int64(2*shmconn.RingSize(ringCapacity) + 64<<10)
	seg, err := shm.CreateAnonymous(size)
	if err != nil {
		return nil, err
	}
	var mem [2][]byte
	for i, name := range []string{ringC2S, ringS2C} {
		o, err := seg.Alloc(shm.ObjectSpec{Name: name, Kind: "ring", Size: int64(shmconn.RingSize(ringCapacity)), Align: 4096})
		if err == nil {
			err = shmconn.InitRing(o.Bytes, ringCapacity)
		}
		if err != nil {
			seg.Close()
			return nil, err
		}
		mem[i] = o.Bytes
	}
	f, err := seg.File()
	if err != nil {
		seg.Close()
		return nil, err
	}
	files := []*os.File{f}
	var bell *shmconn.Bell
	if bells {
		bell, err = acquireBell()
		if err == nil {
			var bf *os.File
			if bf, err = bell.File(); err != nil {
				releaseBell()
			}
			files = append(files, bf)
		}
		if err != nil {
			closeFiles(files)
			seg.Close()
			return nil, err
		}
	}
	err = sendWithFiles(uc, v, files)
	closeFiles(files)
	opts := &shmconn.Options{LocalAddr: uc.LocalAddr(), RemoteAddr: uc.RemoteAddr()}
	if bells {
		// The client's bell: one byte, 1, with its descriptor.
		var b [1]byte
		var got []*os.File
		if err == nil {
			if got, err = recvWithFiles(uc, b[:], 1); err == nil && (len(got) != 1 || b[0] != 1) {
				closeFiles(got)
				err = fmt.Errorf("%w: no bell from the client", ErrProtocol)
			}
		}
		if err == nil {
			opts, err = bellOptions(uc, bell, got[0])
		} else {
			releaseBell()
		}
	}
	if err != nil {
		seg.Close()
		return nil, err
	}
	conn, err := shmconn.New(mem[0], mem[1], opts)
	if err != nil {
		dropBells(opts.Peer)
		seg.Close()
		return nil, err
	}
	return &localRings{seg: seg, conn: conn, nc: nc, peer: opts.Peer}, nil
}

// attachLocalRings maps the segment the server sent and returns the
// client's side; with bells, peerBell is the server's bell, which it
// takes, and it sends the server this process's.
func attachLocalRings(nc *net.UnixConn, f, peerBell *os.File) (*localRings, error) {
	opts := &shmconn.Options{LocalAddr: nc.LocalAddr(), RemoteAddr: nc.RemoteAddr()}
	if peerBell != nil {
		bell, err := acquireBell()
		if err != nil {
			peerBell.Close()
			return nil, err
		}
		if opts, err = bellOptions(nc, bell, peerBell); err != nil {
			return nil, err
		}
		bf, err := opts.Bell.File()
		if err == nil {
			err = sendWithFiles(nc, []byte{1}, []*os.File{bf})
			bf.Close()
		}
		if err != nil {
			dropBells(opts.Peer)
			return nil, err
		}
	}
	r, err := attachRings(nc, f, opts)
	if err != nil {
		dropBells(opts.Peer)
	}
	return r, err
}

func attachRings(nc *net.UnixConn, f *os.File, opts *shmconn.Options) (*localRings, error) {
	// A file that could shrink under the mapping would turn the server's
	// mistake (or malice) into SIGBUS here: require the seal.
	if seals, err := fileSeals(f); err != nil || seals&unix.F_SEAL_SHRINK == 0 {
		return nil, fmt.Errorf("%w: shared memory from server is not sealed against shrinking (seals %#x, %v)", ErrProtocol, seals, err)
	}
	seg, err := shm.FromFile(f)
	if err != nil {
		return nil, fmt.Errorf("manager: shared memory from server: %w", err)
	}
	var mem [2][]byte
	for i, name := range []string{ringC2S, ringS2C} {
		o, err := seg.Attach(shm.ObjectSpec{Name: name, Kind: "ring", Size: int64(shmconn.RingSize(ringCapacity)), Align: 4096})
		if err != nil {
			seg.Close()
			return nil, fmt.Errorf("manager: shared memory from server: %w", err)
		}
		mem[i] = o.Bytes
	}
	conn, err := shmconn.New(mem[1], mem[0], opts)
	if err != nil {
		seg.Close()
		return nil, err
	}
	return &localRings{seg: seg, conn: conn, nc: nc, peer: opts.Peer}, nil
}

// start runs the monitor: it waits for the peer to close the socket (or
// die), then closes the rings' Conn, which wakes any goroutine blocked on
// them, and calls gone.
func (r *localRings) start(gone func()) {
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		var b [1]byte
		for {
			if _, err := r.nc.Read(b[:]); err != nil {
				break
			}
		}
		r.conn.Close()
		if gone != nil {
			gone()
		}
	}()
}

// close closes the socket, waits for the monitor to end, closes the Conn
// (which waits for calls still using the rings) and unmaps the segment. It
// is idempotent, and must not be called from gone.
func (r *localRings) close() {
	r.nc.Close()
	<-r.done
	r.conn.Close()
	r.closeOnce.Do(func() { dropBells(r.peer) })
	r.seg.Close()
}

// fileSeals returns the memfd seals of f.
func fileSeals(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var seals int
	var serr error
	err = rc.Control(func(fd uintptr) { seals, serr = unix.FcntlInt(fd, unix.F_GET_SEALS, 0) })
	return seals, errors.Join(err, serr)
}

// sendWithFiles writes b with the descriptors of files attached. It
// reaches them through SyscallConn rather than Fd, which would make them
// blocking: a bell's copy shares its open file description, and so its
// non-blocking mode, with the bell.
func sendWithFiles(c *net.UnixConn, b []byte, files []*os.File) error {
	return withFds(files, nil, func(fds []int) error {
		_, _, err := c.WriteMsgUnix(b, unix.UnixRights(fds...), nil)
		return err
	})
}

// withFds calls f with the descriptors of files (after those in fds),
// each held open meanwhile.
func withFds(files []*os.File, fds []int, f func([]int) error) error {
	if len(files) == 0 {
		return f(fds)
	}
	rc, err := files[0].SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	err = rc.Control(func(fd uintptr) { ferr = withFds(files[1:], append(fds, int(fd)), f) })
	return errors.Join(err, ferr)
}

// recvWithFiles fills b, taking the descriptors, at most max, that come
// with its first byte.
func recvWithFiles(c *net.UnixConn, b []byte, max int) ([]*os.File, error) {
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, flags, _, err := c.ReadMsgUnix(b, oob)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, io.EOF
	}
	var files []*os.File
	if oobn > 0 {
		msgs, perr := unix.ParseSocketControlMessage(oob[:oobn])
		for _, m := range msgs {
			fds, _ := unix.ParseUnixRights(&m)
			for _, fd := range fds {
				unix.CloseOnExec(fd)
				files = append(files, os.NewFile(uintptr(fd), "manager-shm"))
			}
		}
		if perr != nil || flags&unix.MSG_CTRUNC != 0 || len(files) > max {
			closeFiles(files)
			return nil, fmt.Errorf("%w: unexpected control message", ErrProtocol)
		}
	}
	if _, err := io.ReadFull(c, b[n:]); err != nil {
		closeFiles(files)
		return nil, err
	}
	return files, nil
}

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// peerGone reports whether the kernel has seen the other end of the
// socket nc close or fail. The kernel closes a process's sockets as it
// dies, SIGKILL included, before its parent can reap it, so this learns of
// a dead peer before any read on nc returns. It does not read: it polls
// with no timeout. A connection that is not a socket reports false; one
// already closed here reports true.
func peerGone(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	gone := false
	err = rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
		n, err := unix.Poll(fds, 0)
		for err == unix.EINTR {
			n, err = unix.Poll(fds, 0)
		}
		gone = err == nil && n > 0 && fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0
	})
	return err != nil || gone
}

// ownedBySelf reports whether the file at path, not followed if it is a
// symbolic link, belongs to this process's effective user.
func ownedBySelf(path string) bool {
	var st unix.Stat_t
	return unix.Lstat(path, &st) == nil && int(st.Uid) == os.Geteuid()
}

// peerAllowed reports whether the user at the other end of a Unix socket
// may connect: the server's own user, one listed in AllowUIDs, or any
// with AnyUID.
func (s *Server) peerAllowed(nc net.Conn) (bool, error) {
	if s.opts.AnyUID {
		return true, nil
	}
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		return false, errors.New("manager: not a Unix socket")
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return false, err
	}
	var cred *unix.Ucred
	var cerr error
	err = rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err = errors.Join(err, cerr); err != nil {
		return false, fmt.Errorf("manager: peer credentials: %w", err)
	}
	uid := int(cred.Uid)
	return uid == s.uid || slices.Contains(s.opts.AllowUIDs, uid), nil
}

// listenUnix listens on a Unix socket with mode 0600. A socket file whose
// server is gone (connecting is refused) is replaced; a live one is not.
func listenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("manager: listen unix %s: %w", path, unix.EADDRINUSE)
		} else if errors.Is(err, unix.ECONNREFUSED) {
			os.Remove(path)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}
