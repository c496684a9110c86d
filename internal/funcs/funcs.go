// Package funcs holds, for package pool, the batch form of every function
// registered with process.Register: a pool's worker runs a registered
// function over a batch of arguments without a process per call.
//
// Batches of arguments and results are encoded by EncodeSlice: as their
// memory for fixed-size types without pointers, else with Wire, the codec
// process uses between a parent and its workers, so that a batch is bound
// by the same limits as one call.
package funcs

import (
	"context"
	"sync"

	"github.com/fxamacker/cbor/v2"

	"github.com/shmkit/shmkit/internal/codec"
)

// Limits of Wire: the largest encoding of one value, and its nesting.
const (
	MaxValue = 256 << 20
	MaxDepth = 10000
)

// Wire encodes and decodes everything a parent and its workers send each
// other, with the encoding cbor.Marshal uses. No array or map in MaxValue
// bytes has more than MaxValue elements, so only the nesting limit and the
// size can refuse a value, and they do so in the encoding process, before
// anything is sent. Strings that are not valid UTF-8 decode as they were,
// as Go strings may hold any bytes.
var Wire = func() *codec.Codec {
	c, err := codec.New(codec.Limits{Depth: MaxDepth, Elements: MaxValue, Size: MaxValue},
		cbor.EncOptions{}, cbor.DecOptions{UTF8: cbor.UTF8DecodeInvalid})
	if err != nil {
		panic(err)
	}
	return c
}()

// Batch runs a registered function on each argument of args, the
// encoding of a []A (EncodeSlice), in order, and hands the results to
// emit, as the encodings of consecutive runs of the []R, each at most max
// bytes (a result that alone takes more fails the batch). It stops at the first
// argument whose call fails, returning the error and the index of that
// argument; *done counts the calls that returned, for a caller that
// recovers a panic and wants its index.
type Batch func(ctx context.Context, args []byte, max int, done *int, emit func(results []byte, n int) error) (failed int, err error)

var table struct {
	sync.RWMutex
	m map[string]Batch
}

// Register records the batch form of the function registered as name.
// process.Register calls it, during package initialisation.
func Register(name string, b Batch) {
	table.Lock()
	defer table.Unlock()
	if table.m == nil {
		table.m = map[string]Batch{}
	}
	table.m[name] = b
}

// Lookup returns the batch form of the function registered as name, or nil.
func Lookup(name string) Batch {
	table.RLock()
	defer table.RUnlock()
	return table.m[name]
}
