package queue

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/shmkit/shmkit/internal/lock"
	"github.com/shmkit/shmkit/shm"
)

// Stats describes a queue object, for tools that do not know its Go type
// (the shmkit command's inspect).
type Stats struct {
	Joinable   bool
	Len        int   // messages in the queue (see Queue.Len)
	Cap        int   // messages it holds
	MaxMessage int   // bytes of the largest message
	Closed     bool  // closed for writing
	Abandoned  int64 // claims of dead producers released
	Lost       int64 // messages lost to dead consumers (see Queue.Lost)
	Processes  int   // process records in use, by live or dead processes
}

// Stat returns the statistics of the queue object obj, found in a
// segment's directory. It reads the object without attaching to it (it
// takes no process record), and fails with shm.ErrTypeMismatch if obj is
// not a queue and with ErrCorrupt if its header is damaged.
func Stat(obj shm.Object) (Stats, error) {
	if obj.Kind != Kind && obj.Kind != JoinableKind {
		return Stats{}, fmt.Errorf("queue: %w: object %q is a %s, not a queue", shm.ErrTypeMismatch, obj.Name, obj.Kind)
	}
	g, err := readGeometry(obj)
	if err != nil {
		return Stats{}, err
	}
	r := view(obj, g)
	st := Stats{
		Joinable:   g.joinable,
		Len:        r.length(),
		Cap:        int(g.capacity),
		MaxMessage: g.maxMsg,
		Closed:     atomic.LoadUint32(r.closed) != 0,
		Abandoned:  int64(atomic.LoadUint64(r.abandoned)),
		Lost:       r.lost(),
	}
	for i := range uint64(MaxProcesses) {
		if atomic.LoadUint64(r.owner(i)) != 0 {
			st.Processes++
		}
	}
	return st, nil
}

// PipeStats describes a pipe object, for tools that do not know its Go
// type.
type PipeStats struct {
	OneWay     bool
	Cap        int    // messages each direction buffers
	MaxMessage int    // bytes of the largest message
	Len        [2]int // messages waiting to be received by end 0 and end 1 (always 0 for end 1 of a one-way pipe)
	Ends       [2]PipeEnd
}

// PipeEnd is the state of one end of a pipe.
type PipeEnd struct {
	Opened bool // some process opened the end (end 0: the creator)
	Closed bool // closed by its process
	Pid    int  // the process holding the end, while it is open
	Dead   bool // that process died without closing the end
}

// StatPipe returns the statistics of the pipe object obj, found in a
// segment's directory, without opening an end. It fails with
// shm.ErrTypeMismatch if obj is not a pipe and with ErrCorrupt if its
// header is damaged.
func StatPipe(obj shm.Object) (PipeStats, error) {
	if obj.Kind != PipeKind {
		return PipeStats{}, fmt.Errorf("queue: %w: object %q is a %s, not a pipe", shm.ErrTypeMismatch, obj.Name, obj.Kind)
	}
	g, ringSize, oneWay, err := readPipe(obj)
	if err != nil {
		return PipeStats{}, err
	}
	st := PipeStats{OneWay: oneWay, Cap: int(g.capacity), MaxMessage: g.maxMsg}
	base := unsafe.Pointer(unsafe.SliceData(obj.Bytes))
	for e, off := range []uintptr{pipeOffEnd0, pipeOffEnd1} {
		switch w := atomic.LoadUint64(word64(base, off)); w {
		case 0:
		case endClosed:
			st.Ends[e] = PipeEnd{Opened: true, Closed: true}
		default:
			st.Ends[e] = PipeEnd{Opened: true, Pid: lock.OwnerPid(w), Dead: !lock.OwnerAlive(w)}
		}
		if e == 0 || !oneWay {
			st.Len[e] = view(ringObject(obj, e, ringSize), g).length()
		}
	}
	return st, nil
}
