package process

import "github.com/shmkit/shmkit/internal/funcs"

// The control socket between a parent and a worker carries frames: a 4-byte
// little-endian length and that many bytes of CBOR. The worker first sends
// an empty frame when it is ready for a job; the parent sends the job, which
// may carry file descriptors (SCM_RIGHTS) on its first byte; the worker
// sends its outcome and exits.
const (
	// maxValue bounds the encoding of an argument and of a result.
	maxValue = funcs.MaxValue

	// maxFrame bounds a frame: a value and what travels with it (names,
	// the environment and the directory in a job).
	maxFrame = maxValue + 1<<20

	// maxDepth bounds the nesting of an argument and of a result, as
	// encoding/json bounds what it decodes.
	maxDepth = funcs.MaxDepth
)

// wire encodes and decodes everything a parent and its workers send each
// other (see funcs.Wire, which pool's workers share).
var wire = funcs.Wire

// job is what the parent sends a worker to run.
type job struct {
	Func      string   `cbor:"1,keyasint"`
	Name      string   `cbor:"2,keyasint"`
	Arg       []byte   `cbor:"3,keyasint"`
	Env       []string `cbor:"4,keyasint"`
	Dir       string   `cbor:"5,keyasint"`
	Daemon    bool     `cbor:"6,keyasint"`
	NFiles    int      `cbor:"7,keyasint"` // the first NFiles descriptors are Files
	NSegments int      `cbor:"8,keyasint"` // then NSegments are Segments
	Stdio     bool     `cbor:"9,keyasint"` // the last two are standard output and error
}

// outcome is what a worker sends back before it exits.
type outcome struct {
	Value []byte `cbor:"1,keyasint"` // the encoded result, when Err and Panic are empty
	Err   string `cbor:"2,keyasint"` // the error the function returned
	Panic string `cbor:"3,keyasint"` // the panic value and stack
}
