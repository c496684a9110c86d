//go:build linux

package queue_test

import (
	"context"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/queue"
	"github.com/shmkit/shmkit/shm"
)

// record is the struct message of the CBOR path: a string and three ints.
type record struct {
	Name    string
	A, B, C int
}

// msg is the message of the crash tests: who sent it, its sequence number
// from that producer, and a checksum over both and a padding that fills
// the slot, so that a torn message cannot pass for a whole one.
type msg struct {
	Producer, Seq int64
	Pad           [5]uint64
	Sum           uint32
}

func newMsg(producer, seq int64) msg {
	m := msg{Producer: producer, Seq: seq}
	for i := range m.Pad {
		m.Pad[i] = uint64(producer*1e9+seq) * uint64(i+3)
	}
	m.Sum = m.checksum()
	return m
}

func (m msg) checksum() uint32 {
	b := fmt.Appendf(nil, "%d %d %v", m.Producer, m.Seq, m.Pad)
	return crc32.ChecksumIEEE(b)
}

func (m msg) whole() bool { return m.Sum == m.checksum() }

// work tells a worker which queue to use and what to do with it.
type work struct {
	Segment  string
	Queue    string
	Kind     string // message type: "int64", "bytes" (got with GetAppend), "bytes-get" (with Get), "record", "msg"
	Producer int64  // producers: their number
	N        int    // producers: how many messages
	Size     int    // bytes messages: their size
	Gate     bool   // wait at the segment's gate first
	Joinable bool   // consumers: the queue is joinable; mark each task done
}

func openSegment(w work) (*shm.Segment, error) { return shm.Open(w.Segment) }

// produce puts w.N messages and returns how many it put.
var produce = process.Register("queue_test.produce", func(ctx context.Context, w work) (int, error) {
	seg, err := openSegment(w)
	if err != nil {
		return 0, err
	}
	defer seg.Close()
	if w.Gate {
		if err := shmtest.Await(seg); err != nil {
			return 0, err
		}
	}
	switch w.Kind {
	case "int64":
		return putAll(ctx, seg, w, func(i int) int64 { return int64(i) })
	case "bytes", "bytes-get":
		b := make([]byte, w.Size)
		return putAll(ctx, seg, w, func(i int) []byte { b[0] = byte(i); return b })
	case "record":
		return putAll(ctx, seg, w, func(i int) record { return record{"record", i, i + 1, i + 2} })
	case "msg":
		return putAll(ctx, seg, w, func(i int) msg { return newMsg(w.Producer, int64(i)) })
	}
	return 0, fmt.Errorf("kind %q", w.Kind)
})

func putAll[T any](ctx context.Context, seg *shm.Segment, w work, next func(int) T) (int, error) {
	q, err := queue.Open[T](seg, w.Queue)
	if err != nil {
		return 0, err
	}
	for i := range w.N {
		if err := q.Put(ctx, next(i)); err != nil {
			return i, err
		}
	}
	return w.N, nil
}

// consumed is what a consumer reports: how many messages it got, and for
// msg queues, per producer, the sequence numbers in the order it got them.
type consumed struct {
	N    int
	Seqs map[int64][]int64
}

// consume gets messages until the queue is closed and drained.
var consume = process.Register("queue_test.consume", func(ctx context.Context, w work) (consumed, error) {
	seg, err := openSegment(w)
	if err != nil {
		return consumed{}, err
	}
	defer seg.Close()
	if w.Gate {
		if err := shmtest.Await(seg); err != nil {
			return consumed{}, err
		}
	}
	switch w.Kind {
	case "int64":
		return getAll[int64](ctx, seg, w, nil)
	case "bytes":
		return getBytes(ctx, seg, w)
	case "bytes-get":
		return getAll[[]byte](ctx, seg, w, nil)
	case "record":
		return getAll[record](ctx, seg, w, nil)
	case "msg":
		c := consumed{Seqs: map[int64][]int64{}}
		_, err := getAll(ctx, seg, w, func(m msg) error {
			if !m.whole() {
				return fmt.Errorf("torn message %+v", m)
			}
			c.Seqs[m.Producer] = append(c.Seqs[m.Producer], m.Seq)
			c.N++
			return nil
		})
		return c, err
	}
	return consumed{}, fmt.Errorf("kind %q", w.Kind)
})

func getAll[T any](ctx context.Context, seg *shm.Segment, w work, check func(T) error) (consumed, error) {
	var c consumed
	q, err := queue.Open[T](seg, w.Queue)
	if err != nil {
		return c, err
	}
	for {
		v, err := q.Get(ctx)
		if err == io.EOF {
			return c, nil
		}
		if err != nil {
			return c, err
		}
		if check != nil {
			if err := check(v); err != nil {
				return c, err
			}
		} else {
			c.N++
		}
	}
}

// getBytes is getAll for []byte messages, with one reused buffer.
func getBytes(ctx context.Context, seg *shm.Segment, w work) (consumed, error) {
	var c consumed
	q, err := queue.Open[[]byte](seg, w.Queue)
	if err != nil {
		return c, err
	}
	var buf []byte
	for {
		buf, err = q.GetAppend(ctx, buf[:0])
		if err == io.EOF {
			return c, nil
		}
		if err != nil {
			return c, err
		}
		c.N++
	}
}
