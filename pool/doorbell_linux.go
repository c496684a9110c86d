package pool

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/value"
)

// newDoorbell makes an eventfd for a worker whose word is armed.
func newDoorbell(armed *value.Cell[uint32]) (*doorbell, error) {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("pool: eventfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "pool-doorbell")
	return &doorbell{f: f, peer: f, armed: armed}, nil
}
