//go:build !linux

package shmconn

import (
	"fmt"
	"os"

	"github.com/shmkit/shmkit/internal/futex"
)

// A Bell is where many Conns of a process sleep; see the Linux version.
// Elsewhere NewBell fails: there are no Conns.
type Bell struct{ polling atomicBool }

type atomicBool struct{}

func (atomicBool) Load() bool { return false }

// NewBell fails with an error matching futex.ErrNotSupported.
func NewBell() (*Bell, error) { return nil, fmt.Errorf("shmconn: %w", futex.ErrNotSupported) }

func (b *Bell) File() (*os.File, error) { return nil, fmt.Errorf("shmconn: %w", futex.ErrNotSupported) }
func (b *Bell) Close() error            { return nil }
func (b *Bell) add(*bellSleeper) bool   { return true }
func (b *Bell) remove(*bellSleeper)     {}

type bellSleeper struct {
	w waitFor
	c chan struct{}
}

// A Ringer rings a peer's Bell; see the Linux version.
type Ringer struct{}

// NewRinger fails with an error matching futex.ErrNotSupported.
func NewRinger(f *os.File) (*Ringer, error) {
	return nil, fmt.Errorf("shmconn: %w", futex.ErrNotSupported)
}

func (r *Ringer) ring()        {}
func (r *Ringer) Close() error { return nil }

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
