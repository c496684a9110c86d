//go:build !unix

package process

import (
	"fmt"
	"os"
)

// runWorker cannot happen here: Start never starts workers on this
// platform. A process that finds the worker variable set anyway says why it
// stops.
func runWorker() int {
	fmt.Fprintln(os.Stderr, ErrNotSupported)
	return 3
}
