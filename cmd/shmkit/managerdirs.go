package main

import (
	"fmt"

	"github.com/shmkit/shmkit/manager"
)

// gcManagerDirs is the part of gc that removes the socket directories of
// manager servers started by processes that have died without shutting
// them down (see manager.StaleDirs); with dryRun it prints what it would
// remove, and removes nothing.
func gcManagerDirs(inv *invocation, dryRun bool) {
	var dirs []string
	var err error
	verb := "removed"
	if dryRun {
		dirs, err = manager.StaleDirs()
		verb = "would remove"
	} else {
		dirs, err = manager.RemoveStaleDirs()
	}
	for _, d := range dirs {
		fmt.Fprintf(inv.stdout, "%s %s\n", verb, d)
	}
	if err != nil {
		inv.errorf("gc: %v", err)
	}
}
