//go:build linux

package shmconn

// supported reports whether this platform has the futexes Conn sleeps on.
const supported = true
