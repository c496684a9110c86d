//go:build unix

package process

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// msgWriter is the part of *net.UnixConn that writeFrame uses.
type msgWriter interface {
	WriteMsgUnix(b, oob []byte, addr *net.UnixAddr) (n, oobn int, err error)
	Write(b []byte) (int, error)
}

// writeFrame writes one frame, with files attached to its first byte. An
// error means that the peer did not get the whole frame: once the last
// byte is in the socket, writeFrame makes no further system call, since
// the peer may by then have read the frame, acted on it and closed its
// end, which a further write, even of no bytes, reports as EPIPE.
func writeFrame(c msgWriter, payload []byte, files []*os.File) error {
	if len(payload) > maxFrame {
		return fmt.Errorf("process: frame of %d bytes exceeds %d", len(payload), maxFrame)
	}
	b := make([]byte, 4+len(payload))
	binary.LittleEndian.PutUint32(b, uint32(len(payload)))
	copy(b[4:], payload)
	var oob []byte
	if len(files) > 0 {
		fds, err := dupAll(files)
		if err != nil {
			return err
		}
		defer func() {
			for _, fd := range fds {
				unix.Close(fd)
			}
		}()
		oob = unix.UnixRights(fds...)
	}
	n, _, err := c.WriteMsgUnix(b, oob, nil)
	if err != nil || n == len(b) {
		return err
	}
	_, err = c.Write(b[n:])
	return err
}

// dupAll duplicates the descriptors of files, for sending. It reaches them
// through SyscallConn, because File.Fd would switch the caller's files to
// blocking mode.
func dupAll(files []*os.File) ([]int, error) {
	fds := make([]int, 0, len(files))
	for _, f := range files {
		var fd int
		err := fdOf(f, func(orig int) error {
			var err error
			fd, err = unix.FcntlInt(uintptr(orig), unix.F_DUPFD_CLOEXEC, 0)
			return err
		})
		if err != nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
			return nil, fmt.Errorf("process: pass %s: %w", f.Name(), err)
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

func fdOf(f *os.File, use func(fd int) error) error {
	if f == nil {
		return errors.New("nil file")
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var useErr error
	if err := rc.Control(func(fd uintptr) { useErr = use(int(fd)) }); err != nil {
		return err
	}
	return useErr
}

// readFrame reads one frame and the descriptors that came with it, which
// the caller owns.
func readFrame(c *net.UnixConn, maxFiles int) ([]byte, []*os.File, error) {
	head := make([]byte, 4)
	oob := make([]byte, unix.CmsgSpace(4*max(maxFiles, 1)))
	n, oobn, flags, _, err := c.ReadMsgUnix(head, oob)
	if err != nil {
		return nil, nil, err
	}
	files, ferr := parseRights(oob[:oobn])
	if ferr == nil && flags&unix.MSG_CTRUNC != 0 {
		ferr = errors.New("process: too many descriptors in frame")
	}
	if ferr == nil && n < 4 {
		_, ferr = io.ReadFull(c, head[n:])
	}
	var payload []byte
	if ferr == nil {
		size := binary.LittleEndian.Uint32(head)
		if size > maxFrame {
			ferr = fmt.Errorf("process: frame of %d bytes exceeds %d", size, maxFrame)
		} else {
			payload = make([]byte, size)
			_, ferr = io.ReadFull(c, payload)
		}
	}
	if ferr != nil {
		closeAll(files)
		return nil, nil, ferr
	}
	return payload, files, nil
}

func parseRights(oob []byte) ([]*os.File, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var files []*os.File
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			unix.CloseOnExec(fd)
			files = append(files, os.NewFile(uintptr(fd), "inherited"))
		}
	}
	return files, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}
