//go:build linux

package pool

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/queue"
)

// framedPipe returns both ends of a worker's pipe, in one process.
func framedPipe(t *testing.T) (a, b *queue.Pipe[[]byte]) {
	seg := shmtest.Segment(t, 1<<20)
	a, err := queue.NewPipe[[]byte](seg, pipeName, queue.Capacity(pipeDepth), queue.MaxMessage(frameSize))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if b, err = queue.OpenPipe[[]byte](seg, pipeName); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

// TestFrames: messages of every size round a frame's survive the trip,
// and a malformed stream of frames is an error, not a hang or a message.
func TestFrames(t *testing.T) {
	ctx := context.Background()
	a, b := framedPipe(t)
	next := func(f []byte) ([]byte, error) { return b.RecvAppend(ctx, f) }
	const max = 3*frameSize + 100
	var buf []byte
	for _, n := range []int{0, 1, frameSize - lengthHeader, frameSize - lengthHeader + 1, 2 * frameSize, max} {
		m := beginMessage(nil)
		for i := range n {
			m = append(m, byte(i*7))
		}
		want := bytes.Clone(m[lengthHeader:])
		if err := sendMessage(ctx, a, m, nil); err != nil {
			t.Fatal(err)
		}
		got, next, err := recvMessage(next, buf, max)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%d-byte message came back as %d bytes, %v", n, len(got), err)
		}
		buf = next
	}
	frame := func(length uint32, n int) []byte {
		f := binary.LittleEndian.AppendUint32(nil, length)
		return append(f, make([]byte, n)...)
	}
	for _, c := range []struct {
		name   string
		frames [][]byte
	}{
		{"short frame", [][]byte{{1, 2}}},
		{"length below its own", [][]byte{frame(3, 0)}},
		{"length above the maximum", [][]byte{frame(lengthHeader+max+1, 10)}},
		{"frames past the length", [][]byte{frame(lengthHeader+frameSize, frameSize-lengthHeader), make([]byte, frameSize)}},
	} {
		for _, f := range c.frames {
			if err := a.Send(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := recvMessage(next, nil, max); err == nil {
			t.Errorf("%s: received a message", c.name)
		}
		expired, cancel := context.WithCancel(ctx)
		cancel()
		for {
			if ok, _ := b.Poll(expired); !ok {
				break
			}
			b.Recv(ctx)
		}
	}
	// The sender gone mid-message.
	a.Send(ctx, frame(lengthHeader+2*frameSize, frameSize-lengthHeader))
	a.Close()
	if _, _, err := recvMessage(next, nil, max); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("message cut short by the sender's close = %v, want io.ErrUnexpectedEOF", err)
	}
	if _, _, err := recvMessage(next, nil, max); err != io.EOF {
		t.Fatalf("receive after the end = %v, want io.EOF", err)
	}
}
