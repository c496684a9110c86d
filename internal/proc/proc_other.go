//go:build !linux

package proc

// Self is not supported on this platform.
func Self() (ID, error) { return ID{}, ErrNotSupported }

// Alive is not supported on this platform; it answers true.
func Alive(pid int, start, mask uint64) bool { return true }

// Lookup is not supported on this platform.
func Lookup(pid int) (ID, error) { return ID{}, ErrNotSupported }

// Parent is not supported on this platform.
func Parent(pid int) (int, error) { return 0, ErrNotSupported }

// Namespace is not supported on this platform.
func Namespace() (uint64, error) { return 0, ErrNotSupported }

// ScanUsers is not supported on this platform.
func ScanUsers() (*FileUsers, error) { return nil, ErrNotSupported }

// Threads is not supported on this platform.
func Threads(pid int) (int, error) { return 0, ErrNotSupported }
