//go:build unix

package main

import (
	"os"

	"github.com/shmkit/shmkit/manager"
)

// gcManagerDirs is the part of gc that removes the socket directories of
// manager servers started by processes that have died without shutting
// them down (see manager.StaleDirs), and reports each to r; with
// r.dryRun it removes nothing. It removes them itself, as
// manager.RemoveStaleDirs would, so that a failure is told with the
// directory it concerns.
func gcManagerDirs(r *gcReport) {
	dirs, err := manager.StaleDirs()
	if err != nil {
		r.inv.errorf("gc: %v", err)
	}
	for _, d := range dirs {
		var err error
		if !r.dryRun {
			err = os.RemoveAll(d)
		}
		r.add(d, "manager-dir", err)
	}
}
