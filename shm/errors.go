package shm

import "errors"

// Errors that Open, FromFile and the directory operations wrap. Missing and
// existing segments use the standard fs.ErrNotExist and fs.ErrExist, and a
// full /dev/shm wraps syscall.ENOSPC.
var (
	// ErrNotSegment reports a file that is not a shmkit segment: its magic
	// number is wrong or it is not a regular file.
	ErrNotSegment = errors.New("shm: not a shmkit segment")

	// ErrTruncated reports a segment file shorter than its header says.
	ErrTruncated = errors.New("shm: segment truncated")

	// ErrVersion reports a segment written with a newer layout version
	// than this package understands.
	ErrVersion = errors.New("shm: segment layout version not supported")

	// ErrCorrupt reports a segment whose header or directory fails
	// validation.
	ErrCorrupt = errors.New("shm: segment corrupt")

	// ErrNotReady reports a segment whose creator has not finished
	// initialising it.
	ErrNotReady = errors.New("shm: segment not initialised")

	// ErrNamespace reports a segment created in another pid namespace, whose
	// lock owners this process cannot check.
	ErrNamespace = errors.New("shm: segment created in another pid namespace")

	// ErrInvalidName reports a segment or object name that is empty, too
	// long, or contains a character that names cannot hold.
	ErrInvalidName = errors.New("shm: invalid name")

	// ErrFull reports that a segment has no room left for an object.
	ErrFull = errors.New("shm: segment full")

	// ErrTypeMismatch reports an object opened as a different kind or
	// element type than it was created with.
	ErrTypeMismatch = errors.New("shm: object type mismatch")

	// ErrClosed reports use of a closed segment.
	ErrClosed = errors.New("shm: segment closed")

	// ErrNotSupported reports a platform without shared-memory segments.
	ErrNotSupported = errors.New("shm: not supported on this platform")
)
