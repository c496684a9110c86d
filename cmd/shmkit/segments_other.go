//go:build !unix

package main

import (
	"context"

	"github.com/shmkit/shmkit/shm"
)

// The segment commands need /dev/shm and /proc; on this platform they say
// so.

func runLs(context.Context, *invocation, []string) error      { return shm.ErrNotSupported }
func runInspect(context.Context, *invocation, []string) error { return shm.ErrNotSupported }
func runRm(context.Context, *invocation, []string) error      { return shm.ErrNotSupported }
func runGC(context.Context, *invocation, []string) error      { return shm.ErrNotSupported }
