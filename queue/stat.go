package queue

import (
	"fmt"
	"sync/atomic"

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
	Lost       int64 // tasks lost to dead consumers (joinable queues)
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
