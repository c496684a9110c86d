//go:build linux

package shmconn

// Ring rings the Bell r rings.
func Ring(r *Ringer) { r.ring() }

// Rings returns how many wake-ups b has read.
func Rings(b *Bell) int64 { return b.rings.Load() }

// Polls returns how many times b has polled after a wake-up.
func Polls(b *Bell) int64 { return b.polls.Load() }
