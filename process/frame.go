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

// The control socket between a parent and a worker carries frames: a 4-byte
// little-endian length and that many bytes of CBOR. The worker first sends
// an empty frame when it is ready for a job; the parent sends the job, which
// may carry file descriptors (SCM_RIGHTS) on its first byte; the worker
// sends its outcome and exits.
const maxFrame = 1 << 28

// job is what the parent sends a worker to run.
type job struct {
	Func      string   `cbor:"1,keyasint"`
	Name      string   `cbor:"2,keyasint"`
	Arg       []byte   `cbor:"3,keyasint"`
	Env       []string `cbor:"4,keyasint"`
	Dir       string   `cbor:"5,keyasint"`
	Daemon    bool     `cbor:"6,keyasint"`
	NFiles    int      `cbor:"7,keyasint"` // the first NFiles descriptors are Files
	NSegments int      `cbor:"8,keyasint"` // the rest are Segments
}

// outcome is what a worker sends back before it exits.
type outcome struct {
	Value []byte `cbor:"1,keyasint"` // the encoded result, when Err and Panic are empty
	Err   string `cbor:"2,keyasint"` // the error the function returned
	Panic string `cbor:"3,keyasint"` // the panic value and stack
}

func writeFrame(c *net.UnixConn, payload []byte, files []*os.File) error {
	if len(payload) > maxFrame {
		return fmt.Errorf("process: frame of %d bytes exceeds %d", len(payload), maxFrame)
	}
	b := make([]byte, 4+len(payload))
	binary.LittleEndian.PutUint32(b, uint32(len(payload)))
	copy(b[4:], payload)
	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		oob = unix.UnixRights(fds...)
	}
	n, _, err := c.WriteMsgUnix(b, oob, nil)
	if err != nil {
		return err
	}
	_, err = c.Write(b[n:])
	return err
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
