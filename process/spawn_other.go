//go:build !linux

package process

import (
	"context"
	"net"
	"os"
)

type worker struct {
	conn  *net.UnixConn
	ready bool
}

func (w *worker) pid() int                   { return 0 }
func (w *worker) awaitExit() bool            { return false }
func (w *worker) signal(sig os.Signal) error { return ErrNotSupported }

var spawner spawnerState

type spawnerState struct{}

func (spawnerState) handOff(name string, daemon bool, payload []byte, files []*os.File) (*worker, error) {
	return nil, ErrNotSupported
}

func (spawnerState) finished(w *worker) int { return -1 }

func (w *worker) readOutcome() ([]byte, error) { return nil, ErrNotSupported }

func socketPair() (*os.File, *os.File, error) { return nil, nil, ErrNotSupported }

// Prestart does nothing on this platform.
func Prestart(ctx context.Context, opts ...Option) error { return ErrNotSupported }

// StopSpares does nothing on this platform.
func StopSpares() {}
