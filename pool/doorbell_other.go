//go:build !linux

package pool

import (
	"fmt"
	"os"

	"github.com/shmkit/shmkit/value"
)

// newDoorbell makes a pipe for a worker whose word is armed, where there
// is no eventfd: the parent reads one end, the worker writes the other.
func newDoorbell(armed *value.Cell[uint32]) (*doorbell, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("pool: doorbell pipe: %w", err)
	}
	return &doorbell{f: r, peer: w, armed: armed}, nil
}
