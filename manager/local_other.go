//go:build !linux

package manager

import (
	"errors"
	"net"
	"os"
)

const shmSupported = false

var errNoShm = errors.New("manager: shared-memory transport not supported on this platform")

type localRings struct{ conn net.Conn }

func newLocalRings(nc net.Conn, v []byte, bells bool) (*localRings, error) { return nil, errNoShm }
func attachLocalRings(nc *net.UnixConn, f, bell *os.File) (*localRings, error) {
	return nil, errNoShm
}
func (r *localRings) start(gone func()) {}
func (r *localRings) close()            {}
func recvWithFiles(c *net.UnixConn, b []byte, max int) ([]*os.File, error) {
	return nil, errNoShm
}
func closeFiles(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}
func listenUnix(path string) (net.Listener, error) { return net.Listen("unix", path) }

// peerGone cannot ask the kernel on this platform; the request loop
// learns of a dead peer when its read fails.
func peerGone(nc net.Conn) bool { return false }

// ownedBySelf cannot tell a file's owner on this platform, so it owns
// none.
func ownedBySelf(path string) bool { return false }

// peerAllowed cannot identify Unix-socket peers on this platform, so only
// AnyUID admits them.
func (s *Server) peerAllowed(nc net.Conn) (bool, error) { return s.opts.AnyUID, nil }
