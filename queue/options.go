package queue

import "fmt"

// Defaults and limits of a queue's geometry.
const (
	DefaultCapacity   = 1024    // messages
	DefaultMaxMessage = 1024    // bytes, for []byte and encoded messages
	MaxCapacity       = 1 << 24 // messages
	MaxMessageLimit   = 1 << 30 // bytes
)

// An Option configures New, NewJoinable and NewPipe. Attaching (Open)
// reads the geometry the creator chose, and ignores options.
type Option func(*options)

type options struct {
	capacity   int
	maxMessage int
	oneWay     bool
}

// Capacity sets how many messages a queue holds before Put blocks
// (default DefaultCapacity), or how many messages a pipe buffers in each
// direction (default DefaultPipeCapacity).
func Capacity(n int) Option { return func(o *options) { o.capacity = n } }

// MaxMessage sets the largest message, in bytes of its encoding, that a
// queue or pipe carries (default DefaultMaxMessage). A queue of a
// fixed-size type ignores it: every message is the size of the type.
func MaxMessage(n int) Option { return func(o *options) { o.maxMessage = n } }

// OneWay makes a pipe carry messages only from its second end (the one
// OpenPipe returns) to its first (the one NewPipe returns), as Python's
// Pipe(duplex=False) returns the receiving end first: the creator, often
// the parent, receives what a worker sends. A queue ignores it.
func OneWay() Option { return func(o *options) { o.oneWay = true } }

func getOptions(opts []Option, defCapacity int) (options, error) {
	o := options{capacity: defCapacity, maxMessage: DefaultMaxMessage}
	for _, opt := range opts {
		opt(&o)
	}
	if o.capacity < 1 || o.capacity > MaxCapacity {
		return o, fmt.Errorf("queue: capacity %d out of range [1, %d]", o.capacity, MaxCapacity)
	}
	if o.maxMessage < 1 || o.maxMessage > MaxMessageLimit {
		return o, fmt.Errorf("queue: maximum message size %d out of range [1, %d]", o.maxMessage, MaxMessageLimit)
	}
	return o, nil
}
