//go:build unix

package process

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// takerConn is a control socket whose peer takes every frame at once,
// runs it and closes its end: after a complete write, any further write
// fails, as on a real socket whose worker has exited.
type takerConn struct {
	got    []byte
	writes int // calls after the peer took the frame
}

func (c *takerConn) WriteMsgUnix(b, oob []byte, _ *net.UnixAddr) (int, int, error) {
	c.got = append(c.got, b...)
	return len(b), len(oob), nil
}

func (c *takerConn) Write(b []byte) (int, error) {
	c.writes++
	return 0, unix.EPIPE
}

// TestWriteFrameEndsWithLastByte: once the whole frame is in the socket,
// writeFrame must report success without another write. The worker may by
// then have run the job and exited, and a write of no bytes would fail
// with EPIPE, which handOff takes for a dead spare: it then ran the job a
// second time in a new worker (TestStdioAtStart saw the output twice).
func TestWriteFrameEndsWithLastByte(t *testing.T) {
	var c takerConn
	if err := writeFrame(&c, []byte("job"), nil); err != nil {
		t.Fatalf("writeFrame of a frame the peer took whole = %v, want nil", err)
	}
	if c.writes != 0 || string(c.got) != "\x03\x00\x00\x00job" {
		t.Errorf("writeFrame wrote %q, then made %d more writes; want the frame, then none", c.got, c.writes)
	}
}
