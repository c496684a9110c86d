package pool

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/shmkit/shmkit/queue"
)

// The messages between the parent and a worker, over the worker's pipe
// (queue.Pipe[[]byte]), little-endian. A task message holds one or more
// task records; a result message one result record:
//
//	task:   id uint64 | name length uint16 | arguments length uint32 | name | arguments
//	result: id uint64 | status uint8 | count uint32 | index uint32 | payload
//
// A task carries a batch of arguments for one registered function, a []A
// encoded by funcs.EncodeSlice (its memory for a fixed-size A without
// pointers, else CBOR). Its results come back in one or more result
// messages, each carrying count results (a []R, encoded the same way) in
// order, all of status partial but the last, of
// status ok; or, after any partial ones, a message of status failed or
// panicked, whose index is the argument that failed and whose payload is
// the error text (and, for a panic, a NUL and the stack); or, for a task
// the parent took back before the worker started it, one message of
// status revoked. A worker runs tasks in the order they arrive and answers
// each before it starts the next.
const (
	statusOK       = 0 // the last part of the results
	statusPartial  = 1 // a part of the results; more follow
	statusFailed   = 2 // the function returned an error
	statusPanicked = 3 // the function panicked
	statusRevoked  = 4 // the task was taken back: the worker did not run it

	taskHeader   = 8 + 2 + 4
	resultHeader = 8 + 1 + 4 + 4
)

// A message travels as one or more frames, the pipe's messages, of at most
// frameSize bytes each, cut from a message that begins with its length in
// bytes (a uint32 counting itself): a message of tasks or of results may
// take up to the pool's MaxMessage (plus lengthHeader), but a pipe slot is
// as large as its largest message, so small slots, many of them, keep a
// worker's pipe deep (a bundle's results fit in it without a wake-up per
// result) and its memory small. A frame of a 4 KiB slot holds 4 KiB less
// the slot's 16-byte header (docs/layout.md §10.3).
const (
	lengthHeader = 4
	frameSize    = 4<<10 - 16
	pipeDepth    = 64 // frames each direction of a worker's pipe holds
)

// beginMessage appends the space of a message's length to b.
func beginMessage(b []byte) []byte { return append(b, 0, 0, 0, 0) }

// sendMessage fills in the length of m, begun by beginMessage, and sends
// it in frames, ringing bell (if not nil) after each. An error leaves part
// of m sent only when the pipe has failed for good (closed, or its peer
// gone): ctx is the caller's to end such a pipe's use.
func sendMessage(ctx context.Context, pipe *queue.Pipe[[]byte], m []byte, bell *ringer) error {
	binary.LittleEndian.PutUint32(m, uint32(len(m)))
	for off := 0; off < len(m); off += frameSize {
		if err := pipe.Send(ctx, m[off:min(len(m), off+frameSize)]); err != nil {
			return err
		}
		if bell != nil {
			bell.ring()
		}
	}
	return nil
}

// recvMessage receives the next message, of at most max bytes after its
// length, into buf (reusing its memory) with frame, which appends the next
// frame to its argument, and returns the message, without its length, and
// the buffer for the next call. It returns frame's io.EOF as it is at a
// message's boundary, and fails with an error matching io.ErrUnexpectedEOF
// inside one.
func recvMessage(frame func([]byte) ([]byte, error), buf []byte, max int) (m, next []byte, err error) {
	buf, err = frame(buf[:0])
	if err != nil {
		return nil, buf, err
	}
	if len(buf) < lengthHeader {
		return nil, buf, fmt.Errorf("pool: frame of %d bytes begins a message", len(buf))
	}
	n := int64(binary.LittleEndian.Uint32(buf))
	if n < lengthHeader || n > int64(lengthHeader+max) {
		return nil, buf, fmt.Errorf("pool: message of %d bytes, maximum %d", n-lengthHeader, max)
	}
	for int64(len(buf)) < n {
		if buf, err = frame(buf); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, buf, fmt.Errorf("pool: %d of the %d bytes of a message: %w", len(buf), n, err)
		}
	}
	if int64(len(buf)) != n {
		return nil, buf, fmt.Errorf("pool: frames of %d bytes for a message of %d", len(buf), n)
	}
	return buf[lengthHeader:], buf, nil
}

// putTaskHeader fills in the header of a task record of fn in m, whose
// first taskHeader+len(fn) bytes are for it, with the arguments after;
// the id is left to call.newTask.
func putTaskHeader(m []byte, fn string) {
	binary.LittleEndian.PutUint16(m[8:], uint16(len(fn)))
	binary.LittleEndian.PutUint32(m[10:], uint32(len(m)-taskHeader-len(fn)))
	copy(m[taskHeader:], fn)
}

// parseTask returns the first task record of m and the rest of m.
func parseTask(m []byte) (id uint64, fn string, args, rest []byte, err error) {
	if len(m) < taskHeader {
		return 0, "", nil, nil, fmt.Errorf("pool: task record of %d bytes", len(m))
	}
	id = binary.LittleEndian.Uint64(m)
	n := int(binary.LittleEndian.Uint16(m[8:]))
	a := int64(binary.LittleEndian.Uint32(m[10:]))
	if int64(len(m)) < taskHeader+int64(n)+a {
		return 0, "", nil, nil, fmt.Errorf("pool: task record of %d bytes names a %d-byte function and %d bytes of arguments", len(m), n, a)
	}
	end := taskHeader + n + int(a)
	return id, string(m[taskHeader : taskHeader+n]), m[taskHeader+n : end], m[end:], nil
}

type result struct {
	id      uint64
	status  uint8
	count   int
	index   int
	payload []byte
}

func appendResult(b []byte, r result) []byte {
	b = binary.LittleEndian.AppendUint64(b, r.id)
	b = append(b, r.status)
	b = binary.LittleEndian.AppendUint32(b, uint32(r.count))
	b = binary.LittleEndian.AppendUint32(b, uint32(r.index))
	return append(b, r.payload...)
}

func parseResult(m []byte) (result, error) {
	if len(m) < resultHeader {
		return result{}, fmt.Errorf("pool: result message of %d bytes", len(m))
	}
	r := result{
		id:      binary.LittleEndian.Uint64(m),
		status:  m[8],
		count:   int(binary.LittleEndian.Uint32(m[9:])),
		index:   int(binary.LittleEndian.Uint32(m[13:])),
		payload: m[resultHeader:],
	}
	if r.status > statusRevoked {
		return result{}, fmt.Errorf("pool: result message of status %d", r.status)
	}
	return r, nil
}
