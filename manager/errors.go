package manager

import (
	"context"
	"errors"
	"io/fs"
	"strings"
)

// Errors callers branch on. Errors returned by proxies wrap one of these, or
// fs.ErrNotExist (no such object), fs.ErrExist (the name is taken),
// context.DeadlineExceeded or context.Canceled, so test them with errors.Is.
var (
	// ErrClosed reports that the client, its connection or the server is
	// closed. A later call on the same Client dials again.
	ErrClosed = errors.New("manager: closed")

	// ErrAuth reports that authentication failed: a wrong or missing auth
	// key on either side, or a Unix-socket peer of another user.
	ErrAuth = errors.New("manager: authentication failed")

	// ErrProtocol reports a malformed frame or a peer speaking another
	// protocol or version.
	ErrProtocol = errors.New("manager: protocol error")

	// ErrKind reports that a name is held by an object of another kind.
	ErrKind = errors.New("manager: object has another kind")

	// ErrType reports a value of the wrong type: a stored value that does
	// not decode into the proxy's type, Add on a value that is not a
	// number, or an Add whose sum the proxy's type cannot hold (which
	// stores nothing).
	ErrType = errors.New("manager: wrong type")

	// ErrIndex reports a list index out of range.
	ErrIndex = errors.New("manager: index out of range")

	// ErrOwnerDead reports that a Lock was acquired after its previous
	// holder's connection ended without releasing it. The lock is held by
	// the caller; whatever it protects may be half-updated.
	ErrOwnerDead = errors.New("manager: previous lock holder disconnected")

	// ErrNotOwner reports a Release of a Lock that the connection does not
	// hold.
	ErrNotOwner = errors.New("manager: lock not held by this client")

	// ErrTooLarge reports a request or response larger than the frame
	// limit.
	ErrTooLarge = errors.New("manager: message too large")

	// ErrServer reports that the server failed while handling the request
	// (a panic in a handler). The server keeps serving.
	ErrServer = errors.New("manager: server error")

	// ErrBadRequest reports a request the server could not decode or does
	// not support.
	ErrBadRequest = errors.New("manager: bad request")

	// ErrBadOptions reports Options that do not apply where they were
	// given, such as a TLSConfig given to Start.
	ErrBadOptions = errors.New("manager: options do not apply")
)

// statusErr maps a response status to the error callers see.
func statusErr(s status) error {
	switch s {
	case statusNotFound, statusNoKey:
		return fs.ErrNotExist
	case statusExists:
		return fs.ErrExist
	case statusKind:
		return ErrKind
	case statusType:
		return ErrType
	case statusIndex:
		return ErrIndex
	case statusOwnerDead:
		return ErrOwnerDead
	case statusNotOwner:
		return ErrNotOwner
	case statusTimeout, statusFull, statusEmpty:
		return context.DeadlineExceeded
	case statusCanceled:
		return context.Canceled
	case statusBadRequest:
		return ErrBadRequest
	case statusInternal:
		return ErrServer
	case statusClosed:
		return ErrClosed
	case statusTooLarge:
		return ErrTooLarge
	}
	return ErrProtocol
}

// statusText describes s in a reply that has no message of its own: a
// grant with OwnerDead, and the end of a parked request. RemoteError.Error
// puts "manager: " in front, so the text of a sentinel goes without it.
func statusText(s status) string {
	switch s {
	case statusTimeout:
		return "timed out"
	case statusCanceled:
		return "canceled"
	case statusClosed:
		return "connection closing"
	case statusNotFound:
		return "object removed"
	}
	return strings.TrimPrefix(statusErr(s).Error(), "manager: ")
}

// RemoteError is an error status returned by the server. It unwraps to the
// sentinel for its status.
type RemoteError struct {
	status  status
	Message string // the server's description
}

func (e *RemoteError) Error() string { return "manager: " + e.Message }

// Unwrap returns the sentinel error of the status.
func (e *RemoteError) Unwrap() error { return statusErr(e.status) }

// serverError is an error raised while handling a request; it carries the
// status to reply with.
type serverError struct {
	status status
	msg    string
}

func (e *serverError) Error() string { return e.msg }

func failf(s status, msg string) *serverError { return &serverError{s, msg} }
